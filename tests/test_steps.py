"""wb.steps: rules named at each step, every intermediate result right, agreement with
wb.derivative, text / LaTeX / pages views."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import workbench as wb
from tests.corpus.textbook_derivatives import CORPUS
from workbench.exprparse import parse

x, y = sympy.symbols("x y", real=True)


def same(a, b) -> bool:
    d = a - b
    if d == 0 or sympy.expand(d) == 0 or sympy.simplify(d) == 0:
        return True
    f = sympy.lambdify((x, y), d, "mpmath")
    return all(abs(complex(f(v, 0.3))) < 1e-10 for v in (0.31, 0.57, 0.83))


# A spread of the textbook corpus: every rule appears.
SAMPLE = CORPUS[::5]


@pytest.mark.parametrize("f_text, _", SAMPLE)
def test_agrees_with_derivative_and_every_step_is_right(f_text, _):
    f = parse(f_text).function()
    s = wb.steps(f)
    d = wb.derivative(f)
    assert same(s.result, d.expr), (s.result, d.expr)
    assert same(s.raw, s.result)
    for step in s.steps:  # each intermediate result is the derivative of its expression
        assert same(step.result, sympy.diff(step.expr, x)), (step.rule, step.expr)


@pytest.mark.parametrize("func, rules", [
    (lambda x: x ** 3 * np.sin(x), {"product rule", "power rule", "known derivative"}),
    (lambda x: np.sin(x) / (1 + x ** 2), {"quotient rule", "known derivative", "sum rule",
                                          "power rule"}),
    (lambda x: np.exp(np.cos(x)), {"chain rule", "known derivative"}),
    (lambda x: 2 ** x - 3 * x, {"difference rule", "exponential rule",
                                "constant multiple rule"}),
    (lambda x: x ** np.sin(x), {"logarithmic differentiation", "known derivative"}),
    (lambda x: (1 + x) ** 5, {"power rule and chain rule", "sum rule"}),
    (lambda x: np.where(x > 0, x ** 3, -x), {"piecewise rule", "power rule",
                                              "constant multiple rule"}),
])
def test_rules_are_named(func, rules):
    assert {s.rule for s in wb.steps(func).steps} == rules


def test_partial_derivative_treats_other_parameters_as_constants():
    s = wb.steps(lambda x, y: x * y ** 2 + np.sin(x * y), argnums=1)
    assert same(s.result, 2 * x * y + x * sympy.cos(x * y))
    assert s.text().startswith("∂/∂y [")
    assert r"\frac{\partial}{\partial y}" in s.latex()


def test_torch_conventions_at_kinks():
    s = wb.steps(lambda x: wb.relu(x) * x)
    assert s.result.subs(x, 0) == 0
    assert any(step.result == sympy.Heaviside(x, 0) for step in s.steps)


def test_views():
    s = wb.steps(lambda x: np.log(x) * x)
    text = s.text()
    assert "(product rule)" in text and "simplified: log(x) + 1" in text
    latex = s._repr_latex_()
    assert latex.startswith(r"$\displaystyle \begin{aligned}") and r"\text{product rule}" in latex
    pages = s.pages()
    assert [p["rule"] for p in pages] == ["product rule", "known derivative", "simplification"]
    assert set(pages[0]) == {"rule", "depth", "expression", "formula", "result", "text"}
    assert pages[-1]["result"] == sympy.latex(sympy.log(x) + 1)


def test_control_flow_branch_is_reported():
    def f(x):
        return x ** 2 if x > 1 else -x

    assert wb.steps(f, 2.0).guards == [x > 1]
    assert "traced where: x > 1" in wb.steps(f, 2.0).text()


def test_errors():
    with pytest.raises(wb.InputTypeError, match="float scalar"):
        wb.steps(lambda v: v.sum(), np.ones(3), form="elements")
    with pytest.raises(wb.ArgnumsError, match="one int"):
        wb.steps(lambda x, y: x * y, argnums=(0, 1))

    def deep(x):
        for _ in range(12):
            x = np.sin(x) * x
        return x

    with pytest.raises(wb.BudgetExceededError, match="wb.derivative"):
        wb.steps(deep)
