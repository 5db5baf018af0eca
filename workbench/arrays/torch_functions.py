"""torch functions and Tensor methods on array-level traced values, with torch's semantics.

``ArrayTraced.__torch_function__`` sends every torch function called on a traced value here
(``torch.sin(x)``, ``F.linear(x, w, b)``, ``W @ x`` with a torch ``W`` on the left), and
``ArrayTraced`` sends the torch-only method names here (``x.exp()``, ``x.view(2, -1)``); in a
trace whose inputs were torch tensors, the methods whose numpy and torch meanings differ
(``x.var()``, ``x.max(1)``, ``x.transpose(0, 2)``...) come here too. Each handler builds the
result from the array-level ops of ``traced``; what it does not handle exactly raises
:class:`NotArrayLevel`, and the transform traces the function element by element instead
(``workbench.torch_support``), which handles it or words the error.

Only imported when torch is in use, so torch stays an optional dependency (torch itself is only
read from ``sys.modules``).

>>> import numpy as np
>>> from workbench.arrays.graph import ArrayGraph
>>> from workbench.arrays.traced import ArrayTraced, array_tracing
>>> g = ArrayGraph()
>>> with array_tracing(g):
...     x = ArrayTraced(g, g.input(np.array([[1.0, 2.0], [3.0, 4.0]]), "x"))
...     y = call("logsumexp", x, 1)
>>> bool(np.allclose(g.values[y.node], np.log(np.exp([[1, 2], [3, 4]]).sum(1))))
True
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import norms
from ..ops import OPS, TORCH_FUNCTIONS
from . import compositions as C
from . import traced as T
from .graph import NotArrayLevel
from .torch_tensor import unwrap
from .traced import ArrayTraced

# Elementwise torch names handled by the op table as they are: a fixed number of tensor
# arguments and no options (max/min/clamp/where/detach/softplus have their own handlers).
_ELEMENTWISE = {name: op for name, op in TORCH_FUNCTIONS.items()
                if op not in ("maximum", "minimum", "clip", "where", "stop_gradient", "softplus",
                              "step", "pow") and name != "float_power"
                or name in ("maximum", "minimum", "pow", "__pow__", "__rpow__")}
_REFLECTED = {"__radd__", "__rsub__", "__rmul__", "__rtruediv__", "__rpow__", "__rmatmul__",
              "__rmod__", "__rfloordiv__"}


def torch_style(x: ArrayTraced) -> bool:
    """The trace's inputs were torch tensors: methods take torch's meaning."""
    return x.graph.torch_style


def _torch():
    return sys.modules["torch"]


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _operand(x: Any) -> Any:
    """An argument as the array level takes it: torch tensors as numpy arrays (constants)."""
    x = unwrap(x)
    if _is_tensor(x):
        from ..tracing import torch_to_numpy

        return torch_to_numpy(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_operand(item) for item in x)
    return x


def tensor_dtype(x: Any) -> np.dtype:
    """A torch tensor's dtype as numpy's (dtypes numpy lacks are refused)."""
    try:
        return np.dtype(str(x.dtype).removeprefix("torch."))
    except TypeError:
        raise NotArrayLevel(f"a tensor of dtype {x.dtype}") from None


def torch_float_dtype(operands) -> np.dtype:
    """torch's float result dtype of mixed float operands: the widest of the operands that have
    dims, else of the 0-d ones (a 0-d float64 tensor does not widen a float32 matrix)."""
    floats = []
    for o in operands:
        if isinstance(o, ArrayTraced) or isinstance(o, (np.ndarray, np.generic)):
            dtype = o.dtype
        elif _is_tensor(o):
            dtype = tensor_dtype(o)
        else:
            continue
        if dtype.kind == "f":
            floats.append((np.ndim(o) if not _is_tensor(o) else o.dim(), dtype))
    dims = [d for n, d in floats if n > 0] or [d for _, d in floats]
    return np.result_type(*dims)


def tensor_constant(x: Any) -> np.ndarray:
    """A captured torch tensor's values (a constant of the trace; its content is part of the
    cache key, see ``transforms.captured``)."""
    value = _operand(x)
    if value.dtype.kind not in "fiub":
        raise NotArrayLevel(f"a tensor of dtype {x.dtype}")
    return value


def _like(fill: float | None) -> Callable:
    """zeros_like / ones_like / full_like of a traced value: a constant of its shape."""
    def run(x, *fill_value, dtype=None, layout=None, device=None, requires_grad=False,
            memory_format=None, pin_memory=False):
        x = _traced_arg(x)
        target = x.dtype if dtype is None else _numpy_float_dtype(dtype)
        value = float(fill if fill is not None else fill_value[0])
        g = x.graph
        return ArrayTraced(g, g.const(np.full(x.shape, value)), target)

    return run


def _float_dtypes(values) -> set:
    out = set()
    for v in values:
        if isinstance(v, (list, tuple)):
            out |= _float_dtypes(v)
        elif isinstance(v, (ArrayTraced, np.ndarray, np.generic)) and v.dtype.kind == "f":
            out.add(np.dtype(v.dtype))
        elif _is_tensor(v) and v.is_floating_point():
            out.add(tensor_dtype(v))
    return out


def _traced_arg(x: Any) -> ArrayTraced:
    if not isinstance(x, ArrayTraced):
        raise NotArrayLevel("a torch function whose main argument is not traced")
    return x


def _no(name: str, **options) -> None:
    """Refuse options this level does not implement (the element level handles or words them)."""
    for key, (value, default) in options.items():
        if value is not default and value != default:
            raise NotArrayLevel(f"torch.{name}(..., {key}={value!r})")


def _dims(dim, ndim: int, empty_means_all: bool = False) -> tuple[int, ...] | None:
    """torch's ``dim`` (an int, a tuple or list, or None for all) as sorted axes."""
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)) and not dim:
        if empty_means_all:
            return None
        raise NotArrayLevel("an empty dim list")
    from . import rules

    return rules.normalize_axes(tuple(dim) if isinstance(dim, list) else dim, ndim)


