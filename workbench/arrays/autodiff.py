"""Reverse mode over the array graph; forward mode as the transpose of reverse mode.

``vjp`` walks the nodes that depend on ``wrt`` once, newest first, and builds every cotangent as
new graph nodes: elementwise ops through the op table's partials (then summed back over
broadcast axes), structural ops through their rules in ``rules``. Differentiation stops at the
``wrt`` nodes, which are fresh aliases per transform level, so nested transforms never confuse
their perturbations.

``jvp`` needs no rules of its own: the VJP is linear in its cotangent ``u``, so the JVP along
``t`` is the VJP of ``u -> vjp(u)`` with cotangent ``t`` (differentiating the reverse pass
once more). It costs a second reverse pass, and every op with a VJP has a JVP.

>>> import numpy as np
>>> from workbench.arrays.graph import ArrayGraph
>>> from workbench.arrays import rules
>>> g = ArrayGraph()
>>> x = g.alias(g.input(np.array([0.5, 1.0]), "x"))
>>> y = rules.reduce_sum(g, g.mul(x, g.apply("sin", x)), (0,))
>>> (dx,) = vjp(g, [y], [g.const(1.0)], [x])
>>> bool(np.allclose(g.values[dx], np.sin([0.5, 1.0]) + [0.5, 1.0] * np.cos([0.5, 1.0])))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..ops import OPS
from ..symbolic.differentiate import dependents
from .graph import RULES, ArrayGraph
from .rules import unbroadcast


def _differentiable(g: ArrayGraph, node: int) -> bool:
    return g.dtype(node).kind == "f"


def vjp(g: ArrayGraph, outputs: Sequence[int], cotangents: Sequence[int],
        wrt: Sequence[int]) -> list[int]:
    """Nodes of ``sum_i cotangent_i * d output_i / d wrt_j``, one per ``wrt_j`` (shaped like it)."""
    if not wrt or not outputs:
        return [g.const(np.zeros(g.shape(w))) for w in wrt]
    wrt_set = set(wrt)
    pending: dict[int, list[int]] = {}
    for out, ct in zip(outputs, cotangents):
        pending.setdefault(out, []).append(ct)
    for node in sorted(dependents(g, wrt, max(outputs)), reverse=True):  # newest first
        terms = pending.get(node)
        if terms is None or node in wrt_set or not _differentiable(g, node):
            continue
        ct = g.add(*terms)
        pending[node] = [ct]
        for arg, contribution in zip(g.args[node], arg_cotangents(g, node, ct)):
            if contribution is not None and _differentiable(g, arg):
                pending.setdefault(arg, []).append(contribution)
    # A zero array only where no gradient reaches (most calls need none).
    return [g.add(*pending[w]) if w in pending else g.const(np.zeros(g.shape(w))) for w in wrt]


def arg_cotangents(g: ArrayGraph, node: int, ct: int) -> Sequence[int | None]:
    """The cotangent each argument of ``node`` receives from ``ct`` (None: zero), by the op's rule."""
    op = g.op[node]
    rule = RULES.get(op)
    if rule is not None:
        if rule.vjp is None:
            return (None,) * len(g.args[node])
        return rule.vjp(g, node, ct)
    partials = OPS[op].partials
    if partials is None:
        return (None,) * len(g.args[node])
    args = g.args[node]
    out = []
    for arg, partial in zip(args, partials(g, args, node, g.params[node])):
        if partial is None:
            out.append(None)
            continue
        out.append(unbroadcast(g, g.mul(ct, partial), g.shape(arg)))
    return out


def jvp(g: ArrayGraph, outputs: Sequence[int], wrt: Sequence[int],
        tangents: Sequence[int]) -> list[int]:
    """Nodes of ``sum_j d output_i / d wrt_j * tangent_j``, one per output (shaped like it)."""
    dummies = [g.alias(g.const(np.zeros(g.shape(o)))) for o in outputs]
    pulled = vjp(g, outputs, dummies, wrt)
    return vjp(g, pulled, tangents, dummies)
