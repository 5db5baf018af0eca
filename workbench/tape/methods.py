"""Operators and methods of tape values: ``x + y``, ``x @ w``, ``x[1:]``, ``x.sum(dim=0)``,
``x.sin()``, ``v.dot(w)``, ``x.relu()``, ``x.pow(2)``, ``x.dim()``... (numpy and torch names).

Comparisons give plain boolean arrays: no gradient flows through them, and ``if x > 0`` just
takes the branch the value says (the tape records what ran, so no guard is needed).

>>> import numpy as np
>>> from workbench.tape.core import Tape
>>> x = Tape().input(np.array([1.0, -2.0]))
>>> float((x.relu() * 3).sum().item()), x.dim(), bool(x[0] > 0)
(3.0, 1, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import TracedConversionError, UnsupportedOperationError
from ..ops import NUMPY_UFUNCS, OPS, TORCH_FUNCTIONS
from . import numpy_api as api
from . import torch_api, torch_nn
from .core import TapeArray, primitive, raw
from .forward import FORWARD


class _Size(int):
    """``x.size`` is numpy's element count and ``x.size()`` torch's shape: both work."""

    def __new__(cls, n: int, shape: tuple):
        self = super().__new__(cls, n)
        self.shape = shape
        return self

    def __call__(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]


def _index(index: Any) -> Any:
    """Indices are data, not differentiable: tape values and tensors in them become numpy."""
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    return raw(api._numpy(index))


def _binary(name: str, reflected: bool = False):
    if reflected:
        return lambda self, other: primitive(name, api._numpy(other), self)
    return lambda self, other: primitive(name, self, api._numpy(other))


def _compare(name: str):
    return lambda self, other: api.compare(name, self, api._numpy(other))


def _axis(axis: Any, dim: Any) -> Any:
    return dim if dim is not None else axis


def _ddof(self, ddof, unbiased, correction) -> int:
    """numpy's ddof, or torch's unbiased/correction; with none given, the convention of the
    inputs (torch tensors: 1, numpy: 0), as the tracer does."""
    if correction is not None:
        return correction
    if unbiased is not None:
        return 1 if unbiased else 0
    return ddof if ddof is not None else int(self.tape.torch_style)


def _transpose(self, axes: tuple) -> Any:
    """numpy's x.transpose(*axes), or torch's x.transpose(dim0, dim1) (a swap) when the inputs
    were torch tensors, as the tracer does."""
    if len(axes) == 2 and self.tape.torch_style:
        return torch_api.swap(self, *axes)
    axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
    return api.transpose(self, axes or None)


def _setitem(self, index, value) -> None:
    raise UnsupportedOperationError(
        "assigning into a tape value (x[i] = v) would rewrite history the tape already "
        "recorded; build the new array instead: np.where(mask, v, x), np.concatenate, np.stack")


def _astype(self, dtype, copy=True):
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise TracedConversionError(
            f"astype({dtype}) on a tape value: only float dtypes keep a gradient; compare "
            "(x > 0) to get a mask, and np.where to use it")
    return self


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    op = ELEMENTWISE_UFUNCS.get(ufunc) if method == "__call__" and not kwargs else None
    if op is not None:  # the common case, kept short
        return primitive(op, *inputs)
    return api.ufunc_call(ufunc, method, inputs, kwargs)


# numpy ufunc -> op name, for the ufuncs that are one elementwise op of the op table
ELEMENTWISE_UFUNCS = {getattr(np, n): op for n, op in NUMPY_UFUNCS.items()
                      if isinstance(getattr(np, n, None), np.ufunc) and not OPS[op].boolean
                      and op in FORWARD}

METHODS: dict[str, Any] = {
    "__array_ufunc__": _array_ufunc,
    "__array_function__": lambda self, func, types, args, kwargs: api.array_function(
        func, args, kwargs),
    "__torch_function__": classmethod(lambda cls, func, types, args=(), kwargs=None:
                                      torch_api.torch_function(func, args, kwargs or {})),
    "__wb_apply__": lambda self, name, *operands: api.apply(name, *operands),
    "__add__": _binary("add"), "__radd__": _binary("add", True),
    "__sub__": _binary("sub"), "__rsub__": _binary("sub", True),
    "__mul__": _binary("mul"), "__rmul__": _binary("mul", True),
    "__truediv__": _binary("div"), "__rtruediv__": _binary("div", True),
    "__pow__": lambda self, other: api.power(self, other),
    "__rpow__": lambda self, other: api.power(other, self),
    "__matmul__": lambda self, other: api.matmul(self, other),
    "__rmatmul__": lambda self, other: api.matmul(other, self),
    "__neg__": lambda self: primitive("neg", self),
    "__pos__": lambda self: self,
    "__abs__": lambda self: primitive("abs", self),
    "__gt__": _compare("gt"), "__ge__": _compare("ge"), "__lt__": _compare("lt"),
    "__le__": _compare("le"), "__eq__": _compare("eq"), "__ne__": _compare("ne"),
    "__and__": lambda self, other: api.compare("logical_and", self, other),
    "__or__": lambda self, other: api.compare("logical_or", self, other),
    "__invert__": lambda self: api.compare("logical_not", self),
    "__getitem__": lambda self, index: primitive("getitem", self, index=_index(index)),
    "__setitem__": _setitem,
    # numpy-style and torch-style methods
    "sum": lambda self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None:
        api.sum(self, _axis(axis, dim), api._keep(keepdims, keepdim)),
    "mean": lambda self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None:
        api.mean(self, _axis(axis, dim), api._keep(keepdims, keepdim)),
    "prod": lambda self, axis=None, keepdims=False, *, dim=None, keepdim=None:
        api.prod(self, _axis(axis, dim), api._keep(keepdims, keepdim)),
    "max": lambda self, axis=None, keepdims=False, *, dim=None, keepdim=None:
        api.amax(self, _axis(axis, dim), api._keep(keepdims, keepdim)),
    "min": lambda self, axis=None, keepdims=False, *, dim=None, keepdim=None:
        api.amin(self, _axis(axis, dim), api._keep(keepdims, keepdim)),
    "amax": lambda self, axis=None, keepdims=False, *, dim=None, keepdim=None:
        api.amax(self, _axis(axis, dim), api._keep(keepdims, keepdim)),
    "amin": lambda self, axis=None, keepdims=False, *, dim=None, keepdim=None:
        api.amin(self, _axis(axis, dim), api._keep(keepdims, keepdim)),
    "var": lambda self, axis=None, keepdims=False, ddof=None, *, dim=None, keepdim=None,
    unbiased=None, correction=None: api.var(self, _axis(axis, dim), api._keep(keepdims, keepdim),
                                            _ddof(self, ddof, unbiased, correction)),
    "std": lambda self, axis=None, keepdims=False, ddof=None, *, dim=None, keepdim=None,
    unbiased=None, correction=None: api.std(self, _axis(axis, dim), api._keep(keepdims, keepdim),
                                            _ddof(self, ddof, unbiased, correction)),
    "norm": lambda self, p="fro", dim=None, keepdim=False, dtype=None: torch_api.euclidean_norm(
        self, p, dim, keepdim),
    "cumsum": lambda self, axis=None, *, dim=None: api.cumsum(self, _axis(axis, dim)),
    "dot": lambda self, other: api.dot(self, other),
    "matmul": lambda self, other: api.matmul(self, other),
    "pow": lambda self, exponent: api.power(self, exponent),
    "square": lambda self: primitive("mul", self, self),
    "reciprocal": lambda self: primitive("div", 1.0, self),
    "rsqrt": lambda self: primitive("div", 1.0, primitive("sqrt", self)),
    "__mod__": lambda self, other: api.remainder(self, other),
    "__rmod__": lambda self, other: api.remainder(other, self),
    "clip": lambda self, min=None, max=None: api.clip(self, min, max),
    "clamp": lambda self, min=None, max=None: api.clip(self, min, max),
    "reshape": lambda self, *shape, order="C": api.reshape(
        self, tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list))
        else shape),
    "flatten": lambda self, start_dim=0, end_dim=-1: torch_nn.flatten(
        self, *((0, -1) if isinstance(start_dim, str) else (start_dim, end_dim))),  # str: order
    "ravel": lambda self: api.reshape(self, (-1,)),
    "transpose": lambda self, *axes: _transpose(self, axes),
    "squeeze": lambda self, axis=None: api.squeeze(self, axis),
    "unsqueeze": lambda self, dim: api.expand_dims(self, dim),
    "t": lambda self: api.transpose(self),
    "T": property(lambda self: api.transpose(self)),
    "mT": property(lambda self: np.swapaxes(self, -1, -2)),
    "copy": lambda self: self,
    "clone": lambda self: self,
    "detach": lambda self: api.cut(self, "detach"),
    "astype": _astype,
    "dim": lambda self: self.ndim,
    "numel": lambda self: int(np.size(raw(self))),
    "size": property(lambda self: _Size(int(np.size(raw(self))), self.shape)),
}
METHODS["view"] = METHODS["reshape"]

def _unary_method(op: str):
    return lambda self: api.apply(op, self)


# One method per elementwise op of the op table, under its name and torch's names (x.sin(),
# x.relu(), x.sigmoid(), x.arctan()...).
for _alias, _op in [(n, n) for n, op in OPS.items() if op.arity == 1] + list(TORCH_FUNCTIONS.items()):
    if OPS[_op].arity == 1 and not _alias.startswith("_") and _alias not in METHODS \
            and _op not in ("alias", "stop_gradient", "clip", "in_range"):
        METHODS[_alias] = _unary_method(_op)

# Tensor methods that are torch functions too (x.softmax(1), x.permute(1, 0), x.masked_fill(...)).
for _name, _handler in torch_api.TORCH_HANDLERS.items():
    if not _name.startswith("_") and _name not in METHODS:
        METHODS[_name] = _handler

for _name, _method in METHODS.items():
    setattr(TapeArray, _name, _method)
