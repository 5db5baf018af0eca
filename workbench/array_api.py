"""numpy functions on traced arrays: reductions, products, selection and rearrangement.

``Traced.__array_function__`` and ``__array_ufunc__`` look numpy's functions up in
``ARRAY_FUNCTIONS`` and ``UFUNC_HANDLERS``. Reductions build one n-ary node per output element
(``add``, ``max_n``...); ``matmul`` builds n-ary sums of products; functions that only rearrange
elements (reshape, stack, transpose...) are applied to the arrays of node ids themselves.

>>> import numpy as np
>>> from workbench.graph import Graph
>>> from workbench.tracing import Traced, tracing
>>> with tracing(Graph()) as g:
...     x = Traced.input(g, np.array([[1.0, 2.0], [3.0, 4.0]]), "x")
...     y = np.sum(x @ x, axis=0)
>>> y.value.tolist()
[22.0, 32.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import ShapeError, UnsupportedOperationError
from .graph import Graph
from .ops import NUMPY_UFUNCS
from .tracing import (
    Traced,
    as_ids,
    elementwise,
    floor_divide,
    grad_enabled,
    graph_of,
    is_traced,
    numpy_name,
    power,
    remainder,
    result_dtype,
    stop_gradient,
    torch_to_numpy,
)


def _reduce_rows(x: Traced, axis, keepdims: bool, combine: Callable[[Graph, list[int]], int]):
    """Apply ``combine(graph, ids)`` to the elements along ``axis``."""
    graph = graph_of(x)
    ids = x.ids
    if axis is None:
        axes = tuple(range(ids.ndim))
    else:
        axes = tuple(a % ids.ndim for a in ((axis,) if np.ndim(axis) == 0 else axis)) if ids.ndim \
            else ()
    keep = [d for d in range(ids.ndim) if d not in axes]
    moved = np.transpose(ids, keep + list(axes)) if ids.ndim else ids
    out_shape = tuple(ids.shape[d] for d in keep)
    rows = moved.reshape(int(np.prod(out_shape, dtype=np.int64)), -1).tolist()
    out = np.array([combine(graph, row) for row in rows], dtype=np.intp).reshape(out_shape)
    if keepdims:
        out = out.reshape(tuple(1 if d in axes else n for d, n in enumerate(ids.shape)))
    result = Traced(graph, out, x.dtype)
    if not grad_enabled():
        return stop_gradient(result)
    return result


def _count(x: Traced, axis) -> int:
    if axis is None:
        return x.ids.size
    axes = (axis,) if np.ndim(axis) == 0 else axis
    return int(np.prod([x.ids.shape[a] for a in axes]))


def _as_traced_or_none(x):
    return x if isinstance(x, Traced) else None


def sum(x, axis=None, keepdims=False, **unused):
    """Sum over ``axis`` (all axes by default), as ``np.sum``: one n-ary ``add`` node per output."""
    if not isinstance(x, Traced):
        return np.sum(x, axis=axis, keepdims=keepdims)
    return _reduce_rows(x, axis, keepdims, lambda g, row: g.add(*row) if row else g.const(0.0))


def mean(x, axis=None, keepdims=False, **unused):
    if not isinstance(x, Traced):
        return np.mean(x, axis=axis, keepdims=keepdims)
    n = _count(x, axis)
    return _reduce_rows(x, axis, keepdims,
                        lambda g, row: g.div(g.add(*row), g.const(float(n))))


def prod(x, axis=None, keepdims=False, **unused):
    if not isinstance(x, Traced):
        return np.prod(x, axis=axis, keepdims=keepdims)

    def combine(g, row):
        while len(row) > 1:  # a balanced tree keeps the graph shallow
            row = [g.mul(row[i], row[i + 1]) if i + 1 < len(row) else row[i]
                   for i in range(0, len(row), 2)]
        return row[0] if row else g.const(1.0)

    return _reduce_rows(x, axis, keepdims, combine)


def amax(x, axis=None, keepdims=False, **unused):
    if not isinstance(x, Traced):
        return np.max(x, axis=axis, keepdims=keepdims)
    return _reduce_rows(x, axis, keepdims,
                        lambda g, row: row[0] if len(row) == 1 else g.apply("max_n", *row))


def amin(x, axis=None, keepdims=False, **unused):
    if not isinstance(x, Traced):
        return np.min(x, axis=axis, keepdims=keepdims)
    return _reduce_rows(x, axis, keepdims,
                        lambda g, row: row[0] if len(row) == 1 else g.apply("min_n", *row))


def var(x, axis=None, keepdims=False, ddof=0, **unused):
    if not isinstance(x, Traced):
        return np.var(x, axis=axis, keepdims=keepdims, ddof=ddof)
    centred = x - mean(x, axis=axis, keepdims=True)
    n = _count(x, axis)
    return sum(centred * centred, axis=axis, keepdims=keepdims) / float(n - ddof)


def std(x, axis=None, keepdims=False, ddof=0, **unused):
    return sqrt_zero_grad_at_zero(var(x, axis=axis, keepdims=keepdims, ddof=ddof))


def sqrt_zero_grad_at_zero(s: Traced) -> Traced:
    """``sqrt(s)`` whose gradient is 0 where ``s == 0`` (torch's rule for norm and std), not 0 * inf.

    The inner ``where`` keeps the unused branch finite, so no nan leaks into the gradient.
    """
    zero = elementwise("eq", s, 0.0)
    return where(zero, 0.0, elementwise("sqrt", where(zero, 1.0, s)))


def clip(x, lo=None, hi=None, **unused):
    """``np.clip`` / ``torch.clamp``: gradient 1 on the closed interval, 0 outside (torch's rule)."""
    if is_traced(lo) or is_traced(hi):
        out = x
        if lo is not None:
            out = elementwise("maximum", out, lo)
        if hi is not None:
            out = elementwise("minimum", out, hi)
        return out
    lo_v = -np.inf if lo is None else float(lo)
    hi_v = np.inf if hi is None else float(hi)
    return elementwise("clip", x, params=(lo_v, hi_v))


def matmul(a, b) -> Traced:
    """``a @ b`` with numpy's rules for 1-D and stacked operands: n-ary sums of products."""
    graph = graph_of(a, b)
    A, B = as_ids(graph, a), as_ids(graph, b)
    if A.ndim == 0 or B.ndim == 0:
        raise ShapeError("matmul: scalar operands are not allowed; use * instead")
    squeeze_a, squeeze_b = A.ndim == 1, B.ndim == 1
    if squeeze_a:
        A = A[None, :]
    if squeeze_b:
        B = B[:, None]
    if A.shape[-1] != B.shape[-2]:
        raise ShapeError(f"matmul: shapes {np.shape(A.squeeze(0) if squeeze_a else A)} and "
                         f"{np.shape(B.squeeze(-1) if squeeze_b else B)} do not align: the "
                         f"inner dimensions are {A.shape[-1]} and {B.shape[-2]}")
    try:
        batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    except ValueError:
        raise ShapeError(f"matmul: batch shapes {A.shape[:-2]} and {B.shape[:-2]} do not "
                         "broadcast") from None
    A = np.broadcast_to(A, batch + A.shape[-2:])
    B = np.broadcast_to(B, batch + B.shape[-2:])
    n, k, m = A.shape[-2], A.shape[-1], B.shape[-1]
    count = int(np.prod(batch, dtype=np.int64))  # not -1: k may be 0
    Af = A.reshape(count, n, k)
    Bt = np.swapaxes(B.reshape(count, k, m), 1, 2)
    mul, add = graph.mul, graph.add
    out = np.empty((Af.shape[0], n, m), dtype=np.intp)
    for i in range(Af.shape[0]):
        rows, cols = Af[i].tolist(), Bt[i].tolist()
        for r, row in enumerate(rows):
            for c, col in enumerate(cols):
                out[i, r, c] = add(*[mul(x, y) for x, y in zip(row, col)])
    out = out.reshape(batch + (n, m))
    if squeeze_a:
        out = out[..., 0, :]
    if squeeze_b:
        out = out[..., 0]
    result = Traced(graph, out, result_dtype(a, b))
    return result if grad_enabled() else stop_gradient(result)


def dot(a, b) -> Traced:
    """``np.dot`` for 0-, 1- and 2-D operands (a scalar operand multiplies)."""
    if np.ndim(_ids_or_value(a)) == 0 or np.ndim(_ids_or_value(b)) == 0:
        return elementwise("mul", a, b)
    if np.ndim(_ids_or_value(a)) > 2 or np.ndim(_ids_or_value(b)) > 2:
        raise UnsupportedOperationError(
            "np.dot of arrays with more than 2 dimensions is not supported by workbench tracing; "
            "use np.matmul (@) or np.einsum-free sums")
    return matmul(a, b)


def _ids_or_value(x):
    return x.ids if isinstance(x, Traced) else np.asarray(torch_to_numpy(x))


def where(cond, a=None, b=None):
    """``np.where(cond, a, b)``: picks per element; gradient flows only into the picked side."""
    if a is None and b is None:
        raise UnsupportedOperationError(
            "np.where(cond) with one argument returns data-dependent indices, which tracing "
            "cannot follow; use np.where(cond, a, b)")
    if not is_traced(cond, a, b):
        return np.where(cond, a, b)
    graph = graph_of(*(o for o in (cond, a, b) if isinstance(o, Traced)))
    if not isinstance(cond, Traced):
        cond = np.asarray(torch_to_numpy(cond), dtype=bool)
    return elementwise("where", cond, a, b) if graph is not None else None


def _structural(numpy_fn):
    """A numpy function that only rearranges elements: apply it to the id arrays."""

    def run(*args, **kwargs):
        traced = [a for a in _walk(args) if isinstance(a, Traced)]
        graph = graph_of(*traced)
        dtype = result_dtype(*traced)
        # Only the first argument holds data (an array or a sequence of arrays); the rest are
        # static (shapes, axes, repeats) and must stay plain ints.
        data = _map(args[0], lambda a: as_ids(graph, a) if _is_leaf_operand(a) else a)
        return Traced(graph, numpy_fn(data, *args[1:], **kwargs), dtype)

    return run


def _is_leaf_operand(a) -> bool:
    return isinstance(a, (Traced, np.ndarray, float, int, np.generic)) and not isinstance(a, bool) \
        or type(a).__module__.startswith("torch")


def _walk(obj):
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _walk(item)
    else:
        yield obj


def _map(obj, fn):
    if isinstance(obj, tuple):
        return tuple(_map(o, fn) for o in obj)
    if isinstance(obj, list):
        return [_map(o, fn) for o in obj]
    return fn(obj)


def _array(obj, dtype=None, **unused):
    """``np.array`` / ``np.asarray`` of (nested lists of) traced values."""
    return _structural(lambda ids: np.asarray(ids, dtype=np.intp))(obj)


def _like(fill):
    def build(x, dtype=None, **unused):
        return np.full(np.shape(x.ids if isinstance(x, Traced) else x), fill,
                       dtype=dtype or np.float64)

    return build


def _outer(a, b, out=None):
    return elementwise("mul", _reshape(a, (-1, 1)), _reshape(b, (1, -1)))


def _reshape(x, shape):
    return x.reshape(shape) if isinstance(x, Traced) else np.reshape(x, shape)


def _linalg_norm(x, ord=None, axis=None, keepdims=False):
    if ord not in (None, 2, "fro") or (ord == 2 and np.ndim(x.ids) > 1 and axis is None):
        raise UnsupportedOperationError(
            f"np.linalg.norm with ord={ord!r} is not supported by workbench tracing; only the "
            "Euclidean/Frobenius norm is (ord=None)")
    return sqrt_zero_grad_at_zero(sum(x * x, axis=axis, keepdims=keepdims))


def _cumsum(x, axis=None, **unused):
    graph = graph_of(x)
    ids = x.ids.ravel() if axis is None else np.moveaxis(x.ids, axis, -1)
    out = np.empty_like(ids)
    for index in np.ndindex(ids.shape[:-1]):
        running = None
        for j, node in enumerate(ids[index].tolist()):
            running = node if running is None else graph.add(running, node)
            out[index + (j,)] = running
    return Traced(graph, out if axis is None else np.moveaxis(out, -1, axis), x.dtype)


def _concat_like(fn):
    return _structural(fn)


ARRAY_FUNCTIONS: dict[Any, Callable] = {
    np.sum: sum, np.mean: mean, np.prod: prod, np.max: amax, np.amax: amax, np.min: amin,
    np.amin: amin, np.var: var, np.std: std, np.dot: dot, np.where: where, np.clip: clip,
    np.outer: _outer, np.linalg.norm: _linalg_norm, np.cumsum: _cumsum,
    np.array: _array, np.asarray: _array, np.asanyarray: _array,
    np.zeros_like: _like(0.0), np.ones_like: _like(1.0),
    np.inner: lambda a, b: sum(a * b, axis=-1) if np.ndim(_ids_or_value(a)) == 1 else dot(a, b),
    np.vdot: lambda a, b: sum(_reshape(a, -1) * _reshape(b, -1)),
    np.trace: lambda a, offset=0, axis1=0, axis2=1: sum(
        _structural(np.diagonal)(a, offset, axis1, axis2), axis=-1),
    np.maximum: lambda a, b, **k: elementwise("maximum", a, b),
    np.minimum: lambda a, b, **k: elementwise("minimum", a, b),
}
for _fn in (np.reshape, np.transpose, np.stack, np.concatenate, np.hstack, np.vstack,
            np.column_stack, np.expand_dims, np.squeeze, np.broadcast_to, np.flip, np.roll,
            np.tile, np.repeat, np.ravel, np.atleast_1d, np.atleast_2d, np.diagonal,
            np.swapaxes, np.moveaxis, np.copy, np.split, np.array_split):
    ARRAY_FUNCTIONS[_fn] = _structural(_fn)
ARRAY_FUNCTIONS[np.split] = lambda a, *args, **kw: [
    Traced(a.graph, ids, a.dtype) for ids in np.split(a.ids, *args, **kw)]
ARRAY_FUNCTIONS[np.shape] = lambda a: a.shape
ARRAY_FUNCTIONS[np.ndim] = lambda a: a.ndim
ARRAY_FUNCTIONS[np.size] = lambda a, axis=None: a.ids.size if axis is None else a.shape[axis]

UFUNC_HANDLERS: dict[str, Callable] = {
    "matmul": matmul,
    "square": lambda x: elementwise("mul", x, x),
    "reciprocal": lambda x: elementwise("div", 1.0, x),
    "positive": lambda x: x,
    "conjugate": lambda x: x,
    "power": power,
    "float_power": power,
    "floor_divide": floor_divide,
    "remainder": remainder,
    "cbrt": lambda x: elementwise("mul", elementwise("sign", x),
                                  power(elementwise("abs", x), 1.0 / 3.0)),
    "logaddexp": lambda a, b: _logaddexp(a, b),
    "hypot": lambda a, b: elementwise("sqrt", a * a + b * b),
}


def _logaddexp(a, b):
    hi = elementwise("maximum", a, b)
    return hi + elementwise("log1p", elementwise("exp", -elementwise("abs", a - b)))


def supported_numpy() -> list[str]:
    """The numpy names tracing understands (ufuncs and functions)."""
    names = set(NUMPY_UFUNCS) | set(UFUNC_HANDLERS)
    names |= {numpy_name(f) for f in ARRAY_FUNCTIONS}
    return sorted("np." + n if not n.startswith("np.") else n for n in names)


def concrete(x):
    """The concrete value of a traced value (or ``x`` itself when it is not traced)."""
    return x.value if isinstance(x, Traced) else x


def ids_list(xs: Sequence[Traced]) -> list[int]:
    return [i for x in xs for i in x.ids.ravel().tolist()]
