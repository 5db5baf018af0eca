"""``wb.steps(func, ...)``: a step-by-step derivation a course can show.

The derivation walks the traced graph of ``func``: each operation that depends on the variable
is one step, naming the rule that applies (sum, difference, constant multiple, product,
quotient, power, exponential, logarithmic differentiation, chain rule, known derivative,
piecewise), the rule written with the derivatives of the parts still to be taken, and its
result once they are. Known derivatives of functions come from the op table's own partials, so
non-smooth points keep torch's conventions (``relu'(x) = 1[x > 0]``, 0 at the kink, stated in a
note). The last step is the simplification, by the same bounded simplifier as
:func:`wb.derivative`, so the two agree (with the textbook form beside it where that differs).

Views: ``.text()``, ``.latex()`` (an ``aligned`` block; ``_repr_latex_`` in Jupyter) and
``.pages()`` (one dict per step, for a widget to page through).

>>> import numpy as np, workbench as wb
>>> s = wb.steps(lambda x: x ** 3 * np.sin(x))
>>> print(s.text())
d/dx [x**3*sin(x)] = d/dx[x**3]*sin(x) + x**3*d/dx[sin(x)]   (product rule)
    = x**3*cos(x) + 3*x**2*sin(x)
  d/dx [x**3] = 3*x**(3 - 1)   (power rule)
      = 3*x**2
  d/dx [sin(x)] = cos(x)   (known derivative)
simplified: x**2*(x*cos(x) + 3*sin(x))
>>> [p["rule"] for p in s.pages()]
['product rule', 'power rule', 'known derivative', 'simplification']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sympy

from ..config import config
from ..errors import ArgnumsError, BudgetExceededError, InputTypeError
from ..ops import OPS
from ..symbolic.simplify import simplify, textbook_form
from ..symbolic.to_sympy import build, number, to_sympy, tree_sizes
from .capture import Capture, capture
from .formula import guard_conditions, in_user_symbols, symbols_of
from .printing import convention_notes, function_latex
from .printing import latex as to_latex
from .printing import text as to_text

#: A derivation longer than this many steps is refused (it would not be read).
MAX_STEPS = 60


@dataclass
class Step:
    """One rule application: ``d/dx expr = formula = result``."""

    rule: str
    expr: Any  # the subexpression differentiated
    formula: Any  # the rule applied, with unevaluated derivatives of the parts
    result: Any  # the derivative of expr
    depth: int  # nesting level in the derivation (0: the whole function)


class Steps:
    """A derivation: ``.steps`` (list of :class:`Step`), ``.raw`` (the assembled derivative),
    ``.result`` (simplified), ``.textbook`` (the result as a sum of simple terms where
    simplification nested fractions, else ``.result``), ``.variable``, ``.guards``,
    ``.notes`` (conventions at kinks); views ``text()``, ``latex()``, ``pages()``."""

    def __init__(self, cap: Capture, variable: sympy.Symbol, steps: list[Step], raw: Any,
                 result: Any, partial: bool, textbook: Any = None) -> None:
        def mine(e):
            return in_user_symbols(cap, e)

        self.capture = cap
        self.variable = mine(variable)
        self.steps = [Step(s.rule, mine(s.expr), mine(s.formula), mine(s.result), s.depth)
                      for s in steps]
        self.raw = mine(raw)
        self.result = mine(result)
        self.textbook = mine(result if textbook is None else textbook)
        self.partial = partial
        self.guards = guard_conditions(cap)

    @property
    def conventions(self):
        """The torch conventions at kinks the derivation relies on (text and LaTeX)."""
        return convention_notes(*(s.result for s in self.steps), self.result, self.textbook)

    @property
    def notes(self) -> list[str]:
        return [c.text for c in self.conventions]

    def _d(self, latex: bool) -> str:
        x = self.variable
        if latex:
            d = r"\partial" if self.partial else "d"
            return rf"\frac{{{d}}}{{{d} {to_latex(x)}}}"
        return f"{'∂' if self.partial else 'd'}/{'∂' if self.partial else 'd'}{x}"

    def _result_text(self) -> str:
        if self.textbook != self.result:
            return f"{to_text(self.result)} = {to_text(self.textbook)}"
        return to_text(self.result)

    def _result_latex(self) -> str:
        if self.textbook != self.result:
            return f"{to_latex(self.result)} = {to_latex(self.textbook)}"
        return to_latex(self.result)

    def text(self) -> str:
        lines = []
        for s in self.steps:
            pad = "  " * s.depth
            head = f"{pad}{self._d(False)} [{to_text(s.expr)}] ="
            if s.formula == s.result:
                lines.append(f"{head} {to_text(s.result)}   ({s.rule})")
            else:
                lines.append(f"{head} {to_text(s.formula, order='none')}   ({s.rule})")
                lines.append(f"{pad}    = {to_text(s.result)}")
        lines.append(f"simplified: {self._result_text()}")
        if self.guards:
            lines.append("traced where: " + ", ".join(to_text(g) for g in self.guards))
        lines.extend(self.notes)
        return "\n".join(lines)

    def latex(self) -> str:
        d = self._d(True)
        rows = []
        for s in self.steps:
            head = rf"{d}\left[{to_latex(s.expr)}\right]"
            if s.formula == s.result:
                rows.append(rf"{head} &= {to_latex(s.result)} && \text{{{s.rule}}}")
            else:
                formula = to_latex(s.formula, order="none")
                rows.append(rf"{head} &= {formula} && \text{{{s.rule}}}")
                rows.append(rf"&= {to_latex(s.result)}")
        f = function_latex(self.capture.name)
        rows.append(rf"{d} {f} &= {self._result_latex()} && \text{{simplified}}")
        rows.extend(rf"&& {c.latex}" for c in self.conventions)
        return r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"

    def pages(self) -> list[dict[str, Any]]:
        """One dict per step (rule, LaTeX of expression/formula/result, depth), then the
        simplification: what a widget pages through."""
        pages = [{"rule": s.rule, "depth": s.depth, "expression": to_latex(s.expr),
                  "formula": to_latex(s.formula, order="none"),
                  "result": to_latex(s.result),
                  "text": f"{self._d(False)} [{to_text(s.expr)}] = {to_text(s.result)}"}
                 for s in self.steps]
        pages.append({"rule": "simplification", "depth": 0, "expression": to_latex(self.raw),
                      "formula": to_latex(self.raw), "result": self._result_latex(),
                      "text": f"simplified: {self._result_text()}"})
        return pages

    def _repr_latex_(self) -> str:
        return rf"$\displaystyle {self.latex()}$"

    def __repr__(self) -> str:
        return self.text()


def steps(func: Callable | str | Any, *example_args: Any, argnums: int = 0,
          variables: Sequence[Any] | None = None, form: str = "auto") -> Any:
    """The step-by-step derivation of ``d func / d (argument argnums)`` (a scalar parameter).

    ``func`` may be a text or a SymPy expression (``variables`` sets their parameter order).
    Other parameters are constants (a partial derivative). With no example arguments every
    parameter is a scalar symbol and control flow is taken at 0.5 (0.625, ...), as in
    :func:`wb.derivative`. Functions larger than ``wb.config.simplify_max_ops`` terms or
    :data:`MAX_STEPS` steps are refused (use ``wb.derivative``).

    With respect to a float *array* argument (1 or 2 axes) the steps are the matrix chain rule
    (:mod:`workbench.display.matrix_steps`): each array operation, its shapes, its rule and
    what it sends back to its arguments. ``form="auto"`` (the default) chooses by the
    argument; ``"matrix"`` insists on the matrix chain rule, ``"elements"`` on a scalar one.

    >>> import numpy as np, workbench as wb
    >>> s = wb.steps(lambda w, X: np.sum(np.tanh(X @ w)), np.ones(2), np.eye(2))
    >>> len(s.steps) > 0
    True
    """
    if form not in ("auto", "elements", "matrix"):
        raise InputTypeError(f"steps: form must be 'auto', 'elements' or 'matrix', got {form!r}")
    if isinstance(argnums, bool) or not isinstance(argnums, int):
        raise ArgnumsError(f"steps: argnums must be one int (the parameter to differentiate), "
                           f"got {argnums!r}")
    if form == "auto":
        form = "matrix" if _array_argument(func, example_args, argnums) else "elements"
    if form == "matrix":
        if not _array_argument(func, example_args, argnums):
            raise InputTypeError("steps: form='matrix' derives with respect to a float array "
                                 "argument (1 or 2 axes) of a Python function, given as an "
                                 "example value")
        from .matrix import NoMatrixForm
        from .matrix_steps import matrix_steps

        try:
            return matrix_steps(func, example_args, argnums)
        except NoMatrixForm as reason:
            raise NoMatrixForm(f"steps: no matrix form for the chain rule ({reason}); use "
                               "wb.derivative(..., form='elements')") from None
    cap = capture(func, example_args, order=0, transform="steps", variables=variables)
    floats = [p for p in cap.params if p.nodes is not None]
    if not -len(cap.params) <= argnums < len(cap.params):
        raise ArgnumsError(f"steps: argnums={argnums} but the function has "
                           f"{len(cap.params)} parameters")
    param = cap.params[argnums]
    if param.nodes is None or not param.is_scalar:
        raise InputTypeError(f"steps: parameter {param.name!r} must be a float scalar (steps "
                             "derive with respect to one scalar variable); for an array of 1 "
                             "or 2 axes, form='matrix' gives the matrix chain rule step by step, "
                             "and "
                             "wb.derivative the gradient")
    if cap.output.shape != ():
        raise InputTypeError("steps: the function must return a scalar")
    out = int(cap.output)
    size = tree_sizes(cap.graph, [out])[out]
    if size > config.simplify_max_ops:
        raise BudgetExceededError(
            f"steps: the function has {size:,} terms, above wb.config.simplify_max_ops="
            f"{config.simplify_max_ops}; a derivation this long would not be read -- use "
            "wb.derivative (or raise the budget)")
    return _derive(cap, int(param.nodes), out, partial=len(floats) > 1)


def _array_argument(func: Any, example_args: tuple, argnums: int) -> bool:
    """A Python function differentiated w.r.t. a float array: the matrix chain rule's steps."""
    import numpy as np

    from .capture import _plain

    if not callable(func) or isinstance(func, str) or not -len(example_args) <= argnums < len(
            example_args):
        return False
    value = _plain(example_args[argnums])
    return isinstance(value, np.ndarray) and value.dtype.kind == "f" and 1 <= value.ndim <= 2


