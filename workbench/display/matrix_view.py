"""Matrix-notation derivatives for a course: printing (bold names, ``ᵀ``, ``⊙``, ``𝟏``,
``exp(Xw)``) and the result object :class:`MatrixDerivative` that ``wb.derivative`` returns.

The element display's printers (:mod:`workbench.display.printing`) with the matrix objects of
:mod:`workbench.display.matrix`: matrices and vectors in bold (``\\mathbf{X}``), ``\\odot``
for elementwise products, ``\\mathbf{1}`` for a vector of ones, a function of a matrix applied
to each entry (``\\exp(\\mathbf{X} \\mathbf{w})``), indicators at kinks (``\\mathbb{1}[...]``)
with torch's convention stated by :func:`matrix_conventions`.

>>> from sympy import MatrixSymbol, HadamardProduct
>>> A, B = MatrixSymbol("A", 2, 2), MatrixSymbol("B", 2, 2)
>>> matrix_latex(HadamardProduct(A, B.T)), matrix_text(HadamardProduct(A, B.T))
('\\\\mathbf{A} \\\\odot \\\\mathbf{B}^{\\\\top}', 'A ⊙ B.T')
"""

from __future__ import annotations

from typing import Any

import sympy
from sympy import MatAdd, MatrixSymbol
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from .printing import Note, TextbookLatexPrinter, TextbookStrPrinter, convention_notes


class MatrixLatexPrinter(TextbookLatexPrinter):
    def _print_MatrixSymbol(self, expr):
        return self._symbol_name(expr.name, style="bold")

    def _print_Transpose(self, expr):
        arg = expr.arg
        inner = self._print(arg)
        if not isinstance(arg, MatrixSymbol):
            inner = rf"\left({inner}\right)"
        return rf"{inner}^{{\top}}"

    def _print_MatMul(self, expr):
        return _matmul(self, expr, " ", r"\left({}\right)", "- ")

    def _print_OneMatrix(self, expr):
        return r"\mathbf{1}^{\top}" if expr.shape[0] == 1 and expr.shape[1] != 1 else r"\mathbf{1}"

    def _print_HadamardProduct(self, expr):
        return r" \odot ".join(self.parenthesize(a, 60) if isinstance(a, (MatAdd, sympy.Add))
                               else self._print(a) for a in expr.args)

    def _print_ElementwiseApplyFunction(self, expr):
        var = expr.function.variables[0]
        arg = self._print(expr.expr)
        name = sympy.Symbol("ARG", real=True)
        body = expr.function.expr.xreplace({var: name})
        saved = dict(self._settings["symbol_names"])
        self._settings["symbol_names"] = {**saved, name: arg}
        try:
            if body == sympy.exp(name):
                return rf"\exp\left({arg}\right)"
            return self._print(body)
        finally:
            self._settings["symbol_names"] = saved

    def _print_AsScalar(self, expr):
        return rf"\left({self._print(expr.args[0])}\right)"

    def _print_Softmax(self, expr):
        return rf"\operatorname{{softmax}}\left({self._print(expr.args[0])}\right)"

    def _print_Extreme(self, expr):
        return rf"\{expr.args[1].name}\left({self._print(expr.args[0])}\right)"

    def _print_RowExtreme(self, expr):
        return rf"\{expr.args[1].name}_{{\text{{row}}}}\left({self._print(expr.args[0])}\right)"

    def _print_MatAdd(self, expr):
        return _matadd(self, expr, " + ", " - ")

    def _print_OneHot(self, expr):
        return rf"\operatorname{{onehot}}\left({self._symbol_name(expr.args[2].name)}\right)"

    def _print_OneHotRows(self, expr):
        return rf"\operatorname{{onehot}}\left({self._symbol_name(expr.args[0].name)}\right)"

    def _print_MatrixElement(self, expr):
        parent = self._print(expr.parent)
        if not isinstance(expr.parent, MatrixSymbol):
            parent = rf"\left({parent}\right)"
        index = self._print(expr.i) if expr.parent.shape[1] == 1 else \
            f"{self._print(expr.i)},{self._print(expr.j)}"
        return f"{parent}_{{{index}}}"


