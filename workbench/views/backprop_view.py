"""``wb.backprop(f, *args)``: the numeric tape of ``f`` at ``args``, forward and backward, step
by step, the way backprop is taught.

The tape is recorded by ``wb.tape.record`` inside :func:`~workbench.tape.core.recording_steps`,
so its backward pass keeps every step: the row processed, its (final) adjoint, and what it added
to each argument's adjoint. The view shows the forward table (constants and data operands in
place: ``mul(3, #1)``, ``matmul(X(3x5), #0)``), then the backward steps; ``.widget()`` steps
through both on a drawing of the graph.

>>> import numpy as np, workbench as wb
>>> view = wb.backprop(lambda x: np.sin(x) * x, 0.5)
>>> print(view)
backprop of f at x = 0.5: value 0.239713, gradient 0.918217
#  op     inputs  shape  value     adjoint
0  input  (x)     ()     0.5       0.918217
1  sin    #0      ()     0.479426  0.5
2  mul    #1, #0  ()     0.239713  1
backward:
  1. #2 mul: adjoint 1 (seed); #1 += 0.5 -> 0.5; #0 += 0.4794 -> 0.4794
  2. #1 sin: adjoint 0.5; #0 += 0.4388 -> 0.9182
  3. #0 x: adjoint 0.9182
"""

from __future__ import annotations

import copy
import html
from collections.abc import Callable
from typing import Any

import numpy as np

from ..display.capture import function_name, parameter_names
from ..errors import InputTypeError
from ..tape.core import Tape, recording_steps
from ..tape.schema import MIME_TYPE
from ..tape.transforms import record
from ..tape.view import html_table, rows, text_table
from ..transforms.grad import check_argnums_type, normalize_argnums
from .frames import Frame, frame_boxes, frames
from .svg import render_svg, short_number

#: The static HTML draws the graph only up to this many tape rows (the table always).
MAX_DRAWN_ROWS = 300


def backprop(f: Callable, *args: Any, argnums: int | tuple[int, ...] = 0,
             **kwargs: Any) -> BackpropView:
    """Run ``f(*args, **kwargs)`` on the numeric tape and show forward and backward passes.

    ``argnums`` picks the differentiated arguments, as in ``wb.grad`` (floats, arrays or pytrees
    of them); other array arguments are data and appear by their parameter name in the rows.

    >>> import numpy as np, workbench as wb
    >>> X = np.arange(6.0).reshape(3, 2)
    >>> view = wb.backprop(lambda w, X: np.sum(np.tanh(X @ w)), np.ones(2), X)
    >>> [r[2] for r in view.rows()]
    ['(w)', 'X(3x2), #0', '#1', '#2']
    """
    if not callable(f):
        raise InputTypeError(f"wb.backprop: expected a function, got {type(f).__name__}; "
                             "call wb.backprop(f, *args) with the function first")
    check_argnums_type(argnums)
    positions = normalize_argnums(argnums, len(args), "wb.backprop")
    names = parameter_names(f, len(args))
    with recording_steps():
        tape = record(f, *args, argnums=argnums, **kwargs)
    for pos, (name, arg) in enumerate(zip(names, args)):
        if type(arg).__module__.startswith("torch") and hasattr(arg, "detach"):
            arg = arg.detach().cpu().numpy()  # the tape sees torch data as numpy views of it
        if pos not in positions and isinstance(arg, np.ndarray) and arg.ndim > 0:
            tape.name_data(arg, name)
    return BackpropView(tape, function_name(f), [names[p] for p in positions])


