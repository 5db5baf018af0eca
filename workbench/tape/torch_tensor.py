"""``TapeTensor``: a tape value as a ``torch.Tensor``, so torch modules run on the tape.

torch code checks ``isinstance(x, torch.Tensor)`` in places -- ``torch.func.functional_call``
swaps only tensors into a module -- so differentiated torch arguments reach the function as
these wrappers (``torch.Tensor._make_wrapper_subclass``: shape and dtype, no storage) around a
:class:`~workbench.tape.core.TapeArray`. Their ``__torch_function__`` answers metadata (shape,
dtype, ``dim()``, ``size()``...) from the wrapper, runs Tensor methods as the tape value's own
methods and every other torch function through the tape's torch layer (``torch_api``); tape
values in the results are wrapped again, so the code stays in torch's world.

The class is made on first use, from the torch already imported (``import workbench`` does not
import torch).

>>> import numpy as np, torch
>>> from workbench.tape.core import Tape
>>> x = wrap(Tape().input(np.array([[1.0, -2.0]])))
>>> isinstance(x, torch.Tensor), x.shape, x.dtype
(True, torch.Size([1, 2]), torch.float64)
>>> y = torch.nn.functional.relu(x).flatten(0)
>>> type(y).__name__, unwrap(y).value.tolist()
('TapeTensor', [1.0, 0.0])
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import TracedConversionError, UnsupportedOperationError
from .core import TapeArray, raw
from .torch_api import torch_function

_TENSOR_CLASS: type | None = None  # made with torch, on first use

# Properties the wrapper answers itself (from its shape and dtype).
_METADATA_PROPERTIES = frozenset({
    "shape", "dtype", "ndim", "device", "layout", "requires_grad", "is_leaf", "grad_fn",
    "is_cuda", "is_cpu", "is_sparse", "is_quantized", "is_meta", "is_mkldnn", "is_nested",
    "names", "grad", "output_nr", "_version", "is_mps", "is_xpu"})
# Tensor methods the wrapper answers itself.
_METADATA_METHODS = frozenset({
    "dim", "ndimension", "size", "numel", "nelement", "is_floating_point", "is_complex",
    "element_size", "get_device", "is_contiguous", "__hash__", "__len__", "has_names",
    "is_signed", "__reduce_ex__", "_is_view", "is_inference", "__dir__"})
# x.<method>() that returns x itself on the tape (the value keeps its numpy dtype and place).
_IDENTITY_METHODS = frozenset({"contiguous", "cpu", "requires_grad_", "retain_grad"})
_METHOD_ALIASES = {"__rdiv__": "__rtruediv__", "__div__": "__truediv__"}
# a.__op__(b) with a a constant tensor and b a tape tensor: b.__rop__(a).
_REFLECTED = {"__add__": "__radd__", "__sub__": "__rsub__", "__mul__": "__rmul__",
              "__truediv__": "__rtruediv__", "__div__": "__rtruediv__", "__pow__": "__rpow__",
              "__matmul__": "__rmatmul__", "__mod__": "__rmod__", "__lt__": "__gt__",
              "__gt__": "__lt__", "__le__": "__ge__", "__ge__": "__le__", "__eq__": "__eq__",
              "__ne__": "__ne__"}


def tensor_class() -> type:
    """:class:`TapeTensor`, the ``torch.Tensor`` wrapper subclass around a tape value."""
    global _TENSOR_CLASS
    if _TENSOR_CLASS is None:
        torch = sys.modules["torch"]

        class TapeTensor(torch.Tensor):
            """A tape value as a torch tensor (metadata only: the value lives in ``box``)."""

            box: TapeArray

            @staticmethod
            def __new__(cls, box: TapeArray):
                value = raw(box)
                dtype = _torch_dtype(np.result_type(value))
                tensor = torch.Tensor._make_wrapper_subclass(cls, np.shape(value), dtype=dtype,
                                                             requires_grad=False)
                tensor.box = box
                return tensor

            def __init__(self, box: TapeArray) -> None:
                pass

            def __repr__(self, *args: Any, **kwargs: Any) -> str:
                return f"TapeTensor(#{self.box.entry}, {raw(self.box)!r})"

            @classmethod
            def __torch_function__(cls, func, types, args=(), kwargs=None):
                return _tensor_function(func, args, kwargs or {})

            @classmethod
            def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
                raise UnsupportedOperationError(
                    f"torch operator {func} reached a tape tensor below torch's Python API, "
                    "where the tape cannot record it; use the torch.nn layers and functions the "
                    "tape supports (see workbench.tape.torch_nn)")

        _TENSOR_CLASS = TapeTensor
    return _TENSOR_CLASS


_TORCH_DTYPES: dict[np.dtype, Any] = {}


def _torch_dtype(dtype: np.dtype) -> Any:
    """torch's dtype for a numpy dtype (remembered: wrapping is on every op's path)."""
    found = _TORCH_DTYPES.get(dtype)
    if found is None:
        found = _TORCH_DTYPES[dtype] = sys.modules["torch"].from_numpy(np.empty(0, dtype)).dtype
    return found


def wrap(box: TapeArray) -> Any:
    """``box`` as a :class:`TapeTensor`. Its tape now runs torch code, so the methods whose
    meaning differs (``x.transpose(0, 1)``, ``x.var()``) take torch's (``tape.torch_style``)."""
    box.tape.torch_style = True
    return tensor_class()(box)


