"""torch functions and Tensor methods on traced values (``__torch_function__``).

Only imported when torch calls into a traced value, so torch stays an optional dependency.
Elementwise functions map through the op table's ``torch_names``; the rest are listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import array_api, norms, tracing
from .errors import UnsupportedOperationError
from .ops import OPS, TORCH_FUNCTIONS

_REFLECTED = {"__radd__", "__rsub__", "__rmul__", "__rtruediv__", "__rpow__", "__rmatmul__",
              "__rmod__", "__rfloordiv__"}


def _reduction(fn: Callable) -> Callable:
    """torch's ``sum(input, dim, keepdim, *, dtype)``: every argument honoured or refused."""
    def run(x, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None, out=None):
        if out is not None:
            raise UnsupportedOperationError(
                f"torch.{fn.__name__}(..., out=...) writes in place, which tracing cannot follow; "
                "assign the result instead")
        result = fn(x, axis=dim if dim is not None else axis,
                    keepdims=bool(keepdim if keepdims is None else keepdims))
        return result if dtype is None else _to(result, dtype)

    return run


def _refuse_keywords(name: str, kwargs: dict) -> None:
    if kwargs:
        raise UnsupportedOperationError(
            f"torch.{name}(..., {', '.join(f'{k}=' for k in kwargs)}...) is not supported by "
            "workbench tracing: that argument would be ignored; leave it out")


def _div(a, b, *, rounding_mode=None, out=None):
    """torch.div with ``rounding_mode`` None (true division), 'floor' or 'trunc'."""
    _refuse_keywords("div", {"out": out} if out is not None else {})
    if rounding_mode is None:
        return tracing.elementwise("div", a, b)
    if rounding_mode == "floor":
        return tracing.floor_divide(a, b)
    if rounding_mode == "trunc":
        quotient = tracing.elementwise("div", a, b)
        return tracing.elementwise("where", tracing.elementwise("lt", quotient, 0.0),
                                   tracing.elementwise("ceil", quotient),
                                   tracing.elementwise("floor", quotient))
    raise UnsupportedOperationError(f"torch.div: rounding_mode={rounding_mode!r}; use None, "
                                    "'floor' or 'trunc'")


def _norm(x, p="fro", dim=None, keepdim=False, out=None, dtype=None):
    """torch.norm (:mod:`workbench.norms`)."""
    _refuse_keywords("norm", {"out": out} if out is not None else {})
    result = norms.torch_norm(x, p, dim, keepdim)
    return result if dtype is None else _to(result, dtype)


def _linalg_norm(x, ord=None, dim=None, keepdim=False, *, out=None, dtype=None):
    """torch.linalg.norm (:mod:`workbench.norms`)."""
    _refuse_keywords("linalg.norm", {"out": out} if out is not None else {})
    result = norms.torch_linalg_norm(x, ord, dim, keepdim)
    return result if dtype is None else _to(result, dtype)


def _vector_norm(x, ord=2, dim=None, keepdim=False, *, out=None, dtype=None):
    """torch.linalg.vector_norm (:mod:`workbench.norms`)."""
    _refuse_keywords("linalg.vector_norm", {"out": out} if out is not None else {})
    result = norms.torch_vector_norm(x, ord, dim, keepdim)
    return result if dtype is None else _to(result, dtype)


def _max_or_maximum(fn_reduce: Callable, op: str) -> Callable:
    def run(x, other=None, dim=None, keepdim=False, *, out=None):
        _refuse_keywords(op[:3], {"out": out} if out is not None else {})
        if other is not None and not isinstance(other, int):
            return tracing.elementwise(op, x, other)
        if other is not None or dim is not None:
            raise UnsupportedOperationError(
                f"torch.{op[:3]}(x, dim) returns data-dependent indices, which tracing cannot "
                f"follow; use torch.a{op[:3]}(x, dim) for the values")
        return fn_reduce(x)

    return run


def _clamp(x, min=None, max=None, *, out=None):
    if min is None and max is None:
        raise UnsupportedOperationError("torch.clamp: at least one of min and max must be given "
                                        "(torch refuses it too)")
    return array_api.clip(x, min, max, out=out)


