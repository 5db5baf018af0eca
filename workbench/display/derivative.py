"""``wb.derivative(func, *example_args, argnums=0, order=1)``: the readable, simplified derivative.

The derivative is the graph's own reverse mode (``vjp_nodes``, once more for each higher
``order``), turned into SymPy with the function's parameter names and simplified within the
budgets of ``wb.config`` (``symbolic.simplify``). With no example arguments every parameter is
a scalar symbol, and the function is traced at ``x = 0.5`` (then ``0.625, 0.75, ...`` for the
next parameters): Python control flow (``if x > 0``) is taken at that point, and the conditions
under which the result holds are listed in ``.guards``.

``func`` may be a Python function, a text such as ``"x**2 * sec(x)"`` (read by the
whitelisting parser :mod:`workbench.exprparse`, never ``eval``) or a SymPy expression. The
result works with SymPy: ``sympy.sympify(d)`` is the expression (a ``Tuple`` for several
``argnums``), and a result for several ``argnums`` is indexed and iterated, one entry each.

>>> import numpy as np, sympy, workbench as wb
>>> d = wb.derivative(lambda x: x ** np.sin(x))
>>> d.expr
x**sin(x)*(log(x)*cos(x) + sin(x)/x)
>>> d._repr_latex_()[:40]
'$\\\\displaystyle \\\\frac{d f}{d x} = x^{\\\\sin'
>>> wb.derivative(lambda w: (w ** 2).sum(), np.ones(2)).expr
[2*w_0, 2*w_1]
>>> wb.derivative(lambda x, y: x * np.exp(y), argnums=1, order=2).expr
x*exp(y)
>>> dx, dy = wb.derivative("x * sin(y)", argnums=(0, 1))
>>> dy
x*cos(y)
>>> sympy.sympify(wb.derivative("sec(x)"))
tan(x)*sec(x)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import sympy

from ..errors import BudgetExceededError
from .capture import Capture, capture, check_order
from .formula import Formula, build_formula, guard_conditions, parameter_symbols
from .printing import Note, convention_notes, function_latex
from .printing import latex as to_latex
from .printing import text as to_text

_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_TEXT_SPECIALS = {c: "\\" + c for c in "_{}#%&$"} | {"\\": r"\textbackslash{}",
                                                     "^": r"\^{}", "~": r"\~{}"}


def text_escape(text: str) -> str:
    """Text for ``\\text{...}``: LaTeX's special characters escaped (``f_1`` -> ``f\\_1``)."""
    return "".join(_TEXT_SPECIALS.get(c, c) for c in text)


class Derivative:
    """A derivative as a formula: ``.expr`` (SymPy; a tuple for several ``argnums``; a
    ``sympy.Array`` for array parameters), ``.textbook`` (the same in textbook form, where
    simplification nested fractions), ``.raw`` (before simplification), ``.symbols``
    (parameter name -> symbol), ``.guards``, ``.notes``, ``.latex()``, and the size meter.
    ``sympy.sympify(d)`` gives ``.expr``; several ``argnums``: ``d[k]``, ``iter(d)``, ``len(d)``.
    """

    def __init__(self, cap: Capture, formulas: list[Formula], forward: Formula,
                 several: bool) -> None:
        self.capture = cap
        self.formulas = formulas
        self.forward = forward
        self._several = several
        exprs = [f.expr for f in formulas]
        raws = [f.raw for f in formulas]
        textbooks = [f.textbook for f in formulas]
        self.expr = tuple(exprs) if several else exprs[0]
        self.raw = tuple(raws) if several else raws[0]
        self.textbook = tuple(textbooks) if several else textbooks[0]
        self.symbols = parameter_symbols(cap)
        self.guards = guard_conditions(cap)
        self.order = cap.order
        #: why a function of arrays is shown element by element (no closed matrix form)
        self.form_note: str | None = None

    # ----- SymPy interop -----
    def _sympy_(self) -> Any:
        """What ``sympy.sympify`` returns: the expression (a ``Tuple`` for several argnums)."""
        if any(f.expr is None for f in self.formulas):
            raise BudgetExceededError(
                "wb.derivative: this derivative is too large for one SymPy expression (it is "
                "shown as shared subexpressions); use .formulas[k].assignments and "
                ".cse_exprs, or wb.export for code")
        return sympy.Tuple(*self.expr) if self._several else self.expr

    def _entries(self) -> tuple[Any, ...]:
        if not self._several:
            raise TypeError("wb.derivative: this is the derivative with respect to one "
                            "argument, a single formula (use .expr); index and iterate the "
                            "result of argnums=(0, 1, ...)")
        return self.expr

    def __getitem__(self, k: int) -> Any:
        return self._entries()[k]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._entries())

    def __len__(self) -> int:
        return len(self._entries())

    def __bool__(self) -> bool:  # a result is always truthy (``if d:`` must not call __len__)
        return True

    # ----- views -----
    @property
    def conventions(self) -> list[Note]:
        """The torch conventions at kinks the shown formulas rely on (text and LaTeX)."""
        return convention_notes(*(e for f in self.formulas for e in f.shown()))

    @property
    def notes(self) -> list[str]:
        own = [self.form_note] if self.form_note else []
        return own + [n for f in self.formulas for n in f.notes] + \
            [c.text for c in self.conventions]

    def label(self, pos: int, latex: bool) -> str:
        """The name of the derivative w.r.t. parameter ``pos``: df/dx, ∂f/∂x, ∇_w f, d²f/dx²..."""
        p = self.capture.params[pos]
        f = self.capture.name
        k = self.order
        single = len([q for q in self.capture.params if q.nodes is not None]) == 1
        power = "" if k == 1 else str(k).translate(_SUPERSCRIPTS)
        if not latex:
            if p.is_scalar:
                d = "d" if single else "∂"
                return f"{d}{power}{f}/{d}{p.name}{power}"
            return f"∇{power}_{p.name} {f}"
        name = to_latex(sympy.Symbol(p.name))
        fname = function_latex(f)
        # "d f" but "d\,\mathrm{loss}": a thin space sets the operator apart from a name
        gap = r"\," if fname.startswith(r"\mathrm") else " "
        if p.is_scalar:
            d = "d" if single else r"\partial"
            if k == 1:
                return rf"\frac{{{d}{gap}{fname}}}{{{d} {name}}}"
            return rf"\frac{{{d}^{{{k}}}{gap}{fname}}}{{{d} {name}^{{{k}}}}}"
        if k == 1:
            return rf"\nabla_{{{name}}} {fname}"
        return rf"\nabla^{{{k}}}_{{{name}}} {fname}"

    def size_line(self) -> str:
        parts = [f"{self.capture.name} {self.forward.size}"]
        for pos, f in zip(self.capture.wrt, self.formulas):
            parts.append(f"{self.label(pos, latex=False)} {f.size}")
        return "size: " + "; ".join(parts)

    def latex(self) -> str:
        lines = [rf"{self.label(pos, True)} = {f.latex()}"
                 for pos, f in zip(self.capture.wrt, self.formulas)]
        if self.guards:
            where = r"\quad \text{where } " + r",\ ".join(to_latex(g) for g in self.guards)
            lines[-1] += where
        lines += [c.latex for c in self.conventions]
        if self.form_note:
            lines.append(rf"\text{{{text_escape(self.form_note)}}}")
        if len(lines) == 1:
            return lines[0]
        return r"\begin{gathered}" + r" \\ ".join(lines) + r"\end{gathered}"

    def _repr_latex_(self) -> str:
        return rf"$\displaystyle {self.latex()}$"

    def __repr__(self) -> str:
        lines = [f"{self.label(pos, False)} = {f.text()}"
                 for pos, f in zip(self.capture.wrt, self.formulas)]
        if self.guards:
            lines.append("traced where: " + ", ".join(to_text(g) for g in self.guards))
        lines.append(self.size_line())
        lines.extend(self.notes)
        return "\n".join(lines)


