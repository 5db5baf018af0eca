"""The ``latex`` export target: the simplified derivative formulas, ready for a paper.

The source (``str(result)``, and what ``path=`` writes) is an ``align`` block with comments; in
Jupyter the result renders as mathematics (``_repr_latex_`` / ``_repr_mimebundle_``: the same
rows as an ``aligned`` block, which MathJax and KaTeX typeset, and the source as text/plain).
Names print as names (``\\operatorname{loss}``), kinks as indicators with torch's convention
stated, and a textbook form stands beside the simplified one where it differs.

>>> import numpy as np, workbench as wb
>>> result = wb.export(lambda x: x ** 2 * np.sin(x), target="latex")
>>> print(result.source)
% Derivative of f, exported by workbench (wb.export target="latex").
\\begin{align}
\\frac{d f}{d x} &= x \\left(x \\cos{\\left(x \\right)} + 2 \\sin{\\left(x \\right)}\\right)
\\end{align}
>>> sorted(result._repr_mimebundle_())
['text/latex', 'text/plain']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..display.printing import latex as to_latex
from . import Exported


def formula_rows(derivative) -> list[str]:
    """The ``align`` rows of one derivative: ``label &= formula`` (and ``&= textbook form``
    where it differs), CSE'd assignments where the formula is too big."""
    rows = []
    for pos, f in zip(derivative.capture.wrt, derivative.formulas):
        label = derivative.label(pos, latex=True)
        if f.expr is not None:
            rows.append(rf"{label} &= {to_latex(f.expr)}")
            if f.has_textbook:
                rows.append(rf"&= {to_latex(f.textbook)}")
        elif f.assignments or f.cse_exprs:
            import sympy

            rows += [rf"{to_latex(s)} &= {to_latex(e)}" for s, e in f.assignments]
            result = f.cse_exprs[0] if len(f.cse_exprs) == 1 else sympy.Array(f.cse_exprs)
            rows.append(rf"{label} &= {to_latex(result)}")
        else:
            rows.append(rf"{label} &= \text{{({f.size.ops:,} operations: too large to print)}}")
    return rows


def latex_source(derivative) -> str:
    """An ``align`` block with one line per differentiated parameter (CSE'd assignments where
    the formula is too big), the validity conditions, the conventions at kinks and the size
    notes as comments."""
    lines = [f"% Derivative of {derivative.capture.name}, exported by workbench "
             '(wb.export target="latex").']
    for note in derivative.notes:
        lines.append(f"% {note}")
    rows = formula_rows(derivative)
    if any(r"\mathbb" in row for row in rows):
        lines.append(r"% \mathbb{1} (an indicator) needs \usepackage{amssymb}")
    lines.append(r"\begin{align}")
    lines.append(" \\\\\n".join(rows))
    lines.append(r"\end{align}")
    if derivative.guards:
        lines.append("% valid where: " + ", ".join(to_latex(g) for g in derivative.guards))
    return "\n".join(lines)


def rendered(derivatives: list) -> str:
    """The formulas as one displayed ``aligned`` block (for Jupyter): the same rows as the
    source, with the validity conditions and conventions as text rows instead of comments."""
    rows = []
    for d in derivatives:
        rows += formula_rows(d)
        if d.guards:
            rows.append(r"&\text{valid where } " + r",\ ".join(to_latex(g) for g in d.guards))
        rows += [rf"&{c.latex}" for c in d.conventions]
    return r"$\displaystyle \begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}$"


@dataclass
class LatexExport(Exported):
    """The ``latex`` target's result: ``str()`` is the LaTeX source; Jupyter shows mathematics."""

    rendered: str = field(default="", repr=False)

    def _repr_latex_(self) -> str:
        return self.rendered

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/latex": self.rendered, "text/plain": self.source}
