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

from collections.abc import Callable
from typing import Any

import sympy

from .capture import DEFAULT_EXAMPLES, Capture, capture
from .formula import Formula, build_formula, guard_conditions, parameter_symbols


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
        return self.formula.notes

    def _head(self) -> str:
        names = ", ".join(p.name for p in self.capture.params)
        return f"{self.capture.name}({names})"

    def size_line(self) -> str:
        return f"size: {self.capture.name} {self.formula.size}"

    def latex(self) -> str:
        text = rf"{self.capture.name}({', '.join(sympy.latex(s) for s in self._params())}) = " \
               + self.formula.latex()
        if self.guards:
            text += r" \quad \text{where } " + r",\ ".join(sympy.latex(g) for g in self.guards)
        return text

    def _params(self) -> list[Any]:
        return [sympy.Symbol(p.name) for p in self.capture.params]

    def _repr_latex_(self) -> str:
        return rf"$\displaystyle {self.latex()}$"

    def __repr__(self) -> str:
        lines = [f"{self._head()} = {self.formula.text()}"]
        if self.guards:
            lines.append("traced where: " + ", ".join(str(g) for g in self.guards))
        lines.append(self.size_line())
        lines.extend(self.notes)
        return "\n".join(lines)


def trace(func: Callable, *example_args: Any) -> TraceView:
    """Trace ``func`` at ``example_args`` and show the expressions it computes.

    With no example arguments, every parameter is a scalar symbol and the function is traced at
    the points ``0.5, 0.625, ...`` (Python control flow is taken there). The result displays as
    LaTeX in Jupyter; ``.expr`` is the SymPy expression (a ``sympy.Array`` for array outputs).
    """
    cap = capture(func, example_args, order=0, transform="trace")
    return TraceView(cap, build_formula(cap, cap.output, simplify_it=False))


__all__ = ["trace", "TraceView", "DEFAULT_EXAMPLES"]
