"""Traced values: numpy-shaped arrays of graph nodes that user code runs on unchanged.

A :class:`Traced` holds an integer array ``ids`` of graph nodes (any shape, ``()`` for a scalar)
and the float dtype it stands for. Purely structural numpy operations (reshape, transpose,
indexing, stack, concatenate...) are applied to the id array itself; arithmetic and functions build
one node per element through the op table. The concrete value of every node is kept, so Python
control flow works: ``if x > 0`` records a *guard* and takes the branch the value says.

Plain numpy code reaches this module through ``__array_ufunc__`` / ``__array_function__``, torch
code through ``__torch_function__``, and torch-style code through methods (``x.sin()``,
``v.dot(w)``, ``x.relu()``, ``x.pow(2)``).

>>> from workbench.graph import Graph
>>> import numpy as np
>>> with tracing(Graph()) as g:
...     x = Traced.input(g, np.array([1.0, 2.0]), "x")
...     y = np.sin(x) * 2 + x.sum()
>>> y.shape, np.round(y.value, 4).tolist()
((2,), [4.6829, 4.8186])
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .errors import (
    LeakedTracerError,
    ShapeError,
    TracedConversionError,
    UnsupportedOperationError,
)
from .graph import Graph
from .ops import NUMPY_UFUNCS, OPS, TORCH_FUNCTIONS


class _TraceState:
    """Module-wide tracing state. Transforms are not thread-safe (neither is a Jupyter cell)."""

    grad_enabled = True
    # Graphs of the top-level transform calls in progress, innermost last.
    graphs: list[Graph] = []
    # The call being traced got torch tensors: methods whose numpy and torch meanings differ
    # (x.var(), x.std(): ddof 0 in numpy, 1 in torch) take torch's.
    torch_style = False


STATE = _TraceState()


@contextlib.contextmanager
def tracing(graph: Graph, torch_style: bool = False) -> Iterator[Graph]:
    """Make ``graph`` the one new traced values are built in, with gradients enabled.

    A transform's result must not depend on a ``no_grad`` around its call (torch.func's rule),
    so gradient recording is switched on here, for workbench and for torch alike.
    ``torch_style``: the inputs are torch tensors (see ``_TraceState.torch_style``).
    """
    STATE.graphs.append(graph)
    saved, saved_style = STATE.grad_enabled, STATE.torch_style
    STATE.grad_enabled = True
    STATE.torch_style = torch_style
    torch = sys.modules.get("torch")
    torch_mode = torch.enable_grad() if torch is not None else contextlib.nullcontext()
    try:
        with torch_mode:
            yield graph
    finally:
        STATE.grad_enabled, STATE.torch_style = saved, saved_style
        STATE.graphs.pop()


def grad_enabled() -> bool:
    """False inside ``wb.no_grad()`` or ``torch.no_grad()`` (when torch is loaded)."""
    if not STATE.grad_enabled:
        return False
    torch = sys.modules.get("torch")
    return torch is None or torch.is_grad_enabled()


def _float_dtype(x) -> np.dtype:
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return np.dtype(np.float64)
    if not isinstance(dtype, np.dtype):  # torch dtype
        return np.dtype(str(dtype).replace("torch.", ""))
    return dtype


class Traced:
    """An array (or scalar) of traced scalar nodes. Behaves like a numpy float array."""

    __slots__ = ("graph", "ids", "dtype")
    __array_priority__ = 1000  # numpy defers binary operators to us

    def __init__(self, graph: Graph, ids: np.ndarray, dtype=np.float64) -> None:
        self.graph = graph
        self.ids = ids
        self.dtype = np.dtype(dtype)

    @classmethod
    def input(cls, graph: Graph, value, label: str) -> Traced:
        """A fresh input: one ``input`` node per element of ``value``."""
        array = np.asarray(value)
        flat = array.ravel().tolist()
        if array.dtype == np.float32:
            flat = [float(v) for v in flat]
        ids = [graph.input(v, (label, i)) for i, v in enumerate(flat)]
        return cls(graph, np.array(ids, dtype=np.intp).reshape(array.shape), _float_dtype(array))

    # ----- array attributes -----
    @property
    def shape(self) -> tuple[int, ...]:
        return self.ids.shape

    @property
    def ndim(self) -> int:
        return self.ids.ndim

    @property
    def size(self) -> _Size:
        return _Size(self.ids.size, self.ids.shape)

    def __len__(self) -> int:
        if self.ids.ndim == 0:  # torch.tensor(x) / torch.as_tensor(x) of a traced x end up here
            raise TracedConversionError(
                "len() of a 0-d (scalar) traced value; if this came from torch.tensor(x) or "
                "torch.as_tensor(x), use x itself (wrapping it would drop its gradient)")
        return len(self.ids)

    def dim(self) -> int:
        """torch-style ``x.dim()``."""
        return self.ids.ndim

    def numel(self) -> int:
        return self.ids.size

    @property
    def value(self) -> np.ndarray:
        """The concrete value this traced array had at the point being traced."""
        values = self.graph.values
        dtype = bool if self.dtype == np.bool_ else self.dtype
        return np.array([values[i] for i in self.ids.ravel().tolist()],
                        dtype=dtype).reshape(self.ids.shape)

    def __repr__(self) -> str:
        return f"Traced(shape={self.shape}, dtype={self.dtype}, value={self.value!r})"

    # ----- conversions that would lose the gradient -----
    def _refuse(self, what: str):
        raise TracedConversionError(
            f"{what} on a traced value would turn it into a plain number and silently drop its "
            "gradient. Keep the computation in numpy/workbench functions (np.sin instead of "
            "math.sin, np.stack/np.array of traced values instead of filling a numpy array); "
            "if you really want a constant, use x.item() or wb.stop_gradient(x)")

    def __float__(self):
        self._refuse("float()")

    def __int__(self):
        self._refuse("int()")

    def __complex__(self):
        self._refuse("complex()")

    def __index__(self):
        self._refuse("using it as an index (operator.index)")

    def __array__(self, dtype=None, copy=None):
        self._refuse("np.asarray()/np.array() (or storing it into a numpy array)")

    def item(self) -> float:
        """The concrete value as a Python number, with no gradient (like torch's ``.item()``).

        A compiled result that used it is valid only where the value is the same, so a guard
        ``x == value`` is recorded.
        """
        if self.ids.size != 1:
            raise ShapeError(f"item() needs a single element, this traced value has shape {self.shape}")
        node = int(self.ids.ravel()[0])
        value = self.graph.values[node]
        if not isinstance(value, bool):
            _record_guard(self.graph, self.graph.apply("eq", node, self.graph.const(value)), True)
        return value

    def tolist(self):
        if self.ids.ndim == 0:
            return self
        return [Traced(self.graph, row, self.dtype).tolist() for row in self.ids]

    def __bool__(self) -> bool:
        if self.ids.size != 1:
            raise ValueError(
                f"the truth value of a traced array of shape {self.shape} is ambiguous; "
                "use .any() or .all() (on concrete data), or np.where for a branch per element")
        node = int(self.ids.ravel()[0])
        value = bool(self.graph.values[node])
        _record_guard(self.graph, node, value)
        return value

    __hash__ = None  # type: ignore[assignment]  # like ndarray

    def __wb_apply__(self, name: str, *operands):
        """The hook ``wb.sin``, ``wb.relu``... use to reach traced values."""
        if name == "stop_gradient":
            return stop_gradient(operands[0])
        return elementwise(name, *operands)

    # ----- operators -----
    def __add__(self, other):
        return elementwise("add", self, other)

    def __radd__(self, other):
        return elementwise("add", other, self)

    def __sub__(self, other):
        return elementwise("sub", self, other)

    def __rsub__(self, other):
        return elementwise("sub", other, self)

    def __mul__(self, other):
        return elementwise("mul", self, other)

    def __rmul__(self, other):
        return elementwise("mul", other, self)

    def __truediv__(self, other):
        return elementwise("div", self, other)

    def __rtruediv__(self, other):
        return elementwise("div", other, self)

    def __floordiv__(self, other):
        return floor_divide(self, other)

    def __rfloordiv__(self, other):
        return floor_divide(other, self)

    def __mod__(self, other):
        return remainder(self, other)

    def __rmod__(self, other):
        return remainder(other, self)

    def __pow__(self, other):
        return power(self, other)

    def __rpow__(self, other):
        return power(other, self)

    def __neg__(self):
        return elementwise("neg", self)

    def __pos__(self):
        return self

    def __abs__(self):
        return elementwise("abs", self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __gt__(self, other):
        return elementwise("gt", self, other)

    def __ge__(self, other):
        return elementwise("ge", self, other)

    def __lt__(self, other):
        return elementwise("lt", self, other)

    def __le__(self, other):
        return elementwise("le", self, other)

    def __eq__(self, other):  # type: ignore[override]
        return elementwise("eq", self, other)

    def __ne__(self, other):  # type: ignore[override]
        return elementwise("ne", self, other)

    def __and__(self, other):
        return elementwise("logical_and", self, other)

    def __or__(self, other):
        return elementwise("logical_or", self, other)

    def __invert__(self):
        return elementwise("logical_not", self)

    # ----- indexing -----
    def __getitem__(self, index):
        return Traced(self.graph, self.ids[_static_index(index)], self.dtype)

    def __setitem__(self, index, value) -> None:
        ids = as_ids(self.graph, value)
        self.ids[_static_index(index)] = ids

    def __iter__(self):
        if self.ids.ndim == 0:
            raise TypeError("iteration over a 0-d (scalar) traced value")
        for row in self.ids:
            yield Traced(self.graph, row, self.dtype)

    # ----- numpy protocols -----
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if kwargs.get("out") is not None:
            raise UnsupportedOperationError(
                f"np.{ufunc.__name__}(..., out=...) writes into an array in place, which tracing "
                "cannot follow; assign the result instead: y = np.{ufunc.__name__}(...)")
        if method != "__call__":
            if ufunc.__name__ in ("add", "multiply", "maximum", "minimum") and method == "reduce":
                reducer = {"add": sum, "multiply": prod, "maximum": amax, "minimum": amin}
                return reducer[ufunc.__name__](inputs[0], axis=kwargs.get("axis", 0),
                                               keepdims=kwargs.get("keepdims", False))
            raise UnsupportedOperationError(
                f"np.{ufunc.__name__}.{method} is not supported by workbench tracing")
        handler = UFUNC_HANDLERS.get(ufunc.__name__)
        if handler is not None:
            return handler(*inputs)
        name = NUMPY_UFUNCS.get(ufunc.__name__)
        if name is None:
            raise UnsupportedOperationError(
                f"np.{ufunc.__name__} is not supported by workbench tracing; the supported numpy "
                f"functions are listed by wb.supported_functions()")
        return elementwise(name, *inputs)

    def __array_function__(self, func, types, args, kwargs):
        handler = ARRAY_FUNCTIONS.get(func)
        if handler is None:
            raise UnsupportedOperationError(
                f"{_numpy_name(func)} is not supported by workbench tracing; the supported numpy "
                "functions are listed by wb.supported_functions()")
        return handler(*args, **kwargs)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        from . import torch_support

        return torch_support.dispatch(func, args, kwargs or {})

    # ----- methods: numpy and torch names -----
    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None):
        return sum(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim))

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None):
        return mean(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim))

    def prod(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return prod(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim))

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        _refuse_torch_max_dim("max", axis, dim)
        return amax(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim))

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        _refuse_torch_max_dim("min", axis, dim)
        return amin(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim))

    def var(self, axis=None, keepdims=False, ddof=None, *, dim=None, keepdim=None, unbiased=None,
            correction=None):
        """numpy's ``x.var(axis, ddof=0)``, or torch's ``x.var(dim, correction=1)`` when the
        traced call got torch tensors; torch's keywords (``unbiased``, ``correction``) too."""
        return var(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim),
                   ddof=_ddof(ddof, unbiased, correction))

    def std(self, axis=None, keepdims=False, ddof=None, *, dim=None, keepdim=None, unbiased=None,
            correction=None):
        return std(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim),
                   ddof=_ddof(ddof, unbiased, correction))

    def __getattr__(self, name: str):
        # Tensor methods that are not elementwise ops (x.reciprocal(), x.amax(1), x.norm()...):
        # the handlers torch's own functions use. Only reached when normal lookup fails.
        if not name.startswith("_"):
            from . import torch_support

            handler = torch_support.HANDLERS.get(name)
            if handler is not None:
                return lambda *args, **kwargs: handler(self, *args, **kwargs)
        raise AttributeError(f"'Traced' object has no attribute {name!r}"
                             + ("" if name.startswith("_") else
                                f": x.{name}() is not supported by workbench tracing"))

    def dot(self, other):
        return dot(self, other)

    def matmul(self, other):
        return matmul(self, other)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Traced(self.graph, self.ids.reshape(shape, order=order), self.dtype)

    view = reshape

    def flatten(self):
        return Traced(self.graph, self.ids.flatten(), self.dtype)

    def ravel(self):
        return Traced(self.graph, self.ids.ravel(), self.dtype)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if len(axes) == 2 and self.ids.ndim != 2:  # torch's x.transpose(dim0, dim1) (numpy refuses)
            return Traced(self.graph, np.swapaxes(self.ids, *axes), self.dtype)
        return Traced(self.graph, self.ids.transpose(*axes), self.dtype)

    @property
    def T(self) -> Traced:
        return Traced(self.graph, self.ids.T, self.dtype)

    @property
    def mT(self) -> Traced:
        return Traced(self.graph, np.swapaxes(self.ids, -1, -2), self.dtype)

    def t(self) -> Traced:
        return self.T

    def squeeze(self, axis=None):
        return Traced(self.graph, self.ids.squeeze(axis), self.dtype)

    def unsqueeze(self, dim):
        return Traced(self.graph, np.expand_dims(self.ids, dim), self.dtype)

    def copy(self):
        return Traced(self.graph, self.ids.copy(), self.dtype)

    clone = copy

    def astype(self, dtype, copy=True):
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TracedConversionError(
                f"astype({dtype}) on a traced value: only float dtypes keep a gradient; compare "
                "(x > 0) to get a mask, and np.where to use it")
        return Traced(self.graph, self.ids, dtype)

    def detach(self):
        return stop_gradient(self)

    def pow(self, exponent):
        return power(self, exponent)

    def clip(self, min=None, max=None):
        return clip(self, min, max)

    clamp = clip


