"""The JSON document of ``wb.graph`` (``GraphView.to_json()``): schema version 1.

MIME type ``application/vnd.workbench.graph+json`` (``GraphView._repr_mimebundle_`` sends it, so
the JupyterLab extension can draw the graph). The document is an object::

    {
      "schema": "workbench.graph",        # always this string
      "version": 1,                       # bumped on any incompatible change
      "title": "f(x) = x*sin(x)",         # text
      "nodes": [                          # ancestors of the outputs, in topological order
        {"id": 0,                         # integer, unique (not necessarily 0, 1, 2, ...)
         "op": "input",                   # "input" | "const" | an op-table name ("mul", "sin"...)
         "label": "x",                    # drawn in the node: the input's name (x, w_0 for an
                                          # element of an array parameter w), the op's name,
                                          # or the constant's value
         "expression": "x",               # readable formula of the node's value ("" if too big)
         "shape": [],                     # [] for a scalar (the traced graph is scalar)
         "value": 0.5,                    # forward value: a number, nested lists, or null
         "adjoint": 0.918}                # d output / d node after the backward pass, or null
      ],                                  # (null: no gradient reaches it, or no scalar output)
      "edges": [                          # data flow: source's value is argument argnum of target
        {"source": 0, "target": 1, "argnum": 0}
      ],
      "inputs": [0],                      # ids of the input nodes
      "outputs": [2],                     # ids of the output nodes, in the output's order
      "truncated": false,                 # true: only the nodes nearest the output are kept
      "backward": [...]                   # optional: the backward pass step by step, as in the
    }                                     # tape document (workbench.tape.schema)

Numbers that JSON cannot hold are the strings ``"nan"``, ``"inf"`` and ``"-inf"``. Labels,
expressions and the title are text: renderers must show them as text, never as HTML.
:data:`SCHEMA` is the same description as a JSON Schema (draft 2020-12) that the tests validate
documents against.

>>> SCHEMA["properties"]["schema"]["const"], MIME_TYPE
('workbench.graph', 'application/vnd.workbench.graph+json')
"""

from __future__ import annotations

from typing import Any

from ..tape.schema import BACKWARD_SCHEMA, EDGES_SCHEMA, TENSOR_SCHEMA

MIME_TYPE = "application/vnd.workbench.graph+json"
SCHEMA_NAME = "workbench.graph"
SCHEMA_VERSION = 1

_IDS: dict[str, Any] = {"type": "array", "items": {"type": "integer", "minimum": 0}}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "workbench computational graph",
    "type": "object",
    "required": ["schema", "version", "title", "nodes", "edges", "inputs", "outputs",
                 "truncated"],
    "additionalProperties": False,
    "$defs": {"tensor": TENSOR_SCHEMA},
    "properties": {
        "schema": {"const": SCHEMA_NAME},
        "version": {"const": SCHEMA_VERSION},
        "title": {"type": "string"},
        "nodes": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "op", "label", "expression", "shape", "value", "adjoint"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "integer", "minimum": 0},
                "op": {"type": "string"},
                "label": {"type": "string"},
                "expression": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "value": {"$ref": "#/$defs/tensor"},
                "adjoint": {"$ref": "#/$defs/tensor"},
            },
        }},
        "edges": EDGES_SCHEMA,
        "inputs": _IDS,
        "outputs": _IDS,
        "truncated": {"type": "boolean"},
        "backward": BACKWARD_SCHEMA,
    },
}
