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
                                          # or an array op ("einsum", "sum", "index", "reshape"...)
         "label": "x",                    # drawn in the node: the input's name (x, w_0 for an
                                          # element of an array parameter w), the op's name,
                                          # or the constant's value
         "expression": "x",               # readable formula of the node's value ("" if too big)
         "shape": [],                     # [] for a scalar; an array op's shape ([64, 128])
         "value": 0.5,                    # forward value: a number, nested lists, or null
         "adjoint": 0.918,                # d output / d node after the backward pass, or null
                                          # (null: no gradient reaches it, no scalar output,
                                          # or an array too big to include)
         "value_summary": "mean 0.12, min -1, max 2.3",   # optional: text in place of a big
         "adjoint_summary": "..."}        # value / adjoint that is null (array level)
      ],
      "edges": [                          # data flow: source's value is argument argnum of target
        {"source": 0, "target": 1, "argnum": 0}
      ],
      "inputs": [0],                      # ids of the input nodes
      "outputs": [2],                     # ids of the output nodes, in the output's order
      "truncated": false,                 # true: only the nodes nearest the output are kept
      "level": "arrays",                  # optional: "arrays" (a node per array op) or
                                          # "elements" (a node per scalar op); absent: elements
      "backward": [...]                   # optional: the backward pass step by step, as in the
    }                                     # tape document (workbench.tape.schema)

Array-level documents (``wb.graph`` of a function of float arrays) have one node per array
operation (``x @ W``, ``sum(axis=1)``, ``x[:, 0]``) with its shape. Values and adjoints of more
than 100 elements are null there, with a short text in ``value_summary`` / ``adjoint_summary``;
the backward steps do the same (``adjoint_summary`` on a step, ``value_summary`` and
``total_summary`` on a contribution). The optional fields were added compatibly: readers that
do not know them see null values.

Numbers that JSON cannot hold are the strings ``"nan"``, ``"inf"`` and ``"-inf"``. Labels,
expressions and the title are text: renderers must show them as text, never as HTML.
:data:`SCHEMA` is the same description as a JSON Schema (draft 2020-12) that the tests validate
documents against.

>>> SCHEMA["properties"]["schema"]["const"], MIME_TYPE
('workbench.graph', 'application/vnd.workbench.graph+json')
"""

from __future__ import annotations

import copy
from typing import Any

from ..tape.schema import BACKWARD_SCHEMA, EDGES_SCHEMA, TENSOR_SCHEMA

MIME_TYPE = "application/vnd.workbench.graph+json"
SCHEMA_NAME = "workbench.graph"
SCHEMA_VERSION = 1

_IDS: dict[str, Any] = {"type": "array", "items": {"type": "integer", "minimum": 0}}
_TEXT: dict[str, Any] = {"type": "string"}


def _backward_with_summaries() -> dict[str, Any]:
    """The tape's ``backward`` list, plus the optional summaries of big arrays."""
    schema = copy.deepcopy(BACKWARD_SCHEMA)
    step = schema["items"]["properties"]
    step["adjoint_summary"] = _TEXT
    contribution = step["contributions"]["items"]["properties"]
    contribution["value_summary"] = contribution["total_summary"] = _TEXT
    return schema


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
                "value_summary": _TEXT,
                "adjoint_summary": _TEXT,
            },
        }},
        "edges": EDGES_SCHEMA,
        "inputs": _IDS,
        "outputs": _IDS,
        "truncated": {"type": "boolean"},
        "level": {"enum": ["arrays", "elements"]},
        "backward": _backward_with_summaries(),
    },
}
