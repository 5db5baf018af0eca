"""``ArrayTraced``: the value user code sees during an array-level trace.

It behaves like a float numpy array (operators, ufuncs, ``np.`` functions, methods) and records
one graph node per operation. Anything it does not handle raises :class:`NotArrayLevel`, and the
transform traces the function element by element instead; so this class stays small and every
operation it accepts is exact.

>>> import numpy as np
>>> from workbench.arrays.graph import ArrayGraph
>>> g = ArrayGraph()
>>> with array_tracing(g):
...     x = ArrayTraced(g, g.input(np.arange(6.0).reshape(2, 3), "x"))
...     y = (np.sin(x) @ np.ones(3)).sum()
>>> y.shape, bool(np.isclose(g.values[y.node], np.sin(np.arange(6.0)).sum()))
((), True)
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .. import norms
from ..ops import NUMPY_UFUNCS, OPS
from ..tracing import grad_enabled, gradients_recorded
from . import rules
from .graph import ArrayGraph, NotArrayLevel


class _ArrayTraceState(threading.local):
    def __init__(self) -> None:
        self.graphs: list[ArrayGraph] = []


ASTATE = _ArrayTraceState()


def active_graph() -> ArrayGraph | None:
    """The array graph being traced in this thread, if any."""
    return ASTATE.graphs[-1] if ASTATE.graphs else None


@contextlib.contextmanager
def array_tracing(graph: ArrayGraph) -> Iterator[ArrayGraph]:
    """Trace into ``graph`` with gradients on (a transform's result must not depend on a
    ``no_grad`` around its call, as in ``tracing.tracing``)."""
    ASTATE.graphs.append(graph)
    try:
        with gradients_recorded():
            yield graph
    finally:
        ASTATE.graphs.pop()


def _dtype_of(x: Any) -> np.dtype | None:
    if isinstance(x, ArrayTraced):
        return x.dtype
    if isinstance(x, (np.ndarray, np.generic)):  # before the weak types: np.float64 is a float
        return x.dtype
    if _is_tensor(x):
        from .torch_functions import tensor_dtype

        return tensor_dtype(x)
    return None


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def result_dtype(*operands: Any) -> np.dtype:
    """The float dtype numpy would give (float32 only when every float operand is float32)."""
    dtypes = [d for d in map(_dtype_of, operands) if d is not None and d.kind == "f"]
    if not dtypes:
        return np.dtype(np.float64)
    if len(set(dtypes)) > 1 and any(map(_is_tensor, operands)):
        from .torch_functions import torch_float_dtype

        return torch_float_dtype(operands)
    return np.result_type(*dtypes)


def node_of(g: ArrayGraph, x: Any, float_scalars: bool = True) -> int:
    """The graph node of an operand: traced values as they are, data as constants."""
    if isinstance(x, ArrayTraced):
        if x.graph is not g:
            raise NotArrayLevel("a value of another trace")
        return x.node
    if isinstance(x, bool):
        return g.const(np.bool_(x))
    if isinstance(x, (int, float)):
        return g.const(np.float64(x) if float_scalars else np.int64(x))
    if isinstance(x, (np.ndarray, np.generic)):
        if x.dtype.kind not in "fiub":
            raise NotArrayLevel(f"an array of dtype {x.dtype}")
        return g.const(x)
    if isinstance(x, (list, tuple)):
        try:
            array = np.asarray(x)
        except (ValueError, TypeError, NotArrayLevel):
            raise NotArrayLevel("a sequence of traced values") from None
        if array.dtype.kind not in "fiub":
            raise NotArrayLevel("a sequence that is not numeric")
        return g.const(array)
    if _is_tensor(x):  # a traced torch tensor, or one the function captured (a constant)
        from .torch_functions import tensor_node

        return tensor_node(g, x)
    raise NotArrayLevel(f"an operand of type {type(x).__name__}")


def _graph_of(operands: Sequence[Any]) -> ArrayGraph:
    for o in operands:
        if isinstance(o, ArrayTraced):
            return o.graph
    raise NotArrayLevel("no traced operand")


def _wrap(g: ArrayGraph, node: int, dtype: Any) -> ArrayTraced:
    result = ArrayTraced(g, node, dtype)
    if not grad_enabled() and result.dtype.kind == "f":
        return result.detach()
    return result


# Ops whose result stays an integer for integer operands (the graph computes in float64; the
# output is handed back in the integer dtype, as numpy's y + 1 on integer labels gives).
_INTEGER_CLOSED = frozenset({"add", "sub", "mul", "neg", "abs", "maximum", "minimum"})


def elementwise(name: str, *operands: Any) -> ArrayTraced:
    """Op ``name`` of the op table, broadcasting its operands."""
    g = _graph_of(operands)
    nodes = [node_of(g, o) for o in operands]
    boolean = OPS[name].boolean if name in OPS else False
    dtype = np.bool_ if boolean else \
        (name in _INTEGER_CLOSED and _integer_result(operands)) or result_dtype(*operands)
    return _wrap(g, g.apply(name, *nodes), dtype)


def _integer_result(operands: tuple) -> np.dtype | None:
    """numpy's integer result dtype when every operand is an integer (array or Python int),
    else None (decided at the first operand that is not)."""
    dtypes = []
    for o in operands:
        d = _dtype_of(o)
        if d is None:
            if isinstance(o, bool) or not isinstance(o, (int, np.integer)):
                return None
        elif d.kind not in "iu":
            return None
        else:
            dtypes.append(d)
    return np.result_type(*dtypes) if dtypes else None


def _torch_meaning_for_torch_inputs(numpy_method):
    """A method whose torch meaning differs from numpy's: numpy's (the decorated body) for a
    trace of numpy inputs, torch's (``torch_functions``) for a trace of torch inputs."""
    name = numpy_method.__name__

    @functools.wraps(numpy_method)
    def method(self, *args, **kwargs):
        if self.graph.torch_style:
            from . import torch_functions

            return torch_functions.call(name, self, *args, **kwargs)
        return numpy_method(self, *args, **kwargs)

    return method


