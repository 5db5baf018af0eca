"""``wb.graph(f, *args)``: the traced computational graph of ``f`` as a display object.

The graph is the tracer's own (hash-consed, so shared subexpressions are one node): inputs
named after the parameters (``w_0``... for the elements of an array parameter), constants,
and one node per operation. Each node carries its value at ``args``, a short formula, and, for
a scalar output, its adjoint d output / d node from a reverse pass (``reverse.py``), whose steps
are kept in the document's ``backward`` list. Graphs past ``max_nodes`` nodes are cut to the
nodes nearest the output (``truncated``; the title says so).

>>> import numpy as np, workbench as wb
>>> view = wb.graph(lambda x: np.sin(x) * x, 0.5)
>>> view
Graph of f: 3 nodes, 3 edges
>>> doc = view.to_json()
>>> doc["title"], [n["label"] for n in doc["nodes"]]
('f(x) = x*sin(x)', ['x', 'sin', 'mul'])
>>> round(doc["nodes"][0]["adjoint"], 6)      # sin(0.5) + 0.5 cos(0.5)
0.918217
"""

from __future__ import annotations

import copy
import html
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..display.capture import Capture, capture, function_name
from ..display.formula import symbols_of
from ..errors import BudgetExceededError, InputTypeError, UnsupportedOperationError
from ..graph import Graph
from ..symbolic.to_sympy import to_sympy, tree_sizes
from ..tape.view import tensor_json
from .array_graph import array_document, summary, wants_array_graph
from .graph_schema import MIME_TYPE, SCHEMA_NAME, SCHEMA_VERSION
from .reverse import reverse_pass
from .svg import Box, render_svg, short_number

#: What ``wb.graph`` draws a node for: see :func:`graph`.
LEVELS = ("auto", "arrays", "elements")
#: Past this many nodes, only the nodes nearest the output are kept (``truncated``).
MAX_NODES = 2000
#: The static HTML draws graphs up to this many nodes (bigger drawings are unreadable and heavy:
#: about 600 bytes of SVG a node); past it, it lists the ops instead.
MAX_DRAWN_NODES = 400
#: Formulas are given for nodes whose expression tree has at most this many nodes ...
EXPRESSION_MAX_TREE = 40
#: ... and whose text is at most this long; others get "" (the graph itself is the formula).
EXPRESSION_MAX_CHARS = 80


def graph(f: Callable, *args: Any, max_nodes: int = MAX_NODES, level: str = "auto") -> GraphView:
    """Trace ``f`` at ``args`` and show its computational graph.

    Float scalars and arrays among ``args`` are the inputs; other arguments are passed as they
    are. With no ``args``, every parameter is a scalar traced at 0.5, 0.625, ... (like
    ``wb.trace``). For a scalar output, every node also shows its adjoint.

    ``level``: ``"auto"`` draws one node per *array* operation (``x @ W``, ``sum(axis=1)``, with
    its shape) when an argument is a float array and the array level can trace ``f``, else one
    node per scalar operation; ``"elements"`` always draws scalar operations; ``"arrays"``
    insists on array operations (an error where they cannot be traced).

    >>> import workbench as wb
    >>> doc = wb.graph(lambda x, y: x * y + 3.0 * x, 2.0, 5.0).to_json()
    >>> sorted(n["label"] for n in doc["nodes"])
    ['3', 'add', 'mul', 'mul', 'x', 'y']
    >>> [n["adjoint"] for n in doc["nodes"] if n["op"] == "input"]       # y + 3, x
    [8.0, 2.0]
    """
    if not isinstance(max_nodes, int) or isinstance(max_nodes, bool) or max_nodes < 1:
        raise InputTypeError(f"wb.graph: max_nodes must be a positive int, got {max_nodes!r}")
    if level not in LEVELS:
        raise InputTypeError(f"wb.graph: level must be one of {', '.join(map(repr, LEVELS))}, "
                              f"got {level!r}")
    if level != "elements" and callable(f) and (level == "arrays" or wants_array_graph(args)):
        drawn = array_document(f, args, function_name(f), max_nodes)
        if drawn is not None:
            return GraphView(drawn.doc, function_name(f), drawn.values, drawn.adjoints)
        if level == "arrays":
            raise UnsupportedOperationError(
                "wb.graph: level='arrays', but this function cannot be traced one array "
                "operation at a time (it converts a traced array to a number, calls something "
                "the array level does not handle, or returns no float array); use "
                "level='auto' to draw its element graph")
    cap = capture(f, args, order=0, transform="wb.graph")
    return GraphView(graph_document(cap, max_nodes), cap.name)


