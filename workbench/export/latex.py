"""The ``latex`` export target: the simplified derivative formulas, ready for a paper.

>>> import numpy as np, workbench as wb
>>> print(wb.export(lambda x: x ** 2 * np.sin(x), target="latex").source)
% Derivative of f, exported by workbench (wb.export target="latex").
\\begin{align}
\\frac{d f}{d x} &= x \\left(x \\cos{\\left(x \\right)} + 2 \\sin{\\left(x \\right)}\\right)
\\end{align}
"""

from __future__ import annotations

import sympy


def latex_source(derivative) -> str:
    """An ``align`` block with one line per differentiated parameter (CSE'd assignments where
    the formula is too big), the validity conditions, and the size as a comment."""
    lines = [f"% Derivative of {derivative.capture.name}, exported by workbench "
             '(wb.export target="latex").']
    for note in derivative.notes:
        lines.append(f"% {note}")
    lines.append(r"\begin{align}")
    rows = []
    for pos, f in zip(derivative.capture.wrt, derivative.formulas):
        label = derivative.label(pos, latex=True)
        if f.expr is not None:
            rows.append(rf"{label} &= {sympy.latex(f.expr)}")
        elif f.assignments or f.cse_exprs:
            rows += [rf"{sympy.latex(s)} &= {sympy.latex(e)}" for s, e in f.assignments]
            result = f.cse_exprs[0] if len(f.cse_exprs) == 1 else sympy.Array(f.cse_exprs)
            rows.append(rf"{label} &= {sympy.latex(result)}")
        else:
            rows.append(rf"{label} &= \text{{({f.size.ops:,} operations: too large to print)}}")
    lines.append(" \\\\\n".join(rows))
    lines.append(r"\end{align}")
    if derivative.guards:
        lines.append("% valid where: " + ", ".join(sympy.latex(g) for g in derivative.guards))
    return "\n".join(lines)
