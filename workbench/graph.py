"""The expression graph: a hash-consed DAG of scalar nodes, each applying one op of ``ops``.

Nodes are plain integers; a node's op, arguments, static params and concrete value live in
parallel lists of the :class:`Graph`. Building a node folds constants and algebraic identities
(``x * 1``, ``x + 0``, ``--x``) and reuses an existing node with the same op and arguments, so the
graph is its own common-subexpression elimination. Nodes are appended in topological order: every
argument has a smaller id than the node that uses it.

One graph serves a whole top-level transform call, nested transforms included: ``grad(grad(f))``
builds the derivative of the inner call as more nodes of the same graph, and the outer call
differentiates those. Inner inputs are fresh ``alias`` nodes, never shared, which is what keeps
levels apart (no perturbation confusion).

>>> g = Graph()
>>> x = g.input(2.0, "x")
>>> y = g.apply("mul", x, g.apply("sin", x))
>>> round(g.value(y), 6)
1.818595
>>> g.apply("mul", x, g.const(1.0)) == x
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .config import config
from .errors import BudgetExceededError
from .ops import OPS

_ZERO, _ONE = 0.0, 1.0



class BuilderMethods:
    """The builder methods the op table's partials are written with (``b.mul(x, y)``...), over
    the ``apply(name, *args, params=())`` of the graph class they are mixed into: the element
    graph and the array graph share them."""

    def sub(self, a: int, b: int) -> int:
        return self.apply("sub", a, b)

    def mul(self, a: int, b: int) -> int:
        return self.apply("mul", a, b)

    def div(self, a: int, b: int) -> int:
        return self.apply("div", a, b)

    def neg(self, a: int) -> int:
        return self.apply("neg", a)

    def pow(self, a: int, b: int) -> int:
        return self.apply("pow", a, b)

    def where(self, cond: int, a: int, b: int) -> int:
        return self.apply("where", cond, a, b)


class Graph(BuilderMethods):
    """Parallel lists of op names, argument tuples, params and concrete values, one entry a node."""

    __slots__ = ("op", "args", "params", "values", "_index", "_consts", "guards", "max_nodes",
                 "_n_unique", "_users")

    def __init__(self, max_nodes: int | None = None) -> None:
        self.op: list[str] = []
        self.args: list[tuple[int, ...]] = []
        self.params: list[tuple] = []
        self.values: list = []
        self._index: dict[tuple, int] = {}
        self._consts: dict[tuple, int] = {}
        # (boolean node, the value it had when traced): where a compiled result stays valid.
        self.guards: list[tuple[int, bool]] = []
        # Past this many nodes a trace is refused: graphs this big belong to the numeric tape.
        self.max_nodes = config.max_nodes if max_nodes is None else max_nodes
        self._n_unique = 0
        # users[n]: the nodes that take n as an argument (built on demand, see ``users``).
        self._users: list[list[int]] = []

    def __len__(self) -> int:
        return len(self.op)

    # ----- leaves -----
    def _push(self, op: str, args: tuple[int, ...], params: tuple, value) -> int:
        node = len(self.op)
        if node >= self.max_nodes:
            raise BudgetExceededError(
                f"the trace grew past {self.max_nodes:,} scalar operations; symbolic "
                "differentiation at this size is better done numerically: use wb.tape.grad(f), "
                "or trace a smaller problem (raise the limit with wb.config.max_nodes)")
        self.op.append(op)
        self.args.append(args)
        self.params.append(params)
        self.values.append(value)
        return node

    def const(self, value) -> int:
        """The node of a constant (one node per distinct value and type)."""
        # -0.0 == 0.0 and nan != nan: key floats by their sign and nan-ness too, so that a
        # constant keeps its IEEE identity (1 / -0.0 is -inf) and every nan shares one node.
        key = (type(value), value, math.copysign(1.0, value)) if value == 0 else \
            (type(value), "nan") if value != value else (type(value), value)
        node = self._consts.get(key)
        if node is None:
            node = self._consts[key] = self._push("const", (), (value,), value)
        return node

    def input(self, value, label) -> int:
        """A fresh independent variable (never shared with another)."""
        self._n_unique += 1
        return self._push("input", (), (label, self._n_unique), value)

    def alias(self, node: int, label=None) -> int:
        """A fresh node equal to ``node``: what an inner transform differentiates with respect to."""
        self._n_unique += 1
        return self._push("alias", (node,), (label, self._n_unique), self.values[node])

    # ----- queries -----
    def is_const(self, node: int) -> bool:
        return self.op[node] == "const"

    def value(self, node: int):
        return self.values[node]

    # ----- building -----
    def apply(self, name: str, *args: int, params: tuple = ()) -> int:
        """The node ``name(*args)``, after folding constants and identities and reusing duplicates."""
        # commutative: one node for a*b and b*a
        key_args = tuple(sorted(args)) if name == "add" or name == "mul" else args
        key = (name, key_args, params)
        node = self._index.get(key)
        if node is not None:  # built before (so neither constant nor foldable): reuse it
            return node
        op_of = self.op
        for a in args:
            if op_of[a] != "const":
                break
        else:
            return self.const(OPS[name].kernel(*(self.values[a] for a in args), params=params))
        folded = _fold(self, name, args)
        if folded is not None:
            return folded
        value = OPS[name].kernel(*(self.values[a] for a in key_args), params=params)
        node = self._index[key] = self._push(name, key_args, params, value)
        return node

    def add(self, *args: int) -> int:
        terms = [a for a in args if not _is_negative_zero(self, a)]
        if not terms:  # the empty sum is +0.0; a sum of -0.0s is -0.0
            return self.const(-_ZERO if args else _ZERO)
        if len(terms) == 1:
            return terms[0]
        return self.apply("add", *terms)

    # ----- structure -----
    def ancestors(self, roots: Iterable[int]) -> list[int]:
        """Every node the ``roots`` depend on (roots included), in topological (id) order."""
        return ancestors(self.args, roots)

    def users(self) -> list[list[int]]:
        """For every node, the nodes that use it as an argument, in increasing id order.

        Nodes are only ever appended, so the index is extended incrementally: repeated
        differentiation passes over a growing graph (Jacobians, Hessians) share it, and each
        pass visits only the nodes that depend on its variables instead of the whole graph.

        >>> g = Graph(); x = g.input(1.0, "x"); y = g.apply("sin", x); z = g.apply("mul", x, y)
        >>> g.users()[x] == [y, z], g.users()[y] == [z], g.users()[z]
        (True, True, [])
        """
        users, args = self._users, self.args
        for node in range(len(users), len(args)):
            users.append([])
            for a in set(args[node]):
                users[a].append(node)
        return users

    def is_const_value(self, node: int, value: float) -> bool:
        return self.op[node] == "const" and self.values[node] == value


def ancestors(args_of, roots: Iterable[int]) -> list[int]:
    """Every node the ``roots`` read through ``args_of[node]``, roots included, in id order.

    Iterative, so a chain of 10^5 nodes is no deeper than a single one.
    """
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(a for a in args_of[node] if a not in seen)
    return sorted(seen)


def _is_negative_zero(g: Graph, node: int) -> bool:
    """A ``-0.0`` constant: the one addend that leaves every float unchanged (x + -0.0 == x,
    -0.0 included; x + 0.0 turns -0.0 into +0.0)."""
    return g.op[node] == "const" and g.values[node] == _ZERO and \
        math.copysign(1.0, g.values[node]) < 0


def _fold(g: Graph, name: str, args: tuple[int, ...]) -> int | None:
    """Algebraic identities with a constant operand that hold for *every* float, inf, nan and
    -0.0 included (0 * x is not one: 0 * inf is nan; neither are x - x, 0 / x and 0 - x).
    Returns the folded node, or None."""
    op, values = g.op, g.values
    if name == "mul":
        a, b = args
        for x, y in ((a, b), (b, a)):
            if op[x] == "const":
                if values[x] == _ONE:
                    return y
                if values[x] == -_ONE:
                    return g.neg(y)
    elif name == "add":
        if any(_is_negative_zero(g, a) for a in args):
            return g.add(*args)
        if len(args) == 1:
            return args[0]
    elif name == "sub":
        a, b = args
        if op[b] == "const" and values[b] == _ZERO and math.copysign(1.0, values[b]) > 0:
            return a  # x - 0.0 == x for every x (-0.0 - 0.0 is -0.0)
        if _is_negative_zero(g, a):
            return g.neg(b)  # -0.0 - x == -x for every x
    elif name == "div":
        a, b = args
        if op[b] == "const" and values[b] == _ONE:
            return a
    elif name == "neg":
        (a,) = args
        if op[a] == "neg":
            return g.args[a][0]
    elif name == "pow":
        a, b = args
        if op[b] == "const" and values[b] == _ONE:
            return a
        if op[b] == "const" and values[b] == _ZERO:
            return g.const(_ONE)
    elif name == "where":
        c, a, b = args
        if op[c] == "const":
            return a if values[c] else b
        if a == b:
            return a
    elif name == "stop_gradient":
        (a,) = args
        if op[a] == "stop_gradient":
            return a
    return None
