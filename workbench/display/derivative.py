"""``wb.derivative(func, *example_args, argnums=0, order=1)``: the readable, simplified derivative.

The derivative is the graph's own reverse mode (``vjp_nodes``, twice for ``order=2``), turned
into SymPy with the function's parameter names and simplified within the budgets of
``wb.config`` (``symbolic.simplify``). With no example arguments every parameter is a scalar
symbol, and the function is traced at ``x = 0.5`` (then ``0.625, 0.75, ...`` for the next
parameters): Python control flow (``if x > 0``) is taken at that point, and the conditions under
which the result holds are listed in ``.guards``.

>>> import numpy as np, workbench as wb
>>> d = wb.derivative(lambda x: x ** np.sin(x))
>>> d.expr
x**sin(x)*(log(x)*cos(x) + sin(x)/x)
>>> d._repr_latex_()[:40]
'$\\\\displaystyle \\\\frac{d f}{d x} = x^{\\\\sin'
>>> wb.derivative(lambda w: (w ** 2).sum(), np.ones(2)).expr
[2*w_0, 2*w_1]
>>> wb.derivative(lambda x, y: x * np.exp(y), argnums=1, order=2).expr
x*exp(y)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy

from .capture import Capture, capture
from .formula import Formula, build_formula, guard_conditions, parameter_symbols


class Derivative:
    """A derivative as a formula: ``.expr`` (SymPy; a tuple for several ``argnums``; a
    ``sympy.Array`` for array parameters), ``.raw`` (before simplification), ``.symbols``
    (parameter name -> symbol), ``.guards``, ``.latex()``, and the size meter."""

    def __init__(self, cap: Capture, formulas: list[Formula], forward: Formula,
                 several: bool) -> None:
        self.capture = cap
        self.formulas = formulas
        self.forward = forward
        self._several = several
        exprs = [f.expr for f in formulas]
        raws = [f.raw for f in formulas]
        self.expr = tuple(exprs) if several else exprs[0]
        self.raw = tuple(raws) if several else raws[0]
        self.symbols = parameter_symbols(cap)
        self.guards = guard_conditions(cap)
        self.order = cap.order

    @property
    def notes(self) -> list[str]:
        return [n for f in self.formulas for n in f.notes]

    def label(self, pos: int, latex: bool) -> str:
        """The name of the derivative w.r.t. parameter ``pos``: df/dx, ∂f/∂x, ∇_w f, d²f/dx²..."""
        p = self.capture.params[pos]
        f = self.capture.name
        single = len([q for q in self.capture.params if q.nodes is not None]) == 1
        if p.is_scalar:
            d = "d" if single else r"\partial"
            if not latex:
                d = "d" if single else "∂"
                return f"{d}{f}/{d}{p.name}" if self.order == 1 else f"{d}²{f}/{d}{p.name}²"
            name = sympy.latex(sympy.Symbol(p.name))
            if self.order == 1:
                return rf"\frac{{{d} {f}}}{{{d} {name}}}"
            return rf"\frac{{{d}^{{2}} {f}}}{{{d} {name}^{{2}}}}"
        name = sympy.latex(sympy.Symbol(p.name))
        if not latex:
            return f"∇_{p.name} {f}" if self.order == 1 else f"∇²_{p.name} {f}"
        return rf"\nabla_{{{name}}} {f}" if self.order == 1 else rf"\nabla^{{2}}_{{{name}}} {f}"

    def size_line(self) -> str:
        parts = [f"{self.capture.name} {self.forward.size}"]
        for pos, f in zip(self.capture.wrt, self.formulas):
            parts.append(f"{self.label(pos, latex=False)} {f.size}")
        return "size: " + "; ".join(parts)

    def latex(self) -> str:
        lines = [rf"{self.label(pos, True)} = {f.latex()}"
                 for pos, f in zip(self.capture.wrt, self.formulas)]
        text = lines[0] if len(lines) == 1 else r"\begin{gathered}" + r" \\ ".join(lines) + \
            r"\end{gathered}"
        if self.guards:
            text += r" \quad \text{where } " + r",\ ".join(sympy.latex(g) for g in self.guards)
        return text

    def _repr_latex_(self) -> str:
        return rf"$\displaystyle {self.latex()}$"

    def __repr__(self) -> str:
        lines = [f"{self.label(pos, False)} = {f.text()}"
                 for pos, f in zip(self.capture.wrt, self.formulas)]
        if self.guards:
            lines.append("traced where: " + ", ".join(str(g) for g in self.guards))
        lines.append(self.size_line())
        lines.extend(self.notes)
        return "\n".join(lines)


def derivative(func: Callable, *example_args: Any, argnums: int | tuple[int, ...] = 0,
               order: int = 1, simplify: bool = True) -> Derivative:
    """The derivative of ``func`` w.r.t. the arguments ``argnums``, simplified and readable.

    ``func`` must return a scalar. ``order=2`` gives the second derivative (the Hessian for an
    array argument). ``example_args`` fix the shapes of array arguments and the point where
    control flow is taken; with none, every parameter is a scalar symbol and the function is
    traced at 0.5 (0.625, ... for the next parameters). ``simplify=False`` shows the derivative
    as traced. See the module docstring for examples.
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        from ..errors import ArgnumsError

        raise ArgnumsError(f"derivative: order must be a positive int (1: the gradient, 2: the "
                           f"second derivative), got {order!r}; for the function itself use "
                           "wb.trace(f)")
    cap = capture(func, example_args, argnums=argnums, order=order, transform="derivative")
    forward = build_formula(cap, cap.output, simplify_it=False)
    formulas = [build_formula(cap, nodes, simplify_it=simplify) for nodes in cap.derivatives]
    return Derivative(cap, formulas, forward, several=isinstance(argnums, tuple))
