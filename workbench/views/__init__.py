"""Views for teaching: ``wb.graph`` (the traced computational graph) and ``wb.backprop`` (the
numeric tape, forward and backward step by step).

Both are display objects: in JupyterLab with the workbench extension they render through their
MIME types (``application/vnd.workbench.graph+json``, ``application/vnd.workbench.tape+json``);
elsewhere as a static HTML/SVG drawing, and as text. ``wb.backprop(...).widget()`` is an
ipywidgets stepper for front-ends without the extension.

Modules: ``graph_schema`` (the graph JSON), ``reverse`` (adjoints over a traced graph, step by
step), ``graph_view`` (``wb.graph``), ``backprop_view`` (``wb.backprop``), ``frames`` (the states a stepper
shows), ``layout`` and ``svg`` (the drawing), ``stepper`` (the widget; imports ipywidgets).
"""

from __future__ import annotations

from .backprop_view import BackpropView, backprop
from .graph_view import GraphView, graph

__all__ = ["graph", "backprop", "GraphView", "BackpropView"]