class MatrixStrPrinter(TextbookStrPrinter):
    def _print_MatrixSymbol(self, expr):
        return expr.name

    def _print_MatMul(self, expr):
        return _matmul(self, expr, "*", "({})", "-")

    def _print_OneMatrix(self, expr):
        return "𝟏.T" if expr.shape[0] == 1 and expr.shape[1] != 1 else "𝟏"

    def _print_HadamardProduct(self, expr):
        return " ⊙ ".join(f"({self._print(a)})" if isinstance(a, (MatAdd, sympy.Add))
                          else self._print(a) for a in expr.args)

    def _print_HadamardPower(self, expr):
        base = self._print(expr.base)
        if not isinstance(expr.base, MatrixSymbol):
            base = f"({base})"
        return f"{base}**∘{self._print(expr.exp)}"

    def _print_ElementwiseApplyFunction(self, expr):
        var = expr.function.variables[0]
        arg = self._print(expr.expr)
        return self._print(expr.function.expr.xreplace({var: sympy.Symbol(arg, real=True)}))

    def _print_AsScalar(self, expr):
        return f"({self._print(expr.args[0])})"

    def _print_Softmax(self, expr):
        return f"softmax({self._print(expr.args[0])})"

    def _print_Extreme(self, expr):
        return f"{expr.args[1].name}({self._print(expr.args[0])})"

    def _print_RowExtreme(self, expr):
        return f"{expr.args[1].name}_row({self._print(expr.args[0])})"

    def _print_MatAdd(self, expr):
        return _matadd(self, expr, " + ", " - ")

    def _print_OneHot(self, expr):
        return f"onehot({expr.args[2].name})"

    def _print_OneHotRows(self, expr):
        return f"onehot({expr.args[0].name})"

    def _print_MatrixElement(self, expr):
        parent = self._print(expr.parent)
        if not isinstance(expr.parent, MatrixSymbol):
            parent = f"({parent})"
        if expr.parent.shape[1] == 1:
            return f"{parent}[{self._print(expr.i)}]"
        return f"{parent}[{self._print(expr.i)}, {self._print(expr.j)}]"


def _matadd(printer, expr, plus: str, minus: str) -> str:
    """A sum with its positive terms first: ``softmax(z) − onehot(y)``, ``Xw − y``."""
    terms = list(expr.args)
    negative = [t for t in terms if t.could_extract_minus_sign()]
    positive = [t for t in terms if not t.could_extract_minus_sign()]
    out = ""
    for t in positive + negative:
        if t in negative:
            out += (minus if out else minus.strip()) + printer._print(_mm_neg(t))
        else:
            out += (plus if out else "") + printer._print(t)
    return out


def _mm_neg(t):
    return sympy.MatMul(-1, t).doit(deep=False)


def _matmul(printer, expr, join: str, brackets: str, minus: str) -> str:
    """A product: its scalar coefficient first (no brackets around a fraction), then the matrix
    factors, bracketing sums and elementwise products."""
    coeff = sympy.Mul(*[a for a in expr.args if not getattr(a, "is_Matrix", False)])
    factors = [a for a in expr.args if getattr(a, "is_Matrix", False)]
    parts = []
    for f in factors:
        text = printer._print(f)
        if isinstance(f, (MatAdd, sympy.HadamardProduct)):
            text = brackets.format(text)
        parts.append(text)
    body = join.join(parts)
    if coeff == 1:
        return body
    if coeff == -1:
        return minus + body
    text = printer._print(coeff)
    if isinstance(coeff, sympy.Add):
        text = brackets.format(text)
    return text + join + body


def matrix_latex(expr: Any) -> str:
    """LaTeX of a matrix expression (see the module docstring)."""
    return MatrixLatexPrinter().doprint(expr)


def matrix_text(expr: Any) -> str:
    """Plain text of a matrix expression: ``X.T*(X*w - y)``, ``A ⊙ B``, ``1[h > 0]``."""
    return MatrixStrPrinter().doprint(expr)


def matrix_conventions(*exprs: Any) -> list[Note]:
    """The torch conventions at kinks the matrix forms rely on: each elementwise function's
    body with the matrix it applies to in place of its variable (``1[X*w > 0]``)."""
    bodies = []
    for expr in exprs:
        if not isinstance(expr, sympy.Basic):
            continue
        for f in expr.atoms(ElementwiseApplyFunction) | _applications(expr):
            var = f.function.variables[0]
            bodies.append(f.function.expr.xreplace({var: sympy.Symbol(matrix_text(f.expr),
                                                                      real=True)}))
    return convention_notes(*bodies)


def _applications(expr: sympy.Basic) -> set:
    return {a for a in sympy.preorder_traversal(expr) if isinstance(a, ElementwiseApplyFunction)}


# ----- the derivative object -----------------------------------------------------------------
#: Arrays up to this many entries (all differentiated arguments together) also show their
#: element form beside the matrix form (larger ones compute it on request: ``.elements``).
ELEMENTS_SHOWN_UP_TO = 16
#: ... and only when the element form is this short (characters of text)
ELEMENTS_TEXT_UP_TO = 240

ENTRYWISE_NOTE = Note(
    "functions of matrices (exp, tanh, max, 1[...]) apply entry by entry; ⊙ is the entrywise "
    "product, 𝟏 a vector of ones",
    r"\text{functions of matrices apply entry by entry; } \odot \text{ is the entrywise product, "
    r"} \mathbf{1} \text{ a vector of ones}")


