"""The JSON export of a tape (``Tape.to_json()``): schema version 1.

MIME type ``application/vnd.workbench.tape+json`` (``Tape._repr_mimebundle_`` sends it, so a
JupyterLab renderer can draw the graph). The document is an object::

    {
      "schema": "workbench.tape",        # always this string
      "version": 1,                       # bumped on any incompatible change
      "nodes": [                          # one per tape entry, in execution order
        {"id": 0,                         # the entry number (#0, #1, ... in the text view)
         "op": "input",                   # op name: the op table's, or sum/amax/amin/matmul/
                                          # reshape/transpose/broadcast_to/getitem/scatter_add/
                                          # concatenate/cumsum
         "label": "x",                    # the argument name for inputs, else ""
         "shape": [2],                    # the value's shape ([] for a scalar)
         "dtype": "float64",
         "params": {"axis": null},        # static params of the op (JSON values; others as text)
         "value": [0.5, 1.0],             # forward value: a number or nested lists
         "adjoint": [1.0, 1.0],           # d output / d value after backward; null if no
                                          # gradient reached this entry or backward never ran
         "truncated": false}              # true: value/adjoint left out (more than 1000 elements)
      ],
      "edges": [                          # data flow: source's value is argument argnum of target
        {"source": 0, "target": 1, "argnum": 0}
      ],
      "inputs": [0],                      # ids of the input nodes, in argument order
      "output": 3,                        # id of the differentiated output (null before backward)
      "backward": [                       # optional (wb.backprop): the backward pass step by step
        {"node": 3,                       # the entry processed; its adjoint is final here
         "adjoint": 1.0,                  # that adjoint (the seed 1.0 at the first step)
         "contributions": [               # one per argument that is a tape entry
           {"to": 2, "argnum": 0,         # the argument's entry and position
            "value": [1.0, 1.0],          # adjoint * d node / d argument, in the argument's shape
            "total": [1.0, 1.0]}]}        # the argument's adjoint right after adding it
      ]
    }

Step values past 1000 elements are null. Renderers show, at step k, each entry's latest
``total`` from steps <= k (and the output's seed from step 0). The ``backward`` field was added
compatibly: version 1 documents without it stay valid.

Numbers that JSON cannot hold are the strings ``"nan"``, ``"inf"`` and ``"-inf"``. Labels are
text: renderers must show them as text, never as HTML. :data:`SCHEMA` is the same description as
a JSON Schema (draft 2020-12) that the tests validate exports against.

>>> SCHEMA["properties"]["version"]["const"]
1
"""

from __future__ import annotations

from typing import Any

MIME_TYPE = "application/vnd.workbench.tape+json"
SCHEMA_NAME = "workbench.tape"
SCHEMA_VERSION = 1

# A number, or one JSON cannot hold; a tensor is one of those or nested lists (null: left out).
_NUMBER: dict[str, Any] = {"anyOf": [{"type": "number"}, {"enum": ["nan", "inf", "-inf"]}]}
TENSOR_SCHEMA: dict[str, Any] = {"anyOf": [_NUMBER, {"type": "array", "items": {"$ref": "#/$defs/tensor"}},
                                           {"type": "null"}]}
# The data-flow edges: the same in the tape and the graph documents.
EDGES_SCHEMA: dict[str, Any] = {"type": "array", "items": {
    "type": "object",
    "required": ["source", "target", "argnum"],
    "additionalProperties": False,
    "properties": {"source": {"type": "integer", "minimum": 0},
                   "target": {"type": "integer", "minimum": 0},
                   "argnum": {"type": "integer", "minimum": 0}},
}}

#: The optional ``backward`` list, shared with the graph document (``workbench.views``).
BACKWARD_SCHEMA: dict[str, Any] = {"type": "array", "items": {
    "type": "object",
    "required": ["node", "adjoint", "contributions"],
    "additionalProperties": False,
    "properties": {
        "node": {"type": "integer", "minimum": 0},
        "adjoint": {"$ref": "#/$defs/tensor"},
        "contributions": {"type": "array", "items": {
            "type": "object",
            "required": ["to", "argnum", "value", "total"],
            "additionalProperties": False,
            "properties": {"to": {"type": "integer", "minimum": 0},
                           "argnum": {"type": "integer", "minimum": 0},
                           "value": {"$ref": "#/$defs/tensor"},
                           "total": {"$ref": "#/$defs/tensor"}},
        }},
    },
}}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "workbench tape graph",
    "type": "object",
    "required": ["schema", "version", "nodes", "edges", "inputs", "output"],
    "additionalProperties": False,
    "$defs": {"tensor": TENSOR_SCHEMA},
    "properties": {
        "schema": {"const": SCHEMA_NAME},
        "version": {"const": SCHEMA_VERSION},
        "nodes": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "op", "label", "shape", "dtype", "params", "value", "adjoint",
                         "truncated"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "integer", "minimum": 0},
                "op": {"type": "string"},
                "label": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "dtype": {"type": "string"},
                "params": {"type": "object"},
                "value": {"$ref": "#/$defs/tensor"},
                "adjoint": {"$ref": "#/$defs/tensor"},
                "truncated": {"type": "boolean"},
            },
        }},
        "edges": EDGES_SCHEMA,
        "inputs": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "output": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]},
        "backward": BACKWARD_SCHEMA,
    },
}