def is_tape_tensor(x: Any) -> bool:
    return _TENSOR_CLASS is not None and type(x) is _TENSOR_CLASS


def unwrap(x: Any) -> Any:
    """The tape value inside a :class:`TapeTensor`; anything else as it is."""
    return x.box if is_tape_tensor(x) else x


def _operand(x: Any) -> Any:
    """An argument of a torch call, for the tape: tape tensors become tape values, constant
    tensors numpy arrays; lists and tuples are walked (torch.cat([a, b]))."""
    if is_tape_tensor(x):
        return x.box
    if type(x) in (list, tuple):
        return type(x)(_operand(a) for a in x)
    torch = sys.modules["torch"]
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return x


def _result(x: Any) -> Any:
    """A result of the tape for torch code: tape values wrapped, arrays as tensors."""
    if isinstance(x, TapeArray):
        return wrap(x)
    if isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind in "fiub":
        return sys.modules["torch"].from_numpy(np.array(x, dtype=x.dtype))
    if isinstance(x, list):
        return [_result(a) for a in x]
    if type(x) is tuple:
        return tuple(_result(a) for a in x)
    if isinstance(x, Iterator):
        return iter([_result(a) for a in x])
    return x


def _tensor_function(func: Callable, args: tuple, kwargs: dict) -> Any:
    """A torch function or Tensor method with a :class:`TapeTensor` among its arguments."""
    torch = sys.modules["torch"]
    name = getattr(func, "__name__", None)
    if name == "__get__":  # a property: x.shape, x.dtype... from the wrapper
        prop = getattr(getattr(func, "__self__", None), "__name__", None)
        if prop in _METADATA_PROPERTIES:
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **kwargs)
        if prop in ("T", "mT", "data"):
            box = unwrap(args[0])
            return _result(box.detach() if prop == "data" else getattr(box, prop))
        raise UnsupportedOperationError(f"the tensor property .{prop} is not supported on tape "
                                        "values")
    if name in _METADATA_METHODS and getattr(torch.Tensor, name, None) is func:
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **kwargs)
    if name in _IDENTITY_METHODS:
        return args[0]
    if name == "__format__":  # f"{loss:.3f}": text, no gradient to keep
        return format(raw(args[0].box), *args[1:])
    if name == "numpy":
        raise TracedConversionError(
            "x.numpy() on a tape value would turn it into a constant and drop its gradient; "
            "keep the computation in torch, or take x.detach() if a constant is meant")
    operands = [_operand(a) for a in args]
    kwargs = {k: _operand(v) for k, v in kwargs.items()}
    if name is not None and getattr(torch.Tensor, name, None) is func and operands:
        return _result(_method(name, operands, kwargs))
    return _result(torch_function(func, tuple(operands), kwargs))


def _method(name: str, operands: list, kwargs: dict) -> Any:
    """``x.name(*rest)``: the tape value's own method (torch's spelling works on tape values)."""
    self, rest = operands[0], operands[1:]
    name = _METHOD_ALIASES.get(name, name)
    if name.endswith("_") and not name.endswith("__"):
        raise UnsupportedOperationError(
            f"the in-place Tensor.{name} on a tape value would rewrite a value the tape already "
            f"recorded; use the out-of-place form: x = x.{name[:-1]}(...)")
    if not isinstance(self, TapeArray):  # a constant tensor on the left: tensor * x
        reflected = _REFLECTED.get(name)
        if reflected is not None and len(rest) == 1 and isinstance(rest[0], TapeArray):
            return getattr(rest[0], reflected)(self)
    elif hasattr(self, name):
        return getattr(self, name)(*rest, **kwargs)
    return torch_function(getattr(sys.modules["torch"].Tensor, name), tuple(operands), kwargs)
