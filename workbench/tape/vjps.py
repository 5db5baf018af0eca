"""The tape's vector-Jacobian products: one hand-written numpy rule per op, in a flat table.

A rule receives ``g`` (the adjoint of the result), ``ans`` (the result) and the op's
arguments ``x, y, ...`` (and its params), and returns the adjoint contribution of one argument,
in that argument's shape. Rules use numpy calls only, so on nested tapes they are recorded
too. Nothing here comes from the symbolic side: this is the independent witness.

Torch's conventions at non-smooth points are the named helpers below; each is tested against
torch (tests/test_tape_vjps.py).

>>> import numpy as np
>>> bool(VJPS["sin"](0, 1.0, np.sin(0.5), np.float64(0.5)) == np.cos(0.5))
True
>>> float(relu_derivative(np.float64(0.0)))
0.0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .core import VJPS, primitive, raw


def defvjp(name: str, *rules: Callable[..., Any]) -> None:
    """Register ``rules[i](g, ans, *args, **params)``: the adjoint of argument ``i`` of op ``name``."""
    if len(rules) == 1:
        only = rules[0]
        VJPS[name] = lambda argnum, g, ans, *args, **params: only(g, ans, *args, **params)
    else:
        VJPS[name] = lambda argnum, g, ans, *args, **params: rules[argnum](g, ans, *args, **params)


def defvjp_argnum(name: str, rule: Callable[..., Any]) -> None:
    """Register ``rule(argnum, g, ans, *args, **params)`` for an op with any number of arguments."""
    VJPS[name] = rule


# ----- helpers -----
def unbroadcast(g: Any, x: Any) -> Any:
    """Sum ``g`` over the axes numpy broadcasting added to ``x``, so it gets ``x``'s shape."""
    shape = np.shape(x) if not hasattr(x, "shape") else x.shape
    g_shape = g.shape if hasattr(g, "shape") else ()
    if g_shape == shape:
        return g
    extra = len(g_shape) - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(shape)
                                      if n == 1 and g_shape[extra + i] != 1)
    if axes:
        g = np.sum(g, axis=axes)
    return np.reshape(g, shape) if g.shape != shape else g


def expand_reduced(g: Any, shape: tuple, axis: Any, keepdims: bool) -> Any:
    """Re-insert the axes a reduction over ``axis`` removed, as size 1, so ``g`` broadcasts back."""
    if keepdims or axis is None and not shape:
        return g
    axes = range(len(shape)) if axis is None else [a % len(shape) for a in np.atleast_1d(axis)]
    return np.reshape(g, tuple(1 if i in axes else n for i, n in enumerate(shape)))


# ----- conventions at non-smooth points (torch's) -----
def relu_derivative(x: Any) -> Any:
    """0 where x <= 0, else 1: relu'(0) = 0, and nan passes the gradient, as torch."""
    return np.where(x <= 0, 0.0, 1.0)


def abs_derivative(x: Any) -> Any:
    """sign(x): abs'(0) = 0, as torch."""
    return np.sign(x)


def balanced_tie(x: Any, y: Any) -> Any:
    """d max(x, y)/dx: 0 where x < y, 0.5 at a tie, else 1 (torch.maximum: ties split, nan
    takes the gradient)."""
    return np.where(x < y, 0.0, np.where(x == y, 0.5, 1.0))


def closed_interval(x: Any, lo: float, hi: float) -> Any:
    """d clip(x, lo, hi)/dx: 1 on the closed interval [lo, hi], 0 outside (torch.clamp)."""
    return np.where((x >= lo) & (x <= hi), 1.0, 0.0)


def spread_over_ties(x: Any, ans: Any, axis: Any, keepdims: bool) -> Any:
    """d max(x)/dx: the maxima share the gradient evenly (torch's amax and max())."""
    hits = np.where((x == expand_reduced(ans, x.shape, axis, keepdims)) | (x != x), 1.0, 0.0)
    return hits / np.sum(hits, axis=axis, keepdims=True)