class ArrayTraced:
    """A traced array: a node of an :class:`ArrayGraph` and the dtype the user sees."""

    __slots__ = ("graph", "node", "dtype")
    __array_priority__ = 1000  # numpy defers binary operators to us
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, graph: ArrayGraph, node: int, dtype: Any = np.float64) -> None:
        self.graph = graph
        self.node = node
        kind, given = graph.dtype(node).kind, np.dtype(dtype)
        # Integers are int64 in the graph; the user's integer dtype is kept for the results.
        self.dtype = given if kind == "f" or (kind in "iu" and given.kind in "iu") else \
            graph.dtype(node)

    # ----- attributes -----
    @property
    def shape(self) -> tuple[int, ...]:
        return self.graph.shape(self.node)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __len__(self) -> int:
        if not self.shape:
            raise NotArrayLevel("len() of a 0-d value")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ArrayTraced(shape={self.shape}, dtype={self.dtype})"

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        from . import torch_functions  # torch's Tensor methods (x.exp(), x.view(2, -1)...)

        return torch_functions.method(self, name)


    # ----- conversions: the element tracer decides these -----
    def __float__(self):
        raise NotArrayLevel("float()")

    def __int__(self):
        raise NotArrayLevel("int()")

    def __index__(self):
        raise NotArrayLevel("an index")

    def __complex__(self):
        raise NotArrayLevel("complex()")

    def __array__(self, dtype=None, copy=None):
        raise NotArrayLevel("conversion to a numpy array")

    def item(self, *args):
        raise NotArrayLevel(".item()")

    def tolist(self):
        raise NotArrayLevel(".tolist()")

    def __bool__(self) -> bool:
        """Python control flow: the branch taken becomes a guard of the compiled version."""
        if self.size != 1:
            raise NotArrayLevel("truth value of an array")
        g = self.graph
        node = self.node if self.dtype == np.bool_ else g.apply("ne", self.node, g.const(0.0))
        value = bool(np.asarray(g.values[node]).reshape(()))
        g.guards.append((node, value))
        return value

    def __wb_apply__(self, name: str, *operands):
        if name == "stop_gradient":
            return operands[0].detach() if isinstance(operands[0], ArrayTraced) else operands[0]
        return elementwise(name, *operands)

    def detach(self) -> ArrayTraced:
        if self.dtype.kind != "f":
            return self
        return ArrayTraced(self.graph, self.graph.apply("stop_gradient", self.node), self.dtype)

    # ----- operators -----
    def __add__(self, o): return elementwise("add", self, o)  # noqa: E704
    def __radd__(self, o): return elementwise("add", o, self)  # noqa: E704
    def __sub__(self, o): return elementwise("sub", self, o)  # noqa: E704
    def __rsub__(self, o): return elementwise("sub", o, self)  # noqa: E704
    def __mul__(self, o): return elementwise("mul", self, o)  # noqa: E704
    def __rmul__(self, o): return elementwise("mul", o, self)  # noqa: E704
    def __truediv__(self, o): return elementwise("div", self, o)  # noqa: E704
    def __rtruediv__(self, o): return elementwise("div", o, self)  # noqa: E704
    def __pow__(self, o): return elementwise("pow", self, o)  # noqa: E704
    def __rpow__(self, o): return elementwise("pow", o, self)  # noqa: E704
    def __neg__(self): return elementwise("neg", self)  # noqa: E704
    def __pos__(self): return self  # noqa: E704
    def __abs__(self): return elementwise("abs", self)  # noqa: E704
    def __gt__(self, o): return elementwise("gt", self, o)  # noqa: E704
    def __ge__(self, o): return elementwise("ge", self, o)  # noqa: E704
    def __lt__(self, o): return elementwise("lt", self, o)  # noqa: E704
    def __le__(self, o): return elementwise("le", self, o)  # noqa: E704
    def __eq__(self, o): return elementwise("eq", self, o)  # type: ignore[override]  # noqa: E704
    def __ne__(self, o): return elementwise("ne", self, o)  # type: ignore[override]  # noqa: E704
    def __matmul__(self, o): return matmul(self, o)  # noqa: E704
    def __rmatmul__(self, o): return matmul(o, self)  # noqa: E704

    def __and__(self, o): return _logical("logical_and", self, o)  # noqa: E704
    def __rand__(self, o): return _logical("logical_and", o, self)  # noqa: E704
    def __or__(self, o): return _logical("logical_or", self, o)  # noqa: E704
    def __ror__(self, o): return _logical("logical_or", o, self)  # noqa: E704

    def __invert__(self):
        if self.dtype != np.bool_:
            raise NotArrayLevel("~ of a non-boolean")
        return elementwise("logical_not", self)

    def __setitem__(self, index, value):
        raise NotArrayLevel("item assignment")

    def _in_place(self, other):  # numpy updates every alias in place: the element level does too
        raise NotArrayLevel("an in-place update")

    __iadd__ = __isub__ = __imul__ = __itruediv__ = __ipow__ = __imod__ = __ifloordiv__ = \
        __imatmul__ = __iand__ = __ior__ = _in_place

    # ----- indexing -----
    def __getitem__(self, index) -> ArrayTraced:
        if "torch" in sys.modules:  # torch index tensors as numpy arrays
            from . import torch_functions

            index = torch_functions.numpy_index(index)
        g = self.graph
        template, arrays = _index_template(g, index)
        node = rules.index(g, self.node, template, arrays)
        return ArrayTraced(g, node, self.dtype)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # ----- numpy protocols -----
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs:
            if method == "reduce" and ufunc.__name__ in ("add", "maximum", "minimum") and \
                    set(kwargs) <= {"axis", "keepdims"}:
                reducer = {"add": "sum", "maximum": "amax", "minimum": "amin"}[ufunc.__name__]
                return _reduce(reducer, inputs[0], kwargs.get("axis", 0),
                               kwargs.get("keepdims", False))
            raise NotArrayLevel(f"np.{ufunc.__name__}.{method} with {sorted(kwargs)}")
        name = ufunc.__name__
        special = _UFUNCS.get(name)
        if special is not None:
            return special(*inputs)
        op = NUMPY_UFUNCS.get(name)
        if op is None:
            raise NotArrayLevel(f"np.{name}")
        if OPS[op].boolean and op.startswith("logical"):
            return _logical(op, *inputs)
        return elementwise(op, *inputs)

    def __array_function__(self, func, types, args, kwargs):
        handler = _FUNCTIONS.get(func)
        if handler is None:
            raise NotArrayLevel(f"{getattr(func, '__name__', func)}")
        return handler(*args, **kwargs)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        from . import torch_functions

        return torch_functions.dispatch(func, args, kwargs or {})

    # ----- methods -----
    # Where numpy's and torch's meanings differ (x.sum(1) keeps dims the same, but x.var() is
    # biased in one and not the other, x.max(1) returns (values, indices) in torch...), the
    # trace's inputs decide: see ``_torch_meaning_for_torch_inputs``.
    @_torch_meaning_for_torch_inputs
    def sum(self, axis=None, keepdims=False, dtype=None, **other):
        return _reduce("sum", self, axis, keepdims, dtype, other)

    @_torch_meaning_for_torch_inputs
    def cumsum(self, axis=None, dtype=None, out=None):
        return cumsum(self, axis, dtype, out)

    @_torch_meaning_for_torch_inputs
    def prod(self, axis=None, keepdims=False, dtype=None, out=None, **other):
        from .compositions import prod

        return prod(self, axis, keepdims, dtype, out, **other)

    @_torch_meaning_for_torch_inputs
    def mean(self, axis=None, keepdims=False, dtype=None, **other):
        return _mean(self, axis, keepdims, dtype, other)

    @_torch_meaning_for_torch_inputs
    def max(self, axis=None, keepdims=False, **other):
        return _reduce("amax", self, axis, keepdims, None, other)

    @_torch_meaning_for_torch_inputs
    def min(self, axis=None, keepdims=False, **other):
        return _reduce("amin", self, axis, keepdims, None, other)

    def all(self, axis=None, keepdims=False):
        return _reduce("amin", _as_bool(self), axis, keepdims)

    def any(self, axis=None, keepdims=False):
        return _reduce("amax", _as_bool(self), axis, keepdims)

    def dot(self, other):
        return dot(self, other)

    @_torch_meaning_for_torch_inputs
    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **other):
        return _var(self, axis, dtype, out, ddof, keepdims, **other)

    @_torch_meaning_for_torch_inputs
    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **other):
        return _std(self, axis, dtype, out, ddof, keepdims, **other)

    def reshape(self, *shape, order="C"):
        if order != "C":
            raise NotArrayLevel("reshape order")
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return reshape(self, shape)

    def ravel(self):
        return reshape(self, (-1,))

    @_torch_meaning_for_torch_inputs
    def flatten(self, order="C"):
        if order != "C":
            raise NotArrayLevel("flatten order")
        return reshape(self, (-1,))

    @_torch_meaning_for_torch_inputs
    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return transpose(self, axes or None)

    @property
    def T(self) -> ArrayTraced:
        return transpose(self)

    @_torch_meaning_for_torch_inputs
    def squeeze(self, axis=None):
        return squeeze(self, axis)

    def copy(self):
        return self

    def astype(self, dtype, copy=True):
        return astype(self, dtype)

    def clip(self, min=None, max=None):
        return clip(self, min, max)