def derivative(func: Callable | str | Any, *example_args: Any,
               argnums: int | tuple[int, ...] = 0, order: int = 1, simplify: bool = True,
               variables: Sequence[Any] | None = None, form: str = "auto") -> Any:
    """The derivative of ``func`` w.r.t. the arguments ``argnums``, simplified and readable.

    ``func`` is a Python function returning a scalar, a text (``"x**2 * sin(x)"``) or a SymPy
    expression; ``variables`` (names or symbols) sets the parameter order of a text (default:
    order of first appearance) or SymPy expression (default: sorted by name). ``order`` is any
    positive integer: 2 gives the second derivative (the Hessian for an array argument), 3 and
    more the higher ones (one argument). ``example_args`` fix the shapes of array arguments and
    the point where control flow is taken; with none, every parameter is a scalar symbol and
    the function is traced at 0.5 (0.625, ... for the next parameters). ``simplify=False``
    shows the derivative as traced. See the module docstring for examples.

    ``form``: ``"auto"`` shows the gradient of a function of arrays in matrix notation where it
    has one (a :class:`~workbench.display.matrix_view.MatrixDerivative`; see
    :mod:`workbench.display.matrix`), else element by element with a line saying why;
    ``"elements"`` always element by element; ``"matrix"`` the matrix form or an error.
    """
    from .matrix import NoMatrixForm, check_form, matrix_attempt

    order = check_order(order, "derivative")
    form = check_form(form)
    reason = None
    if form != "elements":
        matrix, reason = matrix_attempt(func, example_args, argnums, order)
        if matrix is not None:
            return _with_elements(matrix, func, example_args, argnums, simplify, variables)
        if form == "matrix":
            raise NoMatrixForm(f"derivative: no matrix form: {reason}; use form='elements'")
    result = _element_derivative(func, example_args, argnums, order, simplify, variables)
    if reason is not None:
        result.form_note = f"no closed matrix form: {reason}; shown element by element"
    return result


def _with_elements(forms: Any, func: Any, example_args: tuple, argnums: Any, simplify: bool,
                   variables: Any) -> Any:
    """The matrix form, with the element form beside it when the arrays are small."""
    from .matrix_view import ELEMENTS_SHOWN_UP_TO, MatrixDerivative

    def elements() -> Derivative:
        return _element_derivative(func, example_args, argnums, 1, simplify, variables)

    cap = forms.capture
    entries = sum(int(np.prod(cap.shapes[k])) for k in cap.wrt)
    eager = elements() if entries <= ELEMENTS_SHOWN_UP_TO else None
    return MatrixDerivative(forms, isinstance(argnums, tuple), elements, eager)


def _element_derivative(func: Any, example_args: tuple, argnums: Any, order: int,
                        simplify: bool, variables: Any) -> Derivative:
    cap = capture(func, example_args, argnums=argnums, order=order, transform="derivative",
                  variables=variables)
    forward = build_formula(cap, cap.output, simplify_it=False)
    formulas = [build_formula(cap, nodes, simplify_it=simplify) for nodes in cap.derivatives]
    return Derivative(cap, formulas, forward, several=isinstance(argnums, tuple))