def _softplus(x, beta=1.0, threshold=20.0):
    """torch's softplus: log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""
    if beta == 1.0 and threshold == 20.0:
        return tracing.elementwise("softplus", x)
    scaled = tracing.elementwise("mul", x, float(beta))
    smooth = tracing.elementwise("div", tracing.elementwise(
        "log1p", tracing.elementwise("exp", tracing.elementwise("minimum", scaled, float(threshold)))),
        float(beta))
    return tracing.elementwise("where", tracing.elementwise("gt", scaled, float(threshold)), x, smooth)


HANDLERS: dict[str, Callable[..., Any]] = {
    "sum": _reduction(array_api.sum),
    "mean": _reduction(array_api.mean),
    "prod": _reduction(array_api.prod),
    "amax": _reduction(array_api.amax),
    "amin": _reduction(array_api.amin),
    "max": _max_or_maximum(array_api.amax, "maximum"),
    "min": _max_or_maximum(array_api.amin, "minimum"),
    "dot": array_api.dot,
    "inner": array_api._inner,  # sums over the last axes (not a matrix product), as numpy
    "matmul": array_api.matmul,
    "mm": array_api.matmul,
    "mv": array_api.matmul,
    "__matmul__": array_api.matmul,
    "where": array_api.where,
    "clamp": _clamp,
    "clip": _clamp,
    "softplus": _softplus,
    "pow": tracing.power,
    "__pow__": tracing.power,
    "square": lambda x: tracing.elementwise("mul", x, x),
    "reciprocal": lambda x: tracing.elementwise("div", 1.0, x),
    "rsqrt": lambda x: tracing.elementwise("div", 1.0, tracing.elementwise("sqrt", x)),
    "detach": tracing.stop_gradient,
    "stack": lambda tensors, dim=0: array_api.ARRAY_FUNCTIONS[__import__("numpy").stack](
        list(tensors), axis=dim),
    "cat": lambda tensors, dim=0: array_api.ARRAY_FUNCTIONS[__import__("numpy").concatenate](
        list(tensors), axis=dim),
    "reshape": lambda x, shape: x.reshape(shape),
    "flatten": lambda x, start_dim=0, end_dim=-1: _flatten(x, start_dim, end_dim),
    "t": lambda x: x.T,
    "outer": lambda a, b: array_api.ARRAY_FUNCTIONS[__import__("numpy").outer](a, b),
    "var": lambda x, dim=None, unbiased=True, keepdim=False, correction=None: array_api.var(
        x, axis=dim, keepdims=keepdim,
        ddof=(1 if unbiased else 0) if correction is None else correction),
    "norm": _norm,
    "div": _div,
    "divide": _div,
    "true_divide": lambda a, b: tracing.elementwise("div", a, b),
    "std": lambda x, dim=None, unbiased=True, keepdim=False, correction=None: array_api.std(
        x, axis=dim, keepdims=keepdim,
        ddof=(1 if unbiased else 0) if correction is None else correction),
    "dim": lambda x: x.ndim,
    "numel": lambda x: x.numel(),
    "size": lambda x, dim=None: x.shape if dim is None else x.shape[dim],
    "item": lambda x: x.item(),
    "__getitem__": lambda x, index: x[index],
    "__len__": lambda x: len(x),
    "tanh": lambda x: tracing.elementwise("tanh", x),
    "sigmoid": lambda x: tracing.elementwise("sigmoid", x),
    "relu": lambda x, inplace=False: tracing.elementwise("relu", x),
}


def _flatten(x, start_dim: int = 0, end_dim: int = -1):
    """torch.flatten: merge dims start_dim..end_dim (all by default) into one."""
    if x.ndim == 0:
        return x.reshape(1)
    (lo,) = array_api.normalize_axes(start_dim, x.ndim, "torch.flatten")
    (hi,) = array_api.normalize_axes(end_dim, x.ndim, "torch.flatten")
    if lo > hi:
        raise UnsupportedOperationError("torch.flatten: start_dim must not come after end_dim")
    shape = x.shape[:lo] + (int(np.prod(x.shape[lo:hi + 1], dtype=np.int64)),) + x.shape[hi + 1:]
    return x.reshape(shape)


def _like(fill: float | None) -> Callable:
    """zeros_like / ones_like / full_like: constants of the traced value's shape and dtype
    (device, layout and requires_grad do not change a constant's value)."""
    def run(x, *fill_value, dtype=None, layout=None, device=None, requires_grad=False,
            memory_format=None, pin_memory=False):
        value = float(fill if fill is not None else fill_value[0])
        return np.full(x.shape, value, dtype=x.dtype if dtype is None else _numpy_dtype(dtype))

    return run


def _mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    if size_average is not None or reduce is not None:  # torch's legacy arguments override
        reduction = "none" if reduce is False else "sum" if size_average is False else "mean"
    if weight is not None:
        raise UnsupportedOperationError("mse_loss with weight= is not supported by workbench "
                                        "tracing; multiply the squared errors yourself")
    error = tracing.elementwise("sub", input, target)
    squared = tracing.elementwise("mul", error, error)
    if reduction == "none":
        return squared
    if reduction in ("mean", "sum"):
        return array_api.mean(squared) if reduction == "mean" else array_api.sum(squared)
    raise UnsupportedOperationError(f"mse_loss: reduction={reduction!r}; use 'mean', 'sum' or 'none'")


def _shifted_exp(x, dim):
    """exp(x - max(x)) along ``dim``, the max held constant (it cancels; it only avoids overflow)."""
    top = array_api.amax(x, axis=dim, keepdims=True)
    # an infinite max is replaced by 0, so that all -inf gives -inf (not -inf - -inf = nan)
    top = tracing.stop_gradient(tracing.elementwise(
        "where", tracing.elementwise("eq", tracing.elementwise("abs", top), float("inf")), 0.0, top))
    return tracing.elementwise("exp", tracing.elementwise("sub", x, top)), top


def _logsumexp(x, dim, keepdim=False):
    shifted, top = _shifted_exp(x, dim)
    total = array_api.sum(shifted, axis=dim, keepdims=True)
    out = tracing.elementwise("add", tracing.elementwise("log", total), top)
    return out if keepdim else out.squeeze(dim)


def _softmax_dim(name: str, dim):
    if dim is None:
        raise UnsupportedOperationError(f"torch.{name}: give dim= explicitly (torch's implicit "
                                        "choice of dim is deprecated)")


def _softmax(x, dim=None, _stacklevel=3, dtype=None):
    _softmax_dim("softmax", dim)
    x = x if dtype is None else _to(x, dtype)
    shifted, _ = _shifted_exp(x, dim)
    return tracing.elementwise("div", shifted, array_api.sum(shifted, axis=dim, keepdims=True))


def _log_softmax(x, dim=None, _stacklevel=3, dtype=None):
    _softmax_dim("log_softmax", dim)
    x = x if dtype is None else _to(x, dtype)
    return tracing.elementwise("sub", x, _logsumexp(x, dim, keepdim=True))


def _sizes(sizes: tuple) -> tuple:
    return tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes


def _expand(x, *sizes):
    sizes = _sizes(sizes)
    lead = len(sizes) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return array_api.ARRAY_FUNCTIONS[np.broadcast_to](x, shape)


def _numpy_dtype(dtype) -> np.dtype:
    return np.dtype(str(dtype).replace("torch.", "")) if type(dtype).__module__.startswith(
        "torch") else np.dtype(dtype)


def _to(x, *args, **kwargs):
    """x.to(dtype) / x.to(other) change the float dtype; devices and copy options do not change
    values (a meta device would drop them, and is refused)."""
    for a in (*args, kwargs.get("dtype"), kwargs.get("device")):
        if type(a).__name__ == "dtype" and type(a).__module__.startswith("torch"):
            return x.astype(np.dtype(str(a).replace("torch.", "")))
        if isinstance(a, tracing.Traced) or type(a).__module__.startswith("torch") and hasattr(
                a, "dtype") and hasattr(a, "shape"):
            return x.astype(tracing._float_dtype(a) if not isinstance(a, tracing.Traced) else a.dtype)
        if str(a) == "meta" or getattr(a, "type", None) == "meta":
            raise UnsupportedOperationError("x.to('meta') would drop the values tracing follows")
    return x


def _masked_fill(x, mask, value):
    is_bool = mask.dtype == np.bool_ if isinstance(mask, tracing.Traced) else \
        np.asarray(tracing.torch_to_numpy(mask)).dtype == np.bool_
    if not is_bool:
        raise UnsupportedOperationError("masked_fill: the mask must be boolean (torch refuses "
                                        "others); compare first: x.masked_fill(x > 0, value)")
    return array_api.where(mask, value, x)


def _pieces(x, sections, dim: int):
    """torch.split / chunk / unbind: views along ``dim`` as a tuple of traced arrays."""
    (axis,) = array_api.normalize_axes(dim, x.ndim, "torch.split")
    return tuple(tracing.Traced(x.graph, ids, x.dtype) for ids in np.split(x.ids, sections, axis))


def _split(x, split_size_or_sections, dim=0):
    (axis,) = array_api.normalize_axes(dim, x.ndim, "torch.split")
    n = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        cuts = list(range(split_size_or_sections, n, split_size_or_sections))
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise tracing.ShapeError(f"torch.split: sizes {sizes} do not add up to {n}")
        cuts = list(np.cumsum(sizes)[:-1])
    return _pieces(x, cuts, axis)


def _chunk(x, chunks, dim=0):
    (axis,) = array_api.normalize_axes(dim, x.ndim, "torch.chunk")
    size = -(-x.shape[axis] // chunks)
    return _split(x, size, axis)


def _unbind(x, dim=0):
    (axis,) = array_api.normalize_axes(dim, x.ndim, "torch.unbind")
    return tuple(tracing.Traced(x.graph, np.take(x.ids, i, axis=axis), x.dtype)
                 for i in range(x.shape[axis]))


def _narrow(x, dim, start, length):
    (axis,) = array_api.normalize_axes(dim, x.ndim, "torch.narrow")
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, start + length)
    return x[tuple(index)]


def _index_select(x, dim, index):
    (axis,) = array_api.normalize_axes(dim, x.ndim, "torch.index_select")
    picks = np.asarray(tracing.torch_to_numpy(index))
    if isinstance(index, tracing.Traced) or picks.dtype.kind not in "iu":
        raise UnsupportedOperationError("index_select needs a constant integer index tensor")
    try:
        return tracing.Traced(x.graph, np.take(x.ids, picks, axis=axis), x.dtype)
    except IndexError as error:
        raise tracing.TracedIndexError(f"torch.index_select: {error}") from None


def _refuse_conversion(what: str):
    def refuse(x, *args, **kwargs):
        raise tracing.TracedConversionError(
            f"x.{what}() on a traced value would give plain numbers and drop the gradient; keep "
            "the tensor, or use x.detach() for a constant")

    return refuse


HANDLERS.update({
    "zeros_like": _like(0.0),
    "ones_like": _like(1.0),
    "full_like": _like(None),
    "mse_loss": _mse_loss,
    "logsumexp": _logsumexp,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "expand": _expand,
    "repeat": lambda x, *sizes: array_api.ARRAY_FUNCTIONS[np.tile](x, _sizes(sizes)),
    "permute": lambda x, *dims: x.transpose(_sizes(dims)),
    "flip": lambda x, *dims: array_api.ARRAY_FUNCTIONS[np.flip](x, axis=_sizes(dims)),
    "transpose": lambda x, dim0, dim1: array_api.ARRAY_FUNCTIONS[np.swapaxes](x, dim0, dim1),
    "masked_fill": _masked_fill,
    "isnan": array_api.UFUNC_HANDLERS["isnan"],
    "isinf": array_api.UFUNC_HANDLERS["isinf"],
    "isfinite": array_api.UFUNC_HANDLERS["isfinite"],
    "any": lambda x, dim=None, keepdim=False, *, out=None: array_api.any_(
        x, axis=dim, keepdims=keepdim, out=out),
    "all": lambda x, dim=None, keepdim=False, *, out=None: array_api.all_(
        x, axis=dim, keepdims=keepdim, out=out),
    "split": _split,
    "chunk": _chunk,
    "unbind": _unbind,
    "narrow": _narrow,
    "index_select": _index_select,
    "contiguous": lambda x, memory_format=None: x,
    "cpu": lambda x, memory_format=None: x,
    "numpy": _refuse_conversion("numpy"),
    "bool": lambda x, memory_format=None: x.astype(np.bool_),
    "long": lambda x, memory_format=None: x.astype(np.int64),
    "int": lambda x, memory_format=None: x.astype(np.int32),
    "half": lambda x, memory_format=None: x.astype(np.float16),
    "type": lambda x, dtype=None, non_blocking=False: _to(x, dtype) if dtype is not None
    else f"torch.{x.dtype.name.capitalize()}Tensor",
    "cumsum": lambda x, dim, *, dtype=None, out=None: array_api.ARRAY_FUNCTIONS[np.cumsum](
        x, axis=dim, dtype=None if dtype is None else _numpy_dtype(dtype), out=out),
    "float": lambda x, memory_format=None: x.astype(np.float32),
    "double": lambda x, memory_format=None: x.astype(np.float64),
    "to": _to,
    "remainder": tracing.remainder,
    "floor_divide": tracing.floor_divide,
    "linalg_norm": _linalg_norm,
    "linalg_vector_norm": _vector_norm,
})


def dispatch(func: Callable, args: tuple, kwargs: dict) -> Any:
    """Run torch function ``func`` on arguments of which at least one is traced."""
    name = getattr(func, "__name__", str(func))
    handler = HANDLERS.get(name)
    if handler is not None:
        if name in _REFLECTED:
            args = (args[1], args[0]) + tuple(args[2:])
        return handler(*args, **kwargs)
    op = TORCH_FUNCTIONS.get(name)
    if op is not None:
        if name in _REFLECTED:
            args = (args[1], args[0]) + tuple(args[2:])
        kwargs = dict(kwargs)
        if name in ("add", "sub", "subtract") and "alpha" in kwargs:
            args = (args[0], tracing.elementwise("mul", args[1], kwargs.pop("alpha")))
        if kwargs.get("out", 0) is None:
            kwargs.pop("out")
        if name in ("relu",) and "inplace" in kwargs:
            kwargs.pop("inplace")
        _refuse_keywords(name, kwargs)
        expected = OPS[op].arity or 2
        if op == "clip":
            expected = 3
        if len(args) != expected:
            raise UnsupportedOperationError(
                f"torch.{name} takes {expected} tensor argument{'s' if expected > 1 else ''}, "
                f"got {len(args)}")
        return tracing.elementwise(op, *args)
    raise UnsupportedOperationError(
        f"torch.{name} is not supported by workbench tracing; use the numpy or workbench "
        "equivalent, or see wb.supported_functions()")
