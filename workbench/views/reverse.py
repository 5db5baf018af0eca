"""A numeric reverse pass over a traced graph, kept step by step for the graph view.

Every node's adjoint (d output / d node) is accumulated in reverse topological order, as the
backward pass of the tape does; the local partial derivatives are the op table's own rules,
evaluated at the traced values. Each processed node gives one :class:`~workbench.tape.core.Step`
(the same record the tape keeps), so the graph and tape documents share their ``backward`` format.

>>> from workbench.graph import Graph
>>> g = Graph(); x = g.input(0.5, "x"); y = g.apply("mul", g.apply("sin", x), x)
>>> adjoints, steps = reverse_pass(g, y, g.ancestors([y]))
>>> round(adjoints[x], 6)              # sin(0.5) + 0.5 cos(0.5)
0.918217
>>> [(s.node, [c.to for c in s.contributions]) for s in steps]
[(2, [0, 1]), (1, [0]), (0, [])]
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Graph
from ..ops import OPS
from ..tape.core import Contribution, Step


def reverse_pass(graph: Graph, output: int, nodes: Sequence[int]) -> tuple[dict[int, float],
                                                                             list[Step]]:
    """Adjoints of ``nodes`` (the output's ancestors, in id order) and the steps that made them.

    Constants get no adjoint; a node no gradient reaches (behind ``stop_gradient``, a comparison)
    is missing from the result. Partial derivatives are built as graph nodes (so the graph
    grows), which is how their values are known.
    """
    op_of, args_of, params_of, values = graph.op, graph.args, graph.params, graph.values
    if op_of[output] == "const":  # a constant function: nothing to differentiate
        return {}, []
    totals: dict[int, float] = {output: 1.0}
    steps: list[Step] = []
    for node in reversed(nodes):
        adjoint = totals.get(node)
        if adjoint is None or op_of[node] == "const":
            continue
        pushed: list[Contribution] = []
        steps.append(Step(node, adjoint, pushed))
        rule = OPS[op_of[node]].partials
        if rule is None:  # an input, or piecewise constant: nothing flows further
            continue
        args = args_of[node]
        for argnum, (arg, partial) in enumerate(zip(args, rule(graph, args, node,
                                                                params_of[node]))):
            if partial is None or op_of[arg] == "const":
                continue
            value = adjoint * float(values[partial])
            total = totals[arg] = totals.get(arg, 0.0) + value
            pushed.append(Contribution(arg, argnum, value, total))
    return totals, steps
