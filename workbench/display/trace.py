"""``wb.trace(func, *example_args)``: the expressions a function was traced into.

>>> import numpy as np, workbench as wb
>>> t = wb.trace(lambda x, y: np.sin(x) * y + x ** 2, 0.5, 2.0)
>>> t.expr
x**2 + y*sin(x)
>>> print(t.size_line())
size: f 8 tree nodes before CSE, 4 operations after
>>> t._repr_latex_()
'$\\\\displaystyle f(x, y) = x^{2} + y \\\\sin{\\\\left(x \\\\right)}$'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sympy

from .capture import DEFAULT_EXAMPLES, Capture, capture
from .formula import Formula, build_formula, guard_conditions, in_user_symbols, parameter_symbols
from .printing import convention_notes, function_latex
from .printing import latex as to_latex
from .printing import text as to_text


class TraceView:
    """A traced function as formulas: ``.expr`` (SymPy), ``.latex()``, sizes, guards."""

    def __init__(self, cap: Capture, formula: Formula) -> None:
        self.capture = cap
        self.formula = formula
        self.expr = formula.expr
        self.symbols = parameter_symbols(cap)
        self.guards = guard_conditions(cap)

    @property
    def notes(self) -> list[str]:
        return self.formula.notes + [c.text for c in convention_notes(*self.formula.shown())]

    def _head(self) -> str:
        names = ", ".join(p.name for p in self.capture.params)
        return f"{self.capture.name}({names})"

    def size_line(self) -> str:
        return f"size: {self.capture.name} {self.formula.size}"

    def latex(self) -> str:
        head = f"{function_latex(self.capture.name)}" \
               f"({', '.join(to_latex(s) for s in self._params())})"
        text = f"{head} = {self.formula.latex()}"
        if self.guards:
            text += r" \quad \text{where } " + r",\ ".join(to_latex(g) for g in self.guards)
        notes = [c.latex for c in convention_notes(*self.formula.shown())]
        if notes:
            text = r"\begin{gathered}" + r" \\ ".join([text, *notes]) + r"\end{gathered}"
        return text

    def _params(self) -> list[Any]:
        return [in_user_symbols(self.capture, sympy.Symbol(p.name, real=True))
                for p in self.capture.params]

    def _repr_latex_(self) -> str:
        return rf"$\displaystyle {self.latex()}$"

    def __repr__(self) -> str:
        lines = [f"{self._head()} = {self.formula.text()}"]
        if self.guards:
            lines.append("traced where: " + ", ".join(to_text(g) for g in self.guards))
        lines.append(self.size_line())
        lines.extend(self.notes)
        return "\n".join(lines)


def trace(func: Callable | str | Any, *example_args: Any,
          variables: Sequence[Any] | None = None) -> TraceView:
    """Trace ``func`` at ``example_args`` and show the expressions it computes.

    ``func`` may be a text or a SymPy expression (``variables`` sets their parameter order).
    With no example arguments, every parameter is a scalar symbol and the function is traced at
    the points ``0.5, 0.625, ...`` (Python control flow is taken there). The result displays as
    LaTeX in Jupyter; ``.expr`` is the SymPy expression (a ``sympy.Array`` for array outputs).
    """
    cap = capture(func, example_args, order=0, transform="trace", variables=variables)
    return TraceView(cap, build_formula(cap, cap.output, simplify_it=False))


__all__ = ["trace", "TraceView", "DEFAULT_EXAMPLES"]