class GraphView:
    """A computational graph: displays as the workbench MIME type, static SVG, or a text line.

    ``to_json()`` is the document (``workbench.views.graph_schema``).
    """

    def __init__(self, document: dict[str, Any], name: str = "f",
                 values: dict[int, Any] | None = None,
                 adjoints: dict[int, Any] | None = None) -> None:
        self._doc = document
        self.name = name
        # the full arrays of an array graph (the document summarises the big ones)
        self._values = values
        self._adjoints = adjoints

    def to_json(self) -> dict[str, Any]:
        """The graph document (a fresh copy), JSON-ready."""
        return copy.deepcopy(self._doc)

    def value(self, node: int) -> Any:
        """The value of node ``node`` (an id of the document) in full, as a numpy array or a
        float: the document leaves out arrays of more than 100 elements; this does not."""
        return self._full(node, "value", self._values)

    def adjoint(self, node: int) -> Any:
        """d output / d node for node ``node`` in full (None where no gradient reaches it)."""
        return self._full(node, "adjoint", self._adjoints)

    def _full(self, node: int, key: str, arrays: dict[int, Any] | None) -> Any:
        found = next((n for n in self._doc["nodes"] if n["id"] == node), None)
        if found is None:
            raise InputTypeError(f"GraphView: no node with id {node!r}; the ids are those of "
                                 "to_json()['nodes']")
        if arrays is not None:
            return arrays.get(node)
        return None if found[key] is None else np.asarray(_from_json(found[key]), dtype=float)[()]

    def boxes(self) -> list[Box]:
        """The nodes as drawn: label, value, adjoint and a tooltip with the formula (and, in an
        array graph, the shape)."""
        shaped = self._doc.get("level") == "arrays"
        return [_box(node, shaped) for node in self._doc["nodes"]]

    def svg(self) -> str:
        """The static drawing (every label escaped, no scripts)."""
        doc = self._doc
        return render_svg(self.boxes(), [(e["source"], e["target"], e["argnum"])
                                         for e in doc["edges"]], doc["inputs"])

    def __repr__(self) -> str:
        doc = self._doc
        text = f"Graph of {self.name}: {len(doc['nodes'])} nodes, {len(doc['edges'])} edges"
        return text + (" (truncated: the nodes nearest the output)" if doc["truncated"] else "")

    def _repr_html_(self) -> str:
        nodes = self._doc["nodes"]
        if len(nodes) <= MAX_DRAWN_NODES:
            body = f'<div style="overflow: auto; max-height: 640px">{self.svg()}</div>'
        else:
            counts: dict[str, int] = {}
            for n in nodes:
                counts[n["op"]] = counts.get(n["op"], 0) + 1
            listed = ", ".join(f"{op} {k:,}" for op, k in sorted(counts.items(),
                                                                 key=lambda item: -item[1]))
            body = (f"<div>{len(nodes):,} nodes: too many to draw here (the limit is "
                    f"{MAX_DRAWN_NODES}); by op: {html.escape(listed)}. Trace a smaller "
                    "example to see the drawing.</div>")
        return (f'<div class="wb-graph-view" style="font-family: monospace">'
                f'<div class="wb-graph-title" style="margin-bottom: 4px">'
                f'{html.escape(self._doc["title"])}</div>{body}</div>')

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {MIME_TYPE: self.to_json(), "text/html": self._repr_html_(),
                "text/plain": repr(self)}


def _from_json(value: Any) -> Any:
    """A JSON tensor back to floats ("nan", "inf" and "-inf" are strings there)."""
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return float(value)


def _short(node: dict[str, Any], key: str, shaped: bool) -> str:
    """A value or adjoint in a few characters: an array graph's arrays as mean, min and max."""
    if node.get(f"{key}_summary"):
        return node[f"{key}_summary"]
    value = node[key]
    if shaped and isinstance(value, list) and np.size(value) > 3:
        return summary(np.asarray(_from_json(value)))
    return short_number(value)


def _box(node: dict[str, Any], shaped: bool = False) -> Box:
    value, adjoint = _short(node, "value", shaped), _short(node, "adjoint", shaped)
    tip = [node["label"] if node["op"] in ("input", "const") else node["op"]]
    if node["expression"] and node["expression"] != node["label"]:
        tip[0] += f" = {node['expression']}"
    shape = ""
    if shaped:
        shape = "×".join(str(n) for n in node["shape"]) or "scalar"
        tip.append(f"shape: {shape}")
        shape = f"shape {shape}" if node["shape"] else shape
    tip.append(f"value: {value}")
    if adjoint:
        tip.append(f"adjoint (d output / d node): {adjoint}")
    return Box(node["id"], node["label"], value, adjoint, "\n".join(tip), node["op"],
               shape=shape)