def atan2_denominator(x: Any, y: Any) -> Any:
    """x^2 + y^2, with 1/0 at the origin replaced by 0: atan2's gradient is 0 there, as torch."""
    r2 = x * x + y * y
    return np.where(r2 == 0, np.inf, r2)


def softplus_derivative(x: Any) -> Any:
    """sigmoid(x), and exactly 1 above torch's threshold 20 (where softplus(x) = x)."""
    return np.where(x > 20.0, 1.0, primitive("sigmoid", x))


def pow_dx(g: Any, x: Any, y: Any) -> Any:
    """d x**y / dx = y x**(y-1), masked to 0 where y == 0 (torch: pow(x, 0)' = 0 even at x = 0)."""
    if getattr(y, "ndim", 0) == 0:  # the common constant exponent: no mask needed
        return g * 0.0 if raw(y) == 0 else g * y * x ** (y - 1.0)
    return g * np.where(y == 0, 0.0, y * x ** (y - 1.0))


def pow_dy(g: Any, ans: Any, x: Any, y: Any) -> Any:
    """d x**y / dy = x**y log(x), masked to 0 where x == 0 and y >= 0 (torch's rule)."""
    return g * np.where((x == 0) & (y >= 0), 0.0, ans * np.log(np.where(x == 0, 1.0, x)))


# ----- arithmetic -----
defvjp("alias", lambda g, ans, x: g)
defvjp("add", lambda g, ans, x, y: unbroadcast(g, x), lambda g, ans, x, y: unbroadcast(g, y))
defvjp("sub", lambda g, ans, x, y: unbroadcast(g, x), lambda g, ans, x, y: unbroadcast(-g, y))
defvjp("mul", lambda g, ans, x, y: unbroadcast(g * y, x),
       lambda g, ans, x, y: unbroadcast(g * x, y))
defvjp("div", lambda g, ans, x, y: unbroadcast(g / y, x),
       lambda g, ans, x, y: unbroadcast(-g * x / (y * y), y))
defvjp("neg", lambda g, ans, x: -g)
defvjp("pow", lambda g, ans, x, y: unbroadcast(pow_dx(g, x, y), x),
       lambda g, ans, x, y: unbroadcast(pow_dy(g, ans, x, y), y))

# ----- elementwise functions -----
defvjp("sin", lambda g, ans, x: g * np.cos(x))
defvjp("cos", lambda g, ans, x: -g * np.sin(x))
defvjp("tan", lambda g, ans, x: g * (1.0 + ans * ans))
defvjp("asin", lambda g, ans, x: g / np.sqrt(1.0 - x * x))
defvjp("acos", lambda g, ans, x: -g / np.sqrt(1.0 - x * x))
defvjp("atan", lambda g, ans, x: g / (1.0 + x * x))
defvjp("sinh", lambda g, ans, x: g * np.cosh(x))
defvjp("cosh", lambda g, ans, x: g * np.sinh(x))
defvjp("tanh", lambda g, ans, x: g * (1.0 - ans * ans))
defvjp("asinh", lambda g, ans, x: g / np.sqrt(x * x + 1.0))
defvjp("acosh", lambda g, ans, x: g / np.sqrt(x * x - 1.0))
defvjp("atanh", lambda g, ans, x: g / (1.0 - x * x))
defvjp("exp", lambda g, ans, x: g * ans)
defvjp("expm1", lambda g, ans, x: g * (ans + 1.0))
defvjp("log", lambda g, ans, x: g / x)
defvjp("log1p", lambda g, ans, x: g / (x + 1.0))
defvjp("log2", lambda g, ans, x: g / (x * math.log(2.0)))
defvjp("log10", lambda g, ans, x: g / (x * math.log(10.0)))
defvjp("sqrt", lambda g, ans, x: g / (2.0 * ans))  # sqrt'(0) = inf, as torch
defvjp("abs", lambda g, ans, x: g * abs_derivative(x))
defvjp("relu", lambda g, ans, x: g * relu_derivative(x))
defvjp("sigmoid", lambda g, ans, x: g * (ans * (1.0 - ans)))
defvjp("softplus", lambda g, ans, x: g * softplus_derivative(x))

