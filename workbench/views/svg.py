"""A static SVG drawing of a computational graph: boxes in layered columns, edges as curves.

Used as the ``text/html`` fallback of ``wb.graph`` and ``wb.backprop`` (where the JupyterLab
extension is not installed, on GitHub, in exported HTML) and by the backprop stepper widget. The
drawing is plain SVG: no scripts, no external styles; every piece of text is escaped (labels are
user text: parameter names, dictionary keys, function names). Hovering a box shows its tooltip
(an SVG ``<title>``: the expression and the full value).

>>> svg = render_svg([Box(0, "x", "0.5", "", "x = 0.5"), Box(1, "sin", "0.479", "", "sin(x)")],
...                  [(0, 1, 0)])
>>> svg.startswith("<svg") and svg.count('class="wb-node') == 2 and svg.count("<path") == 2
True
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .layout import layered_layout

CHAR_WIDTH = 7.2  # monospace, 12px
LINE_HEIGHT = 15
BOX_HEIGHT = 3 * LINE_HEIGHT + 8
COLUMN_GAP = 56
ROW_GAP = 16
MARGIN = 12
MAX_LABEL = 28  # characters drawn in a box; the tooltip has the whole text

FILL = {"input": "#e7f0fb", "const": "#f2f2f2"}
FILL_OP = "#fff7e0"
ACCENT = "#c2410c"


@dataclass
class Box:
    """One node as drawn: a label, its value and adjoint texts ("" hides a line), a tooltip.

    ``state``: "" normal, "current" (highlighted: the step being shown), "pending" (not computed
    yet: drawn faded). ``changed``: the adjoint just changed (drawn in the accent colour).
    """

    id: int
    label: str
    value: str
    adjoint: str
    tooltip: str
    op: str = ""
    state: str = ""
    changed: bool = False
    #: at least this many characters wide: a stepper reserves the room of the final texts so
    #: that the drawing does not move between steps
    min_chars: int = 0
    #: the node's shape as drawn ("64×128", "scalar"); "" draws no shape line
    shape: str = ""


def short_number(value: Any) -> str:
    """A JSON value (number, "nan"/"inf" string, nested lists, None) as a few characters.

    >>> short_number(0.918216), short_number("-inf"), short_number([[1.0, 2.0]]), short_number(None)
    ('0.9182', '-inf', '[1, 2]', '')
    >>> short_number([[1.0] * 5] * 3)
    'array 3x5'
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return f"{value:.4g}"
    shape, flat = _shape(value), list(_flatten(value))
    if len(flat) <= 3:
        return "[" + ", ".join(short_number(v) for v in flat) + "]"
    return "array " + "x".join(str(n) for n in shape)


def _shape(value: Any) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def _flatten(value: Any):
    if isinstance(value, list):
        for v in value:
            yield from _flatten(v)
    else:
        yield value


def _clip(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 1] + "…"


def _css_name(op: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", op.lower())


def render_svg(boxes: Sequence[Box], edges: Sequence[tuple[int, int, int]],
               anchored: Sequence[int] = ()) -> str:
    """The drawing of ``boxes`` (in topological order) joined by ``(source, target, argnum)``."""
    by_id = {b.id: b for b in boxes}
    layout = layered_layout([b.id for b in boxes], [(s, t) for s, t, _ in edges], set(anchored))
    # a constant's label is its value already; array graphs get a line for the shape
    shaped = any(b.shape for b in boxes)
    lines = {b.id: [_clip(b.label)] + ([_clip(b.shape)] if shaped else []) +
             [f"= {b.value}" if b.value and b.op != "const" else "",
              f"grad {b.adjoint}" if b.adjoint else ""] for b in boxes}
    box_height = BOX_HEIGHT + (LINE_HEIGHT if shaped else 0)
    chars = {b.id: max(b.min_chars, *(len(t) for t in lines[b.id])) for b in boxes}
    widths = [max((chars[n] for n in column), default=4) * CHAR_WIDTH + 16
              for column in layout.columns]
    tallest = max((len(c) for c in layout.columns), default=1)
    height = 2 * MARGIN + tallest * (box_height + ROW_GAP) - ROW_GAP
    xs, x = [], MARGIN
    for w in widths:
        xs.append(x)
        x += w + COLUMN_GAP
    width = x - COLUMN_GAP + MARGIN

    def top_left(n: int) -> tuple[float, float]:
        column, _ = layout.place[n]
        y = height / 2 + layout.centred_row(n) * (box_height + ROW_GAP) - box_height / 2
        return xs[column], y

    n_args: dict[int, int] = {}
    for _, t, argnum in edges:
        n_args[t] = max(n_args.get(t, 0), argnum + 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="wb-graph" width="{width:.0f}" '
             f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
             'font-family="monospace" font-size="12">',
             '<defs><marker id="wb-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
             'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#666"/></marker>'
             '</defs>']
    for s, t, argnum in edges:
        sx, sy = top_left(s)
        tx, ty = top_left(t)
        x1, y1 = sx + widths[layout.place[s][0]], sy + box_height / 2
        y2 = ty + box_height * (argnum + 1) / (n_args[t] + 1)
        mid = (x1 + tx) / 2
        faded = ' opacity="0.3"' if "pending" in (by_id[s].state, by_id[t].state) else ""
        parts.append(f'<path class="wb-edge" data-source="{s}" data-target="{t}" '
                     f'd="M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {tx:.1f},{y2:.1f}" '
                     f'fill="none" stroke="#666" stroke-width="1.2" marker-end="url(#wb-arrow)"{faded}/>')
    for b in boxes:
        parts.append(_box_svg(b, lines[b.id], *top_left(b.id), widths[layout.place[b.id][0]],
                              box_height))
    parts.append("</svg>")
    return "".join(parts)


def _box_svg(b: Box, lines: list[str], x: float, y: float, width: float, height: float) -> str:
    classes = " ".join(filter(None, ["wb-node", f"wb-op-{_css_name(b.op)}" if b.op else "",
                                     f"wb-{b.state}" if b.state else "",
                                     "wb-changed" if b.changed else ""]))
    current = b.state == "current"
    stroke = f'stroke="{ACCENT}" stroke-width="3"' if current else 'stroke="#555" stroke-width="1"'
    opacity = ' opacity="0.35"' if b.state == "pending" else ""
    out = [f'<g class="{classes}" data-node="{int(b.id)}"{opacity}>',
           f"<title>{html.escape(b.tooltip)}</title>",
           f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.0f}" rx="6" '
           f'fill="{FILL.get(b.op, FILL_OP)}" {stroke}/>']
    for i, text in enumerate(lines):
        if not text:
            continue
        style = ' font-weight="bold"' if i == 0 else ""
        if i == len(lines) - 1 and b.changed:  # the adjoint line
            style = f' fill="{ACCENT}" font-weight="bold"'
        out.append(f'<text x="{x + 8:.1f}" y="{y + 4 + LINE_HEIGHT * (i + 1) - 3:.1f}"{style}>'
                   f"{html.escape(text)}</text>")
    out.append("</g>")
    return "".join(out)
