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

from . import norms
from .errors import ShapeError, UnsupportedOperationError
from .graph import Graph
from .ops import NUMPY_UFUNCS
from .tracing import (
    STATE,
    Traced,
    _shape_error,
    as_ids,
    elementwise,
    from_object_array,
    grad_enabled,
    graph_of,
    is_traced,
    numpy_name,
    power,
    result_dtype,
    stop_gradient,
    torch_to_numpy,
)

_NO_VALUE = np._NoValue  # numpy's "argument not given" marker (initial=, where=)


def normalize_axes(axis, ndim: int, fn: str) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple of ints) as sorted non-negative axes, checked as numpy
    does: an axis outside ``-ndim..ndim-1`` or given twice is an error, never taken modulo ndim.
    (torch lets a 0-d tensor reduce over dim 0 or -1; so does this when tracing torch code.)"""
    if axis is None:
        return tuple(range(ndim))
    items = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise ShapeError(f"{fn}: axis must be an int or a tuple of ints, got {a!r}")
        a = int(a)
        if ndim == 0 and a in (0, -1) and STATE.torch_style:
            continue
        if not -ndim <= a < ndim:
            raise ShapeError(f"{fn}: axis {a} is out of bounds for an array of dimension {ndim} "
                             f"(valid: {-ndim}..{ndim - 1})" if ndim else
                             f"{fn}: axis {a} given for a 0-d (scalar) array, which has no axes")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{fn}: axis {axis!r} names an axis twice")
    return tuple(sorted(out))


def _refuse_out(out, fn: str) -> None:
    if out is not None:
        raise UnsupportedOperationError(
            f"{fn}(..., out=...) writes into an array in place, which tracing cannot follow; "
            f"assign the result instead: y = {fn}(...)")


def _cast(result, dtype, fn: str):
    """``dtype=`` of a reduction: float dtypes are honoured, others would drop the gradient."""
    if dtype is None:
        return result
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise UnsupportedOperationError(
            f"{fn}(..., dtype={dtype}) would turn traced floats into {dtype} and drop their "
            "gradient; use a float dtype or leave dtype out")
    return result.astype(dtype) if isinstance(result, Traced) else result


def _masked(x: Traced, where, fill: float, fn: str) -> Traced:
    """``where=`` of a reduction: elements outside the mask are replaced by the identity."""
    if where is _NO_VALUE or where is True:
        return x
    mask = where if isinstance(where, Traced) else np.asarray(torch_to_numpy(where))
    if not isinstance(mask, Traced) and mask.dtype != np.bool_:
        raise UnsupportedOperationError(f"{fn}: where= must be a boolean mask, got dtype {mask.dtype}")
    try:
        np.broadcast_shapes(np.shape(mask.ids if isinstance(mask, Traced) else mask), x.shape)
    except ValueError:
        raise ShapeError(f"{fn}: where= of shape {np.shape(mask)} does not broadcast to the "
                         f"array's shape {x.shape}") from None
    picked = elementwise("where", mask, x, fill)
    return picked if picked.shape == x.shape else \
        Traced(picked.graph, np.broadcast_to(picked.ids, x.shape), picked.dtype)


def _reduce_rows(x: Traced, axis, keepdims: bool, combine: Callable[[Graph, list[int]], int],
                 fn: str = "reduction", dtype=None):
    """Apply ``combine(graph, ids)`` to the elements along ``axis``."""
    graph = graph_of(x)
    ids = x.ids
    axes = normalize_axes(axis, ids.ndim, fn)
    keep = [d for d in range(ids.ndim) if d not in axes]
    moved = np.transpose(ids, keep + list(axes)) if ids.ndim else ids
    out_shape = tuple(ids.shape[d] for d in keep)
    rows = moved.reshape(int(np.prod(out_shape, dtype=np.int64)), -1).tolist()
    out = np.array([combine(graph, row) for row in rows], dtype=np.intp).reshape(out_shape)
    if keepdims:
        out = out.reshape(tuple(1 if d in axes else n for d, n in enumerate(ids.shape)))
    result = Traced(graph, out, x.dtype if dtype is None else dtype)
    if not grad_enabled() and dtype is None:
        return stop_gradient(result)
    return result


def _count(x: Traced, axis, fn: str = "mean") -> int:
    axes = normalize_axes(axis, x.ids.ndim, fn)
    return int(np.prod([x.ids.shape[a] for a in axes], dtype=np.int64))


def _initial(x: Traced, initial, fn: str):
    """``initial=``: one more operand of every output element (must be a number)."""
    if initial is _NO_VALUE or initial is None:
        return None
    if is_traced(initial) or np.ndim(torch_to_numpy(initial)) != 0:
        raise UnsupportedOperationError(f"{fn}: initial= must be a plain number, got {initial!r}")
    return float(initial)


def _counts(x: Traced) -> Traced:
    """A boolean array as 1.0/0.0, so that sums and means count (numpy: True + True == 2)."""
    return elementwise("where", x, 1.0, 0.0) if x.dtype == np.bool_ else x


def sum(x, axis=None, dtype=None, out=None, keepdims=False, initial=_NO_VALUE, where=_NO_VALUE):
    """``np.sum``: one n-ary ``add`` node per output element; ``initial=``, ``where=`` and
    ``dtype=`` (a float dtype) are honoured, ``out=`` is refused."""
    if not isinstance(x, Traced):
        x = _from_sequence(x, "np.sum")
    x = _counts(x)
    _refuse_out(out, "np.sum")
    x = _masked(x, where, 0.0, "np.sum")
    start = _initial(x, initial, "np.sum")

    def combine(g, row):
        if start is not None:
            row = [*row, g.const(start)]
        return g.add(*row) if row else g.const(0.0)

    return _cast(_reduce_rows(x, axis, keepdims, combine, "np.sum"), dtype, "np.sum")


def mean(x, axis=None, dtype=None, out=None, keepdims=False, *, where=_NO_VALUE):
    """``np.mean``; with ``where=`` the mean of the selected elements."""
    if not isinstance(x, Traced):
        x = _from_sequence(x, "np.mean")
    x = _counts(x)
    _refuse_out(out, "np.mean")
    if where is not _NO_VALUE and where is not True:
        ones = _masked(Traced(x.graph, as_ids(x.graph, np.ones(x.shape)), x.dtype), where, 0.0,
                       "np.mean")
        return _cast(sum(x, axis, where=where, keepdims=keepdims)
                     / sum(ones, axis, keepdims=keepdims), dtype, "np.mean")
    n = _count(x, axis, "np.mean")
    return _cast(_reduce_rows(x, axis, keepdims,
                              lambda g, row: g.div(g.add(*row), g.const(float(n)))
                              if row else g.const(float("nan")), "np.mean"), dtype, "np.mean")


def prod(x, axis=None, dtype=None, out=None, keepdims=False, initial=_NO_VALUE, where=_NO_VALUE):
    if not isinstance(x, Traced):
        x = _from_sequence(x, "np.prod")
    x = _counts(x)
    _refuse_out(out, "np.prod")
    x = _masked(x, where, 1.0, "np.prod")
    start = _initial(x, initial, "np.prod")

    def combine(g, row):
        if start is not None:
            row = [*row, g.const(start)]
        while len(row) > 1:  # a balanced tree keeps the graph shallow
            row = [g.mul(row[i], row[i + 1]) if i + 1 < len(row) else row[i]
                   for i in range(0, len(row), 2)]
        return row[0] if row else g.const(1.0)

    return _cast(_reduce_rows(x, axis, keepdims, combine, "np.prod"), dtype, "np.prod")


def _extreme(op: str, fn: str, fill: float):
    def reduce(x, axis=None, out=None, keepdims=False, initial=_NO_VALUE, where=_NO_VALUE):
        if not isinstance(x, Traced):
            x = _from_sequence(x, fn)
        _refuse_out(out, fn)
        start = _initial(x, initial, fn)
        if where is not _NO_VALUE and where is not True:
            if start is None:
                raise UnsupportedOperationError(
                    f"{fn}(..., where=...) needs initial= too (as in numpy): an output element "
                    "could have no element to take the extreme of")
            x = _masked(x, where, fill, fn)

        def combine(g, row):
            if start is not None:
                row = [*row, g.const(start)]
            if not row:
                raise ShapeError(f"{fn} of an empty array has no identity; pass initial=")
            return row[0] if len(row) == 1 else g.apply(op, *row)

        return _reduce_rows(x, axis, keepdims, combine, fn)

    reduce.__name__ = fn.split(".")[-1]
    return reduce


amax = _extreme("max_n", "np.max", -np.inf)
amin = _extreme("min_n", "np.min", np.inf)


def _logical(op: str, fn: str, empty: bool):
    """``np.all`` / ``np.any`` (and the methods): a traced boolean per output element."""
    def reduce(x, axis=None, out=None, keepdims=False, *, where=_NO_VALUE):
        if not isinstance(x, Traced):
            x = _from_sequence(x, fn)
        _refuse_out(out, fn)
        if x.dtype != np.bool_:
            x = elementwise("ne", x, 0.0)
        if where is not _NO_VALUE and where is not True:
            x = _masked(x, where, empty, fn)

        def combine(g, row):
            while len(row) > 1:
                row = [g.apply(op, row[i], row[i + 1]) if i + 1 < len(row) else row[i]
                       for i in range(0, len(row), 2)]
            return row[0] if row else g.const(empty)

        return _reduce_rows(x, axis, keepdims, combine, fn, dtype=np.bool_)

    return reduce


all_ = _logical("logical_and", "np.all", True)
any_ = _logical("logical_or", "np.any", False)


def var(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=_NO_VALUE,
        mean=_NO_VALUE, correction=_NO_VALUE):
    if not isinstance(x, Traced):
        x = _from_sequence(x, "np.var")
    x = _counts(x)
    _refuse_out(out, "np.var")
    for name, given in (("where", where), ("mean", mean)):
        if given is not _NO_VALUE:
            raise UnsupportedOperationError(f"np.var/np.std(..., {name}=...) is not supported by "
                                            "workbench tracing; compute it from np.mean/np.sum")
    if correction is not _NO_VALUE:
        ddof = correction
    centred = x - globals()["mean"](x, axis=axis, keepdims=True)
    n = _count(x, axis, "np.var")
    return _cast(sum(centred * centred, axis=axis, keepdims=keepdims) / float(n - ddof), dtype,
                 "np.var")


def std(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=_NO_VALUE,
        mean=_NO_VALUE, correction=_NO_VALUE):
    return norms.sqrt_zero_grad_at_zero(var(x, axis, dtype, out, ddof, keepdims, where=where,
                                            mean=mean, correction=correction))


def _from_sequence(x, fn: str) -> Traced:
    """A reduction's operand that is not itself traced (a list of traced values...)."""
    converted = from_object_array(np.asarray(x, dtype=object)) if isinstance(x, (list, tuple)) \
        else from_object_array(x) if isinstance(x, np.ndarray) else x
    if not isinstance(converted, Traced):
        raise UnsupportedOperationError(f"{fn}: no traced value in {type(x).__name__} operand")
    return converted


