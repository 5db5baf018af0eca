"""Traced values: numpy-shaped arrays of graph nodes that user code runs on unchanged.

A :class:`Traced` holds an integer array ``ids`` of graph nodes (any shape, ``()`` for a scalar)
and the float dtype it stands for. Purely structural numpy operations (reshape, transpose,
indexing, stack, concatenate...) are applied to the id array itself; arithmetic and functions build
one node per element through the op table. The concrete value of every node is kept, so Python
control flow works: ``if x > 0`` records a *guard* and takes the branch the value says. Every
way a traced value becomes a Python value (``bool``, ``item``, ``format``, ``in``, ``all``/``any``
used as a bool) records one; the others (``float``, ``int``, ``hash``...) are refused. The
arguments of the traced function are read-only (writes into them are refused, as torch does).

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
import threading
from collections.abc import Callable, Iterator

import numpy as np

from . import pytree
from .errors import (
    BudgetExceededError,
    InputTypeError,
    LeakedTracerError,
    ShapeError,
    TracedConversionError,
    UnsupportedOperationError,
)
from .graph import Graph
from .ops import NUMPY_UFUNCS, OPS, TORCH_FUNCTIONS


class _TraceState(threading.local):
    """Tracing state, one per thread: a transform running in one thread (a widget's, a
    server's) never sees another thread's trace in progress."""

    def __init__(self) -> None:
        self.grad_enabled = True
        # Graphs of the top-level transform calls in progress in this thread, innermost last.
        self.graphs: list[Graph] = []
        # The call being traced got torch tensors: methods whose numpy and torch meanings differ
        # (x.var(), x.std(): ddof 0 in numpy, 1 in torch) take torch's.
        self.torch_style = False


STATE = _TraceState()


@contextlib.contextmanager
def tracing(graph: Graph, torch_style: bool = False) -> Iterator[Graph]:
    """Make ``graph`` the one new traced values are built in, with gradients enabled.

    A transform's result must not depend on a ``no_grad`` around its call (torch.func's rule),
    so gradient recording is switched on here, for workbench and for torch alike.
    ``torch_style``: the inputs are torch tensors (see ``_TraceState.torch_style``).
    """
    STATE.graphs.append(graph)
    saved_style = STATE.torch_style
    STATE.torch_style = torch_style
    try:
        with gradients_recorded():
            yield graph
    finally:
        STATE.torch_style = saved_style
        STATE.graphs.pop()


@contextlib.contextmanager
def gradients_recorded() -> Iterator[None]:
    """Gradient recording on, for workbench and for torch, whatever ``no_grad`` is around (what
    every trace of a transform body runs under)."""
    saved = STATE.grad_enabled
    STATE.grad_enabled = True
    torch = sys.modules.get("torch")
    try:
        with torch.enable_grad() if torch is not None else contextlib.nullcontext():
            yield
    finally:
        STATE.grad_enabled = saved


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
        check_size(graph, array.size, f"the input {label!r} of shape {array.shape}")
        flat = array.ravel().tolist()
        if array.dtype == np.float32:
            flat = [float(v) for v in flat]
        ids = [graph.input(v, (label, i)) for i, v in enumerate(flat)]
        # Read-only: code that remembers these nodes (what to differentiate with respect to)
        # must not see a write made by the function (numpy would change the caller's array).
        return read_only(cls(graph, np.array(ids, dtype=np.intp).reshape(array.shape),
                             _float_dtype(array)))

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
        """``np.array([x, y])`` / ``np.asarray(x)``: an object array of scalar traced values.

        numpy offers no hook that would let these return a traced array, so they return an
        object array whose elements are traced scalars: numpy's own operations on it call our
        operators element by element, operands made of it are read back by :func:`as_ids`, and
        transforms turn one returned by the function into a traced array (``pytree``).
        A float dtype (``np.array(x, dtype=float)``) would drop the gradient and is refused.
        """
        if dtype is not None and np.dtype(dtype) != object:
            self._refuse(f"np.asarray(x, dtype={np.dtype(dtype)})")
        out = np.empty(self.shape, dtype=object)
        for index in np.ndindex(self.shape):
            out[index] = Traced(self.graph, np.array(self.ids[index], dtype=np.intp), self.dtype)
        if copy is not True:
            # np.asarray(x) would alias x in numpy, and a write into it would change x: this
            # copy cannot, so it refuses writes instead of silently diverging
            out.flags.writeable = False
        return out

    def item(self) -> float:
        """The concrete value as a Python number, with no gradient (like torch's ``.item()``).

        A compiled result that used it is valid only where the value is the same, so a guard is
        recorded: ``x == value`` (``x != x`` for nan, the truth value itself for a boolean).
        """
        if self.ids.size != 1:
            raise ShapeError(f"item() needs a single element, this traced value has shape {self.shape}")
        return _concrete(self.graph, int(self.ids.ravel()[0]))

    def tolist(self):
        if self.ids.ndim == 0:
            return self
        return [Traced(self.graph, row, self.dtype).tolist() for row in self.ids]

    def __bool__(self) -> bool:
        if self.ids.size != 1:
            raise AmbiguousTruthValueError(
                f"the truth value of a traced array of shape {self.shape} is ambiguous; "
                "use .any() or .all(), or np.where for a branch per element")
        node = int(self.ids.ravel()[0])
        if self.dtype != np.bool_:  # bool(x) of a number means x != 0
            node = self.graph.apply("ne", node, self.graph.const(0.0))
        value = bool(self.graph.values[node])
        _record_guard(self.graph, node, value)
        return value

    def __format__(self, spec: str) -> str:
        """``f"{x:.3f}"`` formats the concrete value; the text depends on it, so guards are
        recorded as by ``item()`` (``str(x)``/``repr(x)`` are for debugging and record none)."""
        if not spec:
            return str(self)
        if self.ids.size != 1:
            raise TracedConversionError(
                f"format(x, {spec!r}) of a traced array of shape {self.shape}: format its "
                "elements, or use x.item() for a scalar")
        return format(self.item(), spec)

    def __contains__(self, item) -> bool:
        """``v in x`` is numpy's ``(x == v).any()``, with the guard that records."""
        return bool(any_(elementwise("eq", self, item)))

    def all(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """numpy's ``x.all(axis)`` / torch's ``x.all(dim)``: a traced boolean; ``bool()`` of it
        (``if x.all():``) records a guard."""
        return all_(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim))

    def any(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return any_(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim))

    def __round__(self, ndigits=None):
        self._refuse("round()")

    __hash__ = None  # type: ignore[assignment]  # like ndarray: unhashable, so no dict key

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

    def __divmod__(self, other):
        return floor_divide(self, other), remainder(self, other)

    def __rdivmod__(self, other):
        return floor_divide(other, self), remainder(other, self)

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

    # ----- in-place operators: numpy's meaning (aliases and views see the update) -----
    def _update(self, op: Callable, other, symbol: str):
        result = op(self, other)
        if not isinstance(self.ids, np.ndarray):  # a numpy scalar (x = v[0]): rebinds, as numpy
            return result
        if not self.ids.flags.writeable:
            raise InPlaceUpdateError(
                f"x {symbol}= ... updates {_leaf_name(self)} in place, an argument of the "
                "traced function (or a view of it); torch refuses this for differentiated "
                f"arguments too. Write x = x {symbol} ... instead (or copy it first: "
                "x = x.copy())")
        try:
            ids = np.broadcast_to(result.ids, self.ids.shape)
        except ValueError:
            raise ShapeError(f"x {symbol}= y: the result's shape {result.shape} does not fit x's "
                             f"shape {self.shape}") from None
        self.ids[...] = ids
        return self

    def __iadd__(self, other):
        return self._update(Traced.__add__, other, "+")

    def __isub__(self, other):
        return self._update(Traced.__sub__, other, "-")

    def __imul__(self, other):
        return self._update(Traced.__mul__, other, "*")

    def __itruediv__(self, other):
        return self._update(Traced.__truediv__, other, "/")

    def __ipow__(self, other):
        return self._update(Traced.__pow__, other, "**")

    def __imod__(self, other):
        return self._update(Traced.__mod__, other, "%")

    def __ifloordiv__(self, other):
        return self._update(Traced.__floordiv__, other, "//")

    # ----- indexing -----
    def __getitem__(self, index):
        try:
            return Traced(self.graph, self.ids[_static_index(index)], self.dtype)
        except (IndexError, ValueError) as error:
            raise _shape_error(f"x[{_show_index(index)}]", error) from None

    def __setitem__(self, index, value) -> None:
        ids = as_ids(self.graph, value)
        if not self.ids.flags.writeable:
            raise InPlaceUpdateError(
                f"x[...] = ... writes into {_leaf_name(self)}, an argument of the traced function "
                "(or a view of it): a gradient would be taken of whatever was written there, "
                "and the caller's array would not change as numpy's would; torch refuses this "
                "for differentiated arguments too. Copy it first: x = x.copy() (numpy) or "
                "x = x.clone() (torch), then write into the copy")
        try:
            self.ids[_static_index(index)] = ids
        except (IndexError, ValueError) as error:
            raise _shape_error(f"x[{_show_index(index)}] = ...", error) from None

    def __iter__(self):
        if self.ids.ndim == 0:
            raise TracedConversionError("iteration over a 0-d (scalar) traced value")
        for row in self.ids:
            yield Traced(self.graph, row, self.dtype)

    # ----- numpy protocols -----
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__
        if kwargs.get("out") is not None:
            raise UnsupportedOperationError(
                f"np.{name}(..., out=...) writes into an array in place, which tracing "
                f"cannot follow; assign the result instead: y = np.{name}(...)")
        kwargs.pop("out", None)
        _check_ufunc_kwargs(name, method, kwargs)
        if method != "__call__":
            if name in ("add", "multiply", "maximum", "minimum") and method == "reduce":
                reducer = {"add": sum, "multiply": prod, "maximum": amax, "minimum": amin}
                return reducer[name](inputs[0], **kwargs)
            raise UnsupportedOperationError(
                f"np.{name}.{method} is not supported by workbench tracing")
        dtype = kwargs.pop("dtype", None)
        where_mask = kwargs.pop("where", True)
        if where_mask is not True:
            raise UnsupportedOperationError(
                f"np.{name}(..., where=...) leaves the other elements uninitialised (or as in "
                f"out=), which tracing cannot follow; use np.where(mask, np.{name}(...), other)")
        handler = UFUNC_HANDLERS.get(name)
        if handler is not None:
            result = handler(*inputs)
        else:
            op_name = NUMPY_UFUNCS.get(name)
            if op_name is None:
                raise UnsupportedOperationError(
                    f"np.{name} is not supported by workbench tracing; the supported numpy "
                    f"functions are listed by wb.supported_functions()")
            result = elementwise(op_name, *inputs)
        if dtype is not None:
            result = result.astype(dtype)
        return result

    def __array_function__(self, func, types, args, kwargs):
        handler = ARRAY_FUNCTIONS.get(func)
        if handler is None:
            raise UnsupportedOperationError(
                f"{numpy_name(func)} is not supported by workbench tracing; the supported numpy "
                "functions are listed by wb.supported_functions()")
        return handler(*args, **kwargs)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        from . import torch_support

        return torch_support.dispatch(func, args, kwargs or {})

    # ----- methods: numpy and torch names -----
    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None, **numpy):
        return sum(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim),
                    dtype=_method_dtype(dtype), **numpy)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None, **numpy):
        return mean(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim),
                    dtype=_method_dtype(dtype), **numpy)

    def prod(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None, **numpy):
        return prod(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim),
                    dtype=_method_dtype(dtype), **numpy)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None, **numpy):
        _refuse_torch_max_dim("max", axis, dim)
        return amax(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim), **numpy)

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=None, **numpy):
        _refuse_torch_max_dim("min", axis, dim)
        return amin(self, axis=_axis(axis, dim), keepdims=_keep(keepdims, keepdim), **numpy)

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
        if not name.startswith("_") and name.endswith("_") and hasattr(Traced, name[:-1]) or \
                name in ("zero_", "fill_", "copy_", "index_put_", "masked_fill_", "uniform_",
                         "normal_"):
            raise InPlaceUpdateError(
                f"x.{name}() updates a tensor in place, which tracing cannot follow (and which "
                f"torch refuses on a differentiated argument); use the out-of-place form: "
                f"y = x.{name[:-1]}(...)")
        if not name.startswith("_"):
            from . import torch_support

            handler = torch_support.HANDLERS.get(name)
            if handler is not None:
                return lambda *args, **kwargs: handler(self, *args, **kwargs)
        if name.startswith("_"):  # protocol probes (hasattr(x, "__array_interface__")...)
            raise AttributeError(f"'Traced' object has no attribute {name!r}")
        raise UnsupportedAttributeError(
            f"'Traced' object has no attribute {name!r}: x.{name} is not supported by workbench "
            "tracing; see wb.supported_functions() for what is")

    def dot(self, other):
        return dot(self, other)

    def matmul(self, other):
        return matmul(self, other)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        try:
            return Traced(self.graph, self.ids.reshape(shape, order=order), self.dtype)
        except (IndexError, ValueError) as error:
            raise _shape_error(f"reshape to {shape}", error) from None

    view = reshape

    def flatten(self, *args, **kwargs):
        """numpy's ``x.flatten(order='C')`` or torch's ``x.flatten(start_dim, end_dim)``."""
        if args and isinstance(args[0], str) or "order" in kwargs:
            return Traced(self.graph, self.ids.flatten(*args, **kwargs), self.dtype)
        if not args and not kwargs:
            return Traced(self.graph, self.ids.flatten(), self.dtype)
        from . import torch_support

        return torch_support.HANDLERS["flatten"](self, *args, **kwargs)

    def ravel(self):
        return Traced(self.graph, self.ids.ravel(), self.dtype)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        try:
            # torch's x.transpose(dim0, dim1) swaps two dims; for a 2-D array numpy reads the
            # same call as a permutation ((0, 1) is the identity), so torch inputs decide.
            if len(axes) == 2 and (self.ids.ndim != 2 or STATE.torch_style):
                return Traced(self.graph, np.swapaxes(self.ids, *axes), self.dtype)
            return Traced(self.graph, self.ids.transpose(*axes), self.dtype)
        except (IndexError, ValueError) as error:
            raise _shape_error(f"transpose{axes}", error) from None

    @property
    def T(self) -> Traced:
        return Traced(self.graph, self.ids.T, self.dtype)

    @property
    def mT(self) -> Traced:
        return Traced(self.graph, np.swapaxes(self.ids, -1, -2), self.dtype)

    def t(self) -> Traced:
        return self.T

    def squeeze(self, axis=None):
        try:
            return Traced(self.graph, self.ids.squeeze(axis), self.dtype)
        except (IndexError, ValueError) as error:
            raise _shape_error(f"squeeze({axis})", error) from None

    def unsqueeze(self, dim):
        try:
            return Traced(self.graph, np.expand_dims(self.ids, dim), self.dtype)
        except (IndexError, ValueError) as error:
            raise _shape_error(f"unsqueeze({dim})", error) from None

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

    def repeat(self, *args, **kwargs):
        """numpy's ``x.repeat(repeats, axis)`` (each element repeated) or, on torch tensors,
        torch's ``x.repeat(*sizes)`` (the whole array tiled): the two differ."""
        from . import array_api, torch_support

        if STATE.torch_style:
            return torch_support.HANDLERS["repeat"](self, *args, **kwargs)
        return array_api.ARRAY_FUNCTIONS[np.repeat](self, *args, **kwargs)

    def cumsum(self, *args, **kwargs):
        """numpy's ``x.cumsum(axis=None)`` (flattened by default) or torch's ``x.cumsum(dim)``."""
        from . import array_api, torch_support

        if STATE.torch_style or "dim" in kwargs:
            return torch_support.HANDLERS["cumsum"](self, *args, **kwargs)
        return array_api.ARRAY_FUNCTIONS[np.cumsum](self, *args, **kwargs)

    def div(self, other, **kwargs):
        """torch's ``x.div(y, rounding_mode=None | 'floor' | 'trunc')``."""
        from . import torch_support

        return torch_support.HANDLERS["div"](self, other, **kwargs)

    divide = div

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


