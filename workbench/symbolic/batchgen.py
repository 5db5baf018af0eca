"""The ``batch`` program of ``vmap``: the traced per-example program, vectorised over a batch.

A batched argument reaches the program as a matrix ``(batch, elements)`` in the caller's own
layout; an unbatched one as a flat array. Element-level code over such data would touch the
matrix one strided column at a time, so two patterns that per-example gradients are made of are
printed as whole-matrix numpy operations instead:

* a *linear combination* ``sum_i u_i * x_i`` of the elements of one batched argument with
  unbatched coefficients (``x @ w``) becomes one matrix-vector product;
* an *output scaled per example* ``[g * x_0, g * x_1, ...]`` (the gradient of ``x @ w`` with
  respect to ``w``) becomes one broadcast product ``g[:, None] * X``.

Everything else is the ordinary element-level program (``codegen``, ``batch`` backend), reading
the elements it still needs from a contiguous transposed copy of each batched matrix.

>>> import numpy as np
>>> from workbench.graph import Graph
>>> g = Graph()
>>> w = [g.input(1.0, ("w", i)) for i in range(3)]
>>> x = [g.input(1.0, ("x", i)) for i in range(3)]
>>> z = g.add(*[g.mul(a, b) for a, b in zip(w, x)])
>>> program = batch_program(g, [w, x], [False, True], [z], [])
>>> "@" in program.source and "ascontiguousarray" not in program.source
True
>>> ok, out = program.function(np.array([1.0, 2.0, 3.0]), np.eye(3))
>>> out.tolist()
[1.0, 2.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Sequence

from ..graph import Graph
from .codegen import Program, generate

_MIN_PACK = 2  # fewer terms than this stay element-level


def batch_program(graph: Graph, inputs: Sequence[int | Sequence[int]], batched: Sequence[bool],
                  outputs: Sequence[int | Sequence[int]],
                  guards: Sequence[tuple[int, bool]]) -> Program:
    """Compile the batch program; ``batched[k]`` says whether argument ``k`` is a batch matrix.

    The program returns ``(mask, *outputs)``; an output that was a list of nodes comes back
    either as that list (vectors or scalars) or, when packed, as one ``(batch, n)`` matrix.
    """
    element_of: dict[int, tuple[int, int]] = {}
    for k, group in enumerate(inputs):
        for i, node in enumerate([group] if isinstance(group, int) else group):
            element_of[node] = (k, i)
    roots = [n for group in outputs for n in ([group] if isinstance(group, int) else group)]
    needed = graph.ancestors(roots + [n for n, _ in guards])
    is_batched = _batched_nodes(graph, needed, element_of, batched, inputs)

    packer = _Packer(graph, inputs, batched, element_of, is_batched)
    new_outputs = [packer.output_group(group) for group in outputs]
    for node in needed:
        if graph.op[node] == "add" and is_batched.get(node):
            packer.linear_combination(node)

    program = generate(graph, inputs, new_outputs, guards, "batch", overrides=packer.overrides,
                       unpack_from=packer.transposed_sources())
    return program


def _batched_nodes(graph: Graph, needed: list[int], element_of, batched, inputs) -> dict[int, bool]:
    flags: dict[int, bool] = {}
    for node in needed:
        if node in element_of:
            k, _ = element_of[node]
            flags[node] = bool(batched[k])
        else:
            flags[node] = any(flags.get(a, False) for a in graph.args[node])
    return flags


class _Packer:
    """Finds the packable patterns and records them as codegen overrides."""

    def __init__(self, graph: Graph, inputs, batched, element_of, is_batched) -> None:
        self.graph = graph
        self.inputs = inputs
        self.batched = batched
        self.element_of = element_of
        self.is_batched = is_batched
        self.overrides: dict[int, tuple] = {}
        self.next_virtual = len(graph)

    # ----- operands -----
    def _resolve(self, node: int) -> int:
        """Look through ``alias`` / ``stop_gradient``: identities at run time."""
        op, args = self.graph.op, self.graph.args
        while op[node] in ("alias", "stop_gradient"):
            node = args[node][0]
        return node

    def _batched_element(self, node: int) -> tuple[int, int] | None:
        position = self.element_of.get(self._resolve(node))
        if position is not None and self.batched[position[0]] and \
                not isinstance(self.inputs[position[0]], int):
            return position
        return None

    def _matrix(self, positions: list[tuple[int, int]]) -> str | None:
        """``a<k>`` or ``a<k>[:, lo:hi]`` for consecutive elements of one batched argument."""
        leaves = {k for k, _ in positions}
        if len(leaves) != 1:
            return None
        (k,) = leaves
        idx = [i for _, i in positions]
        lo, hi = idx[0], idx[-1] + 1
        if idx != list(range(lo, hi)):
            return None
        if lo == 0 and hi == len(self.inputs[k]):
            return f"a{k}"
        return f"a{k}[:, {lo}:{hi}]"

    def _vector(self, nodes: list[int]) -> tuple[str, tuple[int, ...]]:
        """A 1-D array of unbatched values: a slice of an argument, or built from the nodes."""
        positions = [self.element_of.get(self._resolve(n)) for n in nodes]
        if all(p is not None for p in positions):
            leaves = {k for k, _ in positions}
            if len(leaves) == 1:
                (k,) = leaves
                idx = [i for _, i in positions]
                lo, hi = idx[0], idx[-1] + 1
                if idx == list(range(lo, hi)) and not isinstance(self.inputs[k], int):
                    full = lo == 0 and hi == len(self.inputs[k])
                    return (f"_np.asarray(a{k})" if full else f"_np.asarray(a{k})[{lo}:{hi}]"), ()
        return "_np.array([" + ", ".join(f"{{{j}}}" for j in range(len(nodes))) + "])", tuple(nodes)

    def _virtual(self, printer, reads: tuple[int, ...]) -> int:
        node = self.next_virtual
        self.next_virtual += 1
        self.overrides[node] = (printer, reads)
        return node

    # ----- patterns -----
    def output_group(self, group):
        """``[g * y_0, g * y_1, ...]`` -> one broadcast product (a virtual node), else unchanged."""
        if isinstance(group, int) or len(group) < _MIN_PACK:
            return group
        args, op = self.graph.args, self.graph.op
        if any(op[n] != "mul" for n in group):
            return group
        common = set(args[group[0]])
        for n in group[1:]:
            common &= set(args[n])
        for factor in sorted(common):
            others = [args[n][1] if args[n][0] == factor else args[n][0] for n in group]
            if len(set(others)) != len(others):
                continue
            positions = [self._batched_element(n) for n in others]
            if all(p is not None for p in positions):
                matrix = self._matrix(positions)
                if matrix is None:
                    continue
                template = ("({0})[:, None] * " if self.is_batched.get(factor) else "{0} * ") + matrix
                return self._virtual(template, (factor,))
            if self.is_batched.get(factor) and not any(self.is_batched.get(n) for n in others):
                vector, reads = self._vector(others)
                shifted = vector.replace("{", "{{").replace("}", "}}") if not reads else \
                    vector.format(*[f"{{{j + 1}}}" for j in range(len(reads))])
                return self._virtual("({0})[:, None] * " + shifted + "[None, :]", (factor,) + reads)
        return group

    def linear_combination(self, node: int) -> None:
        """``sum_i u_i * x_i`` over one batched argument's elements -> a matrix-vector product."""
        args, op = self.graph.args, self.graph.op
        by_leaf: dict[int, list[tuple[int, int, int, int]]] = {}
        rest: list[int] = []
        for term in args[node]:
            hit = None
            if op[term] == "mul":
                p, q = args[term]
                for x, u in ((p, q), (q, p)):
                    position = self._batched_element(x)
                    if position is not None and not self.is_batched.get(u):
                        hit = (position[0], position[1], u, term)
                        break
            if hit is None:
                rest.append(term)
            else:
                by_leaf.setdefault(hit[0], []).append(hit)
        packs = []
        for k, terms in by_leaf.items():
            terms.sort(key=lambda t: t[1])
            matrix = self._matrix([(k, i) for _, i, _, _ in terms])
            if len(terms) < _MIN_PACK or matrix is None or \
                    len({i for _, i, _, _ in terms}) != len(terms):
                rest.extend(term for _, _, _, term in terms)
                continue
            packs.append((matrix, [u for _, _, u, _ in terms]))
        if not packs:
            return
        pieces: list[str] = []
        reads: list[int] = []
        for matrix, coefficients in packs:
            vector, vector_reads = self._vector(coefficients)
            if vector_reads:
                base = len(reads)
                vector = vector.format(*[f"{{{base + j}}}" for j in range(len(vector_reads))])
                reads.extend(vector_reads)
            else:
                vector = vector.replace("{", "{{").replace("}", "}}")
            pieces.append(f"({matrix} @ {vector})")
        base = len(reads)
        pieces.extend(f"{{{base + j}}}" for j in range(len(rest)))
        reads.extend(rest)
        self.overrides[node] = (" + ".join(pieces), tuple(reads))

    def transposed_sources(self) -> dict[int, str]:
        """Batched matrices are unpacked (where elements are still needed) from a contiguous
        transposed copy, so each element is a contiguous vector."""
        return {k: f"_np.ascontiguousarray(_np.asarray(a{k}).T)"
                for k, group in enumerate(self.inputs)
                if self.batched[k] and not isinstance(group, int)}