def clip(x, lo=None, hi=None, out=None, **kwargs):
    """``np.clip`` / ``torch.clamp``: gradient 1 on the closed interval, 0 outside (torch's rule).

    numpy's and torch's value is ``min(max(x, lo), hi)``, so where ``lo > hi`` every element is
    ``hi`` (nan stays nan), with gradient 0 (torch).
    """
    _refuse_out(out, "np.clip")
    for name in ("a_min", "a_max", "min", "max"):  # numpy < 2 and numpy 2 / torch spellings
        if name in kwargs:
            value = kwargs.pop(name)
            if name in ("a_min", "min"):
                lo = value
            else:
                hi = value
    if kwargs:
        raise UnsupportedOperationError(
            f"np.clip(..., {', '.join(kwargs)}=...) is not supported by workbench tracing")
    if is_traced(lo) or is_traced(hi) or np.ndim(torch_to_numpy(lo)) or np.ndim(torch_to_numpy(hi)):
        return _clip_by_arrays(x, lo, hi)
    lo_v = -np.inf if lo is None else float(torch_to_numpy(lo))
    hi_v = np.inf if hi is None else float(torch_to_numpy(hi))
    if lo_v > hi_v:  # every element is hi (nan stays nan); no gradient, as torch.clamp
        constant_hi = elementwise("clip", x, params=(hi_v, hi_v))
        return elementwise("where", elementwise("ne", x, x), x, stop_gradient(constant_hi))
    return elementwise("clip", x, params=(lo_v, hi_v))


