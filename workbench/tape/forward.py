"""What each tape op computes, in plain numpy (the values; derivatives live in ``vjps.py``).

Op names are the op table's (``workbench.ops``) plus the array ops the tape needs to record
numpy code: ``sum``, ``amax``, ``amin``, ``matmul``, ``reshape``, ``transpose``, ``broadcast_to``,
``getitem``, ``scatter_add``, ``concatenate``, ``cumsum``. Piecewise choices follow torch
(softplus is ``x`` above 20, relu keeps nan).

>>> float(FORWARD["softplus"](np.float64(30.0)))
30.0
>>> FORWARD["scatter_add"](np.array([1.0, 2.0]), index=np.array([0, 0]), shape=(3,)).tolist()
[3.0, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _is_basic_index(index: Any) -> bool:
    """Ints, slices, None and Ellipsis pick each element at most once (no duplicates)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis
               for i in items)


def scatter_add(g: Any, index: Any, shape: tuple) -> np.ndarray:
    """Zeros of ``shape`` with ``g`` added at ``index`` (repeated indices add up)."""
    out = np.zeros(shape, dtype=np.result_type(g, np.float32))
    if _is_basic_index(index):
        out[index] = g
    else:
        np.add.at(out, index, g)
    return out


def _softplus(x):
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


FORWARD: dict[str, Callable[..., Any]] = {
    # ----- elementwise ops of the op table -----
    "alias": lambda x: x,
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "neg": np.negative, "pow": np.power,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
    "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh,
    "acosh": np.arccosh, "atanh": np.arctanh, "exp": np.exp, "expm1": np.expm1, "log": np.log,
    "log1p": np.log1p, "log2": np.log2, "log10": np.log10, "sqrt": np.sqrt, "abs": np.abs,
    "sign": np.sign, "floor": np.floor, "ceil": np.ceil,
    "relu": lambda x: np.maximum(x, 0.0),
    "step": lambda x: np.where(x > 0.0, 1.0, 0.0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "softplus": _softplus,
    "stop_gradient": lambda x: x,
    "atan2": np.arctan2, "maximum": np.maximum, "minimum": np.minimum,
    "step_tie": lambda x, y: np.where(x > y, 1.0, np.where(x == y, 0.5, 0.0)),
    "clip": lambda x, lo, hi: np.clip(x, lo, hi),
    "in_range": lambda x, lo, hi: np.where((x >= lo) & (x <= hi), 1.0, 0.0),
    "where": np.where,
    "gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal,
    "eq": np.equal, "ne": np.not_equal, "logical_and": np.logical_and,
    "logical_or": np.logical_or, "logical_not": np.logical_not,
    # ----- reductions and array ops -----
    "sum": lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
    "amax": lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
    "amin": lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims),
    "matmul": np.matmul,
    "reshape": lambda x, shape: np.reshape(x, shape),
    "transpose": lambda x, axes: np.transpose(x, axes),
    "broadcast_to": lambda x, shape: np.broadcast_to(x, shape),
    "getitem": lambda x, index: x[index],
    "scatter_add": scatter_add,
    "concatenate": lambda *xs, axis: np.concatenate(xs, axis=axis),
    "cumsum": lambda x, axis: np.cumsum(x, axis=axis),
}

# Boolean ops: their results are masks, never recorded (no gradient flows through a comparison).
BOOLEAN_OPS = frozenset({"gt", "ge", "lt", "le", "eq", "ne", "logical_and", "logical_or",
                         "logical_not"})