def _add(*terms):
    """A sum without its zero terms (written as is when SymPy's evaluation is off)."""
    terms = [t for t in terms if t != 0]
    return sympy.S.Zero if not terms else terms[0] if len(terms) == 1 else sympy.Add(*terms)


def _mul(*factors):
    """A product without its unit factors (0 if any factor is 0)."""
    factors = [sympy.sympify(f) for f in factors if f != 1]  # our own SymPy objects and ints
    if any(f == 0 for f in factors):
        return sympy.S.Zero
    return sympy.S.One if not factors else factors[0] if len(factors) == 1 else \
        sympy.Mul(*factors)


def _neg(term):
    return sympy.S.Zero if term == 0 else -term


class _Derivation:
    """Bottom-up derivatives of every node, then the steps in top-down (pre-)order."""

    def __init__(self, cap: Capture, x_node: int, out: int) -> None:
        self.cap, self.graph, self.x_node = cap, cap.graph, x_node
        self.symbols = symbols_of(cap)
        self.x = self.symbols[x_node]
        self.expr: dict[int, Any] = {}
        self.deriv: dict[int, Any] = {}
        self.info: dict[int, tuple[str, Any]] = {}  # node -> (rule, formula)
        self.active: set[int] = set()
        for node in self.graph.ancestors([out]):
            self._visit(node)

    def resolve(self, node: int) -> int:
        while self.graph.op[node] == "alias":
            node = self.graph.args[node][0]
        return node

    def placeholder(self, node: int) -> Any:
        node = self.resolve(node)
        if node == self.x_node:
            return sympy.S.One
        if node not in self.active:
            return sympy.S.Zero
        return sympy.Derivative(self.expr[node], self.x)

    def _visit(self, node: int) -> None:
        g = self.graph
        op, args = g.op[node], g.args[node]
        if node in self.symbols:
            self.expr[node] = self.symbols[node]
            if node == self.x_node:
                self.active.add(node)
                self.deriv[node] = sympy.S.One
            return
        if op == "const":
            self.expr[node] = number(g.values[node])
            return
        if op == "input":
            self.expr[node] = to_sympy(g, [node], self.symbols)[0]
            return
        self.expr[node] = build(op, [self.expr[a] for a in args], g.params[node])
        if op == "alias":
            if self.resolve(node) in self.active:
                self.active.add(node)
                self.deriv[node] = self.deriv[self.resolve(node)]
            return
        if OPS[op].boolean or not any(self.resolve(a) in self.active for a in args):
            return  # conditions have no derivative of their own: not a step
        rule, combine = self._rule(node, op, args)
        with sympy.evaluate(False):  # the rule as written: u'v + uv', n u^(n-1) u'
            formula = combine(self.placeholder)
        result = combine(lambda a: self.deriv.get(self.resolve(a), sympy.S.Zero))
        self.active.add(node)
        self.deriv[node] = result
        self.info[node] = (rule, formula)

    def _rule(self, node: int, op: str, args: tuple[int, ...]):
        e = [self.expr[a] for a in args]
        live = [self.resolve(a) in self.active for a in args]
        if op == "add":
            return "sum rule", lambda d: _add(*(d(a) for a in args))
        if op == "sub":
            return "difference rule", lambda d: _add(d(args[0]), _neg(d(args[1])))
        if op == "neg":
            return "constant multiple rule", lambda d: _neg(d(args[0]))
        if op == "mul":
            if args[0] == args[1]:  # x * x is how x**2 is traced
                base_is_x = self.resolve(args[0]) == self.x_node
                return ("power rule" if base_is_x else "power rule and chain rule",
                        lambda d: _mul(2, e[0], d(args[0])))
            if not live[0]:
                return "constant multiple rule", lambda d: _mul(e[0], d(args[1]))
            if not live[1]:
                return "constant multiple rule", lambda d: _mul(e[1], d(args[0]))
            return "product rule", lambda d: _add(_mul(d(args[0]), e[1]), _mul(e[0], d(args[1])))
        if op == "div":
            if not live[1]:
                return "constant multiple rule", lambda d: d(args[0]) / e[1]
            return "quotient rule", lambda d: _add(
                _mul(d(args[0]), e[1]), _neg(_mul(e[0], d(args[1])))) / e[1] ** 2
        if op == "pow":
            base_is_x = self.resolve(args[0]) == self.x_node
            if not live[1]:
                return ("power rule" if base_is_x else "power rule and chain rule",
                        lambda d: _mul(e[1], e[0] ** (e[1] - 1), d(args[0])))
            if not live[0]:
                return ("exponential rule",
                        lambda d: _mul(self.expr[node], sympy.log(e[0]), d(args[1])))
            return ("logarithmic differentiation", lambda d: _mul(self.expr[node], _add(
                _mul(d(args[1]), sympy.log(e[0])), _mul(e[1], d(args[0]), 1 / e[0]))))
        if op == "where":
            return "piecewise rule", lambda d: sympy.Piecewise((d(args[1]), e[0]),
                                                               (d(args[2]), True))
        if op == "stop_gradient":
            return "held constant (sg: no gradient)", lambda d: sympy.S.Zero
        return self._known(node, op, args)

    def _known(self, node: int, op: str, args: tuple[int, ...]):
        """Functions: the op table's partials (torch's conventions), times the inner derivatives."""
        g = self.graph
        rule_fn = OPS[op].partials
        if rule_fn is None:
            return "piecewise constant (derivative 0)", lambda d: sympy.S.Zero
        partial_nodes = rule_fn(g, args, node, g.params[node])
        partials = [None if p is None else to_sympy(g, [p], self.symbols)[0]
                    for p in partial_nodes]
        direct = len(args) == 1 and self.resolve(args[0]) == self.x_node
        rule = "known derivative" if direct else "chain rule"
        if len(args) > 1:
            rule = "known partial derivatives" + ("" if all(
                self.resolve(a) == self.x_node or self.resolve(a) not in self.active
                for a in args) else " and chain rule")

        def combine(d):
            return _add(*(_mul(p, d(a)) for a, p in zip(args, partials) if p is not None))

        return rule, combine

    def ordered(self, out: int) -> list[Step]:
        """Steps in pre-order from the output: each rule before the parts it needs."""
        result, seen = [], set()
        stack = [(self.resolve(out), 0)]
        while stack:
            node, depth = stack.pop()
            if node in seen or node not in self.info:
                continue
            seen.add(node)
            rule, formula = self.info[node]
            result.append(Step(rule, self.expr[node], formula, self.deriv[node], depth))
            if len(result) > MAX_STEPS:
                raise BudgetExceededError(f"steps: the derivation has more than {MAX_STEPS} "
                                          "steps; use wb.derivative for this function")
            children = [self.resolve(a) for a in self.graph.args[node]]
            stack.extend((c, depth + 1) for c in reversed(children))
        return result


def _derive(cap: Capture, x_node: int, out: int, partial: bool) -> Steps:
    derivation = _Derivation(cap, x_node, out)
    raw = derivation.deriv.get(derivation.resolve(out), sympy.S.Zero)
    ordered = derivation.ordered(out)
    start = time.perf_counter()
    result = simplify(raw).expr
    left = config.simplify_seconds - (time.perf_counter() - start)
    textbook = textbook_form(result, seconds=left) if left > 0 else None
    return Steps(cap, derivation.x, ordered, raw, result, partial, textbook)


__all__ = ["steps", "Steps", "Step", "MAX_STEPS"]