# ----- the document -----
def graph_document(cap: Capture, max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """The JSON document of a traced function (see ``graph_schema``)."""
    g = cap.graph
    outputs = [int(n) for n in cap.output.ravel()]
    everything = g.ancestors(outputs)
    truncated = len(everything) > max_nodes
    kept = nearest_ancestors(g, outputs, max_nodes) if truncated else everything
    names = {node: _input_name(name, index) for node, (name, index) in cap.input_nodes().items()}
    expressions = _expressions(cap, kept, outputs)
    adjoints: dict[int, float] = {}
    steps: list = []
    if len(outputs) == 1 and cap.output.shape == ():
        try:
            adjoints, steps = reverse_pass(g, outputs[0], everything)
        except BudgetExceededError:  # the partial derivatives did not fit the graph budget
            adjoints, steps = {}, []
    kept_set = set(kept)
    nodes = [{"id": n, "op": g.op[n], "label": _label(g, n, names), "expression": expressions[n],
              "shape": [], "value": tensor_json(g.values[n]),
              "adjoint": tensor_json(adjoints.get(n))} for n in kept]
    edges = [{"source": a, "target": n, "argnum": i}
             for n in kept for i, a in enumerate(g.args[n]) if a in kept_set]
    doc: dict[str, Any] = {
        "schema": SCHEMA_NAME, "version": SCHEMA_VERSION,
        "title": _title(cap, outputs, expressions, len(kept), len(everything)),
        "nodes": nodes, "edges": edges,
        "inputs": [n for n in kept if g.op[n] == "input"], "outputs": outputs,
        "truncated": truncated}
    if steps:
        doc["backward"] = [
            {"node": s.node, "adjoint": tensor_json(s.adjoint),
             "contributions": [{"to": c.to, "argnum": c.argnum, "value": tensor_json(c.value),
                                "total": tensor_json(c.total)}
                               for c in s.contributions if c.to in kept_set]}
            for s in steps if s.node in kept_set]
    return doc


def nearest_ancestors(g: Graph, outputs: Sequence[int], limit: int) -> list[int]:
    """Up to ``limit`` ancestors of ``outputs``, nearest first (breadth first), in id order."""
    seen: set[int] = set()
    queue = deque(outputs)
    while queue and len(seen) < limit:
        node = queue.popleft()
        if node in seen:
            continue
        seen.add(node)
        queue.extend(a for a in g.args[node] if a not in seen)
    return sorted(seen)


def _input_name(name: str, index: tuple[int, ...] | None) -> str:
    """``x`` for a scalar parameter, ``w_0`` / ``W_1,2`` for array elements (as in formulas)."""
    return name if index is None else f"{name}_{','.join(str(i) for i in index)}"


def _label(g: Graph, node: int, names: dict[int, str]) -> str:
    op = g.op[node]
    if op == "input":
        return names.get(node) or str(g.params[node][0])
    if op == "const":
        value = g.values[node]
        return str(value) if isinstance(value, bool) else f"{float(value):.6g}"
    params = g.params[node]
    return f"{op}({', '.join(f'{float(p):.6g}' for p in params)})" if params else op


def _expressions(cap: Capture, kept: list[int], outputs: list[int]) -> dict[int, str]:
    """A short formula per kept node: only where its expression tree is small (cheap to print)."""
    sizes = tree_sizes(cap.graph, kept)
    small = [n for n in kept if sizes[n] <= EXPRESSION_MAX_TREE]
    text = {n: "" for n in kept}
    if small:
        for n, expr in zip(small, to_sympy(cap.graph, small, symbols_of(cap))):
            s = str(expr)
            text[n] = s if len(s) <= EXPRESSION_MAX_CHARS else ""
    return text


def _title(cap: Capture, outputs: list[int], expressions: dict[int, str], kept: int,
           total: int) -> str:
    head = f"{cap.name}({', '.join(p.name for p in cap.params)})"
    if cap.output.shape == () and expressions.get(outputs[0]):
        head += f" = {expressions[outputs[0]]}"
    elif cap.output.shape != ():
        head += f": {len(outputs)} outputs, shape {tuple(cap.output.shape)}"
    if kept < total:
        head += f" (showing the {kept:,} nodes nearest the output, of {total:,})"
    return head