def _elementwise_method(op_name: str) -> Callable:
    def method(self, *others, **kwargs):
        if op_name in ("add", "sub") and set(kwargs) == {"alpha"}:  # torch's x.add(y, alpha=2)
            others = (elementwise("mul", others[0], kwargs.pop("alpha")),)
        if kwargs:
            raise UnsupportedOperationError(
                f"x.{op_name}(..., {', '.join(kwargs)}=...) is not supported by workbench tracing; "
                "call it without those keyword arguments")
        return elementwise(op_name, self, *others)

    method.__name__ = method.__qualname__ = op_name
    return method


# torch-style elementwise methods (x.sin(), x.exp(), x.relu(), x.maximum(y), x.gt(0)...), from the
# op table. ``x.where(cond, y)`` means ``where(cond, x, y)`` in torch, so it is not one of them.
for _name, _op_name in TORCH_FUNCTIONS.items():
    if not _name.startswith("__") and _name != "where" and not hasattr(Traced, _name):
        setattr(Traced, _name, _elementwise_method(_op_name))


def _numpy_name(func) -> str:
    module = getattr(func, "__module__", "numpy") or "numpy"
    module = module.replace("numpy", "np", 1) if module.startswith("numpy") else module
    module = module.replace("np._core.", "np.").replace("np.core.", "np.")
    if module in ("np.fromnumeric", "np.multiarray", "np.numeric", "np.shape_base",
                  "np.function_base", "np.lib._function_base_impl", "np._core"):
        module = "np"
    for private in (".lib._", "._"):
        if private in module:
            module = "np"
    return f"{module}.{func.__name__}"