def _sizes(sizes: tuple) -> tuple:
    return tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes


def _unwrap_all(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap_all(item) for item in x)
    return unwrap(x)


def tensor_node(g, x: Any) -> int:
    """The graph node of a torch tensor operand: a traced tensor's own node, else a constant."""
    traced = unwrap(x)
    if traced is not x:
        if traced.graph is not g:
            raise NotArrayLevel("a value of another trace")
        return traced.node
    return g.const(tensor_constant(x))


# ----- reductions -----
def _sum(x, dim=None, keepdim=False, *, dtype=None, axis=None, out=None):
    _no("sum", dtype=(dtype, None), out=(out, None))
    x = _traced_arg(x)
    axes = _dims(dim if axis is None else axis, x.ndim)
    return T._reduce("sum", x, axes, bool(keepdim))


def _mean(x, dim=None, keepdim=False, *, dtype=None, axis=None, out=None):
    _no("mean", dtype=(dtype, None), out=(out, None))
    x = _traced_arg(x)
    if x.dtype.kind != "f":
        raise NotArrayLevel("mean of a non-float tensor")
    return T._mean(x, _dims(dim if axis is None else axis, x.ndim), bool(keepdim))


def _extreme(kind: str) -> Callable:
    def run(x, dim=(), keepdim=False, *, out=None):
        _no(kind, out=(out, None))
        x = _traced_arg(x)
        return T._reduce(kind, x, _dims(dim, x.ndim, empty_means_all=True), bool(keepdim))

    return run


