"""How formulas are printed for a student: textbook names, indicators at kinks, exact powers.

SymPy's own printers are close, but a course needs a few things they do differently:

* a multi-letter parameter is a *name*, not a product: ``loss`` prints ``\\operatorname{loss}``
  (SymPy prints ``loss``, which reads as l·o·s·s); single letters, Greek names (``alpha``,
  ``theta``) and element names (``w_0`` -> ``w_{0}``) print as SymPy prints them;
* derivatives at kinks print as indicators with the convention stated, never through an
  internal name: ``Heaviside(x, 0)`` (relu') prints ``1[x > 0]`` / ``\\mathbb{1}[x > 0]``, and
  :func:`convention_notes` says what the value is at the kink (torch's convention);
* rational powers stay exact and familiar: ``x**(1/3)`` prints ``x^{1/3}`` (a square root stays
  ``\\sqrt{x}``).

>>> import sympy
>>> loss, x = sympy.symbols("loss x", real=True)
>>> latex(loss ** 2 * sympy.Heaviside(x, 0))
'\\\\operatorname{loss}^{2} \\\\mathbb{1}\\\\left[x > 0\\\\right]'
>>> text(loss * sympy.Heaviside(x, 0) + x ** sympy.Rational(1, 3))
'loss*1[x > 0] + x**(1/3)'
>>> convention_notes(sympy.Heaviside(x, 0))[0].text
"1[x > 0] is 1 where x > 0, else 0: at x = 0 the value is 0 (torch's convention, relu'(0) = 0)"
>>> function_latex("nested"), function_latex("f"), function_latex("alpha")
('\\\\mathrm{nested}', 'f', '\\\\alpha')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy
from sympy.printing.conventions import split_super_sub
from sympy.printing.latex import LatexPrinter, translate
from sympy.printing.str import StrPrinter

_TIE_HALF = sympy.S.Half
_LATEX_NONSTRICT = {">": r"\geq", "<": r"\leq"}


def _is_plain_name(name: str) -> bool:
    """A name SymPy would print letter by letter (not one letter, not Greek, no modifier)."""
    return len(name) > 1 and translate(name) == name


def _latex_name(name: str) -> str:
    """LaTeX for a name without sub- or superscripts: ``\\operatorname{loss}``, ``\\alpha``, ``x``."""
    if _is_plain_name(name):
        return rf"\operatorname{{{name}}}"
    return translate(name)


def function_latex(name: str) -> str:
    """A function's name in a label (``\\frac{d\\,\\mathrm{loss}}{d x}``): ``\\mathrm`` for
    multi-letter names, Greek letters translated, single letters as they are."""
    if _is_plain_name(name):
        return r"\mathrm{" + name.replace("_", r"\_") + "}"
    return translate(name)


def _heaviside_parts(expr) -> tuple[Any, str, Any, Any]:
    """``Heaviside(u, h0)`` as ``(lhs, ">", rhs, h0)`` with ``u = lhs - rhs`` split by the sign
    of its terms, so that ``Heaviside(x - y)`` reads ``x > y`` and ``Heaviside(-x)`` reads
    ``x < 0`` (then the operator is ``"<"``)."""
    u = expr.args[0]
    h0 = expr.args[1] if len(expr.args) > 1 else _TIE_HALF
    positive, negative = [], []
    for term in sympy.Add.make_args(u):
        (negative if term.could_extract_minus_sign() else positive).append(term)
    lhs, rhs = sympy.Add(*positive), -sympy.Add(*negative)
    if lhs == 0 and rhs != 0:
        return rhs, "<", lhs, h0
    return lhs, ">", rhs, h0


def _indicator_condition(pw) -> Any | None:
    """The condition ``c`` of ``Piecewise((1, c), (0, True))`` (or of ``(0, c), (1, True)``,
    negated), else None: such a Piecewise is the indicator of ``c``."""
    if not isinstance(pw, sympy.Piecewise) or len(pw.args) != 2 or pw.args[1].cond is not sympy.true:
        return None
    (value, cond), (other, _) = pw.args
    if value == 1 and other == 0:
        return cond
    if value == 0 and other == 1 and isinstance(cond, sympy.core.relational.Relational):
        return cond.negated
    return None


def _interval(cond) -> tuple[Any, Any, Any, bool, bool] | None:
    """``lo <= x & x <= hi`` (any spelling) as ``(lo, x, hi, lo_closed, hi_closed)``."""
    if not isinstance(cond, sympy.And) or len(cond.args) != 2:
        return None
    pairs = []
    for rel in cond.args:
        if not isinstance(rel, (sympy.StrictGreaterThan, sympy.GreaterThan,
                                sympy.StrictLessThan, sympy.LessThan)):
            return None
        # normalise to "lower <=/< upper"
        if isinstance(rel, (sympy.StrictGreaterThan, sympy.GreaterThan)):
            lower, upper = rel.rhs, rel.lhs
        else:
            lower, upper = rel.lhs, rel.rhs
        closed = isinstance(rel, (sympy.GreaterThan, sympy.LessThan))
        pairs.append((lower, upper, closed))
    (l1, u1, c1), (l2, u2, c2) = pairs
    if u1 == l2:  # l1 <= x <= u2
        return l1, u1, u2, c1, c2
    if u2 == l1:
        return l2, u2, u1, c2, c1
    return None


class TextbookStrPrinter(StrPrinter):
    """SymPy's text printer with indicators at kinks (``1[x > 0]``)."""

    def _condition(self, cond) -> str:
        interval = _interval(cond)
        if interval is not None:
            lo, x, hi, lo_closed, hi_closed = interval
            return (f"{self._print(lo)} {'<=' if lo_closed else '<'} {self._print(x)} "
                    f"{'<=' if hi_closed else '<'} {self._print(hi)}")
        if isinstance(cond, sympy.Eq):
            return f"{self._print(cond.lhs)} = {self._print(cond.rhs)}"
        if isinstance(cond, sympy.Ne):
            return f"{self._print(cond.lhs)} != {self._print(cond.rhs)}"
        return self._print(cond)

    def _print_Heaviside(self, expr):
        lhs, op, rhs, h0 = _heaviside_parts(expr)
        a, b = self._print(lhs), self._print(rhs)
        strict = f"1[{a} {op} {b}]"
        if h0 == 0:
            return strict
        if h0 == 1:
            return f"1[{a} {op}= {b}]"
        tie = f"1[{a} = {b}]"
        return f"({strict} + {tie}/2)" if h0 == _TIE_HALF else \
            f"({strict} + {self._print(h0)}*{tie})"

    def _print_Piecewise(self, expr):
        cond = _indicator_condition(expr)
        if cond is not None:
            return f"1[{self._condition(cond)}]"
        # cases as a reader says them: (x**2 if x > 0, 1/2 if x = 0, 0 otherwise)
        cases = [f"{self._print(e)} otherwise" if c is sympy.true
                 else f"{self._print(e)} if {self._condition(c)}" for e, c in expr.args]
        return "(" + ", ".join(cases) + ")"

    def _print_Derivative(self, expr):
        # d/dx[...] as written in a derivation, not SymPy's Derivative(..., x)
        variables = "".join(f"d{self._print(v)}" for v, n in expr.variable_count for _ in range(n))
        return f"d/{variables}[{self._print(expr.expr)}]"


class TextbookLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer with names as names, indicators at kinks, ``x^{1/3}``."""

    def __init__(self, settings: dict | None = None) -> None:
        super().__init__({"fold_frac_powers": True, **(settings or {})})

    def _print_Symbol(self, expr, style: str = "plain") -> str:
        name = self._settings["symbol_names"].get(expr)
        return name if name is not None else self._symbol_name(expr.name, style)

    def _symbol_name(self, string: str, style: str = "plain") -> str:
        """A symbol's name: ``\\operatorname{loss}``, ``\\alpha``, ``x_{0}``, ``w_{1,2}``."""
        name, supers, subs = split_super_sub(string)
        supers, subs = [i for i in supers if i], [i for i in subs if i]  # lambda_ is lambda
        plain_base = _is_plain_name(name)
        indices = supers + subs
        if plain_base and any(not i.replace(",", "").isdigit() for i in indices):
            # a snake_case name (learning_rate): one name, not 'learning' with subscript 'rate'
            return r"\operatorname{" + string.replace("_", r"\_") + "}"
        text = _latex_name(name)
        if style == "bold":
            text = rf"\mathbf{{{text}}}"
        if supers:
            text += "^{" + " ".join(_index(s) for s in supers) + "}"
        if subs:
            text += "_{" + " ".join(_index(s) for s in subs) + "}"
        return text

    def _print_Pow(self, expr):
        exponent = expr.exp
        if exponent.is_Rational and abs(exponent.p) == 1 and exponent.q > 2:
            # x^{1/3}: the exponent the user wrote, not a cube-root sign
            saved = self._settings["root_notation"]
            self._settings["root_notation"] = False
            try:
                return super()._print_Pow(expr)
            finally:
                self._settings["root_notation"] = saved
        return super()._print_Pow(expr)

    # An indicator is a bracketed atom: no parentheses around it in products and powers.
    def _needs_mul_brackets(self, expr, first=False, last=False) -> bool:
        if _indicator_condition(expr) is not None:
            return False
        return super()._needs_mul_brackets(expr, first=first, last=last)

    def parenthesize(self, item, level, is_neg=False, strict=False):
        if _indicator_condition(item) is not None:
            return self._print(item)
        return super().parenthesize(item, level, is_neg=is_neg, strict=strict)

    def _condition(self, cond) -> str:
        interval = _interval(cond)
        if interval is not None:
            lo, x, hi, lo_closed, hi_closed = interval
            le = r"\le"
            return (f"{self._print(lo)} {le if lo_closed else '<'} {self._print(x)} "
                    f"{le if hi_closed else '<'} {self._print(hi)}")
        return self._print(cond)

    def _indicator(self, condition: str, exp: str | None = None) -> str:
        text = rf"\mathbb{{1}}\left[{condition}\right]"
        return rf"{text}^{{{exp}}}" if exp else text

    def _print_Heaviside(self, expr, exp=None):
        lhs, op, rhs, h0 = _heaviside_parts(expr)
        a, b = self._print(lhs), self._print(rhs)
        if h0 == 0:
            return self._indicator(f"{a} {op} {b}", exp)
        if h0 == 1:
            return self._indicator(rf"{a} {_LATEX_NONSTRICT[op]} {b}", exp)
        weight = r"\tfrac{1}{2}" if h0 == _TIE_HALF else self._print(h0)
        text = (rf"\left({self._indicator(f'{a} {op} {b}')} + "
                rf"{weight} \, {self._indicator(f'{a} = {b}')}\right)")
        return rf"{text}^{{{exp}}}" if exp else text

    def _print_Piecewise(self, expr):
        cond = _indicator_condition(expr)
        if cond is not None:
            return self._indicator(self._condition(cond))
        return super()._print_Piecewise(expr)


