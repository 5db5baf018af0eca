"""``np.linalg.norm`` and torch's norms, written once with numpy functions for both tracing levels.

Every call here is a numpy function (``np.sum``, ``np.abs``, ``np.where``...), which the element
tracer's values (``tracing.Traced``) and the array tracer's (``arrays.traced.ArrayTraced``)
both dispatch to their own implementations: one definition of the norms, the same conventions
on both levels. Conventions are torch's: the 2-norm's gradient at a zero vector is 0 (not
0/0), ties of the max-norm split the gradient evenly. Matrix norms that need singular values
(spectral, nuclear) are refused by name.

>>> import numpy as np
>>> float(linalg_norm(np.array([3.0, 4.0])))
5.0
>>> float(vector_norm(np.array([[1.0, -2.0], [3.0, 0.0]]), 1, None, False, "norm"))
6.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ShapeError, UnsupportedOperationError


def sqrt_zero_grad_at_zero(s: Any) -> Any:
    """``sqrt(s)`` whose gradient is 0 where ``s == 0`` (torch's rule for norm and std), not
    0 * inf. The inner ``where`` keeps the unused branch finite, so no nan leaks into the
    gradient."""
    zero = s == 0.0
    return np.where(zero, 0.0, np.sqrt(np.where(zero, 1.0, s)))


def _axes(axis: Any, ndim: int, fn: str) -> tuple[int, ...] | None:
    if axis is None:
        return None
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    for a in axes:
        if not -ndim <= int(a) < ndim:
            raise ShapeError(f"{fn}: axis {a} is out of bounds for an array of {ndim} dimensions")
    normal = tuple(int(a) % ndim for a in axes)
    if len(set(normal)) != len(normal):
        raise ShapeError(f"{fn}: an axis is repeated in {axis!r}")
    return normal


def vector_norm(x: Any, ord: Any, axis: Any, keepdims: bool, fn: str) -> Any:
    """The vector ord-norm over ``axis`` (an int, a tuple, or None: all elements), numpy's and
    torch's definitions for any order."""
    if isinstance(ord, str) or ord is None or isinstance(ord, bool):
        if ord not in (None, 2):
            raise UnsupportedOperationError(f"{fn}: ord={ord!r} is not a vector norm order")
        ord = 2
    ord = float(ord)
    axis = _axes(axis, np.ndim(x), fn)
    if ord == 2:
        return sqrt_zero_grad_at_zero(np.sum(x * x, axis=axis, keepdims=keepdims))
    magnitude = np.abs(x)
    if ord == np.inf:
        return np.max(magnitude, axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return np.min(magnitude, axis=axis, keepdims=keepdims)
    if ord == 0:  # the count of non-zeros (no gradient)
        return np.sum(np.where(x != 0.0, 1.0, 0.0), axis=axis, keepdims=keepdims)
    if ord == 1:
        return np.sum(magnitude, axis=axis, keepdims=keepdims)
    return np.sum(magnitude ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


def linalg_norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """``np.linalg.norm`` (and ``torch.linalg.norm``): vector norms of any order; the Frobenius
    norm of matrices and the induced 1- and inf-norms. The spectral and nuclear norms (ord=2,
    -2, 'nuc' of a matrix) need singular values, which tracing cannot differentiate here: they
    are refused by name."""
    ndim = np.ndim(x)
    if axis is None and ord is None:
        if keepdims:
            return vector_norm(x, 2, tuple(range(ndim)), True, "np.linalg.norm")
        return vector_norm(np.reshape(x, (-1,)), 2, None, False, "np.linalg.norm")
    if axis is None:
        if ndim not in (1, 2):
            raise ShapeError(f"np.linalg.norm: ord={ord!r} needs a 1-D or 2-D array (or axis=), "
                             f"got shape {np.shape(x)}")
        axis = tuple(range(ndim))
    axes = _axes(axis, ndim, "np.linalg.norm")
    if len(axes) == 1:
        if isinstance(ord, str):
            raise UnsupportedOperationError(f"np.linalg.norm: ord={ord!r} is a matrix norm, "
                                            "but one axis was given")
        return vector_norm(x, ord, axes[0], keepdims, "np.linalg.norm")
    if len(axes) != 2:
        raise ShapeError(f"np.linalg.norm: axis must name one or two axes, got {axis!r}")
    row, col = axes
    if ord in (None, "fro"):
        return sqrt_zero_grad_at_zero(np.sum(x * x, axis=(row, col), keepdims=keepdims))
    if ord in (1, -1, np.inf, -np.inf):
        summed_axis, extreme_axis = (row, col) if ord in (1, -1) else (col, row)
        sums = np.sum(np.abs(x), axis=summed_axis, keepdims=True)
        pick = np.max if ord > 0 else np.min
        out = pick(sums, axis=extreme_axis, keepdims=True)
        return out if keepdims else np.squeeze(out, axis=(row, col))
    raise UnsupportedOperationError(
        f"np.linalg.norm(x, ord={ord!r}) of a matrix is the "
        f"{'spectral' if ord in (2, -2) else 'nuclear' if ord == 'nuc' else 'requested'} "
        "norm, which needs singular values: workbench tracing does not support it. Use "
        "ord=None/'fro' (Frobenius), 1 or inf, or compute it from an eigen-decomposition "
        "outside the traced function")


# ----- torch's spellings -----
def torch_norm(x: Any, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Any:
    """torch.norm / x.norm: as torch computes it, the *vector* p-norm over ``dim`` (all
    elements when None) for every number p and for 'fro'; 'nuc' and other matrix norms are
    refused."""
    if isinstance(p, str) and p != "fro":
        raise UnsupportedOperationError(f"torch.norm(x, p={p!r}) needs singular values, which "
                                        "workbench tracing does not support")
    return torch_vector_norm(x, 2 if p in ("fro", None) else p, dim, keepdim)


def torch_vector_norm(x: Any, ord: Any = 2, dim: Any = None, keepdim: bool = False) -> Any:
    """torch.linalg.vector_norm: the vector ord-norm over ``dim`` (all elements when None)."""
    if dim is None:
        if keepdim:
            return vector_norm(x, ord, tuple(range(np.ndim(x))), True, "torch.linalg.vector_norm")
        return vector_norm(np.reshape(x, (-1,)), ord, None, False, "torch.linalg.vector_norm")
    return vector_norm(x, ord, dim, keepdim, "torch.linalg.vector_norm")


def torch_linalg_norm(x: Any, ord: Any = None, dim: Any = None, keepdim: bool = False) -> Any:
    """torch.linalg.norm: numpy's rules (a vector or matrix norm by the number of dims)."""
    return linalg_norm(x, ord, dim if dim is None or np.ndim(dim) == 0 else tuple(dim), keepdim)
