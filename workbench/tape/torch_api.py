"""torch functions and tensor methods on tape values: ``torch.sin(x)``, ``torch.softmax(x, 1)``,
``tensor + x``, ``x.permute(1, 0)``, ``x.masked_fill(mask, 0)``...

torch calls ``__torch_function__`` of the tape value; elementwise functions map through the op
table's torch names, the rest through :data:`TORCH_HANDLERS`, written with the numpy-level
functions of ``numpy_api`` (so they need no VJP of their own). Tensor methods that are not
numpy methods are installed from the same table by ``methods.py``.

>>> import numpy as np, torch
>>> from workbench.tape.core import Tape
>>> x = Tape().input(np.array([1.0, 2.0, 3.0]))
>>> np.round(torch.softmax(x, 0).value, 4).tolist()
[0.09, 0.2447, 0.6652]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import UnsupportedOperationError
from ..ops import OPS, TORCH_FUNCTIONS
from .core import primitive, raw
from .numpy_api import (
    _keep,
    _numpy,
    amax,
    amin,
    apply,
    clip,
    concatenate,
    cumsum,
    cut,
    dot,
    matmul,
    mean,
    moveaxis,
    norm,
    outer,
    power,
    prod,
    remainder,
    reshape,
    stack,
    sum,
    transpose,
    var,
    where,
)

_REFLECTED = {"__radd__", "__rsub__", "__rmul__", "__rtruediv__", "__rpow__", "__rmatmul__",
              "__rmod__"}


def _torch_max(fn_reduce: Callable, op: str) -> Callable:
    def run(x, other=None, dim=None, keepdim=False):
        if other is not None and not isinstance(other, int):
            return primitive(op, x, other)
        if other is not None or dim is not None:
            raise UnsupportedOperationError(
                f"torch.{op[:3]}(x, dim) returns indices too; use torch.a{op[:3]}(x, dim)")
        return fn_reduce(x)

    return run


def _reduction(fn: Callable) -> Callable:
    def run(x, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None, **unused):
        return fn(x, axis=dim if dim is not None else axis, keepdims=_keep(keepdims, keepdim))

    return run


# ----- functions torch has and numpy lacks, written with the numpy-level ops -----
def _stable_max(x: Any, dim: Any) -> Any:
    """max over ``dim`` (keepdims) as a constant: shifts exp() into range; cancels exactly."""
    return np.asarray(np.max(np.asarray(raw(x)), axis=dim, keepdims=True))


def logsumexp(x: Any, dim: Any, keepdim: bool = False) -> Any:
    m = _stable_max(x, dim)
    out = primitive("log", sum(primitive("exp", x - m), axis=dim, keepdims=True)) + m
    return out if keepdim else reshape(out, np.squeeze(m, axis=dim).shape)


def softmax(x: Any, dim: int, dtype: Any = None, **unused: Any) -> Any:
    e = primitive("exp", x - _stable_max(x, dim))
    return e / sum(e, axis=dim, keepdims=True)


def log_softmax(x: Any, dim: int, dtype: Any = None, **unused: Any) -> Any:
    return x - logsumexp(x, dim, keepdim=True)


def swap(x: Any, dim0: int, dim1: int) -> Any:
    """torch.transpose(x, dim0, dim1): swap two axes."""
    order = list(range(np.ndim(raw(x))))
    order[dim0], order[dim1] = order[dim1], order[dim0]
    return transpose(x, order)


def _sizes(sizes: tuple) -> tuple:
    return tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes


def expand(x: Any, *sizes: Any) -> Any:
    shape = np.shape(raw(x))
    sizes = _sizes(sizes)
    full = (1,) * (len(sizes) - len(shape)) + shape
    target = tuple(n if s == -1 else s for s, n in zip(sizes, full))
    return np.broadcast_to(reshape(x, full), target)


def euclidean_norm(x: Any, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Any:
    """torch.norm / x.norm for p = 2 ('fro'); other p are refused rather than computed as 2."""
    if p not in ("fro", 2, 2.0, None):
        raise UnsupportedOperationError(
            f"x.norm(p={p!r}) is not supported on tape values; only the Euclidean norm "
            "(p=2, 'fro') is: write other norms out, e.g. x.abs().sum() for p=1")
    return norm(x, None, dim, keepdim)


def unbind(x: Any, dim: int = 0) -> tuple:
    """torch.unbind (and iterating over a tensor): the slices along ``dim``."""
    moved = moveaxis(x, dim, 0) if dim else x
    return tuple(moved[i] for i in range(np.shape(raw(x))[dim]))


def _elementwise(op: str) -> Callable:
    def run(x: Any, other: Any, *, alpha: Any = None, **unused: Any) -> Any:
        return apply(op, x, other if alpha is None else other * alpha)

    return run


def _to(x: Any, *args: Any, **kwargs: Any) -> Any:
    """x.to(dtype/device): float dtypes keep the value (the tape computes in numpy)."""
    if any("int" in str(a) or "bool" in str(a) for a in args + tuple(kwargs.values())):
        raise UnsupportedOperationError("x.to(an integer or bool dtype) on a tape value would "
                                        "drop its gradient; compare (x > 0) for a mask")
    return x


TORCH_HANDLERS: dict[str, Callable] = {
    "sum": _reduction(sum), "mean": _reduction(mean), "prod": _reduction(prod),
    "amax": _reduction(amax), "amin": _reduction(amin),
    "max": _torch_max(amax, "maximum"), "min": _torch_max(amin, "minimum"),
    "dot": dot, "inner": dot, "matmul": matmul, "mm": matmul, "mv": matmul,
    "__matmul__": matmul, "__rmatmul__": matmul, "outer": outer,
    "where": where, "clamp": lambda x, min=None, max=None: clip(x, min, max),
    "clip": lambda x, min=None, max=None: clip(x, min, max),
    "pow": power, "__pow__": power, "__rpow__": power, "float_power": power,
    "remainder": remainder, "__mod__": remainder, "__rmod__": remainder,
    "square": lambda x: x * x, "reciprocal": lambda x: 1.0 / x,
    "rsqrt": lambda x: 1.0 / primitive("sqrt", x), "detach": lambda x: cut(x, "detach"),
    "stack": lambda tensors, dim=0: stack(tensors, axis=dim),
    "cat": lambda tensors, dim=0: concatenate(tensors, axis=dim),
    "reshape": lambda x, shape: reshape(x, shape), "t": transpose,
    "var": lambda x, dim=None, unbiased=True, keepdim=False, correction=None: var(
        x, axis=dim, keepdims=keepdim,
        ddof=(1 if unbiased else 0) if correction is None else correction),
    "norm": lambda x, p="fro", dim=None, keepdim=False, dtype=None: euclidean_norm(
        x, p, dim, keepdim),
    "softplus": lambda x, beta=1.0, threshold=20.0: apply("softplus", x),
    "__getitem__": lambda x, index: x[index], "unbind": unbind,
    "ones_like": lambda x, **unused: np.ones(np.shape(raw(x))),
    "zeros_like": lambda x, **unused: np.zeros(np.shape(raw(x))),
    "logsumexp": logsumexp, "softmax": softmax, "log_softmax": log_softmax,
    "cumsum": lambda x, dim, **unused: cumsum(x, axis=dim),
    "linalg_norm": lambda x, ord=None, dim=None, keepdim=False, **unused: norm(x, ord, dim, keepdim),
    "linalg_vector_norm": lambda x, ord=2, dim=None, keepdim=False, **unused: euclidean_norm(
        x, ord, dim, keepdim),
    "transpose": swap, "swapaxes": swap, "swapdims": swap,
    "permute": lambda x, *dims: transpose(x, _sizes(dims)),
    "unsqueeze": lambda x, dim: reshape(x, np.expand_dims(np.empty(np.shape(raw(x))), dim).shape),
    "squeeze": lambda x, dim=None: reshape(x, np.squeeze(np.empty(np.shape(raw(x))), dim).shape),
    "expand": expand,
    "repeat": lambda x, *sizes: np.tile(x, _sizes(sizes)),
    "masked_fill": lambda x, mask, value: where(mask, value, x),
    "to": _to, "double": lambda x: x, "float": lambda x: x, "type_as": lambda x, other: x,
    "add": _elementwise("add"), "sub": _elementwise("sub"), "mul": _elementwise("mul"),
    "div": _elementwise("div"), "maximum": _elementwise("maximum"),
    "minimum": _elementwise("minimum"), "atan2": _elementwise("atan2"),
}


# torch.nn.functional and the torch functions modules call (linear, conv1d, the losses...):
# filled by torch_nn.py. Looked up first; they are not tape-value methods.
FUNCTIONAL_HANDLERS: dict[str, Callable] = {}

SUPPORTED_MODULES = ("Linear, Conv1d (groups=1), ReLU, LeakyReLU, Tanh, Sigmoid, Softmax, LogSoftmax, "
                     "Flatten, Dropout (in eval mode), Sequential, MSELoss, CrossEntropyLoss, "
                     "NLLLoss")


def torch_function(func: Callable, args: tuple, kwargs: dict) -> Any:
    name = getattr(func, "__name__", str(func))
    args = tuple(_numpy(a) if not isinstance(a, (list, tuple)) else [_numpy(t) for t in a]
                 for a in args)
    if name in _REFLECTED:
        args = (args[1], args[0]) + tuple(args[2:])
    handler = FUNCTIONAL_HANDLERS.get(name) or TORCH_HANDLERS.get(name)
    if handler is not None:
        return handler(*args, **kwargs)
    op = TORCH_FUNCTIONS.get(name)
    if op is not None and (OPS[op].arity == 1 or OPS[op].boolean):  # boolean: torch.gt(x, 0)
        return apply(op, *args)
    raise UnsupportedOperationError(
        f"{_torch_name(func, name)} is not supported on tape values (wb.tape, wb.check's tape "
        "row, wb.backprop); use the numpy or workbench equivalent, or torch functions the tape "
        f"knows. torch.nn layers the tape runs: {SUPPORTED_MODULES}")


def _torch_name(func: Callable, name: str) -> str:
    """How the user wrote it: ``torch.nn.functional.batch_norm``, ``Tensor.index_add``,
    ``torch.cumprod``."""
    module = getattr(func, "__module__", None) or ""
    if module.startswith(("torch.nn.functional", "torch._C._nn")):
        return f"torch.nn.functional.{name}"
    qualname = getattr(func, "__qualname__", "") or ""
    if qualname.startswith(("Tensor.", "TensorBase.")):
        return f"Tensor.{name}"
    return f"torch.{name}"