# ----- binary functions and choices -----
defvjp("atan2", lambda g, ans, x, y: unbroadcast(g * y / atan2_denominator(x, y), x),
       lambda g, ans, x, y: unbroadcast(-g * x / atan2_denominator(x, y), y))
defvjp("maximum", lambda g, ans, x, y: unbroadcast(g * balanced_tie(x, y), x),
       lambda g, ans, x, y: unbroadcast(g * balanced_tie(y, x), y))
defvjp("minimum", lambda g, ans, x, y: unbroadcast(g * balanced_tie(y, x), x),
       lambda g, ans, x, y: unbroadcast(g * balanced_tie(x, y), y))
defvjp("clip", lambda g, ans, x, lo, hi: g * closed_interval(x, lo, hi))
defvjp_argnum("where", lambda argnum, g, ans, c, x, y: unbroadcast(
    np.where(c, g, 0.0), x) if argnum == 1 else unbroadcast(np.where(c, 0.0, g), y))

# Piecewise-constant ops (sign, floor, ceil, step, step_tie, in_range) and stop_gradient have no
# rule: the backward pass lets nothing through them. Comparisons are never recorded.
NO_GRADIENT = ("sign", "floor", "ceil", "step", "step_tie", "in_range", "stop_gradient")

# ----- reductions -----
defvjp("sum", lambda g, ans, x, axis, keepdims: np.broadcast_to(
    expand_reduced(g, x.shape, axis, keepdims), x.shape))
defvjp("amax", lambda g, ans, x, axis, keepdims: expand_reduced(
    g, x.shape, axis, keepdims) * spread_over_ties(x, ans, axis, keepdims))
defvjp("amin", lambda g, ans, x, axis, keepdims: expand_reduced(
    g, x.shape, axis, keepdims) * spread_over_ties(x, ans, axis, keepdims))
defvjp("cumsum", lambda g, ans, x, axis: np.reshape(
    np.flip(np.cumsum(np.flip(g, axis=axis or 0), axis=axis or 0), axis=axis or 0), x.shape))


# ----- matrix products -----
def matmul_vjp(argnum: int, g: Any, ans: Any, x: Any, y: Any) -> Any:
    """numpy's matmul rules: 1-D operands get a unit axis, batch axes broadcast (unbroadcast)."""
    x2 = x if x.ndim > 1 else np.reshape(x, (1, -1))
    y2 = y if y.ndim > 1 else np.reshape(y, (-1, 1))
    batch = np.broadcast_shapes(x2.shape[:-2], y2.shape[:-2])
    g2 = np.reshape(g, batch + (x2.shape[-2], y2.shape[-1]))
    if argnum == 0:
        return np.reshape(unbroadcast(g2 @ np.swapaxes(y2, -1, -2), x2), x.shape)
    return np.reshape(unbroadcast(np.swapaxes(x2, -1, -2) @ g2, y2), y.shape)


defvjp_argnum("matmul", matmul_vjp)


# ----- rearranging elements -----
def concatenate_vjp(argnum: int, g: Any, ans: Any, *xs: Any, axis: int) -> Any:
    """The slice of ``g`` that argument ``argnum`` filled."""
    axis = axis % ans.ndim
    start = sum(x.shape[axis] for x in xs[:argnum])
    return g[(slice(None),) * axis + (slice(start, start + xs[argnum].shape[axis]),)]


defvjp("reshape", lambda g, ans, x, shape: np.reshape(g, x.shape))
defvjp("transpose", lambda g, ans, x, axes: np.transpose(
    g, None if axes is None else tuple(np.argsort(axes))))
defvjp("broadcast_to", lambda g, ans, x, shape: unbroadcast(g, x))
defvjp("getitem", lambda g, ans, x, index: primitive("scatter_add", g, index=index, shape=x.shape))
defvjp("scatter_add", lambda g, ans, x, index, shape: g[index])
defvjp_argnum("concatenate", concatenate_vjp)