class MatrixDerivative:
    """A gradient in matrix notation (``.matrix``: a SymPy matrix expression, a tuple for several
    ``argnums``), with the element form on request (``.elements``, the usual
    :class:`~workbench.display.derivative.Derivative`, computed when first used). ``.expr``,
    ``.raw``, ``.textbook``, ``sympy.sympify(d)``, indexing and iteration are the element
    form's, as for any ``wb.derivative`` result.
    """

    def __init__(self, forms: Any, several: bool, make_elements: Any,
                 elements: Any = None) -> None:
        self.forms = forms
        self._several = several
        self._make_elements = make_elements
        self._elements = elements
        self.matrix = tuple(forms.exprs) if several else forms.exprs[0]
        self.order = 1

    # ----- the element form, on request -----
    @property
    def elements(self) -> Any:
        """The element form (``wb.derivative(..., form="elements")``), computed once."""
        if self._elements is None:
            self._elements = self._make_elements()
        return self._elements

    def __getattr__(self, name: str) -> Any:
        """Everything else is the element form's (``.expr``, ``.formulas``, ``.guards``...),
        computed on first use; private and display names (``_repr_html_``) are not, so showing
        the matrix form never computes the element form."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.elements, name)

    def _sympy_(self) -> Any:
        return self.elements._sympy_()

    def __getitem__(self, k: int) -> Any:
        return self.elements[k]

    def __iter__(self):
        return iter(self.elements)

    def __len__(self) -> int:
        return len(self.elements)

    def __bool__(self) -> bool:
        return True

    # ----- views -----
    @property
    def conventions(self) -> list[Note]:
        shown = [*self.forms.shown, *(d for _, d in self.forms.definitions)]
        return [ENTRYWISE_NOTE] + matrix_conventions(*shown)

    @property
    def notes(self) -> list[str]:
        cap = self.forms.capture
        notes = [c.text for c in self.conventions]
        from .matrix import Softmax

        if any(isinstance(a, Softmax) and a.shape[1] != 1
               for e in self.forms.exprs for a in sympy.preorder_traversal(e)):
            notes.append("softmax of a matrix is taken row by row (each row sums to one)")
        for name, origin in self.forms.constants.items():
            notes.append(f"{name} is {origin}")
        if cap.guards:
            notes.append("holds where Python's control flow takes the branches it took while "
                         "tracing (see .elements.guards)")
        return notes

    def label(self, k: int, latex: bool) -> str:
        cap = self.forms.capture
        pos = cap.wrt[k]
        name, f = cap.names[pos], cap.name
        scalar = cap.shapes[pos] == ()
        if not latex:
            return f"∂{f}/∂{name}" if scalar else f"∇_{name} {f}"
        from .printing import function_latex

        fname = function_latex(f)
        if scalar:
            return rf"\frac{{\partial {fname}}}{{\partial {matrix_latex(sympy.Symbol(name))}}}"
        return rf"\nabla_{{{matrix_latex(sympy.Symbol(name))}}} {fname}"  # as the element form

    def shapes_text(self, latex: bool) -> str:
        """Where each matrix lives: ``X ∈ ℝ^{5×3}``, ``w ∈ ℝ^{3}``."""
        cap = self.forms.capture
        parts = []
        for name, shape in zip(cap.names, cap.shapes):
            if not shape:
                continue
            dims = "×".join(str(n) for n in shape) if not latex else \
                r" \times ".join(str(n) for n in shape)
            parts.append(rf"{_bold(name)} \in \mathbb{{R}}^{{{dims}}}" if latex else
                         f"{name} ∈ ℝ^{dims}")
        return (r",\ ".join(parts)) if latex else ", ".join(parts)

    def _elements_shown(self, k: int) -> bool:
        """Beside the matrix form: small element forms only (a few short entries)."""
        elements = self._elements
        return elements is not None and elements.formulas[k].expr is not None and \
            len(elements.formulas[k].text()) <= ELEMENTS_TEXT_UP_TO

    def latex(self) -> str:
        elements = self._elements  # shown beside the matrix form only if computed already
        lines = []
        for k, e in enumerate(self.forms.shown):
            line = rf"{self.label(k, True)} = {matrix_latex(e)}"
            if self._elements_shown(k):
                line += f" = {elements.formulas[k].latex()}"
            lines.append(line)
        where = [rf"{matrix_latex(n)} = {matrix_latex(d)}" for n, d in self.forms.definitions]
        if where:  # the named intermediate values, then (own line) where each matrix lives
            lines.append(r"\text{where } " + r",\ ".join(where))
        lines.append((r"\text{and } " if where else r"\text{where } ") + self.shapes_text(True))
        lines += [c.latex for c in self.conventions]
        return r"\begin{gathered}" + r" \\ ".join(lines) + r"\end{gathered}"

    def _repr_latex_(self) -> str:
        return rf"$\displaystyle {self.latex()}$"

    def text(self) -> str:
        elements = self._elements  # shown beside the matrix form only if computed already
        lines = []
        for k, e in enumerate(self.forms.shown):
            line = f"{self.label(k, False)} = {matrix_text(e)}"
            if self._elements_shown(k):
                line += f" = {elements.formulas[k].text()}"
            lines.append(line)
        where = [f"{matrix_text(n)} = {matrix_text(d)}" for n, d in self.forms.definitions]
        if where:
            lines.append("where " + ", ".join(where))
        lines.append(("and " if where else "where ") + self.shapes_text(False))
        lines.extend(self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()


def _bold(name: str) -> str:
    return MatrixLatexPrinter()._symbol_name(name, style="bold")


__all__ = ["ELEMENTS_SHOWN_UP_TO", "MatrixDerivative", "MatrixLatexPrinter", "MatrixStrPrinter",
           "matrix_conventions", "matrix_latex", "matrix_text"]