def _clip_by_arrays(x, lo, hi):
    """clip with array or traced bounds: numpy's value min(max(x, lo), hi) (so hi wherever
    lo > hi), and torch.clamp's gradient: to x where lo <= x <= hi, to lo where x < lo, to hi
    where x > hi (not maximum/minimum's even split at a tie)."""
    out = x
    if lo is not None:
        out = elementwise("where", elementwise("lt", x, lo), lo, out)
    if hi is not None:
        above = elementwise("gt", x, hi)
        if lo is not None:
            inverted = elementwise("gt", lo, hi) if is_traced(lo, hi) else \
                np.greater(torch_to_numpy(lo), torch_to_numpy(hi))
            above = elementwise("logical_or", above, inverted)
        out = elementwise("where", above, hi, out)
    if not isinstance(out, Traced):
        return out
    shape = np.broadcast_shapes(*(np.shape(_ids_or_value(v)) for v in (x, lo, hi) if v is not None))
    return out if out.shape == shape else Traced(out.graph, np.broadcast_to(out.ids, shape).copy(),
                                                 out.dtype)


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
        name = numpy_name(numpy_fn)
        _refuse_out(kwargs.pop("out", None), name)
        wanted = kwargs.pop("dtype", None)
        for key in ("casting", "like", "subok"):
            if key in kwargs:
                raise UnsupportedOperationError(
                    f"{name}(..., {key}=...) is not supported by workbench tracing")
        if wanted is not None:
            if np.dtype(wanted).kind != "f":
                raise UnsupportedOperationError(
                    f"{name}(..., dtype={np.dtype(wanted)}) would drop the gradient of traced "
                    "floats; use a float dtype or leave it out")
            dtype = np.dtype(wanted)
        # Only the first argument holds data (an array or a sequence of arrays); the rest are
        # static (shapes, axes, repeats) and must stay plain ints.
        data = _map(args[0], lambda a: as_ids(graph, a) if _is_leaf_operand(a) else a)
        try:
            return Traced(graph, numpy_fn(data, *args[1:], **kwargs), dtype)
        except (IndexError, ValueError) as error:
            raise _shape_error(name, error) from None

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


