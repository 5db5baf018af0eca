"""``wb.steps`` for functions of arrays: the matrix chain rule, one array operation at a time.

The function is traced at array level; every operation on the way from the differentiated
argument to the output gets a name (``v_1 = X w``, ``v_2 = v_1 − y``...). The reverse pass then
visits them newest first, as backpropagation does: at each step the adjoint of the operation's
result (``v̄_2``, the derivative of the output with respect to it) is known, and the rule of the
operation (matrix product, entrywise function, sum, broadcast...) sends a contribution to each of
its arguments, written with the adjoint's name. The contributions are the graph's own VJP rules
(:func:`workbench.arrays.autodiff.arg_cotangents`) applied to a named placeholder, shown in
matrix notation (:mod:`workbench.display.matrix`), so the derivation is the computation.

>>> import numpy as np
>>> s = matrix_steps(lambda w, X, y: 0.5 * np.sum((X @ w - y) ** 2),
...                  (np.ones(2), np.ones((3, 2)), np.ones(3)), 0)
>>> [step.rule for step in s.steps][:2]
['scalar multiple', 'sum of entries']
>>> s.result_text
'X.T*(X*w - y)'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from sympy import MatrixSymbol

from ..errors import BudgetExceededError
from .matrix import _Converter, _matrix_shape, array_capture, matrix_gradient, tidy
from .matrix_view import matrix_conventions, matrix_latex, matrix_text

#: A derivation longer than this many steps is refused (it would not be read).
MAX_STEPS = 60

_RULES = {
    "einsum": "matrix product: Ā = C̄ Bᵀ, B̄ = Aᵀ C̄ for C = A B",
    "sum": "sum of entries",
    "add": "sum rule",
    "sub": "difference rule",
    "neg": "constant multiple rule",
    "mul": "entrywise product rule",
    "div": "entrywise quotient rule",
    "pow": "entrywise power rule",
    "broadcast_to": "broadcast: the adjoint is summed over the copies",
    "reshape": "reshape: the adjoint is reshaped back",
    "transpose": "transpose: the adjoint is transposed back",
    "index": "indexing: the adjoint goes to the entry picked (onehot)",
    "amax": "max: the adjoint goes to the maximal entries (ties split evenly, torch)",
    "amin": "min: the adjoint goes to the minimal entries (ties split evenly, torch)",
    "where": "selection: the adjoint goes to the branch taken",
}


@dataclass
class MatrixStep:
    """One operation of the reverse pass: ``name = definition`` with its adjoint known."""

    rule: str
    name: Any  # the operation's result (a MatrixSymbol or Symbol)
    definition: Any  # its formula in terms of earlier names
    shape: tuple[int, ...]
    arg_shapes: list[tuple[int, ...]]  # the shapes of its array arguments
    adjoint: Any  # the adjoint's symbol
    adjoint_value: Any  # the adjoint as the sum of what the later steps sent
    contributions: list[tuple[Any, Any]]  # (argument, what this step sends it)


class MatrixSteps:
    """The derivation: ``.steps``, ``.result`` (the matrix form, simplified); views ``text()``,
    ``latex()``, ``pages()``."""

    def __init__(self, steps: list[MatrixStep], wrt: Any, wrt_name: str, function: str,
                 result: Any, shapes: dict[str, tuple[int, ...]], gathered: Any) -> None:
        self.steps = steps
        self.wrt = wrt
        #: the gradient as the sum of what the steps sent to the argument (in step names)
        self.gathered = gathered
        self.wrt_name = wrt_name
        self.function = function
        self.result = result
        self.shapes = shapes

    @property
    def conventions(self) -> list:
        """The torch conventions at kinks the steps rely on (``1[v > 0]`` for relu')."""
        shown = [c for s in self.steps for _, c in s.contributions] + [self.result]
        return matrix_conventions(*shown)

    @property
    def notes(self) -> list[str]:
        return [c.text for c in self.conventions]

    @property
    def result_text(self) -> str:
        return matrix_text(self.result)

    def _one_shape(self, shape: tuple[int, ...], latex: bool) -> str:
        if not shape:
            return r"\mathbb{R}" if latex else "ℝ"
        dims = (r" \times " if latex else "×").join(str(n) for n in shape)
        return rf"\mathbb{{R}}^{{{dims}}}" if latex else f"ℝ^{dims}"

    def _shape(self, step: MatrixStep, latex: bool) -> str:
        """``ℝ^2×3, ℝ^3 → ℝ^2``: the arguments' shapes, then the result's."""
        args = ", ".join(self._one_shape(a, latex) for a in step.arg_shapes)
        arrow = r" \to " if latex else " → "
        return f"{args}{arrow}{self._one_shape(step.shape, latex)}" if args else \
            self._one_shape(step.shape, latex)

    def text(self) -> str:
        lines = []
        for k, s in enumerate(self.steps, start=1):
            lines.append(f"step {k}: {matrix_text(s.name)} = {matrix_text(s.definition)}   "
                         f"({self._shape(s, False)}; {s.rule})")
            lines.append(f"    {matrix_text(s.adjoint)} = {matrix_text(s.adjoint_value)}")
            for arg, c in s.contributions:
                lines.append(f"    to {matrix_text(arg)}: {matrix_text(c)}")
        lines.append(f"∇_{self.wrt_name} {self.function} = {matrix_text(self.gathered)} "
                     f"= {self.result_text}   (simplified)")
        lines.extend(self.notes)
        return "\n".join(lines)

    def latex(self) -> str:
        rows = []
        for s in self.steps:
            rows.append(rf"{matrix_latex(s.name)} &= {matrix_latex(s.definition)} && "
                        rf"{self._shape(s, True)},\ \text{{{_tex(s.rule)}}}")
            rows.append(rf"{matrix_latex(s.adjoint)} &= {matrix_latex(s.adjoint_value)}")
            for arg, c in s.contributions:
                rows.append(rf"&\to {matrix_latex(arg)}: {matrix_latex(c)}")
        rows.append(rf"\nabla_{{{self.wrt_name}}} {self.function} &= "
                    rf"{matrix_latex(self.gathered)} = {matrix_latex(self.result)} && "
                    r"\text{simplified}")
        rows.extend(rf"&& {c.latex}" for c in self.conventions)
        return r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"

    def pages(self) -> list[dict[str, Any]]:
        """One dict per step (rule, shapes, the adjoint, what each argument receives)."""
        return [{"rule": s.rule, "shape": list(s.shape), "shapes": self._shape(s, False),
                 "definition": matrix_latex(s.definition), "name": matrix_latex(s.name),
                 "adjoint": matrix_latex(s.adjoint_value),
                 "contributions": [[matrix_latex(a), matrix_latex(c)] for a, c in s.contributions]}
                for s in self.steps] + [{"rule": "simplification", "shape": [],
                                         "result": matrix_latex(self.result)}]

    def _repr_latex_(self) -> str:
        return rf"$\displaystyle {self.latex()}$"

    def __repr__(self) -> str:
        return self.text()


def _tex(text: str) -> str:
    from .derivative import text_escape

    return text_escape(text).replace("Ā", r"$\bar{A}$").replace("B̄", r"$\bar{B}$").replace(
        "C̄", r"$\bar{C}$").replace("Bᵀ", r"$B^\top$").replace("Aᵀ", r"$A^\top$")


def _symbol(name: str, shape: tuple[int, ...]) -> Any:
    if not shape:
        return sympy.Symbol(name, real=True)
    return MatrixSymbol(name, *_matrix_shape(shape))


def _rule(g: Any, node: int) -> str:
    op = g.op[node]
    if op in _RULES:
        if op == "mul" and any(g.shape(a) == () and g.op[a] == "const" for a in g.args[node]):
            return "scalar multiple"
        return _RULES[op]
    return f"entrywise chain rule: the adjoint times {op}' (entry by entry)"


def matrix_steps(func: Callable, args: Sequence[Any], argnum: int) -> MatrixSteps:
    """The reverse pass of ``func`` at ``args`` w.r.t. argument ``argnum``, step by step."""
    from ..arrays.autodiff import arg_cotangents
    from ..symbolic.differentiate import dependents

    result = matrix_gradient(func, args, argnum)  # the closed form, or NoMatrixForm
    cap = array_capture(func, args, argnum)
    g = cap.graph
    wrt = next(n for n in range(len(g.op)) if g.op[n] == "alias")  # the argument's own variable
    needed = set(g.ancestors([cap.output]))
    active = [n for n in sorted(dependents(g, [wrt], cap.output), reverse=True)
              if n in needed and n != wrt and g.dtype(n).kind == "f"]
    if len(active) > MAX_STEPS:
        raise BudgetExceededError(f"steps: the derivation has {len(active)} steps, more than "
                                  f"{MAX_STEPS}; use wb.derivative for this function")
    convert = _Converter(cap)
    convert(cap.output)  # every forward node's own formula, then the names replace them
    names: dict[int, Any] = {}
    definitions: dict[int, Any] = {}
    memo = convert.memo
    for k, node in enumerate(sorted(active), start=1):
        names[node] = memo[node] = _symbol(f"v_{k}", g.shape(node))
    for node in sorted(active):  # definitions in terms of the names of earlier steps
        definitions[node] = tidy(convert._convert(node))
    wrt_symbol = memo[wrt]
    received: dict[int, list[Any]] = {cap.output: [sympy.S.One]}
    steps: list[MatrixStep] = []
    for node in sorted(active, reverse=True):
        name = names[node]
        adjoint_name = _symbol(_bar(name), g.shape(node))
        placeholder = g.input(np.ones(g.shape(node)), str(adjoint_name))
        memo[placeholder] = adjoint_name
        pushes = []
        for arg, contribution in zip(g.args[node], arg_cotangents(g, node, placeholder)):
            if contribution is None or (arg not in names and arg != wrt):
                continue
            value = tidy(convert(contribution))
            pushes.append((memo[arg], value))
            received.setdefault(arg, []).append(value)
        total = _sum(received.get(node, []), g.shape(node))
        arg_shapes = [g.shape(a) for a in g.args[node] if g.op[a] != "const" or g.shape(a)]
        steps.append(MatrixStep(_rule(g, node), name, definitions[node], g.shape(node),
                                arg_shapes, adjoint_name, total, pushes))
    shapes = {n: s for n, s in zip(cap.names, cap.shapes) if s is not None}
    return MatrixSteps(steps, wrt_symbol, cap.names[argnum], cap.name, result.exprs[0], shapes,
                       _sum(received.get(wrt, []), g.shape(wrt)))


def _bar(symbol: Any) -> str:
    name = symbol.name
    base, _, index = name.partition("_")
    return f"{base}bar_{index}" if index else f"{base}bar"


def _sum(terms: list[Any], shape: tuple[int, ...]) -> Any:
    if not terms:
        return sympy.S.Zero
    if len(terms) == 1:
        return terms[0]
    if not shape:
        return sympy.Add(*terms)
    return tidy(sympy.MatAdd(*terms))


__all__ = ["MAX_STEPS", "MatrixStep", "MatrixSteps", "matrix_steps"]
