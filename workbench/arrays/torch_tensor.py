"""``TracedTensor``: an array-level traced value as a ``torch.Tensor``.

torch code checks ``isinstance(x, torch.Tensor)`` in places -- ``torch.func.functional_call``
swaps only tensors into a module -- so differentiated torch arguments reach the function as
these wrappers (``torch.Tensor._make_wrapper_subclass``: shape and dtype, no storage). Their
``__torch_function__`` sends every torch function and Tensor method to ``torch_functions``;
shape, dtype and the like come from the wrapper. The array level unwraps them wherever it takes
an operand (``traced.node_of``, ``transforms.as_array``, a trace's outputs).

Created only when torch is in use (torch is read from ``sys.modules``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .graph import NotArrayLevel
from .traced import ArrayTraced

_TENSOR_CLASS: type | None = None  # created with torch, on first use
_METADATA = frozenset({"dim", "ndimension", "size", "numel", "nelement", "is_floating_point",
                       "is_complex", "element_size", "get_device", "is_contiguous", "__hash__",
                       "__len__"})


def tensor_class() -> type:
    """:class:`TracedTensor`, a ``torch.Tensor`` wrapper subclass that carries an
    :class:`ArrayTraced`. Differentiated torch arguments are handed to the function as these,
    so torch's own checks accept them (``torch.func.functional_call`` swaps only tensors into
    a module); every torch function on them comes back here."""
    global _TENSOR_CLASS
    if _TENSOR_CLASS is None:
        torch = sys.modules["torch"]

        class TracedTensor(torch.Tensor):
            """A traced value as a torch tensor (metadata only: no storage of its own)."""

            @staticmethod
            def __new__(cls, traced: ArrayTraced):
                dtype = torch.from_numpy(np.empty(0, traced.dtype)).dtype
                tensor = torch.Tensor._make_wrapper_subclass(cls, traced.shape, dtype=dtype,
                                                             requires_grad=False)
                tensor.traced = traced
                return tensor

            def __init__(self, traced: ArrayTraced) -> None:
                pass

            def __repr__(self) -> str:
                return f"TracedTensor(shape={tuple(self.shape)}, dtype={self.dtype})"

            @classmethod
            def __torch_function__(cls, func, types, args=(), kwargs=None):
                return _tensor_function(func, args, kwargs or {})

            @classmethod
            def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
                raise NotArrayLevel(f"torch operator {func} on a traced tensor")

        _TENSOR_CLASS = TracedTensor
    return _TENSOR_CLASS


def as_tensor(x: ArrayTraced) -> Any:
    """``x`` as a :class:`TracedTensor` (float values; others stay as they are)."""
    if not isinstance(x, ArrayTraced) or x.dtype.kind != "f":
        return x
    return tensor_class()(x)


def unwrap(x: Any) -> Any:
    """The :class:`ArrayTraced` inside a :class:`TracedTensor`; anything else as it is."""
    if _TENSOR_CLASS is not None and type(x) is _TENSOR_CLASS:
        return x.traced
    return x


def _tensor_function(func: Callable, args: tuple, kwargs: dict) -> Any:
    """A torch function on a :class:`TracedTensor`: metadata from the wrapper, values here."""
    name = getattr(func, "__name__", None)
    if name == "__get__":  # a property: x.shape, x.dtype... from the wrapper; x.T traced
        prop = getattr(getattr(func, "__self__", None), "__name__", None)
        if prop == "T":
            from .traced import transpose

            return transpose(unwrap(args[0]))
        if prop not in ("shape", "dtype", "ndim", "device", "layout", "requires_grad",
                        "is_leaf", "grad_fn", "is_cuda", "is_sparse", "is_quantized", "is_meta",
                        "is_nested", "grad", "names"):
            raise NotArrayLevel(f"tensor property {prop}")
        name = "metadata"
    if name == "metadata" or name in _METADATA:
        with sys.modules["torch"]._C.DisableTorchFunction():
            return func(*args, **kwargs)
    from .torch_functions import dispatch

    return dispatch(func, args, kwargs)
