"""``vmap`` by rule: a per-example subgraph re-emitted with a leading batch axis.

The function is traced once on *placeholders*: fresh nodes equal to the first example. Every node
that depends on a placeholder is then emitted again by its op's batching rule, with the batched
arrays (batch axis first) in place of the placeholders; nodes that do not depend on the example
are shared by the whole batch. The batched nodes are ordinary graph nodes, so transforms nest in
any order (``vmap(grad(f))``, ``grad(vmap(f))``, ``vmap(vmap(f))``, ``jacrev`` of a ``vmap``).

>>> import numpy as np
>>> from workbench.arrays.graph import ArrayGraph
>>> g = ArrayGraph()
>>> xs = g.input(np.array([[1.0, 2.0], [3.0, 4.0]]), "xs")
>>> batch = Batch(g, {}); p = batch.placeholder(xs)
>>> y = g.apply("mul", p, g.apply("sin", p))
>>> (yb,) = batch.emit([y]); np.allclose(g.values[yb], [[1, 2], [3, 4]] * np.sin([[1, 2], [3, 4]]))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..ops import OPS
from . import rules
from .graph import RULES, ArrayGraph, NotArrayLevel

_FULL = ("s", None, None, None)


class Batch:
    """The placeholders of one ``vmap`` level and the batched version of each dependent node."""

    def __init__(self, g: ArrayGraph, batched: dict[int, int]) -> None:
        self.g = g
        self.batched = dict(batched)  # per-example node -> its batched node (batch axis first)
        self.size: int | None = None

    def placeholder(self, batched_node: int) -> int:
        """A per-example stand-in for ``batched_node`` (batch axis first): example 0's value."""
        g = self.g
        n = g.shape(batched_node)[0]
        if self.size is not None and n != self.size:
            raise NotArrayLevel("batch sizes differ")
        self.size = n
        example = g.alias(rules.index(g, batched_node, (("i", 0),)))
        self.batched[example] = batched_node
        return example

    def depends(self, node: int) -> bool:
        return node in self.batched

    def emit(self, roots: Sequence[int]) -> list[int]:
        """Batched versions of ``roots`` (unbatched roots are broadcast over the batch)."""
        g = self.g
        first = min(self.batched) if self.batched else len(g)
        for node in g.ancestors(roots):
            if node < first or node in self.batched:
                continue
            if any(a in self.batched for a in g.args[node]):
                self.batched[node] = self._rule(node)
        out = []
        for r in roots:
            if r in self.batched:
                out.append(self.batched[r])
            else:
                out.append(rules.broadcast_to(g, r, (self.size,) + g.shape(r)))
        return out

    def _arg(self, a: int) -> tuple[int, bool]:
        return (self.batched[a], True) if a in self.batched else (a, False)

    def _rule(self, node: int) -> int:
        g = self.g
        op, params = g.op[node], g.params[node]
        args = [self._arg(a) for a in g.args[node]]
        if op == "alias":
            return g.alias(args[0][0])
        if op not in RULES:  # elementwise: batched operands get size-1 axes up to the output rank
            rank = len(g.shape(node))
            nodes = []
            for a, (b, is_batched) in zip(g.args[node], args):
                if is_batched:
                    shape = g.shape(a)
                    b = rules.reshape(g, b, (self.size,) + (1,) * (rank - len(shape)) + shape)
                nodes.append(b)
            if op not in OPS:
                raise NotArrayLevel(f"no batching rule for {op}")
            return g.apply(op, *nodes, params=params)
        (x, xb), *rest = args
        if op in ("sum", "amax", "amin"):
            axes, keepdims = params
            if op == "sum":
                return rules.reduce_sum(g, x, tuple(a + 1 for a in axes), keepdims)
            return rules.reduce_extreme(g, op, x, tuple(a + 1 for a in axes), keepdims)
        if op == "reshape":
            return rules.reshape(g, x, (self.size,) + params[0])
        if op == "transpose":
            return rules.transpose(g, x, (0,) + tuple(p + 1 for p in params[0]))
        if op == "broadcast_to":
            shape = params[0]
            have = g.shape(g.args[node][0])
            x = rules.reshape(g, x, (self.size,) + (1,) * (len(shape) - len(have)) + have)
            return rules.broadcast_to(g, x, (self.size,) + shape)
        if op == "cast":
            return rules.cast(g, x, params[0])
        if op in ("index", "index_add"):
            return self._index(node, x, xb, rest)
        if op == "cumsum":
            return rules.cumsum(g, x, params[0] + 1)
        if op == "concatenate":
            parts = [b if is_batched else rules.broadcast_to(g, b, (self.size,) + g.shape(b))
                     for b, is_batched in args]
            return rules.concatenate(g, parts, params[0] + 1)
        if op == "einsum":
            sa, sb, out = params
            letter = next(c for c in "zyxwvutsrqponmlkjihgfedcba" if c not in sa + sb + out)
            (b, bb) = rest[0]
            sa2 = letter + sa if xb else sa
            sb2 = letter + sb if bb else sb
            return rules.contract(g, f"{sa2},{sb2}->{letter}{out}", x, b)
        raise NotArrayLevel(f"no batching rule for {op}")

    def _index(self, node: int, x: int, x_batched: bool, rest: list[tuple[int, bool]]) -> int:
        """``x[index]`` (or its adjoint ``index_add``) for every example at once.

        Index arrays without a batch axis are used as they are (numpy broadcasts them); batched
        ones get size-1 axes after their batch axis, so they broadcast against the others. A
        batched ``x`` indexed by batched arrays reads its own row through a batch ``arange``
        index in front; indexed by shared arrays only, through a full slice. numpy puts the
        broadcast index dims first when advanced indices are not next to each other, so the
        result is transposed to batch-first ``(B,) + per-example`` layout (``index``), or the
        cotangent is transposed to numpy's layout before it is scattered (``index_add``).
        """
        g = self.g
        op = g.op[node]
        template = g.params[node][0]
        if op == "index":
            x_shape = g.shape(g.args[node][0])
        else:  # index_add: ``x`` is the cotangent; the result is batched even where it is not
            x_shape = g.params[node][1]
            if not x_batched:
                x = rules.broadcast_to(g, x, (self.size,) + g.shape(x))
            x_batched = True
        per_example_arrays = [g.shape(a) for a in g.args[node][1:]]
        rank = len(np.broadcast_shapes(*per_example_arrays)) if per_example_arrays else 0
        arrays = []
        for (a, is_batched), shape in zip(rest, per_example_arrays):
            if is_batched:
                a = rules.reshape(g, a, (self.size,) + (1,) * (rank - len(shape)) + shape)
            arrays.append(a)
        layout = rules.IndexLayout(template, len(x_shape), rank)
        if any(is_batched for _, is_batched in rest):
            if x_batched:  # example b reads row b: an arange index in front
                arange = g.const(np.arange(self.size).reshape((self.size,) + (1,) * rank))
                new_template = (("a", len(arrays)),) + template
                arrays.append(arange)
                raw = layout.batched_rows()
            else:  # shared x: the batch axis comes from the index arrays alone
                new_template = template
                raw = layout.batched_arrays()
        else:
            new_template = (_FULL,) + template
            raw = layout.batched_slice()
        if op == "index":
            out = rules.index(g, x, new_template, arrays)
            return rules.transpose(g, out, tuple(np.argsort(raw)))
        values = rules.transpose(g, x, raw)
        return rules.index_add(g, values, new_template, arrays, (self.size,) + tuple(x_shape))