_UFUNC_REDUCE_KEYWORDS = frozenset({"axis", "dtype", "keepdims", "initial", "where"})


def _check_ufunc_kwargs(name: str, method: str, kwargs: dict) -> None:
    """A ufunc's keyword arguments are honoured (dtype=, where=, reduce's axis=...) or refused
    by name; ``casting``/``order``/``subok`` only matter for numpy's own memory and are ignored
    when left at their defaults."""
    allowed = _UFUNC_REDUCE_KEYWORDS if method == "reduce" else {"dtype", "where"}
    defaults = {"casting": "same_kind", "order": "K", "subok": True}
    for key, value in kwargs.items():
        if key in allowed or defaults.get(key, object()) == value:
            continue
        raise UnsupportedOperationError(
            f"np.{name}{'' if method == '__call__' else '.' + method}(..., {key}={value!r}) is "
            "not supported by workbench tracing; leave that argument out")


def numpy_name(func) -> str:
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
        if dim is None:
            return self._shape
        if not -len(self._shape) <= dim < len(self._shape):
            raise TracedIndexError(f"x.size({dim}): dimension out of range for an array of "
                                   f"dimension {len(self._shape)}")
        return self._shape[dim]


def _axis(axis, dim):
    return dim if dim is not None else axis


def _method_dtype(dtype):
    """``dtype=`` of x.sum()/x.mean(): a numpy dtype, or a torch one (torch.float32)."""
    if dtype is None or isinstance(dtype, np.dtype):
        return dtype
    return np.dtype(str(dtype).replace("torch.", "")) if type(dtype).__module__.startswith(
        "torch") else np.dtype(dtype)


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
            return _static_index(tuple(torch_to_numpy(i) for i in items)) if isinstance(
                index, tuple) else torch_to_numpy(index)
    return index