def _logical(name: str, *operands):
    for o in operands:
        dtype = _dtype_of(o)
        if not isinstance(o, bool) and (dtype is None or dtype != np.bool_):
            raise NotArrayLevel(f"{name} of non-booleans")
    return elementwise(name, *operands)


def _as_bool(x: ArrayTraced) -> ArrayTraced:
    if x.dtype == np.bool_:
        return x
    return elementwise("ne", x, 0.0)


def _index_template(g: ArrayGraph, index) -> tuple[tuple, list[int]]:
    items = index if isinstance(index, tuple) else (index,)
    template: list[tuple] = []
    arrays: list[int] = []
    for item in items:
        if item is None:
            template.append(("n",))
        elif item is Ellipsis:
            template.append(("e",))
        elif isinstance(item, slice):
            bounds = (item.start, item.stop, item.step)
            if not all(b is None or (isinstance(b, (int, np.integer)) and not isinstance(b, bool))
                       for b in bounds):
                raise NotArrayLevel("a slice with non-integer bounds")
            template.append(("s",) + tuple(None if b is None else int(b) for b in bounds))
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            template.append(("i", int(item)))
        elif isinstance(item, ArrayTraced):  # a traced integer array (labels mapped by vmap)
            if item.graph is not g:
                raise NotArrayLevel("an index of another trace")
            if item.dtype.kind not in "iu":
                raise NotArrayLevel(f"a traced index of dtype {item.dtype}")
            template.append(("a", len(arrays)))
            arrays.append(item.node)
        elif isinstance(item, (np.ndarray, list)):
            array = np.asarray(item)
            if array.dtype == np.bool_:
                for part in np.nonzero(array):
                    template.append(("a", len(arrays)))
                    arrays.append(g.const(part.astype(np.int64)))
            elif array.dtype.kind in "iu" or (array.size == 0 and array.dtype.kind == "f"):
                template.append(("a", len(arrays)))
                arrays.append(g.const(array.astype(np.int64)))
            else:
                raise NotArrayLevel("an index array that is not integer or boolean")
        else:
            raise NotArrayLevel(f"an index of type {type(item).__name__}")
    return tuple(template), arrays