def _max_or_min(kind: str, pairwise: str) -> Callable:
    """torch.max(x): the largest value (ties share the gradient evenly, as torch's);
    torch.max(x, other): elementwise; torch.max(x, dim) returns indices too: refused here."""
    def run(x, other=None, keepdim=False, *, dim=None, out=None):
        _no(kind, out=(out, None))
        if other is None and dim is None:
            x = _traced_arg(x)
            return T._reduce(kind, x, None, False)
        if other is not None and dim is None and not isinstance(other, (int, np.integer)):
            return T.elementwise(pairwise, x, other)
        raise NotArrayLevel(f"torch.{kind[1:]}(x, dim) returns (values, indices)")

    return run


def _var_std(which: str) -> Callable:
    """torch.var / torch.std: unbiased (correction 1) by default, unlike numpy."""
    def run(x, dim=None, unbiased=None, keepdim=False, *, correction=None, out=None):
        _no(which, out=(out, None))
        x = _traced_arg(x)
        if isinstance(dim, bool):  # the var(input, unbiased) overload
            dim, unbiased = None, dim
        if correction is not None and unbiased is not None:
            raise NotArrayLevel("both unbiased and correction")
        ddof = correction if correction is not None else (0 if unbiased is False else 1)
        axes = _dims(dim, x.ndim)
        n = math.prod(x.shape[a] for a in (range(x.ndim) if axes is None else axes))
        if n - ddof <= 0:
            raise NotArrayLevel(f"{which} with no degrees of freedom")
        fn = T._var if which == "var" else T._std
        return fn(x, axes, None, None, ddof, bool(keepdim))

    return run


def _shifted_exp(x: ArrayTraced, axes) -> tuple[ArrayTraced, ArrayTraced]:
    """exp(x - max(x)) over ``axes``, the max held constant (it cancels; it only avoids
    overflow); an infinite max is replaced by 0, so a row of -inf gives -inf, not nan."""
    top = T._reduce("amax", x, axes, True).detach()
    top = T.where(T.elementwise("eq", T.elementwise("abs", top), math.inf), 0.0, top)
    return T.elementwise("exp", x - top), top


def _logsumexp(x, dim=None, keepdim=False, *, out=None):
    _no("logsumexp", out=(out, None))
    x = _traced_arg(x)
    if dim is None or x.ndim == 0:
        raise NotArrayLevel("logsumexp without dim")
    axes = _dims(dim, x.ndim)
    shifted, top = _shifted_exp(x, axes)
    total = T._reduce("sum", shifted, axes, True)
    result = T.elementwise("log", total) + top
    return result if keepdim else T.squeeze(result, axes)


def _softmax_axis(name: str, x: ArrayTraced, dim, dtype) -> tuple[int, ...]:
    _no(name, dtype=(dtype, None))
    if dim is None:
        raise NotArrayLevel(f"{name} without dim")
    return _dims(dim, max(x.ndim, 1))


def _softmax(x, dim=None, _stacklevel=3, dtype=None):
    x = _traced_arg(x)
    if x.ndim == 0:
        raise NotArrayLevel("softmax of a 0-d tensor")
    axes = _softmax_axis("softmax", x, dim, dtype)
    shifted, _ = _shifted_exp(x, axes)
    return shifted / T._reduce("sum", shifted, axes, True)


def _log_softmax(x, dim=None, _stacklevel=3, dtype=None):
    x = _traced_arg(x)
    if x.ndim == 0:
        raise NotArrayLevel("log_softmax of a 0-d tensor")
    axes = _softmax_axis("log_softmax", x, dim, dtype)
    return x - _logsumexp(x, axes, keepdim=True)


# ----- elementwise with options -----
def _clamp(x, min=None, max=None, *, out=None):
    _no("clamp", out=(out, None))
    if min is None and max is None:
        raise NotArrayLevel("clamp without bounds")
    for bound in (min, max):
        if bound is not None and not isinstance(bound, (int, float, np.integer, np.floating)):
            raise NotArrayLevel("clamp with tensor bounds")
    return T.clip(_traced_arg(x), min, max)