class _Size(int):
    """``x.size`` is numpy's element count, and ``x.size()`` torch's shape: both work."""

    def __new__(cls, n: int, shape: tuple):
        self = super().__new__(cls, n)
        self._shape = shape
        return self

    def __call__(self, dim: int | None = None):
        return self._shape if dim is None else self._shape[dim]


def _axis(axis, dim):
    return dim if dim is not None else axis


def _keep(keepdims, keepdim):
    return bool(keepdim) if keepdim is not None else bool(keepdims)


def _refuse_torch_max_dim(name: str, axis, dim) -> None:
    """torch's x.max(dim) returns (values, indices), and its gradient goes to one index only."""
    if dim is not None or (axis is not None and STATE.torch_style):
        raise UnsupportedOperationError(
            f"x.{name}(dim) returns (values, indices) in torch, and the indices depend on data, "
            f"which tracing cannot follow; use x.a{name}(dim) (torch.a{name}) for the values")


def _ddof(ddof, unbiased, correction):
    if correction is not None:
        return correction
    if unbiased is not None:
        return 1 if unbiased else 0
    if ddof is not None:
        return ddof
    return 1 if STATE.torch_style else 0


def _static_index(index):
    """Indices must be concrete: a traced index would make the trace depend on data."""
    items = index if isinstance(index, tuple) else (index,)
    for item in items:
        if isinstance(item, Traced):
            raise UnsupportedOperationError(
                "indexing with a traced value: the element picked would depend on data, which a "
                "symbolic trace cannot follow; index with Python ints or numpy arrays, or use "
                "np.where to select")
        mod = type(item).__module__
        if mod.startswith("torch"):
            return _static_index(tuple(_torch_to_numpy(i) for i in items)) if isinstance(
                index, tuple) else _torch_to_numpy(index)
    return index