def _like(fill):
    def build(x, dtype=None, order="K", subok=True, shape=None, **kwargs):
        if kwargs:
            raise UnsupportedOperationError(
                f"np.{'zeros' if fill == 0.0 else 'ones'}_like(..., {', '.join(kwargs)}=...) is "
                "not supported by workbench tracing")
        target = np.shape(x.ids if isinstance(x, Traced) else x) if shape is None else shape
        return np.full(target, fill, dtype=dtype or (x.dtype if isinstance(x, Traced)
                                                    else np.float64))

    return build


def _outer(a, b, out=None):
    _refuse_out(out, "np.outer")
    return elementwise("mul", _reshape(a, (-1, 1)), _reshape(b, (1, -1)))


def _reshape(x, shape):
    return x.reshape(shape) if isinstance(x, Traced) else np.reshape(x, shape)


def _inner(a, b):
    """``np.inner``: the sum over the *last* axes of both operands (not a matrix product):
    the result has shape ``a.shape[:-1] + b.shape[:-1]``."""
    sa, sb = np.shape(_ids_or_value(a)), np.shape(_ids_or_value(b))
    if not sa or not sb:
        return elementwise("mul", a, b)
    if sa[-1] != sb[-1]:
        raise ShapeError(f"np.inner: the last dimensions of shapes {sa} and {sb} differ")
    a2 = _reshape(a, sa[:-1] + (1,) * (len(sb) - 1) + sa[-1:])
    return sum(elementwise("mul", a2, b), axis=-1)


def _linalg_norm(x, ord=None, axis=None, keepdims=False):
    """``np.linalg.norm`` (:mod:`workbench.norms`, shared with the array level)."""
    x = x if isinstance(x, Traced) else _from_sequence(x, "np.linalg.norm")
    return norms.linalg_norm(x, ord, axis, keepdims)


def _cumsum(x, axis=None, dtype=None, out=None):
    _refuse_out(out, "np.cumsum")
    if axis is not None:
        (axis,) = normalize_axes(axis, x.ndim, "np.cumsum")
    return _cast(_cumsum_ids(x, axis), dtype, "np.cumsum")


def _cumsum_ids(x, axis):
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


def _trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _refuse_out(out, "np.trace")
    return _cast(sum(_structural(np.diagonal)(a, offset, axis1, axis2), axis=-1), dtype, "np.trace")


def _dot(a, b, out=None):
    _refuse_out(out, "np.dot")
    return dot(a, b)


