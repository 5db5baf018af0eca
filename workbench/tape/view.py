"""Views of a tape for teaching: a text table, an HTML table, and the JSON graph (``schema.py``).

>>> import numpy as np, workbench as wb
>>> tape = wb.tape.record(lambda x: np.sin(x) * x, 0.5)
>>> print(tape)
#  op     inputs  shape  value     adjoint
0  input  (x)     ()     0.5       0.918217
1  sin    #0      ()     0.479426  0.5
2  mul    #1, #0  ()     0.239713  1

Operands that are not tape rows (constants, data arrays) are shown in place: a scalar by its
value, an array by the name :meth:`Tape.name_data` gave it, or ``const`` and its shape:

>>> X = np.ones((3, 2))
>>> tape = wb.tape.record(lambda w, X: np.sum(3.0 * (X @ w)), np.ones(2), X)
>>> tape.name_data(X, "X")
>>> [row[2] for row in rows(tape)]
['(w)', 'X(3x2), #0', '3, #1', '#2']
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from .core import Entry, Step, Tape, raw
from .schema import SCHEMA_NAME, SCHEMA_VERSION

MAX_JSON_ELEMENTS = 1000  # larger values are left out of the JSON (``truncated``)


def _short(value: Any) -> str:
    if value is None:
        return ""
    array = np.asarray(raw(value))
    if array.ndim == 0:
        return f"{array.item():.6g}" if array.dtype.kind == "f" else str(array.item())
    return np.array2string(array, precision=4, threshold=6, edgeitems=2, separator=", ",
                           max_line_width=10_000).replace("\n", "")


def _inputs(tape: Tape, entry: Entry) -> str:
    if entry.op == "input":
        return f"({entry.label})" if entry.label else ""
    rows_of = dict(entry.parents)
    return ", ".join(f"#{rows_of[i]}" if i in rows_of else operand_text(tape, value)
                     for i, value in enumerate(entry.args))


def operand_text(tape: Tape, value: Any) -> str:
    """A constant or data operand in a row: ``3``, ``X(3x5)`` (named), ``const(3x5)``, ``mask(3)``."""
    array = np.asarray(raw(value))
    name = tape.data_name(value)
    dims = "x".join(str(n) for n in array.shape)
    if name:
        return f"{name}({dims})" if dims else name
    if array.ndim == 0:
        return _short(array)
    return f"{'mask' if array.dtype == np.bool_ else 'const'}({dims})"


def _params(entry: Entry) -> str:
    return ", ".join(f"{k}={_param_text(v)}" for k, v in entry.params.items())


def _param_text(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def rows(tape: Tape) -> list[list[str]]:
    """One row of strings per entry: #, op (with params), inputs, shape, value, adjoint."""
    out = []
    for e in tape.entries:
        params = _params(e)
        op = f"{e.op}({params})" if params else e.op
        out.append([str(e.index), op, _inputs(tape, e), str(np.shape(raw(e.value))), _short(e.value),
                    _short(e.adjoint)])
    return out


HEADER = ["#", "op", "inputs", "shape", "value", "adjoint"]


def text_table(tape: Tape) -> str:
    cells = [HEADER] + rows(tape)
    widths = [max(len(r[i]) for r in cells) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def html_table(tape: Tape) -> str:
    head = "".join(f"<th>{h}</th>" for h in HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows(tape))
    return ("<table class=\"wb-tape\" style=\"font-family: monospace\">"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


# ----- JSON -----
def _number(x: float) -> float | str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def tensor_json(value: Any) -> Any:
    """A number or array (tape values included) as JSON: nested lists, "nan"/"inf" as strings."""
    return _tensor(value)


def _tensor(value: Any) -> Any:
    if value is None:
        return None
    array = np.asarray(raw(value))
    if array.dtype == np.bool_:
        return array.astype(float).tolist()
    if array.ndim == 0:
        return _number(float(array))
    return [_tensor(row) for row in array]


def _json_param(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, (np.integer, np.floating)):
        return _json_param(value.item())
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, np.integer)) for v in value):
        return [int(v) for v in value]
    return repr(value)


def to_json(tape: Tape) -> dict[str, Any]:
    nodes, edges = [], []
    for e in tape.entries:
        value = np.asarray(raw(e.value))
        truncated = value.size > MAX_JSON_ELEMENTS
        nodes.append({
            "id": e.index, "op": e.op, "label": e.label, "shape": list(value.shape),
            "dtype": str(value.dtype),
            "params": {k: _json_param(v) for k, v in e.params.items()},
            "value": None if truncated else _tensor(value),
            "adjoint": None if truncated else _tensor(e.adjoint),
            "truncated": truncated,
        })
        edges += [{"source": p, "target": e.index, "argnum": argnum} for argnum, p in e.parents]
    doc = {"schema": SCHEMA_NAME, "version": SCHEMA_VERSION, "nodes": nodes, "edges": edges,
           "inputs": list(tape.inputs), "output": tape.output}
    if tape.steps is not None and tape.output is not None:
        doc["backward"] = [_step_json(step) for step in tape.steps]
    return doc


def _bounded(value: Any) -> Any:
    """JSON of a step's value, or null past MAX_JSON_ELEMENTS elements (like node values)."""
    return None if np.size(raw(value)) > MAX_JSON_ELEMENTS else _tensor(value)


def _step_json(step: Step) -> dict[str, Any]:
    return {"node": step.node, "adjoint": _bounded(step.adjoint),
            "contributions": [{"to": c.to, "argnum": c.argnum, "value": _bounded(c.value),
                               "total": _bounded(c.total)} for c in step.contributions]}