def _torch_to_numpy(x):
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return x


def _record_guard(graph: Graph, node: int, value: bool) -> None:
    if graph.op[node] != "const":
        graph.guards.append((node, value))


# ----- converting operands -----
def graph_of(*operands) -> Graph:
    """The graph the traced operands belong to (they must all share one)."""
    graph = None
    for o in operands:
        if isinstance(o, Traced):
            if graph is None:
                graph = o.graph
            elif o.graph is not graph:
                raise _leaked()
    if graph is None:
        raise TypeError("no traced operand")  # internal: callers check first
    if not STATE.graphs or STATE.graphs[-1] is not graph:
        raise _leaked()
    return graph


def _leaked() -> LeakedTracerError:
    return LeakedTracerError(
        "a traced value from another (finished or outer) transform call was used here; traced "
        "values live only while the function is being traced. Do not store them in globals or "
        "return them through side channels; return them from the function instead")


def as_ids(graph: Graph, x) -> np.ndarray:
    """An id array for an operand: traced values as they are, constants as ``const`` nodes."""
    if isinstance(x, Traced):
        if x.graph is not graph:
            raise _leaked()
        return x.ids
    array = np.asarray(_torch_to_numpy(x))
    if array.dtype == object and array.ndim:
        return _object_array_ids(graph, array)
    if array.dtype.kind not in "biuf":  # complex, object (None...), strings, dates
        raise UnsupportedOperationError(
            f"cannot use a {type(x).__name__} of dtype {array.dtype} in a traced computation: "
            "workbench traces real numbers (convert it, or keep it out of the traced arithmetic)")
    if array.dtype == np.bool_:
        flat = [graph.const(bool(v)) for v in array.ravel().tolist()]
    else:
        flat = [graph.const(float(v)) for v in array.ravel().tolist()]
    return np.array(flat, dtype=np.intp).reshape(array.shape)


