"""Display a student can read: names typeset as names, kinks as indicators with torch's
convention stated (never an internal name), a textbook form beside the simplified one, exact
rational powers, and the LaTeX export rendering as mathematics in Jupyter.

Expected values come from mathematics, ``sympy.diff`` of the written formula and torch run
live; the forbidden names are what the op table calls its internal helpers.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy

import workbench as wb
from workbench.display import printing
from workbench.symbolic.simplify import fraction_depth

x = sympy.Symbol("x", real=True)

#: Internal names that must never reach a student's text or LaTeX.
FORBIDDEN = ("step_tie", "Heaviside", "theta", "θ", "in_range", "stop_gradient")


def every_view(func, *args) -> dict[str, str]:
    """Every text and LaTeX view of derivative / trace of the gradient / steps / LaTeX export."""
    d = wb.derivative(func, *args)
    views = {"derivative repr": repr(d), "derivative latex": d._repr_latex_(),
             "trace of grad": repr(wb.trace(wb.grad(func), *(args or (0.5,)))),
             "trace of grad latex": wb.trace(wb.grad(func), *(args or (0.5,))).latex()}
    exported = wb.export(func, *args, target="latex")
    views["export source"] = str(exported)
    views["export rendered"] = exported._repr_mimebundle_()["text/latex"]
    try:
        s = wb.steps(func, *args)
    except wb.InputTypeError:  # steps work on scalar parameters only
        return views
    views.update({"steps text": s.text(), "steps latex": s.latex(),
                  "steps pages": repr(s.pages())})
    return views


# ----- names -----
def test_multi_letter_parameters_are_names_not_products():
    def nested(loss, alpha, x):
        return loss ** 2 * alpha + np.sin(x) * loss

    d = wb.derivative(nested, argnums=(0, 1, 2))
    latex = d.latex()
    assert r"\operatorname{loss}" in latex and r"\alpha" in latex
    # every "loss" in the LaTeX is inside a name command, never bare letters l o s s
    assert all(latex[m.start() - 1] == "{" for m in re.finditer("loss", latex))
    assert r"\frac{\partial\,\mathrm{nested}}{\partial \operatorname{loss}}" in latex
    assert "operatorname{alpha}" not in latex and "operatorname{x}" not in latex


def test_function_names_in_labels_and_single_letters_unchanged():
    def nested(x):
        return np.sin(x) ** 2

    assert r"\frac{d\,\mathrm{nested}}{d x}" in wb.derivative(nested).latex()
    assert r"\frac{d f}{d x}" in wb.derivative(lambda x: x ** 3).latex()
    assert wb.trace(nested).latex().startswith(r"\mathrm{nested}(x) =")


def test_element_greek_and_snake_case_names():
    def f(theta, learning_rate, w, x_min):
        return theta * learning_rate * (w ** 2).sum() * x_min

    latex = wb.derivative(f, 0.5, 0.1, np.ones(2), 0.2, argnums=2).latex()
    assert r"w_{0}" in latex and r"w_{1}" in latex
    assert r"\theta" in latex and r"x_{\mathrm{min}}" in latex
    assert r"\operatorname{learning\_rate}" in latex


# ----- kinks -----
KINKS = {
    "relu": (lambda x: wb.relu(x) * x, ()),
    "abs": (lambda x: np.abs(x) ** 3, ()),
    "sign": (lambda x: np.sign(x) * x, ()),
    "maximum": (lambda x: np.maximum(x, 1.0 - x), ()),
    "minimum": (lambda x: np.minimum(x * x, x), ()),
    "clip": (lambda x: np.clip(x, -1.0, 1.0) * x, ()),
    "where": (lambda x: np.where(x > 0, x ** 2, -x), ()),
    "max reduction": (lambda v: v.max(), (np.array([0.5, 0.25, 0.125]),)),
    "stop_gradient": (lambda x: x * wb.stop_gradient(x * x), ()),
    "floor": (lambda x: np.floor(x) * x, ()),
    "softplus": (lambda x: wb.softplus(x) * x, ()),
    "heaviside text": ("Heaviside(x) * x + x", ()),
}


@pytest.mark.parametrize("name", list(KINKS))
def test_no_internal_name_in_any_view(name):
    func, args = KINKS[name]
    if isinstance(func, str):
        func = wb.exprparse.parse(func).function()
    for view, text in every_view(func, *args).items():
        for word in FORBIDDEN:
            assert word not in text, (name, view, word, text)


def test_relu_derivative_is_an_indicator_with_the_convention_stated(torch):
    d = wb.derivative(wb.relu)
    assert repr(d).splitlines()[0] == "drelu/dx = 1[x > 0]"
    assert r"\mathbb{1}\left[x > 0\right]" in d.latex()
    assert any("at x = 0 the value is 0" in n and "torch" in n for n in d.notes)
    assert "the value is 0" in d.latex()  # stated in the LaTeX too
    for v in (-1.0, 0.0, 2.0):  # and it is torch's value, at the kink included
        assert float(d.expr.subs(x, v)) == float(torch.func.grad(torch.relu)(torch.tensor(v)))


def test_clip_and_minimum_conventions_match_torch(torch):
    clip = wb.derivative(lambda x: np.clip(x, -1.0, 1.0)).expr
    minimum = wb.derivative(lambda a, b: np.minimum(a, b), argnums=(0, 1))
    a, b = minimum.symbols["a"], minimum.symbols["b"]
    for v in (-1.0, 1.0, 0.5, 2.0):
        want = torch.func.grad(lambda t: torch.clamp(t, -1.0, 1.0))(torch.tensor(v))
        assert float(clip.subs(x, v)) == float(want)
    ga, gb = torch.func.grad(torch.minimum, argnums=(0, 1))(torch.tensor(1.0), torch.tensor(1.0))
    assert float(minimum[0].subs({a: 1, b: 1})) == float(ga)
    assert float(minimum[1].subs({a: 1, b: 1})) == float(gb)
    assert "1[-1 <= x <= 1]" in repr(wb.derivative(lambda x: np.clip(x, -1.0, 1.0)))


def test_steps_show_kinks_as_indicators():
    s = wb.steps(lambda x: wb.relu(x) * x)
    assert "1[x > 0]" in s.text() and r"\mathbb{1}" in s.latex()
    assert any("torch" in n for n in s.notes)


# ----- textbook form -----
def test_textbook_form_beside_a_nested_fraction():
    d = wb.derivative(lambda x: np.sin(x) / x)
    expected = sympy.diff(sympy.sin(x) / x, x)
    assert sympy.simplify(d.textbook - expected) == 0 and sympy.simplify(d.expr - expected) == 0
    assert fraction_depth(d.expr) >= 2 > fraction_depth(d.textbook)
    assert d.textbook.is_Add and all(fraction_depth(t) <= 1 for t in d.textbook.args)
    line = repr(d).splitlines()[0]
    assert line.count(" = ") == 2  # df/dx = simplified = textbook
    assert f"= {printing.latex(d.expr)} = {printing.latex(d.textbook)}" in d.latex()
    s = wb.steps(lambda x: np.sin(x) / x)
    assert sympy.simplify(s.textbook - expected) == 0 and s.textbook != s.result


def test_no_textbook_form_where_the_simplified_one_is_familiar():
    d = wb.derivative(lambda x: x ** 2 * np.sin(x))
    assert d.textbook == d.expr
    assert repr(d).splitlines()[0].count(" = ") == 1


def test_textbook_form_respects_the_time_budget(monkeypatch):
    monkeypatch.setattr(wb.config, "simplify_seconds", 1e-9)
    d = wb.derivative(lambda x: np.sin(x) / x)
    assert sympy.simplify(d.textbook - sympy.diff(sympy.sin(x) / x, x)) == 0


# ----- exact rationals -----
def test_written_rationals_stay_exact_in_the_display():
    t = wb.trace("x**(1/3)")
    assert "x^{1/3}" in t.latex() and "0.333" not in t.latex()
    d = wb.derivative("x**(1/3)")
    assert sympy.simplify(d.expr - sympy.diff(x ** sympy.Rational(1, 3), x)) == 0
    assert "x^{2/3}" in d.latex() and "0.666" not in d.latex() + repr(d)
    # the numeric code still computes in floating point, and computes it right
    f = wb.exprparse.parse("x**(1/3)").function()
    assert float(wb.grad(f)(2.0)) == pytest.approx((1 / 3) * 2.0 ** (-2 / 3), rel=1e-15)


def test_square_roots_keep_the_root_sign():
    assert r"\sqrt{x}" in wb.trace("sqrt(x)").latex()


# ----- LaTeX export renders as mathematics -----
def test_latex_export_renders_in_jupyter_and_keeps_its_source(tmp_path):
    path = tmp_path / "d.tex"
    result = wb.export(lambda x: wb.relu(x) * np.sin(x) / x, target="latex", path=path)
    bundle = result._repr_mimebundle_()
    assert set(bundle) == {"text/latex", "text/plain"}
    assert bundle["text/plain"] == str(result) == result.source == path.read_text()
    assert str(result).startswith("% Derivative of f") and r"\begin{align}" in str(result)
    shown = bundle["text/latex"]
    assert shown.startswith("$") and shown.endswith("$") and r"\begin{aligned}" in shown
    assert "%" not in shown  # comments are source-only; notes become \text rows
    assert r"\frac{d f}{d x}" in shown and "torch" in shown
    assert result._repr_latex_() == shown
