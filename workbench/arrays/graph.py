"""The array graph: one node per array operation, with its shape and concrete value.

Every node keeps the value it had while tracing (control flow on traced values becomes a guard,
as in the element tracer). Nodes are hash-consed, so the graph is its own common-subexpression
elimination. A node's value is computed by the *same* numpy expression the generated code uses
(``code_of``), so traced values, guards and compiled results agree to the last bit.

Elementwise ops are the scalar op table's (``workbench.ops.OPS``) applied with broadcasting: its
numpy printers and its partial derivatives, written with the builder methods below (``add``,
``mul``, ``where``, ``apply``...), serve both levels. The structural ops live in ``rules``.

>>> import numpy as np
>>> g = ArrayGraph()
>>> x = g.input(np.array([1.0, 2.0]), "x")
>>> y = g.apply("sin", x)
>>> g.shape(y), bool(np.allclose(g.value(y), np.sin([1.0, 2.0])))
((2,), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import config
from ..errors import BudgetExceededError
from ..graph import BuilderMethods
from ..ops import OPS, RUNTIME, format_float, render


class NotArrayLevel(BaseException):
    """Raised inside an array-level trace for what that level does not handle; the transform
    then traces the function element by element instead (never seen by users)."""


@dataclass(frozen=True)
class Rule:
    """A structural op: its numpy printer and its reverse-mode rule.

    ``code(args, params)`` prints the op over argument expressions; ``vjp(g, node, cotangent)``
    returns one cotangent node (or None for zero) per argument, built with graph ops.
    """

    code: Callable[[Sequence[str], tuple], str]
    vjp: Callable[[ArrayGraph, int, int], Sequence[int | None]] | None
    differentiable: bool = True


RULES: dict[str, Rule] = {}  # filled by ``rules``

# Names the generated code may use besides the op table's (``_np``, ``_m``...).
ARRAY_RUNTIME: dict[str, Any] = dict(RUNTIME)

LEAVES = frozenset({"input", "const"})
ELEMENTWISE_EXCLUDED = frozenset({"input", "const", "max_n", "min_n"})

_kernels: dict[tuple, Callable] = {}
_FOLD_AT_MOST = 4096  # constant results up to this size are folded (larger ones stay ops)


def code_of(op: str, args: Sequence[str], params: tuple) -> str:
    """The numpy expression of one op application over argument expressions."""
    if op in RULES:
        return RULES[op].code(args, params)
    return render(OPS[op].np, args, params)


def _kernel(op: str, n: int, params: tuple) -> Callable:
    key = (op, n, params)
    kernel = _kernels.get(key)
    if kernel is None:
        names = [f"a{i}" for i in range(n)]
        source = f"lambda {', '.join(names)}: {code_of(op, names, params)}"
        kernel = _kernels[key] = eval(source, ARRAY_RUNTIME)  # our own printers, never user text
    return kernel


def _nbytes(value: Any) -> int:
    return getattr(value, "nbytes", 8)


class ArrayGraph(BuilderMethods):
    """Nodes: ``op``, ``args``, ``params``, ``values`` (numpy arrays or scalars), plus the guards
    recorded while tracing and the input labels."""

    def __init__(self) -> None:
        self.op: list[str] = []
        self.args: list[tuple[int, ...]] = []
        self.params: list[tuple] = []
        self.values: list[Any] = []
        self.labels: dict[int, str] = {}
        self.guards: list[tuple[int, bool]] = []
        # Guards that are checks of the program's meaning (``require``), with their error.
        self.checks: dict[int, BaseException] = {}
        self._memo: dict[tuple, int] = {}
        self._bytes = 0
        # The trace's inputs are torch tensors: methods whose numpy and torch meanings differ
        # (x.var(), x.max(1), x.transpose(0, 2)...) take torch's.
        self.torch_style = False

    def __len__(self) -> int:
        return len(self.op)

    # ----- storage -----
    def _push(self, op: str, args: tuple[int, ...], params: tuple, value: Any) -> int:
        node = len(self.op)
        if node >= config.max_nodes:
            raise BudgetExceededError(
                f"the traced program has more than wb.config.max_nodes = {config.max_nodes:,} "
                "array operations (forward and derivative); a Python loop over elements is the "
                "usual cause: write it with whole-array operations, or raise the budget")
        self._bytes += _nbytes(value)
        if self._bytes > config.max_trace_bytes:
            raise BudgetExceededError(
                f"tracing needs more than wb.config.max_trace_bytes = "
                f"{config.max_trace_bytes / 1e9:.1f} GB for the values of its intermediate arrays; "
                "use smaller arrays (a batch at a time), or raise the budget")
        self.op.append(op)
        self.args.append(args)
        self.params.append(params)
        self.values.append(value)
        return node

    def value(self, node: int) -> Any:
        """The node's concrete value (a float for scalar constants, as the op partials expect)."""
        value = self.values[node]
        if self.op[node] == "const" and np.ndim(value) == 0 and value.dtype.kind == "f":
            return float(value)
        return value

    def shape(self, node: int) -> tuple[int, ...]:
        return np.shape(self.values[node])

    def dtype(self, node: int) -> np.dtype:
        return np.asarray(self.values[node]).dtype

    def is_const(self, node: int) -> bool:
        """A scalar constant (array constants are data, not literals)."""
        return self.op[node] == "const" and np.ndim(self.values[node]) == 0

    def is_const_value(self, node: int, value: float) -> bool:
        if not self.is_const(node):
            return False
        v = self.values[node]
        return v.dtype.kind == "f" and float(v) == value and not (value == 0 and math.copysign(1, v) < 0)

    # ----- leaves -----
    def input(self, value: np.ndarray, label: str) -> int:
        node = self._push("input", (), (label,), np.asarray(value, dtype=np.float64))
        self.labels[node] = label
        return node

    def integer_input(self, value: np.ndarray, label: str) -> int:
        """An integer array the compiled program takes at every call (class labels, indices):
        never differentiated, and its values are read only through graph ops and guards."""
        node = self._push("input", (), (label,), np.asarray(value, dtype=np.int64))
        self.labels[node] = label
        return node

    def const(self, value: Any) -> int:
        array = np.asarray(value)
        if array.dtype.kind == "f" and array.dtype != np.float64:
            array = array.astype(np.float64)
        if array.dtype.kind in "iu" and array.dtype != np.int64:
            array = array.astype(np.int64)
        key = None
        if array.size <= 64:  # small constants are shared (bytes: -0.0 and nan patterns differ)
            key = ("const", array.dtype.str, array.shape, array.tobytes())
            node = self._memo.get(key)
            if node is not None:
                return node
        if array.ndim == 0:
            array = array[()]  # a numpy scalar, as numpy's own results are
        node = self._push("const", (), (), array)
        if key is not None:
            self._memo[key] = node
        return node

    def alias(self, node: int, label: str | None = None) -> int:
        """A fresh variable equal to ``node``: what a nested transform differentiates."""
        new = self._push("alias", (node,), (len(self.op),), self.values[node])
        if label is not None:
            self.labels[new] = label
        return new

    def require(self, node: int, error: BaseException) -> None:
        """A condition the program's meaning needs (``node``: a boolean scalar, such as "every
        class label is in range"): raise ``error`` if it fails at the traced values, else keep
        it as a guard of the compiled version. Under ``vmap`` the trace sees one example; the
        batching then checks every example (``transforms._batched_guard``)."""
        if not bool(self.values[node]):
            raise error
        self.guards.append((node, True))
        self.checks[node] = error

    # ----- applying ops -----
    def emit(self, op: str, args: Sequence[int], params: tuple = ()) -> int:
        """Apply an op (elementwise from the op table, or structural from ``rules``)."""
        args = tuple(args)
        key = (op, args, params)
        node = self._memo.get(key)
        if node is not None:
            return node
        values = [self.values[a] for a in args]
        try:
            with np.errstate(all="ignore"):
                value = _kernel(op, len(args), params)(*values)
        except (ValueError, IndexError, TypeError) as error:
            # Shapes that do not fit, and the like: the element tracer words these errors.
            raise NotArrayLevel(f"{op}: {error}") from None
        if not isinstance(value, (np.ndarray, np.generic)):
            value = np.asarray(value)[()]
        if args and all(self.op[a] == "const" for a in args) and np.size(value) <= _FOLD_AT_MOST:
            return self.const(value)  # fold constants (IEEE results kept)
        node = self._push(op, args, params, value)
        self._memo[key] = node
        return node

    def apply(self, name: str, *args: int, params: tuple = ()) -> int:
        """An elementwise op of the op table, broadcasting its arguments."""
        if name in ELEMENTWISE_EXCLUDED or name not in OPS:
            raise NotArrayLevel(f"no array-level op {name!r}")
        args = self._scalar_constants(args)
        if name in ("mul", "div") and self.is_const_value(args[1], 1.0) and \
                self._keeps_shape(args[0], args[1]):
            return args[0]
        if name == "mul" and self.is_const_value(args[0], 1.0) and self._keeps_shape(args[1], args[0]):
            return args[1]
        if name == "pow" and self.is_const_value(args[1], 1.0) and self._keeps_shape(args[0], args[1]):
            return args[0]
        if name == "neg" and self.op[args[0]] == "neg":
            return self.args[args[0]][0]
        return self.emit(name, args, params)

    def _scalar_constants(self, args: tuple[int, ...]) -> tuple[int, ...]:
        """A constant array of one repeated value (a broadcast cotangent, ``ones_like``) becomes
        that value where the other operands give the result its shape: ``0.5 * g``, not a
        multiplication by a stored array of 0.5s."""
        out = list(args)
        for k, a in enumerate(args):
            value = self.values[a]
            if self.op[a] != "const" or np.ndim(value) == 0 or value.size == 0 or \
                    value.dtype.kind != "f":
                continue
            first = value.flat[0]
            if not (value == first).all() or math.isnan(first):
                continue
            others = [self.shape(b) for j, b in enumerate(out) if j != k]
            if np.broadcast_shapes(*others, ()) == np.broadcast_shapes(*others, value.shape):
                out[k] = self.const(first)
        return tuple(out)

    def _keeps_shape(self, a: int, other: int) -> bool:
        """``a`` op ``other`` has ``a``'s shape (so multiplying by one may return ``a``)."""
        return np.broadcast_shapes(self.shape(a), self.shape(other)) == self.shape(a)

    # Builder methods the op table's partials are written with (the rest: BuilderMethods).
    def add(self, *args: int) -> int:
        if len(args) == 1:
            return args[0]
        return self.apply("add", *args)

    # ----- structure -----
    def users(self) -> list[list[int]]:
        users: list[list[int]] = [[] for _ in self.op]
        for node, args in enumerate(self.args):
            for a in args:
                users[a].append(node)
        return users

    def ancestors(self, roots: Sequence[int]) -> list[int]:
        """Every node ``roots`` depend on (themselves included), in id (topological) order."""
        seen = set()
        stack = list(roots)
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            stack.extend(self.args[node])
        return sorted(seen)


def literal(value: Any) -> str | None:
    """A Python literal for a scalar constant, or None when it must be passed as data."""
    if np.ndim(value) != 0:
        return None
    kind = np.asarray(value).dtype.kind
    if kind == "f":
        return format_float(float(value))
    if kind == "b":
        return "True" if bool(value) else "False"
    if kind in "iu":
        return repr(int(value))
    return None