def _where(cond, a=None, b=None):
    if a is None or b is None:
        raise NotArrayLevel("torch.where(cond) returns indices")
    if not isinstance(cond, ArrayTraced) and np.asarray(cond).dtype != np.bool_:
        raise NotArrayLevel("torch.where needs a boolean condition")
    if isinstance(cond, ArrayTraced) and cond.dtype != np.bool_:
        raise NotArrayLevel("torch.where needs a boolean condition")
    return T.where(cond, a, b)


def _relu(x, inplace=False):
    _no("relu", inplace=(inplace, False))
    return T.elementwise("relu", x)


def _softplus(x, beta=1.0, threshold=20.0):
    _no("softplus", beta=(beta, 1.0), threshold=(threshold, 20.0))
    return T.elementwise("softplus", x)


def _add_sub(op: str) -> Callable:
    def run(a, b, *, alpha=1, out=None):
        _no(op, out=(out, None))
        if alpha != 1:
            b = T.elementwise("mul", b, float(alpha))
        return T.elementwise(op, a, b)

    return run


def _div(a, b, *, rounding_mode=None, out=None):
    _no("div", rounding_mode=(rounding_mode, None), out=(out, None))
    return T.elementwise("div", a, b)


# ----- contractions -----
def _matmul(a, b, *, out=None):
    _no("matmul", out=(out, None))
    return T.matmul(a, b)


def _fixed_ndim(name: str, na: int, nb: int) -> Callable:
    """torch.mm / mv / bmm / dot: matmul for operands of exactly these ranks."""
    def run(a, b, *, out=None):
        _no(name, out=(out, None))
        if np.ndim(a) != na or np.ndim(b) != nb:
            raise NotArrayLevel(f"torch.{name} shapes")
        if name == "bmm" and np.shape(a)[0] != np.shape(b)[0]:
            raise NotArrayLevel("torch.bmm batch sizes")
        return T.matmul(a, b)

    return run


def _einsum(equation, *operands):
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return T.einsum(equation, *operands)


# ----- shapes -----
def _reshape(x, *shape):
    shape = _sizes(shape)
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in shape):
        raise NotArrayLevel("view/reshape with a non-integer size (a dtype view?)")
    return T.reshape(_traced_arg(x), shape)


def _permute(x, *dims):
    x = _traced_arg(x)
    dims = _sizes(dims)
    if len(dims) != x.ndim:
        raise NotArrayLevel("permute dims")
    return T.transpose(x, [int(d) % max(x.ndim, 1) for d in dims])


def _transpose(x, dim0, dim1):
    x = _traced_arg(x)
    if x.ndim == 0:
        raise NotArrayLevel("transpose of a 0-d tensor")
    return T.swapaxes(x, int(dim0), int(dim1))


def _t(x):
    x = _traced_arg(x)
    if x.ndim > 2:
        raise NotArrayLevel("t() of more than 2 dims")
    return T.transpose(x) if x.ndim == 2 else x


def _unsqueeze(x, dim):
    x = _traced_arg(x)
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise NotArrayLevel("unsqueeze dim out of range")
    return T.expand_dims(x, int(dim) % (x.ndim + 1))


def _squeeze(x, dim=None):
    """torch.squeeze: dims of size 1 go; a given dim of another size stays (numpy refuses)."""
    x = _traced_arg(x)
    axes = range(x.ndim) if dim is None else _dims(dim, max(x.ndim, 1))
    if x.ndim == 0:
        return x
    drop = {a for a in axes if x.shape[a] == 1}
    return T.reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in drop))


def _flatten(x, start_dim=0, end_dim=-1):
    x = _traced_arg(x)
    if x.ndim == 0:
        return T.reshape(x, (1,))
    (lo,) = _dims(start_dim, x.ndim)
    (hi,) = _dims(end_dim, x.ndim)
    if lo > hi:
        raise NotArrayLevel("flatten: start_dim after end_dim")
    shape = x.shape[:lo] + (math.prod(x.shape[lo:hi + 1]),) + x.shape[hi + 1:]
    return T.reshape(x, shape)


