"""Graph nodes to SymPy expressions: for display, simplification and the LaTeX export.

The conversion walks the needed nodes once, in id (topological) order, with no recursion, and
memoizes every node, so shared subexpressions are shared SymPy objects. Inputs become real
symbols named after the function's parameters (``x`` for a scalar, ``x_0``... for the elements
of an array, printed ``x_{0}`` in LaTeX); constants become exact integers and small rationals
(``0.5`` -> ``1/2``, and ``1/3 - 1`` -> ``-2/3`` within a few units in the last place) and the
few irrational constants the op table and written formulas use (``1/log(2)``, ``log(3)``), else
SymPy floats. Derivatives at kinks are SymPy's own functions with torch's values there:
``Heaviside(x, 0)`` for relu', ``Heaviside(a - b)`` (1/2 at a tie) for maximum's, and the
indicator ``Piecewise`` of the closed interval for clip's.

The SymPy *tree* of a node can be exponentially larger than its graph (a DAG): measure it with
:func:`tree_sizes` before asking for a formula.

>>> from workbench.graph import Graph
>>> g = Graph(); x = g.input(0.5, ("x", 0))
>>> y = g.apply("mul", g.const(0.5), g.apply("sin", g.apply("mul", x, x)))
>>> to_sympy(g, [y], {x: symbol_for("x", None)})
[sin(x**2)/2]
>>> symbol_for("w", (1, 2)).name, number(0.25), number(1 / math.log(2)), number(1 / 3 - 1)
('w_1,2', 1/4, 1/log(2), -2/3)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import sympy

from ..graph import Graph
from ..ops import OPS

# Irrational constants the op table and user code produce, by their float value.
_KNOWN_FLOATS: dict[float, Any] = {
    math.pi: sympy.pi, math.e: sympy.E, -math.pi: -sympy.pi,
    math.pi / 2: sympy.pi / 2, math.pi / 4: sympy.pi / 4, 2 * math.pi: 2 * sympy.pi,
    math.log(2.0): sympy.log(2), math.log(10.0): sympy.log(10),
    1.0 / math.log(2.0): 1 / sympy.log(2), 1.0 / math.log(10.0): 1 / sympy.log(10),
    math.sqrt(2.0): sympy.sqrt(2), 1.0 / math.sqrt(2.0): 1 / sympy.sqrt(2),
    math.sqrt(math.pi): sympy.sqrt(sympy.pi), 2.0 / math.sqrt(math.pi): 2 / sympy.sqrt(sympy.pi),
}
# log(x, b) for a written base b traces as log(x) / log(b): show log(b), not 1.0986...
_KNOWN_FLOATS.update({math.log(float(b)): sympy.log(b) for b in range(3, 21)})
_KNOWN_FLOATS.update({1.0 / math.log(float(b)): 1 / sympy.log(b) for b in range(3, 21)})
_MAX_DENOMINATOR = 1000
#: A float this many units in the last place from a small fraction is that fraction, rounded:
#: ``1/3 - 1`` in floating point is -0.6666666666666667, which is shown as -2/3.
_FRACTION_ULPS = 4


def number(value: Any) -> Any:
    """The SymPy number for a constant node's value (exact where the float is exactly one)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return sympy.true if value else sympy.false
    v = float(value)
    if math.isnan(v):
        return sympy.nan
    if math.isinf(v):
        return sympy.oo if v > 0 else -sympy.oo
    if v.is_integer() and abs(v) < 2.0**53:
        return sympy.Integer(int(v))
    known = _KNOWN_FLOATS.get(v)
    if known is not None:
        return known
    fraction = Fraction(v).limit_denominator(_MAX_DENOMINATOR)
    if fraction and abs(float(fraction) - v) <= _FRACTION_ULPS * math.ulp(v):
        return sympy.Rational(fraction.numerator, fraction.denominator)
    return sympy.Float(v)


def symbol_for(name: str, index: tuple[int, ...] | None) -> sympy.Symbol:
    """The real symbol of parameter ``name`` (``index``: the element of an array parameter)."""
    if index is None:
        return sympy.Symbol(name, real=True)
    return sympy.Symbol(f"{name}_{','.join(str(i) for i in index)}", real=True)