def _object_array_ids(graph: Graph, array: np.ndarray) -> np.ndarray:
    out = np.empty(array.shape, dtype=np.intp)
    for index, item in np.ndenumerate(array):
        ids = as_ids(graph, item)
        if ids.shape != ():
            raise ShapeError("a nested sequence mixing traced arrays and numbers has ragged shapes")
        out[index] = ids
    return out


def _result_dtype(*operands) -> np.dtype:
    dtypes = []
    for o in operands:
        if isinstance(o, Traced):
            dtypes.append(o.dtype)
        elif isinstance(o, np.ndarray) and np.issubdtype(o.dtype, np.floating):
            dtypes.append(o.dtype)
        elif hasattr(o, "dtype") and type(o).__module__.startswith("torch"):
            dtypes.append(_float_dtype(o))
    floats = [d for d in dtypes if np.issubdtype(d, np.floating)]
    return np.result_type(*floats) if floats else np.dtype(np.float64)


# ----- building blocks -----
def elementwise(name: str, *operands, params: tuple = ()) -> Traced:
    """Apply op ``name`` element by element, with numpy broadcasting."""
    scalar = _scalar_elementwise(name, operands, params)
    if scalar is not None:
        return scalar
    graph = graph_of(*operands)
    id_arrays = [as_ids(graph, o) for o in operands]
    shape = id_arrays[0].shape
    if any(a.shape != shape for a in id_arrays):
        try:
            id_arrays = np.broadcast_arrays(*id_arrays)
        except ValueError:
            shapes = " and ".join(str(a.shape) for a in id_arrays)
            raise ShapeError(f"{name}: operands with shapes {shapes} do not broadcast together; "
                             "reshape one of them (x[:, None], x.reshape(...))") from None
        shape = id_arrays[0].shape
    apply = graph.apply
    columns = [a.ravel().tolist() for a in id_arrays]
    if len(columns) == 1:
        out = [apply(name, a, params=params) for a in columns[0]]
    elif len(columns) == 2:
        out = [apply(name, a, b, params=params) for a, b in zip(*columns)]
    else:
        out = [apply(name, *args, params=params) for args in zip(*columns)]
    if not grad_enabled() and not OPS[name].boolean:
        out = [apply("stop_gradient", o) for o in out]
    dtype = np.bool_ if OPS[name].boolean else _result_dtype(*operands)
    return Traced(graph, np.array(out, dtype=np.intp).reshape(shape), dtype)