def torch_to_numpy(x):
    """A torch tensor's data as a numpy array (anything else as it is); tensors that hold no
    data here (meta tensors) or that numpy cannot hold (complex, sparse) are refused clearly."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        if x.is_meta:
            raise InputTypeError(
                f"a meta tensor (shape {tuple(x.shape)}, no data) was given: workbench computes "
                "with values, so pass a tensor with data, e.g. torch.zeros(shape) or "
                "x.to_empty(device='cpu') filled with values")
        if x.layout != torch.strided:
            raise InputTypeError(f"a {x.layout} tensor was given; pass a dense tensor "
                                 "(x.to_dense())")
        if x.is_complex():
            raise InputTypeError(f"a complex tensor ({x.dtype}) was given; workbench traces "
                                 "real numbers")
        return x.detach().cpu().numpy()
    return x


class UnsupportedAttributeError(UnsupportedOperationError, AttributeError):
    """``x.numpy()``, ``x.gather(...)``...: a method tracing does not have (an AttributeError too,
    so ``hasattr`` keeps working)."""


class TracedIndexError(ShapeError, IndexError):
    """An index or axis out of range (an IndexError too, as numpy's and torch's)."""


def _shape_error(what: str, error: Exception) -> ShapeError:
    """numpy's error about the id array, as ours: the same message, naming the operation."""
    if isinstance(error, ShapeError):
        return error
    kind = TracedIndexError if isinstance(error, IndexError) else ShapeError
    return kind(f"{what}: {error}")