def to_sympy(graph: Graph, roots: Sequence[int], symbols: Mapping[int, Any]) -> list[Any]:
    """The SymPy expression of each root node; ``symbols`` gives the expression of each input."""
    op_of, args_of, params_of, values = graph.op, graph.args, graph.params, graph.values
    expr: dict[int, Any] = {}
    for node in graph.ancestors(roots):
        op = op_of[node]
        if node in symbols:
            expr[node] = symbols[node]
        elif op == "const":
            expr[node] = number(values[node])
        elif op == "input":
            label = params_of[node][0]
            name = label[0] if isinstance(label, tuple) else str(label)
            expr[node] = sympy.Symbol(f"{name}_{node}", real=True)
        else:
            expr[node] = build(op, [expr[a] for a in args_of[node]], params_of[node])
    return [expr[r] for r in roots]


def build(op: str, args: Sequence[Any], params: tuple) -> Any:
    """The SymPy expression of one op applied to SymPy arguments."""
    if op == "alias":
        return args[0]
    if op in ("clip", "in_range"):
        lo, hi = (number(p) for p in params)
        if op == "clip":
            return sympy.Min(sympy.Max(args[0], lo), hi)
        # clip's derivative as the indicator of the closed interval, in SymPy's own terms
        x = args[0]
        return sympy.Piecewise((sympy.S.One, sympy.And(x >= lo, x <= hi)), (sympy.S.Zero, True))
    if op == "where" and isinstance(args[2], sympy.Piecewise):
        # where(c, a, where(d, b, e)): one list of cases, as a textbook writes them
        return sympy.Piecewise((args[1], args[0]), *args[2].args)
    if op == "step_tie":
        # max(a, b)'s derivative in a: torch splits ties evenly, as SymPy's Heaviside(0) = 1/2
        return sympy.Heaviside(args[0] - args[1])
    return OPS[op].sympy(*args, params=params)


def tree_sizes(graph: Graph, roots: Sequence[int]) -> dict[int, int]:
    """Size of each needed node's expression *tree* (shared subexpressions counted every time
    they occur): what a SymPy formula would cost to print. Exact integers, however large."""
    size: dict[int, int] = {}
    args_of = graph.args
    op_of = graph.op
    for node in graph.ancestors(roots):
        if op_of[node] == "alias":  # an identity: no operation of its own
            size[node] = size[args_of[node][0]]
        else:
            size[node] = 1 + sum(size[a] for a in args_of[node])
    return size


def operation_count(graph: Graph, roots: Sequence[int]) -> int:
    """Number of distinct operations (graph nodes that are not inputs, constants or aliases) the
    roots need: the size of the program after common-subexpression elimination."""
    return sum(1 for n in graph.ancestors(roots)
               if graph.op[n] not in ("input", "const", "alias"))


def cse_assignments(graph: Graph, roots: Sequence[int], symbols: Mapping[int, Any],
                    prefix: str = "t") -> tuple[list[tuple[sympy.Symbol, Any]], list[Any]]:
    """The roots as a list of assignments ``t_k = ...`` and final expressions in terms of them.

    A node gets a name when more than one needed node uses it (the graph is already CSE'd, so
    these are exactly the shared subexpressions); nodes used once are written inline.

    >>> from workbench.graph import Graph
    >>> g = Graph(); x = g.input(0.5, ("x", 0))
    >>> s = g.apply("sin", x); y = g.apply("mul", s, g.apply("exp", s))
    >>> cse_assignments(g, [y], {x: symbol_for("x", None)})
    ([(t_0, sin(x))], [t_0*exp(t_0)])
    """
    needed = graph.ancestors(roots)
    op_of, args_of = graph.op, graph.args
    uses: dict[int, int] = {}
    for node in needed:
        if op_of[node] == "alias":
            continue
        for a in args_of[node]:
            uses[a] = uses.get(a, 0) + 1
    expr: dict[int, Any] = {}
    assignments: list[tuple[sympy.Symbol, Any]] = []
    for node in needed:
        op = op_of[node]
        if node in symbols:
            expr[node] = symbols[node]
            continue
        if op == "const":
            expr[node] = number(graph.values[node])
            continue
        if op == "input":
            expr[node] = sympy.Symbol(f"input_{node}", real=True)
            continue
        value = build(op, [expr[a] for a in args_of[node]], graph.params[node])
        if uses.get(node, 0) > 1 and op != "alias" and not value.is_Atom:
            name = sympy.Symbol(f"{prefix}_{len(assignments)}", real=True)
            assignments.append((name, value))
            value = name
        expr[node] = value
    return assignments, [expr[r] for r in roots]