# ----- numpy functions -----
def _traced(x: Any, g: ArrayGraph | None = None) -> ArrayTraced:
    if isinstance(x, ArrayTraced):
        return x
    g = g or active_graph()
    if g is None:
        raise NotArrayLevel("no trace")
    node = node_of(g, x)
    return ArrayTraced(g, node, result_dtype(x))


def _reduce(kind: str, x, axis=None, keepdims=False, dtype=None, other=None):
    if other or (dtype is not None and np.dtype(dtype).kind != "f"):
        raise NotArrayLevel(f"{kind} with {sorted(other or {})} / dtype {dtype}")
    x = _traced(x)
    axes = rules.normalize_axes(axis, x.ndim)
    counted = x.dtype.kind in "biu" and kind == "sum"  # a count, or a sum of integers
    if kind == "sum":
        source = rules.cast(x.graph, x.node, "float64") if x.dtype == np.bool_ else x.node
        node = rules.reduce_sum(x.graph, source, axes, bool(keepdims))
    else:
        node = rules.reduce_extreme(x.graph, kind, x.node, axes, bool(keepdims))
    if dtype is not None:
        dtype = np.dtype(dtype)
    else:  # numpy's (and torch's) integer result: int64 here
        dtype = np.zeros(0, x.dtype).sum().dtype if counted else x.dtype
    return _wrap(x.graph, node, dtype)