def _expand(x, *sizes):
    x = _traced_arg(x)
    sizes = _sizes(sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise NotArrayLevel("expand to fewer dims")
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    return T.broadcast_to(x, shape)


def _cat(tensors, dim=0, *, axis=None, out=None):
    _no("cat", out=(out, None))
    tensors = [_operand(t) for t in tensors]
    if any(np.ndim(t) == 0 for t in tensors):
        raise NotArrayLevel("cat of 0-d tensors")
    return T.concatenate(tensors, axis=int(dim if axis is None else axis))


def _stack(tensors, dim=0, *, out=None):
    _no("stack", out=(out, None))
    tensors = [_operand(t) for t in tensors]
    ndim = np.ndim(tensors[0]) if tensors else 0
    if not -ndim - 1 <= dim <= ndim:
        raise NotArrayLevel("stack dim out of range")
    return T.stack(tensors, axis=int(dim) % (ndim + 1))


def _getitem(x, index):
    return _traced_arg(x)[numpy_index(index)]


def _gather(x, dim, index, *, sparse_grad=False, out=None):
    """torch.gather: ``out[i][j] = x[i][index[i][j]]`` (for dim 1), over index's own shape."""
    _no("gather", sparse_grad=(sparse_grad, False), out=(out, None))
    x = _traced_arg(x)
    index = _operand(index)
    if not (isinstance(index, (ArrayTraced, np.ndarray)) and index.dtype.kind in "iu"):
        raise NotArrayLevel("gather with a non-integer index")
    if index.ndim != x.ndim or not x.ndim:
        raise NotArrayLevel("gather shapes")
    dim = int(dim) % x.ndim
    if any(n > m for i, (n, m) in enumerate(zip(index.shape, x.shape)) if i != dim):
        raise NotArrayLevel("gather: index larger than the input")
    _check_in_range(index, x.shape[dim], "gather")
    return T.gather_along(x, index, dim, index.shape)


def _check_in_range(index: ArrayTraced | np.ndarray, n: int, name: str) -> None:
    """torch raises for an index outside ``[0, n)`` where numpy would wrap a negative one: a
    concrete index is checked now, a traced one (mapped by vmap) by a check of the compiled
    version that vmap tests on every example (``ArrayGraph.require``)."""
    from ..errors import IndexOutOfRangeError

    error = IndexOutOfRangeError(f"torch.{name}: an index is out of bounds for a dimension of "
                                 f"size {n}: indices must be in [0, {n})")
    if not isinstance(index, ArrayTraced):
        if ((index < 0) | (index >= n)).any():
            raise error
        return
    valid = (index >= 0) & (index < n)
    if valid.ndim:
        valid = T._reduce("amin", valid)
    index.graph.require(valid.node, error)


def numpy_index(index: Any) -> Any:
    """An index with its torch tensors as numpy arrays (torch's and numpy's integer and
    boolean indexing agree on these)."""
    if isinstance(index, tuple):
        return tuple(_operand(item) if _is_tensor(item) else item for item in index)
    return _operand(index) if _is_tensor(index) else index


# ----- dtype and bookkeeping -----
def _numpy_float_dtype(dtype) -> np.dtype:
    torch = _torch()
    table = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
    if dtype not in table:
        raise NotArrayLevel(f"conversion to {dtype}")
    return table[dtype]


def _as_dtype(x: ArrayTraced, dtype: np.dtype) -> ArrayTraced:
    """A float dtype change: values stay float64 inside, the output is rounded once (as on the
    element path)."""
    if x.dtype.kind != "f":  # a mask or integer labels made float: a cast node
        return T.astype(x, dtype)
    return ArrayTraced(x.graph, x.node, dtype)


def _to(x, *args, **kwargs):
    x = _traced_arg(x)
    torch = _torch()
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    for a in args:
        if isinstance(a, torch.dtype):
            dtype = a
        elif isinstance(a, ArrayTraced):
            dtype = a.dtype
        elif isinstance(a, torch.Tensor):
            dtype = a.dtype
        elif not (isinstance(a, (str, torch.device)) and torch.device(a).type == "cpu"):
            raise NotArrayLevel(f"x.to({a!r})")
    device = kwargs.pop("device", None)
    if kwargs or (device is not None and torch.device(device).type != "cpu"):
        raise NotArrayLevel("x.to options")
    if dtype is None:
        return x
    return _as_dtype(x, dtype if isinstance(dtype, np.dtype) else _numpy_float_dtype(dtype))


def _size(x, dim=None):
    x = _traced_arg(x)
    if dim is None:
        return _torch().Size(x.shape)
    return x.shape[dim]


def _identity(x, *args, memory_format=None, **kwargs):
    if args or kwargs:
        raise NotArrayLevel("options of clone/contiguous")
    return _traced_arg(x)


def _norm_handler(norm: Callable) -> Callable:
    """A torch norm (:mod:`workbench.norms`, shared with the element level) of a traced value."""
    def run(x, *args, out=None, dtype=None, **kwargs):
        _no("norm", out=(out, None), dtype=(dtype, None))
        return norm(_traced_arg(x), *args, **kwargs)

    return run


HANDLERS: dict[str, Callable[..., Any]] = {
    "sum": _sum, "mean": _mean,
    "amax": _extreme("amax"), "amin": _extreme("amin"),
    "max": _max_or_min("amax", "maximum"), "min": _max_or_min("amin", "minimum"),
    "var": _var_std("var"), "std": _var_std("std"),
    "logsumexp": _logsumexp, "softmax": _softmax, "log_softmax": _log_softmax,
    "clamp": _clamp, "clip": _clamp, "where": _where,
    "relu": _relu, "softplus": _softplus,
    "add": _add_sub("add"), "sub": _add_sub("sub"), "subtract": _add_sub("sub"),
    "div": _div, "divide": _div,
    "square": lambda x: T.elementwise("mul", x, x),
    "reciprocal": lambda x: T.elementwise("div", 1.0, x),
    "rsqrt": lambda x: T.elementwise("div", 1.0, T.elementwise("sqrt", x)),
    "matmul": _matmul, "__matmul__": _matmul, "__rmatmul__": _matmul,
    "mm": _fixed_ndim("mm", 2, 2), "mv": _fixed_ndim("mv", 2, 1),
    "bmm": _fixed_ndim("bmm", 3, 3), "dot": _fixed_ndim("dot", 1, 1),
    "einsum": _einsum,
    "reshape": _reshape, "view": _reshape,
    "permute": _permute, "transpose": _transpose, "swapaxes": _transpose, "swapdims": _transpose,
    "t": _t, "unsqueeze": _unsqueeze, "squeeze": _squeeze, "flatten": _flatten,
    "expand": _expand, "cat": _cat, "concat": _cat, "concatenate": _cat, "stack": _stack,
    "__getitem__": _getitem, "gather": _gather,
    "detach": lambda x: _traced_arg(x).detach(),
    "clone": _identity, "contiguous": _identity,
    "float": lambda x, memory_format=None: _as_dtype(_traced_arg(x), np.dtype(np.float32)),
    "double": lambda x, memory_format=None: _as_dtype(_traced_arg(x), np.dtype(np.float64)),
    "to": _to, "type_as": lambda x, other: _to(x, other),
    "dim": lambda x: _traced_arg(x).ndim, "ndimension": lambda x: _traced_arg(x).ndim,
    "numel": lambda x: _traced_arg(x).size, "size": _size,
    "__len__": lambda x: len(_traced_arg(x)),
    "zeros_like": _like(0.0), "ones_like": _like(1.0), "full_like": _like(None),
    "flip": lambda x, *dims: C.flip(_traced_arg(x), _sizes(dims)),
    "roll": lambda x, shifts, dims=None: C.roll(_traced_arg(x), shifts, dims),
    "cumsum": lambda x, dim, *, dtype=None, out=None: T.cumsum(_traced_arg(x), dim, dtype, out),
    "prod": lambda x, dim=None, keepdim=False, *, dtype=None, out=None: C.prod(
        _traced_arg(x), dim, keepdim, dtype, out),
    "norm": _norm_handler(norms.torch_norm), "linalg_norm": _norm_handler(norms.torch_linalg_norm),
    "linalg_vector_norm": _norm_handler(norms.torch_vector_norm),
}

# Elementwise handlers: mixed float dtypes follow torch's promotion (``torch_float_dtype``).
_PROMOTING = frozenset(_ELEMENTWISE) | {"add", "sub", "subtract", "div", "divide", "where", "max",
                                       "min", "clamp", "clip", "square", "reciprocal", "rsqrt",
                                       "relu", "softplus"}

# Methods whose argument order differs from the function of the same name.
_METHODS: dict[str, Callable[..., Any]] = {
    "where": lambda self, condition, other: _where(condition, self, other),
}


def call(name: str, *args: Any, **kwargs: Any) -> Any:
    """Run the torch function ``name`` on (traced) arguments with torch's semantics, or raise
    :class:`NotArrayLevel`."""
    handler = HANDLERS.get(name)
    if handler is None:
        from .torch_nn import HANDLERS as NN  # F.linear, F.conv1d, the losses

        handler = NN.get(name)
    if handler is None and name in _ELEMENTWISE:  # torch tensors among the operands are
        # constants (``traced.node_of``), promoted by torch's rule (``torch_float_dtype``)
        op = _ELEMENTWISE[name]
        if kwargs.pop("out", None) is not None or kwargs:
            raise NotArrayLevel(f"torch.{name} options {sorted(kwargs)}")
        if len(args) != (OPS[op].arity or 2):
            raise NotArrayLevel(f"torch.{name} arguments")
        handler = lambda *a: T.elementwise(op, *a)  # noqa: E731
    if handler is None:
        raise NotArrayLevel(f"torch.{name}")
    if name not in _PROMOTING and len(_float_dtypes(args + tuple(kwargs.values()))) > 1:
        # torch refuses mixed float dtypes here (matmul...) or promotes in ways not followed
        raise NotArrayLevel(f"torch.{name} of mixed float dtypes")
    return handler(*args, **kwargs)


def dispatch(func: Callable, args: tuple, kwargs: dict) -> Any:
    """``ArrayTraced.__torch_function__``: run torch function ``func`` at array level."""
    name = getattr(func, "__name__", None)
    if not isinstance(name, str):
        raise NotArrayLevel(f"torch function {func!r}")
    args = _unwrap_all(args)
    kwargs = {k: _unwrap_all(v) for k, v in kwargs.items()}
    torch = _torch()
    if getattr(torch.Tensor, name, None) is func and name in _METHODS:
        return _METHODS[name](*args, **kwargs)
    if name in _REFLECTED:
        args = (args[1], args[0]) + tuple(args[2:])
    return call(name, *args, **kwargs)


def method(x: ArrayTraced, name: str) -> Callable[..., Any]:
    """``x.name`` for a torch Tensor method name (``x.exp``, ``x.view``...), bound to ``x``."""
    if name in _METHODS:
        return lambda *args, **kwargs: _METHODS[name](x, *args, **kwargs)
    if name in HANDLERS or name in _ELEMENTWISE:
        return lambda *args, **kwargs: call(name, x, *args, **kwargs)
    raise NotArrayLevel(f"attribute {name!r}")