def _show_index(index) -> str:
    items = index if isinstance(index, tuple) else (index,)
    return ", ".join(":" if isinstance(item, slice) and item == slice(None) else
                     "..." if item is Ellipsis else repr(item) for item in items)


class AmbiguousTruthValueError(TracedConversionError, ValueError):
    """``if x:`` of a traced array with more than one element (a ValueError, as numpy's)."""


class InPlaceUpdateError(UnsupportedOperationError):
    """A write into a differentiated argument (``x[0] = 0.0``, ``x.add_(1)``)."""


def read_only(x: Traced) -> Traced:
    """Mark ``x`` (a differentiated argument) so that writes into it or its views are refused."""
    x.ids.flags.writeable = False
    return x


def _leaf_name(x: Traced) -> str:
    """The argument a read-only traced array belongs to, as its first node's label says."""
    graph = x.graph
    node = int(x.ids.ravel()[0]) if x.ids.size else -1
    while node >= 0 and graph.op[node] == "alias" and not graph.params[node][0]:
        node = graph.args[node][0]
    label = graph.params[node][0] if node >= 0 and graph.op[node] in ("alias", "input") else None
    if isinstance(label, tuple):
        label = label[0]
    return str(label) if label else "a differentiated argument"


def _record_guard(graph: Graph, node: int, value: bool) -> None:
    if graph.op[node] != "const":
        graph.guards.append((node, value))