def _mean(x, axis=None, keepdims=False, dtype=None, other=None):
    x = _traced(x)
    total = _reduce("sum", x, axis, keepdims, dtype, other)
    axes = rules.normalize_axes(axis, x.ndim)
    n = math.prod(x.shape[a] for a in axes)
    if n == 0:
        raise NotArrayLevel("mean of an empty axis")
    return total / float(n)


def _var(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **other):
    """numpy's variance (ddof 0 by default): mean of squared deviations, times n / (n - ddof)."""
    if other or out is not None or dtype is not None or isinstance(ddof, bool) or \
            not isinstance(ddof, (int, float)):
        raise NotArrayLevel("var options")
    x = _traced(x)
    axes = rules.normalize_axes(axis, x.ndim)
    n = math.prod(x.shape[a] for a in axes)
    if n - ddof <= 0:
        raise NotArrayLevel("var with no degrees of freedom")
    deviation = x - _mean(x, axis, True)
    return _reduce("sum", deviation * deviation, axis, keepdims) / float(n - ddof)


def _std(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **other):
    """sqrt of the variance; where the variance is 0 the gradient is 0, as torch's std."""
    variance = _var(x, axis, dtype, out, ddof, keepdims, **other)
    zero = variance == 0.0
    safe = where(zero, 1.0, variance)  # no inf * 0 in the derivative where it is cut off
    return where(zero, variance * 0.0, elementwise("sqrt", safe))


