"""How numpy and ``wb.*`` calls on tape values become tape ops.

``__array_ufunc__`` maps ufuncs through the op table's numpy names, ``__array_function__``
looks functions up in :data:`ARRAY_FUNCTIONS`, and ``__wb_apply__`` takes op names directly
(torch functions are in ``torch_api.py``). Composite functions (``mean``, ``var``, ``outer``,
``linalg.norm``...) are written with the primitive ops, so they need no rule of their own;
numpy functions that only move elements (``flip``, ``tile``, ``hstack``...) run on element
numbers and become one ``getitem`` (a gather, scatter-added back in the backward pass).

>>> import numpy as np
>>> from workbench.tape.core import Tape
>>> t = Tape()
>>> x = t.input(np.arange(6.0).reshape(2, 3))
>>> np.flip(x, axis=1).value.tolist()
[[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ShapeError, UnsupportedOperationError
from ..ops import NUMPY_UFUNCS
from .core import TapeArray, primitive, raw
from .forward import BOOLEAN_OPS, FORWARD


def _numpy(x: Any) -> Any:
    """torch tensors become numpy arrays (constants); everything else is left alone."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return x


def apply(name: str, *operands: Any) -> Any:
    """Op ``name`` of the op table on tape values (the ``__wb_apply__`` hook)."""
    operands = tuple(_numpy(o) for o in operands)
    if name == "stop_gradient":
        return cut(operands[0], "stop_gradient")
    if name in BOOLEAN_OPS:
        return compare(name, *operands)
    if name in ("max_n", "min_n"):
        return primitive("amax" if name == "max_n" else "amin", stack(list(operands)),
                         axis=0, keepdims=False)
    if name == "where":
        return where(*operands)
    if name not in FORWARD or name in ("clip", "in_range"):
        raise UnsupportedOperationError(
            f"op {name!r} cannot be applied to tape values this way; use np.clip(x, lo, hi) for "
            "clip, and the op table's names (workbench.ops.OPS) for the others")
    return primitive(name, *operands)


