"""Symbolic reverse and forward mode over the traced graph.

Both passes walk the graph once, in id (topological) order, and build every adjoint or tangent as
new nodes of the same graph with the ops' own ``partials`` rules. The cost is linear in the size
of the trace; nothing ever differentiates a whole SymPy tree (which swells exponentially).

>>> from workbench.graph import Graph
>>> g = Graph()
>>> x = g.input(0.5, "x")
>>> y = g.apply("mul", x, g.apply("sin", x))        # x sin x
>>> (dx,) = vjp_nodes(g, [y], [g.const(1.0)], [x])   # sin x + x cos x
>>> import math; abs(g.value(dx) - (math.sin(0.5) + 0.5 * math.cos(0.5))) < 1e-15
True
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Graph
from ..ops import OPS


def dependents(g, wrt: Sequence[int], upto: int) -> set[int]:
    """Nodes (up to id ``upto``) that depend on any node of ``wrt``.

    Found by following the graph's users index forward from ``wrt``: the cost is the size of
    the dependent part, not of the whole graph (one Jacobian column touches few nodes).
    """
    active = set(wrt)
    users = g.users()
    stack = list(active)
    while stack:
        for user in users[stack.pop()]:
            if user <= upto and user not in active:
                active.add(user)
                stack.append(user)
    return active


def vjp_nodes(g: Graph, outputs: Sequence[int], cotangents: Sequence[int],
              wrt: Sequence[int]) -> list[int]:
    """Reverse mode: the nodes of ``sum_i cotangent_i * d output_i / d wrt_j``, one per ``wrt_j``.

    Differentiation stops at the ``wrt`` nodes: what they themselves depend on is another level's
    business (see ``Graph.alias``).
    """
    if not wrt or not outputs:
        return [g.const(0.0) for _ in wrt]
    top = max(outputs)
    active = dependents(g, wrt, top)
    wrt_set = set(wrt)
    contributions: dict[int, list[int]] = {}
    for out, ct in zip(outputs, cotangents):
        if out in active:
            contributions.setdefault(out, []).append(ct)
    op_of, args_of, params_of = g.op, g.args, g.params
    for node in sorted(active, reverse=True):  # only nodes that depend on wrt get adjoints
        terms = contributions.get(node)
        if terms is None or node in wrt_set:
            continue
        adjoint = g.add(*terms) if len(terms) > 1 else terms[0]
        # A zero adjoint still flows on, as in torch and JAX: 0 * inf is nan, so the gradient
        # of 0 * log(x) at 0 is nan, not 0. (Nodes the output does not depend on get no
        # adjoint at all, and so cost nothing.)
        args = args_of[node]
        rule = OPS[op_of[node]].partials
        if rule is None:
            continue
        partials = rule(g, args, node, params_of[node])
        for a, partial in zip(args, partials):
            if partial is None or a not in active:
                continue
            contributions.setdefault(a, []).append(g.mul(adjoint, partial))
    result = []
    for w in wrt:
        terms = contributions.get(w, [])
        result.append(g.add(*terms) if terms else g.const(0.0))
    return result


def jvp_nodes(g: Graph, outputs: Sequence[int], wrt: Sequence[int],
              tangents: Sequence[int]) -> list[int]:
    """Forward mode: the nodes of ``sum_j d output_i / d wrt_j * tangent_j``, one per output."""
    if not outputs:
        return []
    top = max(outputs)
    tangent: dict[int, int] = dict(zip(wrt, tangents))
    if not tangent:
        return [g.const(0.0) for _ in outputs]
    wrt_set = set(wrt)
    op_of, args_of, params_of = g.op, g.args, g.params
    for node in sorted(dependents(g, wrt, top)):  # only nodes that depend on wrt
        if node in wrt_set:
            continue
        args = args_of[node]
        if not any(a in tangent for a in args):
            continue
        rule = OPS[op_of[node]].partials
        if rule is None:
            continue
        partials = rule(g, args, node, params_of[node])
        terms = [g.mul(partial, tangent[a]) for a, partial in zip(args, partials)
                 if partial is not None and a in tangent]
        if terms:
            tangent[node] = g.add(*terms)
    zero = g.const(0.0)
    return [tangent.get(out, zero) for out in outputs]
