"""A layered drawing order for a DAG: columns by longest path, rows by the barycentre heuristic.

Every node goes in the column one past its furthest argument (inputs in column 0), so edges
always point right. Constants (sources that are not anchored inputs) move to the column just
before their first user, next to where they are used. Within a column, nodes are then sorted a
few times by the mean row of their neighbours (down, then up), which removes most edge crossings
of small graphs (Sugiyama's method without dummy nodes: good enough for teaching-size graphs).

>>> layout = layered_layout([0, 1, 2, 3], [(0, 2), (1, 3), (0, 3), (1, 2)], anchored={0, 1})
>>> layout.columns
[[0, 1], [2, 3]]
>>> crossings(layered_layout([0, 1, 2, 3], [(0, 3), (1, 2)], anchored={0, 1}), [(0, 3), (1, 2)])
0
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

SWEEPS = 4  # down+up passes of the barycentre heuristic


@dataclass
class Layout:
    """``columns[c]``: the nodes of column ``c``, top to bottom; ``place[n]``: (column, row)."""

    columns: list[list[int]]
    place: dict[int, tuple[int, int]]

    def centred_row(self, node: int) -> float:
        """The node's row measured from the middle of its column (columns are centred)."""
        column, row = self.place[node]
        return row - (len(self.columns[column]) - 1) / 2


def layered_layout(nodes: Sequence[int], edges: Sequence[tuple[int, int]],
                   anchored: Collection[int] = ()) -> Layout:
    """Columns and rows for ``nodes`` (in topological order) joined by ``(source, target)`` edges.

    ``anchored`` sources (the inputs) stay in column 0; other sources sit before their first user.
    """
    preds: dict[int, list[int]] = {n: [] for n in nodes}
    succs: dict[int, list[int]] = {n: [] for n in nodes}
    for source, target in edges:
        preds[target].append(source)
        succs[source].append(target)
    column: dict[int, int] = {}
    for n in nodes:
        column[n] = 1 + max(column[p] for p in preds[n]) if preds[n] else 0
    for n in nodes:
        if not preds[n] and succs[n] and n not in anchored:
            column[n] = max(min(column[s] for s in succs[n]) - 1, 0)
    columns: list[list[int]] = [[] for _ in range(max(column.values(), default=-1) + 1)]
    for n in nodes:
        columns[column[n]].append(n)
    layout = Layout(columns, {})
    _renumber(layout)
    for _ in range(SWEEPS):
        for c in range(1, len(columns)):
            _sort_by_neighbours(layout, columns[c], preds)
        for c in range(len(columns) - 2, -1, -1):
            _sort_by_neighbours(layout, columns[c], succs)
    return layout


def _sort_by_neighbours(layout: Layout, column: list[int], neighbours: dict[int, list[int]]) -> None:
    """Reorder one column by the mean centred row of each node's neighbours (stable)."""
    def key(n: int) -> float:
        rows = [layout.centred_row(m) for m in neighbours[n]]
        return sum(rows) / len(rows) if rows else layout.centred_row(n)

    column.sort(key=key)
    for row, n in enumerate(column):
        layout.place[n] = (layout.place[n][0], row)


def _renumber(layout: Layout) -> None:
    for c, column in enumerate(layout.columns):
        for row, n in enumerate(column):
            layout.place[n] = (c, row)


def crossings(layout: Layout, edges: Sequence[tuple[int, int]]) -> int:
    """How many pairs of edges between the same two adjacent columns cross (for tests)."""
    spans = [(layout.place[s], layout.place[t]) for s, t in edges]
    count = 0
    for i, ((c1, r1), (d1, q1)) in enumerate(spans):
        for (c2, r2), (d2, q2) in spans[i + 1:]:
            if (c1, d1) == (c2, d2) and d1 == c1 + 1 and (r1 - r2) * (q1 - q2) < 0:
                count += 1
    return count