def _concrete(graph: Graph, node: int):
    """The Python value of ``node``, with the guard that keeps a compiled result honest:
    the code that used the value is reused only where the node has that value again."""
    value = graph.values[node]
    if isinstance(value, bool):
        _record_guard(graph, node, value)
    elif value != value:  # nan: x == nan never holds, x != x does exactly at nan
        _record_guard(graph, graph.apply("ne", node, node), True)
    else:
        _record_guard(graph, graph.apply("eq", node, graph.const(value)), True)
    return value


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


def check_size(graph: Graph, n_elements: int, what: str) -> None:
    """Refuse, from its size alone, an array whose elements would not fit the trace budget."""
    if len(graph) + n_elements > graph.max_nodes:
        raise budget_error(what, n_elements, graph.max_nodes)


def budget_error(what: str, n_elements: int, limit: int) -> BudgetExceededError:
    return BudgetExceededError(
        f"{what} has {n_elements:,} elements, more than a symbolic trace may hold "
        f"(wb.config.max_nodes = {limit:,} scalar operations); nothing was traced. For arrays "
        "this big use the numeric tape (wb.tape.grad(f)(x)), or wb.vmap over the batch "
        "dimension (it traces one example and runs it vectorised); or raise wb.config.max_nodes")


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
    array = np.asarray(torch_to_numpy(x))
    if array.size > graph.max_nodes:  # refused from its shape, before any per-element work
        raise budget_error(f"a constant array of shape {array.shape}", array.size, graph.max_nodes)
    if array.dtype == object:
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