ARRAY_FUNCTIONS: dict[Any, Callable] = {
    np.sum: sum, np.mean: mean, np.prod: prod, np.max: amax, np.amax: amax, np.min: amin,
    np.amin: amin, np.var: var, np.std: std, np.dot: _dot, np.where: where, np.clip: clip,
    np.all: all_, np.any: any_,
    np.outer: _outer, np.linalg.norm: _linalg_norm, np.cumsum: _cumsum,
    np.zeros_like: _like(0.0), np.ones_like: _like(1.0),
    np.inner: _inner,
    np.vdot: lambda a, b: sum(_reshape(a, -1) * _reshape(b, -1)),
    np.trace: _trace,
}
for _fn in (np.reshape, np.transpose, np.stack, np.concatenate, np.hstack, np.vstack,
            np.column_stack, np.expand_dims, np.squeeze, np.broadcast_to, np.flip, np.roll,
            np.tile, np.repeat, np.ravel, np.atleast_1d, np.atleast_2d, np.diagonal,
            np.swapaxes, np.moveaxis, np.copy, np.split, np.array_split):
    ARRAY_FUNCTIONS[_fn] = _structural(_fn)


def _splitter(numpy_split):
    """np.split / np.array_split return a list of arrays: a list of traced arrays."""
    def split(a, *args, **kwargs):
        try:
            pieces = numpy_split(a.ids, *args, **kwargs)
        except (IndexError, ValueError) as error:
            raise _shape_error(numpy_name(numpy_split), error) from None
        return [Traced(a.graph, ids, a.dtype) for ids in pieces]

    return split


ARRAY_FUNCTIONS[np.split] = _splitter(np.split)
ARRAY_FUNCTIONS[np.array_split] = _splitter(np.array_split)
ARRAY_FUNCTIONS[np.shape] = lambda a: a.shape
ARRAY_FUNCTIONS[np.ndim] = lambda a: a.ndim
ARRAY_FUNCTIONS[np.size] = lambda a, axis=None: a.ids.size if axis is None else a.shape[axis]

def _logaddexp(a, b):
    """log(exp(a) + exp(b)) = m + log(exp(a - m) + exp(b - m)) with m = max(a, b) held constant.

    m cancels, so holding it constant leaves every derivative exact and smooth (the second
    derivative at a tie is 1/4, as torch and jax); it only keeps exp from overflowing. An
    infinite m is replaced by 0 so that -inf and inf inputs give numpy's -inf and inf.
    """
    top = elementwise("maximum", a, b)
    top = stop_gradient(elementwise("where", elementwise("eq", elementwise("abs", top), np.inf),
                                    0.0, top))
    total = elementwise("add", elementwise("exp", elementwise("sub", a, top)),
                        elementwise("exp", elementwise("sub", b, top)))
    return elementwise("add", elementwise("log", total), top)


def _hypot(a, b):
    """sqrt(a^2 + b^2) scaled by m = max(|a|, |b|) (held constant: it cancels) so that it does
    not overflow or underflow where numpy's hypot does not."""
    def magnitude(v):
        return elementwise("abs", v) if is_traced(v) else np.abs(torch_to_numpy(v))

    scale = stop_gradient(elementwise("maximum", magnitude(a), magnitude(b)))
    safe = stop_gradient(elementwise("where", elementwise("logical_or", elementwise(
        "eq", scale, 0.0), elementwise("eq", scale, np.inf)), 1.0, scale))
    ra, rb = elementwise("div", a, safe), elementwise("div", b, safe)
    return elementwise("mul", elementwise("sqrt", ra * ra + rb * rb), safe)


UFUNC_HANDLERS: dict[str, Callable] = {
    "matmul": matmul,
    "square": lambda x: elementwise("mul", x, x),
    "reciprocal": lambda x: elementwise("div", 1.0, x),
    "positive": lambda x: x,
    "conjugate": lambda x: x,
    "power": power,
    "float_power": power,
    "cbrt": lambda x: elementwise("mul", elementwise("sign", x),
                                  power(elementwise("abs", x), 1.0 / 3.0)),
    "logaddexp": _logaddexp,
    "isnan": lambda x: elementwise("ne", x, x),
    "isinf": lambda x: elementwise("eq", elementwise("abs", x), np.inf),
    "isfinite": lambda x: elementwise("logical_not", elementwise(
        "logical_or", elementwise("ne", x, x), elementwise("eq", elementwise("abs", x), np.inf))),
    "hypot": _hypot,
}


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