_FLOAT64 = np.dtype(np.float64)


def _scalar_elementwise(name: str, operands: tuple, params: tuple) -> Traced | None:
    """The common case of scalar code (float64 0-d traced values and Python numbers), kept thin.

    Returns None for anything else (arrays, other dtypes, mixed graphs...): the general path
    then handles it, errors included.
    """
    graph = None
    for o in operands:
        kind = type(o)
        if kind is Traced:
            if o.ids.ndim or o.dtype is not _FLOAT64 and o.dtype != _FLOAT64:
                return None
            if graph is None:
                graph = o.graph
            elif o.graph is not graph:
                return None
        elif kind is not float and kind is not int:
            return None
    if graph is None or not STATE.graphs or STATE.graphs[-1] is not graph:
        return None
    const = graph.const
    args = [int(o.ids) if type(o) is Traced else const(float(o)) for o in operands]
    node = graph.apply(name, *args, params=params)
    if OPS[name].boolean:
        return Traced(graph, np.array(node, dtype=np.intp), np.bool_)
    if not grad_enabled():
        node = graph.apply("stop_gradient", node)
    return Traced(graph, np.array(node, dtype=np.intp), _FLOAT64)


def _is_traced(*xs) -> bool:
    return any(isinstance(x, Traced) for x in xs)


def power(base, exponent) -> Traced:
    """``base ** exponent``; a constant exponent 2 becomes ``x * x`` (exact, and cheaper)."""
    if not _is_traced(exponent) and np.ndim(exponent) == 0 and float(exponent) == 2.0:
        return elementwise("mul", base, base)
    return elementwise("pow", base, exponent)


def floor_divide(a, b) -> Traced:
    """``a // b``: piecewise constant, so its derivative is 0 (as in JAX; torch refuses)."""
    return elementwise("floor", elementwise("div", a, b))


def remainder(a, b) -> Traced:
    """``a % b`` with the divisor's sign (Python, numpy and torch.remainder), via a - floor(a/b) b."""
    return elementwise("sub", a, elementwise("mul", floor_divide(a, b), b))


def stop_gradient(x):
    """``x`` as a constant for differentiation (its value still follows the inputs)."""
    if not isinstance(x, Traced):
        return x
    return elementwise("stop_gradient", x)


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
    if _is_traced(lo) or _is_traced(hi):
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
    result = Traced(graph, out, _result_dtype(a, b))
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
    return x.ids if isinstance(x, Traced) else np.asarray(_torch_to_numpy(x))


def where(cond, a=None, b=None):
    """``np.where(cond, a, b)``: picks per element; gradient flows only into the picked side."""
    if a is None and b is None:
        raise UnsupportedOperationError(
            "np.where(cond) with one argument returns data-dependent indices, which tracing "
            "cannot follow; use np.where(cond, a, b)")
    if not _is_traced(cond, a, b):
        return np.where(cond, a, b)
    graph = graph_of(*(o for o in (cond, a, b) if isinstance(o, Traced)))
    if not isinstance(cond, Traced):
        cond = np.asarray(_torch_to_numpy(cond), dtype=bool)
    return elementwise("where", cond, a, b) if graph is not None else None


def _structural(numpy_fn):
    """A numpy function that only rearranges elements: apply it to the id arrays."""

    def run(*args, **kwargs):
        traced = [a for a in _walk(args) if isinstance(a, Traced)]
        graph = graph_of(*traced)
        dtype = _result_dtype(*traced)
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
    names |= {_numpy_name(f) for f in ARRAY_FUNCTIONS}
    return sorted("np." + n if not n.startswith("np.") else n for n in names)


def concrete(x):
    """The concrete value of a traced value (or ``x`` itself when it is not traced)."""
    return x.value if isinstance(x, Traced) else x


def ids_list(xs: Sequence[Traced]) -> list[int]:
    return [i for x in xs for i in x.ids.ravel().tolist()]