def reshape(x, shape, order="C"):
    if order != "C":
        raise NotArrayLevel("reshape order")
    x = _traced(x)
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = tuple(int(n) for n in shape)
    if shape.count(-1) > 1:
        raise NotArrayLevel("reshape with two -1")
    if -1 in shape:
        known = math.prod(n for n in shape if n != -1)
        if known == 0 or x.size % known:
            raise NotArrayLevel("reshape size")
        shape = tuple(x.size // known if n == -1 else n for n in shape)
    if math.prod(shape) != x.size:
        raise NotArrayLevel("reshape size")
    return ArrayTraced(x.graph, rules.reshape(x.graph, x.node, shape), x.dtype)


def transpose(x, axes=None):
    x = _traced(x)
    perm = tuple(reversed(range(x.ndim))) if axes is None else \
        tuple(int(a) % max(x.ndim, 1) for a in axes)
    if sorted(perm) != list(range(x.ndim)):
        raise NotArrayLevel("transpose axes")
    return ArrayTraced(x.graph, rules.transpose(x.graph, x.node, perm), x.dtype)


def cumsum(x, axis=None, dtype=None, out=None):
    """``np.cumsum``: running sums along ``axis`` (of the flattened array for None)."""
    if dtype is not None or out is not None:
        raise NotArrayLevel("cumsum with dtype= or out=")
    x = _traced(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    (axis,) = rules.normalize_axes(axis, x.ndim)
    dtype = np.zeros(0, x.dtype).cumsum().dtype if x.dtype.kind in "biu" else x.dtype
    source = rules.cast(x.graph, x.node, "float64") if x.dtype == np.bool_ else x.node
    return _wrap(x.graph, rules.cumsum(x.graph, source, axis), dtype)


def swapaxes(x, a, b):
    x = _traced(x)
    perm = list(range(x.ndim))
    a, b = a % x.ndim, b % x.ndim
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, perm)


def moveaxis(x, source, destination):
    x = _traced(x)
    if not isinstance(source, int) or not isinstance(destination, int):
        raise NotArrayLevel("moveaxis of several axes")
    perm = [i for i in range(x.ndim) if i != source % x.ndim]
    perm.insert(destination % x.ndim, source % x.ndim)
    return transpose(x, perm)


def squeeze(x, axis=None):
    x = _traced(x)
    if axis is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        axes = rules.normalize_axes(axis, x.ndim)
        if any(x.shape[a] != 1 for a in axes):
            raise NotArrayLevel("squeeze of an axis that is not 1")
        shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return reshape(x, shape)


def expand_dims(x, axis):
    x = _traced(x)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    ndim = x.ndim + len(axes)
    positions = sorted(int(a) % ndim for a in axes)
    shape = list(x.shape)
    for p in positions:
        shape.insert(p, 1)
    return reshape(x, shape)


def broadcast_to(x, shape):
    x = _traced(x)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    try:
        if np.broadcast_shapes(x.shape, shape) != shape:
            raise NotArrayLevel("broadcast_to")
    except ValueError:
        raise NotArrayLevel("broadcast_to") from None
    return ArrayTraced(x.graph, rules.broadcast_to(x.graph, x.node, shape), x.dtype)


def astype(x, dtype):
    x = _traced(x)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return ArrayTraced(x.graph, x.node, dtype) if x.dtype.kind == "f" else \
            ArrayTraced(x.graph, rules.cast(x.graph, x.node, "float64"), dtype)
    if dtype.kind in "b":
        return ArrayTraced(x.graph, rules.cast(x.graph, x.node, "bool"), dtype)
    raise NotArrayLevel(f"astype({dtype})")


def concatenate(arrays, axis=0, **other):
    if other or axis is None:
        raise NotArrayLevel("concatenate options")
    arrays = list(arrays)
    g = _graph_of(arrays)
    traced = [_traced(a, g) for a in arrays]
    ndim = traced[0].ndim
    if ndim == 0 or any(t.ndim != ndim for t in traced):
        raise NotArrayLevel("concatenate shapes")
    axis = int(axis) % ndim
    node = rules.concatenate(g, [t.node for t in traced], axis)
    return _wrap(g, node, result_dtype(*traced))


def stack(arrays, axis=0, **other):
    if other:
        raise NotArrayLevel("stack options")
    arrays = list(arrays)
    g = _graph_of(arrays)
    traced = [_traced(a, g) for a in arrays]
    if len({t.shape for t in traced}) != 1:
        raise NotArrayLevel("stack shapes")
    axis = int(axis) % (traced[0].ndim + 1)
    return concatenate([expand_dims(t, axis) for t in traced], axis=axis)


def where(cond, a=None, b=None):
    if a is None or b is None:
        raise NotArrayLevel("np.where with one argument")
    if not isinstance(cond, ArrayTraced):
        cond = np.asarray(cond)
        if cond.dtype != np.bool_:
            cond = cond != 0
    elif cond.dtype != np.bool_:
        cond = _as_bool(cond)
    g = _graph_of((cond, a, b))
    node = g.where(node_of(g, cond), node_of(g, a), node_of(g, b))
    return _wrap(g, node, result_dtype(a, b))


def clip(x, a_min=None, a_max=None, **other):
    if other:
        raise NotArrayLevel("clip options")
    bounds = []
    for bound, default in ((a_min, -math.inf), (a_max, math.inf)):
        if bound is None:
            bounds.append(default)
        elif isinstance(bound, (int, float, np.integer, np.floating)) and not isinstance(bound, bool):
            bounds.append(float(bound))
        else:
            raise NotArrayLevel("clip with array bounds")
    x = _traced(x)
    return _wrap(x.graph, x.graph.apply("clip", x.node, params=tuple(bounds)), x.dtype)


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def matmul(a, b):
    g = _graph_of((a, b))
    a, b = _traced(a, g), _traced(b, g)
    if a.ndim == 0 or b.ndim == 0:
        raise NotArrayLevel("matmul of a scalar")
    if a.ndim == 1 and b.ndim == 1:
        return _contract("i,i->", a, b)
    if a.ndim == 1:
        lead = _LETTERS[:b.ndim - 2]
        return _contract(f"y,{lead}yz->{lead}z", a, b)
    if b.ndim == 1:
        lead = _LETTERS[:a.ndim - 2]
        return _contract(f"{lead}xy,y->{lead}x", a, b)
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    if batch_a and batch_b and batch_a != batch_b:
        try:
            common = np.broadcast_shapes(batch_a, batch_b)
        except ValueError:
            raise NotArrayLevel("matmul batch shapes") from None
        a = broadcast_to(a, common + a.shape[-2:])
        b = broadcast_to(b, common + b.shape[-2:])
        batch_a = batch_b = common
    la, lb = _LETTERS[:len(batch_a)], _LETTERS[:len(batch_b)]
    lo = la if len(la) >= len(lb) else lb
    return _contract(f"{la}xy,{lb}yz->{lo}xz", a, b)


def dot(a, b):
    g = _graph_of((a, b))
    a, b = _traced(a, g), _traced(b, g)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if b.ndim == 1 or a.ndim == 1:
        return matmul(a, b)
    la = _LETTERS[:a.ndim - 1]
    lb = _LETTERS[a.ndim - 1:a.ndim + b.ndim - 2]
    return _contract(f"{la}y,{lb[:-1]}y{lb[-1]}->{la}{lb}", a, b)


def inner(a, b):
    g = _graph_of((a, b))
    a, b = _traced(a, g), _traced(b, g)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    la = _LETTERS[:a.ndim - 1]
    lb = _LETTERS[a.ndim - 1:a.ndim + b.ndim - 2]
    return _contract(f"{la}y,{lb}y->{la}{lb}", a, b)


def outer(a, b):
    g = _graph_of((a, b))
    a, b = reshape(_traced(a, g), (-1,)), reshape(_traced(b, g), (-1,))
    return _contract("i,j->ij", a, b)


def tensordot(a, b, axes=2):
    g = _graph_of((a, b))
    a, b = _traced(a, g), _traced(b, g)
    if isinstance(axes, int):
        ia, ib = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    else:
        ia, ib = axes
        ia = [ia] if isinstance(ia, int) else list(ia)
        ib = [ib] if isinstance(ib, int) else list(ib)
    ia = [i % a.ndim for i in ia]
    ib = [i % b.ndim for i in ib]
    letters = iter(_LETTERS)
    sa = [next(letters) for _ in range(a.ndim)]
    sb = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(ia, ib):
        sb[j] = sa[i]
    out = [c for i, c in enumerate(sa) if i not in ia] + [c for j, c in enumerate(sb) if j not in ib]
    return _contract(f"{''.join(sa)},{''.join(sb)}->{''.join(out)}", a, b)


def einsum(subscripts, *operands, **other):
    if other or len(operands) != 2 or not isinstance(subscripts, str) or "->" not in subscripts:
        raise NotArrayLevel("einsum form")
    return _contract(subscripts, *operands)


def _contract(subscripts: str, a, b) -> ArrayTraced:
    g = _graph_of((a, b))
    a, b = _traced(a, g), _traced(b, g)
    node = rules.contract(g, subscripts, a.node, b.node)
    return _wrap(g, node, result_dtype(a, b))


def gather_along(x: ArrayTraced, indices, axis: int, sizes: Sequence[int]) -> ArrayTraced:
    """``x`` read at ``indices`` along ``axis``, and at the position itself along the other
    axes (of ``sizes``): one integer-array index (``np.take_along_axis``, ``torch.gather``)."""
    if np.ndim(indices) != x.ndim:
        raise NotArrayLevel("gather: indices of another number of dims")
    index = []
    for i, n in enumerate(sizes):
        if i == axis:
            index.append(indices)
        else:
            index.append(np.arange(n).reshape(tuple(n if j == i else 1 for j in range(x.ndim))))
    return x[tuple(index)]


def take_along_axis(arr, indices, axis):
    x = _traced(arr)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    if x.ndim == 0:
        raise NotArrayLevel("take_along_axis of a 0-d array")
    return gather_along(x, indices, int(axis) % x.ndim, x.shape)


def _like(fill):
    def make(x, dtype=None, **other):
        if other:
            raise NotArrayLevel("*_like options")
        x = _traced(x)
        dtype = np.dtype(dtype) if dtype is not None else x.dtype
        value = np.full(x.shape, fill, dtype=np.float64 if dtype.kind == "f" else dtype)
        g = x.graph
        return ArrayTraced(g, g.const(value), dtype)

    return make


def _square(x):
    return elementwise("mul", x, x)


def _reciprocal(x):
    return elementwise("div", 1.0, x)


_UFUNCS = {"square": _square, "reciprocal": _reciprocal, "positive": lambda x: x,
           "matmul": matmul}

_FUNCTIONS = {
    np.sum: lambda x, axis=None, dtype=None, keepdims=False, **o: _reduce("sum", x, axis, keepdims,
                                                                          dtype, o),
    np.mean: lambda x, axis=None, dtype=None, keepdims=False, **o: _mean(x, axis, keepdims, dtype, o),
    np.max: lambda x, axis=None, keepdims=False, **o: _reduce("amax", x, axis, keepdims, None, o),
    np.amax: lambda x, axis=None, keepdims=False, **o: _reduce("amax", x, axis, keepdims, None, o),
    np.min: lambda x, axis=None, keepdims=False, **o: _reduce("amin", x, axis, keepdims, None, o),
    np.amin: lambda x, axis=None, keepdims=False, **o: _reduce("amin", x, axis, keepdims, None, o),
    np.dot: dot, np.inner: inner, np.outer: outer, np.tensordot: tensordot,
    np.einsum: einsum, np.reshape: reshape, np.transpose: transpose, np.swapaxes: swapaxes,
    np.moveaxis: moveaxis, np.squeeze: squeeze, np.expand_dims: expand_dims,
    np.broadcast_to: broadcast_to, np.concatenate: concatenate, np.stack: stack,
    np.where: where, np.clip: clip, np.ravel: lambda x, order="C": reshape(x, (-1,), order),
    np.var: _var, np.std: _std, np.take_along_axis: take_along_axis,
    np.cumsum: cumsum, np.copy: lambda a, order="K", subok=False: _traced(a),
    np.linalg.norm: lambda x, ord=None, axis=None, keepdims=False: norms.linalg_norm(
        _traced(x), ord, axis, keepdims),
    np.zeros_like: _like(0.0), np.ones_like: _like(1.0),
    np.shape: lambda x: _traced(x).shape, np.ndim: lambda x: _traced(x).ndim,
    np.size: lambda x, axis=None: _traced(x).size if axis is None else _traced(x).shape[axis],
}


def _register_compositions() -> None:
    """The numpy functions written with the ops above (``compositions``), in the same table."""
    from .compositions import FUNCTIONS

    _FUNCTIONS.update(FUNCTIONS)


_register_compositions()
