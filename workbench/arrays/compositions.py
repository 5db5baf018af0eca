"""numpy functions the array level writes with its other operations: no op of their own.

Each is a gather, a reversing slice, a concatenation or a product of the traced value, so its
gradient, its ``vmap`` rule, its generated code and every export come from those operations.
What a function's arguments ask beyond what is written here raises :class:`NotArrayLevel`, and
the element level takes the call (with its own clear error where it has one).

>>> import numpy as np
>>> from workbench.arrays.graph import ArrayGraph
>>> from workbench.arrays.traced import ArrayTraced, array_tracing
>>> g = ArrayGraph()
>>> x = ArrayTraced(g, g.input(np.array([[1.0, 2.0], [3.0, 4.0]]), "x"))
>>> with array_tracing(g):
...     y = np.tile(np.flip(x, 1), (1, 2))
>>> g.values[y.node].tolist()
[[2.0, 1.0, 2.0, 1.0], [4.0, 3.0, 4.0, 3.0]]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import rules
from .graph import NotArrayLevel
from .traced import (
    ArrayTraced,
    _traced,
    _wrap,
    astype,
    concatenate,
    reshape,
    transpose,
)


def _axis(axis: Any, ndim: int) -> int:
    (axis,) = rules.normalize_axes(axis, ndim)
    return axis


def _gather(x: ArrayTraced, positions: np.ndarray, axis: int) -> ArrayTraced:
    """``x`` read at the integer ``positions`` along ``axis`` (an index op)."""
    return x[(slice(None),) * axis + (np.asarray(positions, dtype=np.int64),)]


# ----- reorderings -----
def flip(x, axis=None):
    """``np.flip``: a reversing slice on each axis (an index op; its adjoint scatters back)."""
    x = _traced(x)
    axes = rules.normalize_axes(axis, x.ndim)
    return x[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim))]


def roll(x, shift, axis=None):
    """``np.roll``: a gather by the rotated positions along each axis (flattened for None)."""
    x = _traced(x)
    if axis is None:
        return reshape(roll(reshape(x, (-1,)), shift, 0), x.shape)
    shifts = (shift,) if np.ndim(shift) == 0 else tuple(shift)
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    if len(shifts) == 1:
        shifts = shifts * len(axes)
    if len(axes) == 1 and len(shifts) > 1:
        axes = axes * len(shifts)
    if len(shifts) != len(axes) or any(isinstance(s, bool) or not isinstance(s, (int, np.integer))
                                       for s in shifts):
        raise NotArrayLevel("np.roll shifts")
    for s, a in zip(shifts, axes):
        a = _axis(a, x.ndim)
        n = x.shape[a]
        if n and int(s) % n:
            x = _gather(x, (np.arange(n) - int(s)) % n, a)
    return x


def repeat(x, repeats, axis=None):
    """``np.repeat`` with an integer count: a gather by the repeated positions."""
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 0:
        raise NotArrayLevel("np.repeat with repeats other than one integer")
    x = _traced(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = _axis(axis, x.ndim)
    return _gather(x, np.repeat(np.arange(x.shape[axis]), int(repeats)), axis)


def tile(x, reps):
    """``np.tile``: the array given as many leading axes as ``reps`` has, then each axis
    gathered by its positions repeated end to end."""
    reps = (reps,) if np.ndim(reps) == 0 else tuple(reps)
    if any(isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0 for r in reps):
        raise NotArrayLevel("np.tile reps")
    x = _traced(x)
    ndim = max(x.ndim, len(reps))
    x = reshape(x, (1,) * (ndim - x.ndim) + x.shape)
    reps = (1,) * (ndim - len(reps)) + reps
    for axis, r in enumerate(reps):
        if r != 1:
            x = _gather(x, np.tile(np.arange(x.shape[axis]), int(r)), axis)
    return x


# ----- joining and splitting -----
def atleast_1d(*arrays):
    out = [reshape(a, (1,)) if a.ndim == 0 else a for a in map(_traced, arrays)]
    return out[0] if len(out) == 1 else out


def atleast_2d(*arrays):
    out = [reshape(a, (1,) * (2 - a.ndim) + a.shape) if a.ndim < 2 else a
           for a in map(_traced, arrays)]
    return out[0] if len(out) == 1 else out


def _listed(arrays: Any, name: str) -> list:
    if not isinstance(arrays, (list, tuple)):
        raise NotArrayLevel(f"{name} of a non-sequence")
    return list(arrays)


def hstack(arrays, **other):
    if other:
        raise NotArrayLevel("hstack options")
    parts = [atleast_1d(a) for a in _listed(arrays, "hstack")]
    return concatenate(parts, axis=0 if parts and parts[0].ndim == 1 else 1)


def vstack(arrays, **other):
    if other:
        raise NotArrayLevel("vstack options")
    return concatenate([atleast_2d(a) for a in _listed(arrays, "vstack")], axis=0)


def column_stack(arrays):
    parts = []
    for a in map(_traced, _listed(arrays, "column_stack")):
        parts.append(reshape(a, (a.shape[0], 1)) if a.ndim == 1 else atleast_2d(a))
    return concatenate(parts, axis=1)


def _split(x, indices_or_sections, axis: int, name: str, equal: bool) -> list:
    x = _traced(x)
    axis = _axis(axis, x.ndim)
    try:  # numpy's own rule (and its error for unequal sections) on the positions
        pieces = (np.split if equal else np.array_split)(np.arange(x.shape[axis]),
                                                          indices_or_sections)
    except (ValueError, TypeError) as error:
        raise NotArrayLevel(f"{name}: {error}") from None
    out = []
    for piece in pieces:
        start = int(piece[0]) if len(piece) else 0
        out.append(x[(slice(None),) * axis + (slice(start, start + len(piece)),)])
    return out


def split(x, indices_or_sections, axis=0):
    return _split(x, indices_or_sections, axis, "np.split", True)


def array_split(x, indices_or_sections, axis=0):
    return _split(x, indices_or_sections, axis, "np.array_split", False)


# ----- products and diagonals -----
def prod(x, axis=None, keepdims=False, dtype=None, out=None, **other):
    """``np.prod``: the reduced axes moved last and flattened, then halved by multiplying the
    even and odd entries, log2(n) times. Only multiplications: the gradient is the product of
    the other entries, exact at zeros (torch's), where prod/x would give nan."""
    if dtype is not None or out is not None or other:
        raise NotArrayLevel("prod with dtype=, out= or other options")
    x = _traced(x)
    axes = rules.normalize_axes(axis, x.ndim)
    kept = [i for i in range(x.ndim) if i not in axes]
    result_dtype = np.zeros(0, x.dtype).prod().dtype if x.dtype.kind in "biu" else x.dtype
    out_shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape)) if keepdims else \
        tuple(x.shape[i] for i in kept)
    n = math.prod(x.shape[i] for i in axes)
    if n == 0:
        return _wrap(x.graph, x.graph.const(np.ones(out_shape)), result_dtype)
    if x.dtype == np.bool_:
        x = astype(x, np.float64)
    rows = reshape(transpose(x, tuple(kept) + tuple(axes)), tuple(x.shape[i] for i in kept) + (n,))
    while rows.shape[-1] > 1:
        if rows.shape[-1] % 2:  # an odd length: a trailing 1 leaves the product as it is
            rows = concatenate([rows, np.ones(rows.shape[:-1] + (1,))], axis=-1)
        rows = rows[..., ::2] * rows[..., 1::2]
    result = reshape(rows, out_shape)
    return _wrap(result.graph, result.node, result_dtype)


