"""Array functions that accept numbers, numpy arrays, torch tensors, traced and tape values alike.

``wb.sin(x)`` is ``np.sin(x)`` for numpy input, builds a graph node per element for a traced
value, and records a tape entry for a tape value: each kind of value brings its own
implementation through the ``__wb_apply__(op_name, *operands)`` hook, and plain data uses the
op's own numpy printer.

>>> import workbench as wb, numpy as np
>>> wb.relu(np.array([-1.0, 2.0])).tolist()
[0.0, 2.0]
>>> float(wb.grad(wb.sigmoid)(0.0))
0.25
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from . import array_api
from .ops import OPS, RUNTIME, render

_numpy_kernels: dict[str, Callable] = {}


def _numpy_kernel(name: str) -> Callable:
    kernel = _numpy_kernels.get(name)
    if kernel is None:
        op = OPS[name]
        arity = op.arity or 1
        names = [f"a{i}" for i in range(arity)]
        source = f"lambda {', '.join(names)}: {render(op.np, names)}"
        kernel = _numpy_kernels[name] = eval(source, RUNTIME)  # our own op template
    return kernel


def _torch_function(name: str):
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    return getattr(torch, name, None) or getattr(torch.nn.functional, name, None)


def _torch_of(*operands: Any):
    """The torch module when an operand is a torch tensor (plain data stays plain), else None."""
    torch = sys.modules.get("torch")
    if torch is not None and any(isinstance(o, torch.Tensor) for o in operands):
        return torch
    return None


def _as_tensors(torch, operands: tuple) -> list:
    """Numbers and arrays beside a tensor become tensors of its dtype (torch.maximum(t, 0.0)
    needs a tensor)."""
    like = next(o for o in operands if isinstance(o, torch.Tensor))
    return [o if isinstance(o, torch.Tensor) else torch.as_tensor(o, dtype=like.dtype)
            for o in operands]


def apply(name: str, *operands: Any) -> Any:
    """Apply op ``name`` of the op table to whatever kind of values ``operands`` are."""
    for o in operands:
        hook = getattr(type(o), "__wb_apply__", None)
        if hook is not None:
            return hook(o, name, *operands)
    torch = _torch_of(*operands)
    if torch is not None:
        fn = _torch_function(name)
        if fn is not None:
            return fn(*_as_tensors(torch, operands))
    with np.errstate(all="ignore"):
        return _numpy_kernel(name)(*(np.asarray(o, dtype=float) for o in operands))


def _unary(name: str, doc: str) -> Callable[[Any], Any]:
    def fn(x: Any) -> Any:
        return apply(name, x)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


sin = _unary("sin", "Elementwise sine.")
cos = _unary("cos", "Elementwise cosine.")
tan = _unary("tan", "Elementwise tangent.")
asin = _unary("asin", "Elementwise arcsine.")
acos = _unary("acos", "Elementwise arccosine.")
atan = _unary("atan", "Elementwise arctangent.")
sinh = _unary("sinh", "Elementwise hyperbolic sine.")
cosh = _unary("cosh", "Elementwise hyperbolic cosine.")
tanh = _unary("tanh", "Elementwise hyperbolic tangent.")
exp = _unary("exp", "Elementwise exponential.")
expm1 = _unary("expm1", "Elementwise exp(x) - 1, accurate near 0.")
log = _unary("log", "Elementwise natural logarithm.")
log1p = _unary("log1p", "Elementwise log(1 + x), accurate near 0.")
sqrt = _unary("sqrt", "Elementwise square root (derivative inf at 0, as torch).")
abs = _unary("abs", "Elementwise absolute value (derivative 0 at 0, as torch).")
sign = _unary("sign", "Elementwise sign (-1, 0 or 1; derivative 0).")
relu = _unary("relu", "max(x, 0) elementwise; relu'(0) = 0, as torch.")
sigmoid = _unary("sigmoid", "The logistic function 1 / (1 + exp(-x)).")
softplus = _unary("softplus", "log(1 + exp(x)), equal to x for x > 20 (torch's threshold).")


def maximum(a: Any, b: Any) -> Any:
    """Elementwise maximum; at ties the gradient is split evenly, as torch.maximum."""
    return apply("maximum", a, b)


def minimum(a: Any, b: Any) -> Any:
    """Elementwise minimum; at ties the gradient is split evenly, as torch.minimum."""
    return apply("minimum", a, b)


def atan2(y: Any, x: Any) -> Any:
    """Elementwise arctangent of y / x, in the right quadrant."""
    return apply("atan2", y, x)


def power(x: Any, y: Any) -> Any:
    """``x ** y`` elementwise."""
    return x ** y


def square(x: Any) -> Any:
    """``x * x`` elementwise."""
    return x * x


def stop_gradient(x: Any) -> Any:
    """``x`` with no gradient flowing through it (its value still follows the inputs)."""
    hook = getattr(type(x), "__wb_apply__", None)
    if hook is not None:
        return hook(x, "stop_gradient", x)
    if sys.modules.get("torch") is not None and type(x).__module__.startswith("torch"):
        return x.detach()
    return x


def _torch_reduce(x: Any, method: str, axis, keepdims: bool) -> Any:
    if axis is None and not keepdims:
        return getattr(x, method)()
    return getattr(x, method)(dim=tuple(range(x.dim())) if axis is None else axis, keepdim=keepdims)


def sum(x: Any, axis=None, keepdims: bool = False) -> Any:
    """Sum over ``axis`` (all by default)."""
    if _torch_of(x) is not None:
        return _torch_reduce(x, "sum", axis, keepdims)
    return np.sum(x, axis=axis, keepdims=keepdims)


def mean(x: Any, axis=None, keepdims: bool = False) -> Any:
    """Mean over ``axis`` (all by default)."""
    if _torch_of(x) is not None:
        return _torch_reduce(x, "mean", axis, keepdims)
    return np.mean(x, axis=axis, keepdims=keepdims)


def dot(a: Any, b: Any) -> Any:
    """``np.dot`` (inner product of vectors, matrix product of matrices)."""
    torch = _torch_of(a, b)
    if torch is not None:
        a, b = _as_tensors(torch, (a, b))
        if a.dim() == 0 or b.dim() == 0:
            return a * b
        return torch.dot(a, b) if a.dim() == 1 and b.dim() == 1 else torch.matmul(a, b)
    return np.dot(a, b)


def matmul(a: Any, b: Any) -> Any:
    """``a @ b``."""
    return a @ b


def where(cond: Any, a: Any, b: Any) -> Any:
    """Elementwise choice: ``a`` where ``cond`` holds, else ``b``; the gradient follows the pick."""
    torch = _torch_of(cond, a, b)
    if torch is not None and not any(hasattr(type(o), "__wb_apply__") for o in (cond, a, b)):
        return torch.where(torch.as_tensor(cond), *_as_tensors(torch, (a, b)))
    return np.where(cond, a, b)


def clip(x: Any, lo: Any = None, hi: Any = None) -> Any:
    """Clamp to [lo, hi]; gradient 1 on the closed interval and 0 outside, as torch.clamp."""
    torch = _torch_of(x)
    if torch is not None:
        return torch.clamp(x, lo, hi)
    return np.clip(x, lo, hi)


def supported_functions() -> list[str]:
    """The numpy functions and ufuncs that workbench can trace."""
    return array_api.supported_numpy()