def from_object_array(array: np.ndarray):
    """An object array holding traced scalars (``np.array([x, y])``) as one traced array;
    any other array is returned as it is."""
    if array.dtype != object:
        return array
    traced = [item for item in array.ravel().tolist() if isinstance(item, Traced)]
    if not traced:
        return array
    graph = traced[0].graph
    return Traced(graph, _object_array_ids(graph, array), result_dtype(*traced))


pytree.OBJECT_ARRAY_HOOK = from_object_array


def _object_array_ids(graph: Graph, array: np.ndarray) -> np.ndarray:
    out = np.empty(array.shape, dtype=np.intp)
    for index, item in np.ndenumerate(array):
        if not isinstance(item, Traced) and np.asarray(item).dtype == object:
            raise UnsupportedOperationError(
                f"cannot use a {type(item).__name__} in a traced computation: workbench traces "
                "real numbers (convert it, or keep it out of the traced arithmetic)")
        ids = as_ids(graph, item)
        if ids.shape != ():
            raise ShapeError("a nested sequence mixing traced arrays and numbers has ragged shapes")
        out[index] = ids
    return out


def result_dtype(*operands) -> np.dtype:
    dtypes = []
    for o in operands:
        if isinstance(o, Traced):
            dtypes.append(o.dtype)
        elif isinstance(o, (np.ndarray, np.floating)) and np.issubdtype(o.dtype, np.floating):
            dtypes.append(o.dtype)  # numpy's float scalars are not weak: float32 + f64(1) is f64
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
    if name in _BOOLEAN_ARITHMETIC and all(_is_boolean(o) for o in operands):
        name = _boolean_arithmetic(name)
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
    dtype = np.bool_ if OPS[name].boolean else result_dtype(*operands)
    return Traced(graph, np.array(out, dtype=np.intp).reshape(shape), dtype)


_FLOAT64 = np.dtype(np.float64)
# numpy on two boolean arrays: + is logical or, * logical and, - and unary - are errors.
_BOOLEAN_ARITHMETIC = {"add": "logical_or", "mul": "logical_and", "sub": None, "neg": None,
                       "maximum": "logical_or", "minimum": "logical_and"}


def _is_boolean(x) -> bool:
    if isinstance(x, Traced):
        return x.dtype == np.bool_
    return isinstance(x, (bool, np.bool_)) or getattr(x, "dtype", None) == np.bool_


def _boolean_arithmetic(name: str) -> str:
    replacement = _BOOLEAN_ARITHMETIC[name]
    if replacement is None:
        raise UnsupportedOperationError(
            f"{'-' if name == 'neg' else 'subtract'} of boolean arrays is an error in numpy; "
            "use ~mask or np.logical_xor, or convert the mask to floats with np.where(mask, 1.0, 0.0)")
    return replacement


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


def is_traced(*xs) -> bool:
    return any(isinstance(x, Traced) for x in xs)


def power(base, exponent) -> Traced:
    """``base ** exponent``; a constant exponent 2 becomes ``x * x`` (exact, and cheaper)."""
    if not is_traced(exponent) and np.ndim(exponent) == 0 and float(exponent) == 2.0:
        return elementwise("mul", base, base)
    return elementwise("pow", base, exponent)


def floor_divide(a, b) -> Traced:
    """``a // b``: piecewise constant, so its derivative is 0 (as in JAX; torch refuses)."""
    return elementwise("floordiv", a, b)


def remainder(a, b) -> Traced:
    """``a % b`` with the divisor's sign (Python, numpy and torch.remainder)."""
    return elementwise("mod", a, b)


def stop_gradient(x):
    """``x`` as a constant for differentiation (its value still follows the inputs)."""
    if not isinstance(x, Traced):
        return x
    return elementwise("stop_gradient", x)


# The numpy functions on traced arrays live in their own module; the methods above call them.
from .array_api import (  # noqa: E402  (array_api imports this module's names first)
    ARRAY_FUNCTIONS,
    UFUNC_HANDLERS,
    all_,
    amax,
    amin,
    any_,
    clip,
    dot,
    matmul,
    mean,
    prod,
    std,
    sum,
    var,
)