def vdot(a, b):
    """``np.vdot`` of real arrays: the flattened arrays' dot product."""
    return np.sum(reshape(_traced(a), (-1,)) * reshape(_traced(b), (-1,)))


def diagonal(x, offset=0, axis1=0, axis2=1):
    """``np.diagonal`` of a 2-D array: a gather of the (i, i + offset) entries."""
    x = _traced(x)
    if x.ndim != 2 or rules.normalize_axes((axis1, axis2), 2) != (0, 1) or \
            isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
        raise NotArrayLevel("np.diagonal other than of a 2-D array's axes (0, 1)")
    rows, cols = x.shape
    start_row, start_col = max(-int(offset), 0), max(int(offset), 0)
    n = max(min(rows - start_row, cols - start_col), 0)
    return x[np.arange(start_row, start_row + n), np.arange(start_col, start_col + n)]


def trace(x, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    if dtype is not None or out is not None:
        raise NotArrayLevel("np.trace with dtype= or out=")
    return np.sum(diagonal(x, offset, axis1, axis2))


FUNCTIONS = {
    np.flip: flip, np.roll: roll, np.repeat: repeat, np.tile: tile, np.prod: prod,
    np.atleast_1d: atleast_1d, np.atleast_2d: atleast_2d, np.hstack: hstack, np.vstack: vstack,
    np.column_stack: column_stack, np.split: split, np.array_split: array_split,
    np.vdot: vdot, np.diagonal: diagonal, np.trace: trace,
}