def _index(part: str) -> str:
    """A sub/superscript: digits as they are, Greek translated, words upright."""
    if part.replace(",", "").isdigit():
        return part
    return r"\mathrm{" + part + "}" if _is_plain_name(part) else translate(part)


def latex(expr: Any, **settings: Any) -> str:
    """LaTeX of ``expr`` for a student (see the module docstring); ``settings`` as SymPy's."""
    return TextbookLatexPrinter(settings).doprint(expr)


def text(expr: Any, **settings: Any) -> str:
    """Plain text of ``expr`` for a student (indicators at kinks, otherwise SymPy's ``str``)."""
    return TextbookStrPrinter(settings).doprint(expr)


@dataclass(frozen=True)
class Note:
    """A convention a formula relies on, as one line of text and as LaTeX (``\\text{...}``)."""

    text: str
    latex: str


def convention_notes(*exprs: Any) -> list[Note]:
    """The non-smooth conventions ``exprs`` rely on, one note per kink: the value at the kink
    and whose convention it is (torch's), phrased with the notation the printers use."""
    notes: list[Note] = []

    def add(plain: str, tex_parts: list[tuple[str, bool]]) -> None:
        tex = "".join(rf"\text{{{p}}}" if is_text else p for p, is_text in tex_parts)
        note = Note(plain, tex)
        if note not in notes:
            notes.append(note)

    tp, lp = TextbookStrPrinter(), TextbookLatexPrinter()
    for expr in exprs:
        if not isinstance(expr, sympy.Basic):
            continue
        for h in sorted(expr.atoms(sympy.Heaviside), key=sympy.default_sort_key):
            lhs, op, rhs, h0 = _heaviside_parts(h)
            a, b = tp.doprint(lhs), tp.doprint(rhs)
            la, lb = lp.doprint(lhs), lp.doprint(rhs)
            if h0 == 0:
                add(f"1[{a} {op} {b}] is 1 where {a} {op} {b}, else 0: at {a} = {b} the value is 0 "
                    "(torch's convention, relu'(0) = 0)",
                    [(r"\mathbb{1}", False), (f"[${la} {op} {lb}$] is 1 where ${la} {op} {lb}$, else 0: "
                                              f"at ${la} = {lb}$ the value is 0 (torch's "
                                              "convention)", True)])
            elif h0 == _TIE_HALF:
                add("at a tie of maximum/minimum (equal arguments) the derivative is split "
                    "evenly, 1/2 each (torch's convention)",
                    [("at a tie of maximum/minimum (equal arguments) the derivative is split "
                      "evenly, 1/2 each (torch's convention)", True)])
        for s in sorted(expr.atoms(sympy.sign), key=sympy.default_sort_key):
            u, lu = tp.doprint(s.args[0]), lp.doprint(s.args[0])
            add(f"sign({u}) is 0 at {u} = 0: the derivative of |{u}| there is 0 (torch's "
                "convention)",
                [(rf"$\operatorname{{sign}}({lu})$ is 0 at ${lu} = 0$: the derivative of "
                  rf"$|{lu}|$ there is 0 (torch's convention)", True)])
        for pw in expr.atoms(sympy.Piecewise):
            cond = _indicator_condition(pw)
            interval = _interval(cond) if cond is not None else None
            if interval is not None and interval[3] and interval[4]:
                lo, x, hi = (tp.doprint(v) for v in interval[:3])
                llo, lx, lhi = (lp.doprint(v) for v in interval[:3])
                add(f"1[{lo} <= {x} <= {hi}]: the derivative of clip is 1 on the closed "
                    f"interval, ends included (torch's convention for clamp)",
                    [(f"the derivative of clip is 1 on the closed interval ${llo} \\le {lx} "
                      f"\\le {lhi}$, ends included (torch's convention)", True)])
            elif cond is not None and cond.has(sympy.Max, sympy.Min) and cond.has(sympy.Eq):
                add("ties of max/min: the derivative is split evenly among the entries equal "
                    "to the maximum (torch's convention)",
                    [("ties of max/min: the derivative is split evenly among the entries "
                      "equal to the maximum (torch's convention)", True)])
        if expr.has(_stop_gradient_class()):
            add("sg[u] is the value of u held constant: no derivative flows through it "
                "(torch's detach)",
                [(r"\operatorname{sg}", False),
                 ("[u] is the value of u held constant: no derivative flows through it", True)])
    return notes


def _stop_gradient_class():
    from ..sympy_functions import stop_gradient

    return stop_gradient


__all__ = ["latex", "text", "function_latex", "convention_notes", "Note",
           "TextbookLatexPrinter", "TextbookStrPrinter"]