class BackpropView:
    """A recorded tape with its backward steps: MIME JSON, static HTML, text, and a stepper."""

    def __init__(self, tape: Tape, name: str = "f", wrt: list[str] | None = None) -> None:
        self.tape = tape
        self.name = name
        self.wrt = wrt or [tape.entries[i].label for i in tape.inputs]
        self._doc = tape.to_json()
        self._rows = rows(tape)

    # ----- data -----
    def to_json(self) -> dict[str, Any]:
        """The tape document with its ``backward`` steps (``workbench.tape.schema``), a copy."""
        return copy.deepcopy(self._doc)

    def rows(self) -> list[list[str]]:
        """The forward table: #, op, inputs (rows, constants, data), shape, value, adjoint."""
        return [list(r) for r in self._rows]

    def names(self) -> dict[int, str]:
        """How the steps refer to each row: ``#0 x``, ``#2 mul``."""
        return {n["id"]: f"#{n['id']} {n['label'] if n['op'] == 'input' else n['op']}"
                for n in self._doc["nodes"]}

    def labels(self) -> dict[int, str]:
        """What the drawing shows in each box: ``#0 x``, ``#2 mul(3, #1)``."""
        ops = {n["id"]: n["op"] for n in self._doc["nodes"]}  # the op without its params
        return {int(r[0]): f"#{r[0]} {r[2][1:-1]}" if r[1] == "input"
                else f"#{r[0]} {ops[int(r[0])]}({r[2]})" for r in self._rows}

    def frames(self) -> list[Frame]:
        """The forward steps, then the backward steps, as a stepper shows them."""
        return frames(self._doc, self.names())

    def svg(self, frame: Frame | None = None) -> str:
        """The graph of the tape at ``frame`` (default: the end, every adjoint known)."""
        frame = frame if frame is not None else self.frames()[-1]
        return render_svg(frame_boxes(self._doc, frame, self.labels()),
                          [(e["source"], e["target"], e["argnum"]) for e in self._doc["edges"]],
                          self._doc["inputs"])

    # ----- views -----
    def headline(self) -> str:
        tape = self.tape
        at = ", ".join(f"{tape.entries[i].label} = {short_number(self._doc['nodes'][i]['value'])}"
                       for i in tape.inputs)
        text = f"backprop of {self.name} at {at}: value {_plain(tape.value)}"
        if self._doc["output"] is not None:
            text += f", gradient {_plain(tape.gradient)}"
        else:
            text += " (it does not depend on the differentiated arguments: no backward pass)"
        return text

    def step_lines(self) -> list[str]:
        """One line per backward step: the row, its adjoint, and each adjoint it changed."""
        names = self.names()
        lines = []
        for j, step in enumerate(self._doc.get("backward", [])):
            parts = [f"{names[step['node']]}: adjoint {short_number(step['adjoint'])}"
                     + (" (seed)" if j == 0 else "")]
            parts += [f"#{c['to']} += {short_number(c['value'])} -> {short_number(c['total'])}"
                      for c in step["contributions"]]
            lines.append(f"{j + 1}. " + "; ".join(parts))
        return lines

    def __str__(self) -> str:
        lines = [self.headline(), text_table(self.tape)]
        steps = self.step_lines()
        if steps:
            lines.append("backward:")
            lines += ["  " + line for line in steps]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(line.split('. ', 1)[1])}</li>"
                        for line in self.step_lines())
        parts = ['<div class="wb-backprop-view" style="font-family: monospace">',
                 f"<div>{html.escape(self.headline())}</div>",
                 "<div><b>Forward pass</b></div>", html_table(self.tape)]
        if items:
            parts += ["<div><b>Backward pass</b> (each step adds to the adjoints of its "
                      "arguments)</div>", f'<ol class="wb-backward-steps">{items}</ol>']
        if len(self.tape) <= MAX_DRAWN_ROWS:
            parts.append(f'<div style="overflow: auto; max-height: 640px">{self.svg()}</div>')
        parts.append("</div>")
        return "".join(parts)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {MIME_TYPE: self.to_json(), "text/html": self._repr_html_(),
                "text/plain": str(self)}

    def widget(self) -> Any:
        """An ipywidgets stepper over the forward then backward steps (imports ipywidgets)."""
        from .stepper import BackpropStepper

        return BackpropStepper(self)


def _plain(value: Any) -> str:
    """A value or gradient (pytrees included) in a few characters."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_plain(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return str(value)
    if array.ndim == 0:
        return f"{array.item():.6g}"
    return np.array2string(array, precision=4, threshold=6, separator=", ").replace("\n", "")