class Mask(np.ndarray):
    """The boolean array a comparison of tape values gives: no gradient flows through it.

    A plain numpy bool array, except that torch sees it (``__torch_function__``), so that
    ``torch.where(x > 0, x, y)`` reaches the tape like ``np.where(x > 0, x, y)`` does.
    """

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        from .torch_api import torch_function

        return torch_function(func, args, kwargs or {})

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # arithmetic on a mask (mask * 1.0, mask.sum()) gives plain numpy results
        out = array.view(Mask) if array.dtype == np.bool_ else array.view(np.ndarray)
        return out[()] if return_scalar else out

    # torch-style conversions of a mask: (x > 0).float() * x
    def float(self) -> np.ndarray:
        return np.asarray(self, dtype=np.float64)

    double = float

    def to(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return self.float()


def compare(name: str, *operands: Any) -> Mask:
    """A comparison or logical op on tape values: a :class:`Mask` (no gradient flows through it).

    Comparisons are noted on the tape: wb.check reports ties, where the branch taken switches.
    """
    values = [np.asarray(raw(o)) for o in operands]
    if len(values) == 2 and name not in ("logical_and", "logical_or"):
        for o in operands:
            if isinstance(o, TapeArray):
                o.tape.comparisons.append((name, values[0], values[1]))
                break
    return np.asarray(FORWARD[name](*values)).view(Mask)


def cut(x: Any, how: str) -> Any:
    """``x`` as a constant (stop_gradient, detach); noted on the tape for wb.check."""
    if isinstance(x, TapeArray):
        x.tape.cuts.add(how)
    return raw(x)


def power(x: Any, y: Any) -> Any:
    return primitive("pow", _numpy(x), _numpy(y))


def remainder(x: Any, y: Any) -> Any:
    """``x % y`` with the divisor's sign (Python, numpy, torch): x - floor(x / y) * y."""
    x, y = _numpy(x), _numpy(y)
    return x - primitive("floor", x / y) * y


# ----- reductions -----
def _keep(keepdims: Any, keepdim: Any) -> bool:
    return bool(keepdims if keepdim is None else keepdim)


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def sum(x: Any, axis: Any = None, keepdims: bool = False, dtype=None, out=None, **unused) -> Any:
    return primitive("sum", x, axis=_axis(axis), keepdims=bool(keepdims))


def _count(x: Any, axis: Any) -> int:
    shape = np.shape(raw(x))
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    return int(np.prod([shape[a] for a in np.atleast_1d(axis)], dtype=np.int64))


def mean(x: Any, axis: Any = None, keepdims: bool = False, dtype=None, out=None, **unused) -> Any:
    return sum(x, axis=axis, keepdims=keepdims) / float(_count(x, axis))


def amax(x: Any, axis: Any = None, keepdims: bool = False, out=None, **unused) -> Any:
    return primitive("amax", x, axis=_axis(axis), keepdims=bool(keepdims))


def amin(x: Any, axis: Any = None, keepdims: bool = False, out=None, **unused) -> Any:
    return primitive("amin", x, axis=_axis(axis), keepdims=bool(keepdims))


def prod(x: Any, axis: Any = None, keepdims: bool = False, dtype=None, out=None, **unused) -> Any:
    """Products of pairs, halving each round: exact with zeros (no division by x)."""
    rows = reshape(x, (-1,)) if axis is None else moveaxis(x, axis, 0)
    while rows.shape[0] > 1:
        half = rows.shape[0] // 2
        paired = rows[:half] * rows[half:2 * half]
        rows = paired if rows.shape[0] % 2 == 0 else concatenate([paired, rows[2 * half:]])
    result = rows[0] if rows.shape[0] else np.ones(rows.shape[1:])
    if keepdims:
        shape = np.shape(raw(x))
        axes = range(len(shape)) if axis is None else [a % len(shape) for a in np.atleast_1d(axis)]
        result = reshape(result, tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return result


def var(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0, dtype=None, out=None,
        **unused) -> Any:
    centred = x - mean(x, axis=axis, keepdims=True)
    return sum(centred * centred, axis=axis, keepdims=keepdims) / float(_count(x, axis) - ddof)


def std(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0, **unused) -> Any:
    return sqrt_zero_grad_at_zero(var(x, axis=axis, keepdims=keepdims, ddof=ddof))


def sqrt_zero_grad_at_zero(s: Any) -> Any:
    """sqrt(s) with gradient 0 where s == 0 (torch's rule for std and norm), not 0 * inf.

    Two np.where: the sqrt branch sees 1 where s == 0, so no inf is ever multiplied by 0.
    """
    zero = raw(s) == 0
    return np.where(zero, 0.0, primitive("sqrt", np.where(zero, 1.0, s)))


def cumsum(x: Any, axis: Any = None, dtype=None, out=None) -> Any:
    return primitive("cumsum", x, axis=axis)


# ----- products -----
def matmul(a: Any, b: Any, **unused) -> Any:
    a, b = _numpy(a), _numpy(b)
    sa, sb = np.shape(raw(a)), np.shape(raw(b))
    if not sa or not sb:
        raise ShapeError("matmul: scalar operands are not allowed; use * instead")
    try:
        np.broadcast_shapes(sa[:-2], sb[:-2])
        if sa[-1] != (sb[-2] if len(sb) > 1 else sb[0]):
            raise ValueError
    except ValueError:
        raise ShapeError(f"matmul: shapes {sa} and {sb} do not align (inner dimensions "
                         f"{sa[-1]} and {sb[-2] if len(sb) > 1 else sb[0]}); transpose or "
                         "reshape one operand") from None
    return primitive("matmul", a, b)


def dot(a: Any, b: Any, out=None) -> Any:
    na, nb = np.ndim(raw(_numpy(a))), np.ndim(raw(_numpy(b)))
    if na == 0 or nb == 0:
        return primitive("mul", _numpy(a), _numpy(b))
    if na > 2 or nb > 2:
        raise UnsupportedOperationError("np.dot of arrays with more than 2 dimensions is not "
                                        "supported on tape values; use np.matmul (@)")
    return matmul(a, b)


def outer(a: Any, b: Any, out=None) -> Any:
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


def norm(x: Any, ord=None, axis=None, keepdims=False) -> Any:
    if ord not in (None, "fro") and not (ord == 2 and (np.ndim(raw(x)) == 1 or axis is not None)):
        raise UnsupportedOperationError(
            f"np.linalg.norm with ord={ord!r} is not supported on tape values; only the "
            "Euclidean/Frobenius norm is (ord=None)")
    return sqrt_zero_grad_at_zero(sum(x * x, axis=axis, keepdims=keepdims))


# ----- choices -----
def where(cond: Any, x: Any = None, y: Any = None) -> Any:
    if x is None and y is None:
        raise UnsupportedOperationError(
            "np.where(cond) with one argument returns indices; use np.where(cond, a, b)")
    return primitive("where", np.asarray(raw(_numpy(cond)), dtype=bool), _numpy(x), _numpy(y))


def clip(x: Any, a_min: Any = None, a_max: Any = None, out=None, *, min=None, max=None,
         **unused) -> Any:
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    if isinstance(lo, TapeArray) or isinstance(hi, TapeArray):  # array bounds: max, then min
        out = x if lo is None else primitive("maximum", x, lo)
        return out if hi is None else primitive("minimum", out, hi)
    lo = -np.inf if lo is None else raw(_numpy(lo))
    hi = np.inf if hi is None else raw(_numpy(hi))
    return primitive("clip", x, lo=lo, hi=hi)


# ----- moving elements -----
def reshape(x: Any, shape: Any = None, order="C", *, newshape=None, **unused) -> Any:
    shape = newshape if shape is None else shape
    return primitive("reshape", x, shape=tuple(shape) if isinstance(shape, list) else shape)


def transpose(x: Any, axes: Any = None) -> Any:
    return primitive("transpose", x, axes=None if axes is None else tuple(axes))


def expand_dims(x: Any, axis: Any) -> Any:
    return reshape(x, np.expand_dims(np.empty(np.shape(raw(x)), dtype=bool), axis).shape)


def squeeze(x: Any, axis: Any = None) -> Any:
    return reshape(x, np.squeeze(np.empty(np.shape(raw(x)), dtype=bool), axis).shape)


def moveaxis(x: Any, source: Any, destination: Any) -> Any:
    ndim = np.ndim(raw(x))
    sources = [int(a) % ndim for a in np.atleast_1d(source)]
    order = [a for a in range(ndim) if a not in sources]
    for dst, src in sorted(zip((int(a) % ndim for a in np.atleast_1d(destination)), sources)):
        order.insert(dst, src)
    return transpose(x, order)


def broadcast_to(x: Any, shape: Any, subok=False) -> Any:
    return primitive("broadcast_to", x, shape=tuple(np.atleast_1d(shape).tolist()))


def concatenate(arrays: Any, axis: Any = 0, out=None, **unused) -> Any:
    arrays = [_numpy(a) for a in arrays]
    if axis is None:
        arrays, axis = [reshape(a, (-1,)) for a in arrays], 0
    return primitive("concatenate", *arrays, axis=axis)


def stack(arrays: Any, axis: int = 0, out=None, **unused) -> Any:
    arrays = [_numpy(a) for a in arrays]
    return concatenate([expand_dims(a, axis) if isinstance(a, TapeArray)
                        else np.expand_dims(a, axis) for a in arrays], axis=axis)


def rearranged(numpy_fn: Callable) -> Callable:
    """A numpy function that only moves elements: run it on element numbers, then gather once."""

    def run(a: Any, *args: Any, **kwargs: Any) -> Any:
        shape = np.shape(raw(a))
        numbers = numpy_fn(np.arange(int(np.prod(shape, dtype=np.int64))).reshape(shape),
                           *args, **kwargs)
        flat = reshape(a, (-1,))
        if isinstance(numbers, list):
            return [flat[n] for n in numbers]
        return flat[numbers]

    return run


def rearranged_many(numpy_fn: Callable) -> Callable:
    """Like :func:`rearranged` for functions of a sequence of arrays (hstack, vstack...)."""

    def run(arrays: Any, *args: Any, **kwargs: Any) -> Any:
        arrays = [_numpy(a) for a in arrays]
        numbers, offset = [], 0
        for a in arrays:
            shape = np.shape(raw(a))
            size = int(np.prod(shape, dtype=np.int64))
            numbers.append(np.arange(offset, offset + size).reshape(shape))
            offset += size
        flat = concatenate([reshape(a, (-1,)) if isinstance(a, TapeArray)
                            else np.ravel(a) for a in arrays])
        return flat[numpy_fn(numbers, *args, **kwargs)]

    return run


def _like(fill: float) -> Callable:
    return lambda x, dtype=None, **unused: np.full(np.shape(raw(x)), fill, dtype=dtype or float)


ARRAY_FUNCTIONS: dict[Any, Callable] = {
    np.sum: sum, np.mean: mean, np.prod: prod, np.max: amax, np.amax: amax, np.min: amin,
    np.amin: amin, np.var: var, np.std: std, np.cumsum: cumsum,
    np.dot: dot, np.matmul: matmul, np.outer: outer, np.linalg.norm: norm,
    np.inner: lambda a, b: sum(a * b, axis=-1) if np.ndim(raw(a)) == 1 else dot(a, b),
    np.vdot: lambda a, b: sum(reshape(a, (-1,)) * reshape(b, (-1,))),
    np.where: where, np.clip: clip,
    np.reshape: reshape, np.transpose: transpose, np.expand_dims: expand_dims,
    np.squeeze: squeeze, np.moveaxis: moveaxis, np.broadcast_to: broadcast_to,
    np.ravel: lambda a, order="C": reshape(a, (-1,)),
    np.concatenate: concatenate, np.stack: stack,
    np.shape: lambda a: np.shape(raw(a)), np.ndim: lambda a: np.ndim(raw(a)),
    np.size: lambda a, axis=None: np.size(raw(a), axis),
    np.zeros_like: _like(0.0), np.ones_like: _like(1.0),
    np.copy: lambda a, **unused: a,
    np.trace: lambda a, offset=0, axis1=0, axis2=1: sum(
        rearranged(np.diagonal)(a, offset, axis1, axis2), axis=-1),
}
for _fn in (np.flip, np.roll, np.tile, np.repeat, np.diagonal, np.swapaxes, np.atleast_1d,
            np.atleast_2d, np.split, np.array_split, np.fliplr, np.flipud, np.rot90, np.triu,
            np.tril):
    ARRAY_FUNCTIONS[_fn] = rearranged(_fn)
for _fn in (np.hstack, np.vstack, np.column_stack, np.dstack):
    ARRAY_FUNCTIONS[_fn] = rearranged_many(_fn)
# triu/tril zero the other elements: as a gather they would repeat element 0, so mask instead.
ARRAY_FUNCTIONS[np.triu] = lambda a, k=0: a * np.triu(np.ones(np.shape(raw(a))), k)
ARRAY_FUNCTIONS[np.tril] = lambda a, k=0: a * np.tril(np.ones(np.shape(raw(a))), k)


def array_function(func: Callable, args: tuple, kwargs: dict) -> Any:
    handler = ARRAY_FUNCTIONS.get(func)
    if handler is None:
        name = getattr(func, "__name__", str(func))
        raise UnsupportedOperationError(
            f"np.{name} is not supported on tape values; supported: "
            + ", ".join(sorted({f"np.{getattr(f, '__name__', f)}" for f in ARRAY_FUNCTIONS})))
    return handler(*args, **kwargs)


# ----- ufuncs -----
UFUNC_HANDLERS: dict[str, Callable] = {
    "matmul": matmul,
    "power": power,
    "float_power": power,
    "square": lambda x: primitive("mul", x, x),
    "reciprocal": lambda x: primitive("div", 1.0, x),
    "positive": lambda x: x,
    "remainder": remainder,
    "conjugate": lambda x: x,
    "hypot": lambda a, b: primitive("sqrt", a * a + b * b),
    "logaddexp": lambda a, b: primitive("maximum", a, b) + primitive(
        "log1p", primitive("exp", -primitive("abs", a - b))),
}
_REDUCERS = {"add": sum, "multiply": prod, "maximum": amax, "minimum": amin}


def ufunc_call(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    name = ufunc.__name__
    if kwargs.get("out") is not None:
        raise UnsupportedOperationError(
            f"np.{name}(..., out=...) writes in place, which the tape cannot record; assign the "
            f"result instead: y = np.{name}(...)")
    if method == "reduce" and name in _REDUCERS:
        return _REDUCERS[name](inputs[0], axis=kwargs.get("axis", 0),
                               keepdims=kwargs.get("keepdims", False))
    if method != "__call__":
        raise UnsupportedOperationError(f"np.{name}.{method} is not supported on tape values")
    handler = UFUNC_HANDLERS.get(name)
    if handler is not None:
        return handler(*inputs)
    op = NUMPY_UFUNCS.get(name)
    if op is None:
        raise UnsupportedOperationError(
            f"np.{name} is not supported on tape values (no op of the op table computes it)")
    return apply(op, *inputs)
