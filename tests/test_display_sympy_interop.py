"""Interop a SymPy user expects: ``sympy.sympify(wb.derivative(f))``, results for several
argnums indexed and iterated, texts and SymPy expressions as input, any positive order, and the
parser's SymPy spellings (Abs, Max, Min, Heaviside, log(x, b), sec ... acoth).

Expected values: ``sympy.diff`` of the written formula (SymPy differentiates independently of
our tracing), finite differences, numpy/JAX run live.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy

import workbench as wb
from tests.conftest import central_difference, require
from tests.test_exprparse import HOSTILE
from workbench.exprparse import ExpressionError, parse

X, Y = sympy.symbols("x y", real=True)  # the symbols wb.derivative names after x and y


def same(a, b, points=((0.37,), (1.61,), (2.9,)), symbols=(X,)) -> bool:
    """Symbolically equal, or (where SymPy cannot decide) equal at a few points."""
    difference = sympy.sympify(a) - sympy.sympify(b)
    if sympy.simplify(difference) == 0:
        return True
    f = sympy.lambdify(symbols, difference, "mpmath")
    return all(abs(complex(f(*p))) < 1e-10 for p in points)


# ----- sympify, indexing, iteration -----
def test_sympify_returns_the_expression():
    d = wb.derivative("sec(x)")
    assert sympy.sympify(d) == d.expr
    assert sympy.simplify(sympy.sympify(d) - sympy.sec(X) * sympy.tan(X)) == 0
    assert sympy.simplify(d) == sympy.simplify(d.expr)  # SymPy functions take it directly


def test_several_argnums_index_and_iterate():
    d = wb.derivative(lambda x, y: x ** 2 * np.sin(y), argnums=(0, 1))
    dx, dy = d
    assert len(d) == 2 and list(d) == [d[0], d[1]] == [dx, dy]
    assert same(dx, sympy.diff(X ** 2 * sympy.sin(Y), X), symbols=(X, Y),
                points=((0.3, 0.7), (1.2, -0.4)))
    assert same(d[1], sympy.diff(X ** 2 * sympy.sin(Y), Y), symbols=(X, Y),
                points=((0.3, 0.7), (1.2, -0.4)))
    assert sympy.sympify(d) == sympy.Tuple(dx, dy)


def test_one_argnum_is_a_single_formula():
    d = wb.derivative(lambda x: x ** 3)
    with pytest.raises(TypeError, match="single formula"):
        iter(d)
    with pytest.raises(TypeError, match="single formula"):
        d[0]
    assert d  # still truthy
    with pytest.raises(wb.InputTypeError, match="variables= names the parameters"):
        wb.derivative(lambda x: x, variables=("x",))


def test_too_large_for_one_expression_says_so(monkeypatch):
    monkeypatch.setattr(wb.config, "pretty_max_ops", 30)

    def deep(x):
        for _ in range(6):
            x = np.sin(x) * x
        return x

    with pytest.raises(wb.BudgetExceededError, match="shared subexpressions"):
        sympy.sympify(wb.derivative(deep))


# ----- texts and SymPy expressions as input -----
SYMPY_SPELLINGS = [
    "sec(x)", "csc(x)", "cot(x)", "sech(x)", "csch(x)", "coth(x)",
    "asec(x)", "acsc(x)", "acot(x)", "asech(x/3)", "acsch(x)", "acoth(x + 3)",
    "Abs(x - 1)**3", "x*Abs(x - 2)", "log(x, 3)", "log(x**2 + 1, 2)", "x**(1/3)", "x**(2/7)",
    "Max(x, 2 - x)**2", "Min(x**2, 1)", "exp(x)*E", "atan2(x, 2)",
]


@pytest.mark.parametrize("text", SYMPY_SPELLINGS)
def test_text_derivative_matches_sympy_diff_of_the_written_formula(text):
    d = wb.derivative(text)
    written = parse(text).sympy({"x": X})
    # sample points inside every domain above and away from the kinks (x = 1, 2, 5)
    assert same(d.expr, sympy.diff(written, X), points=((1.37,), (1.61,), (2.9,))), (text, d.expr)
    f = parse(text).function()
    assert float(wb.grad(f)(1.37)) == pytest.approx(float(central_difference(f, 1.37)),
                                                    rel=1e-6)


def test_sympy_expression_input_keeps_the_users_symbols():
    x, y = sympy.symbols("x y")  # no assumptions: the user's own symbols
    expr = sympy.sec(x) * y + sympy.log(x, 3) * sympy.Rational(1, 3) + sympy.sqrt(y ** 2 + 1)
    d = wb.derivative(expr, argnums=(0, 1))
    assert d.expr[0].free_symbols <= {x, y} and d.symbols == {"x": x, "y": y}
    for got, wrt in zip(d, (x, y)):
        assert same(got, sympy.diff(expr, wrt), symbols=(x, y),
                    points=((0.4, 1.3), (1.1, -0.7)))
    assert sympy.simplify(sympy.sympify(wb.derivative(sympy.sec(x))) -
                          sympy.sec(x) * sympy.tan(x)) == 0


def test_sympy_variables_are_sorted_by_name_unless_given():
    b, a = sympy.symbols("b a")
    assert wb.derivative(a * b ** 2).expr == b ** 2  # argnums=0 is a
    assert wb.derivative(a * b ** 2, variables=(b, a)).expr == 2 * a * b
    assert wb.derivative("b * a**2", variables=("a", "b")).expr == 2 * sympy.Symbol(
        "a", real=True) * sympy.Symbol("b", real=True)


@pytest.mark.parametrize("bad, message", [
    (sympy.Integral(sympy.Symbol("x"), sympy.Symbol("x")), "Integral is not supported"),
    (sympy.Function("g")(sympy.Symbol("x")), "g is not supported"),
    (sympy.I * sympy.Symbol("x"), "ImaginaryUnit is not supported"),
    (sympy.Symbol("e") * 2, "the symbol 'e' cannot be a parameter name"),
    (sympy.Symbol("sin") + 1, "the symbol 'sin' cannot be a parameter name"),
    (sympy.Symbol("_x") + 1, "the symbol '_x' cannot be a parameter name"),
    (sympy.Symbol("a b") + 1, "the symbol 'a b' cannot be a parameter name"),
    (sympy.Eq(sympy.Symbol("x"), 1), "expected a SymPy expression"),
])
def test_unsupported_sympy_input_is_refused_by_name(bad, message):
    with pytest.raises(ExpressionError, match=message):
        wb.derivative(bad)


@pytest.mark.parametrize("text, message", HOSTILE)
def test_hostile_texts_are_still_refused(text, message):
    with pytest.raises(ExpressionError, match=re.escape(message)):
        wb.derivative(text)


@pytest.mark.parametrize("text, message", [
    ("log(x, 2, 3)", "log takes 1 or 2 arguments, got 3"),
    ("Max(x)", "Max takes 2 or more arguments, got 1"),
    ("heaviside(x)", "heaviside takes 2 arguments, got 1"),
])
def test_arity_of_the_new_spellings(text, message):
    with pytest.raises(ExpressionError, match=message):
        parse(text)


def test_constant_expression_has_nothing_to_differentiate():
    with pytest.raises(wb.InputTypeError, match="has no variables"):
        wb.derivative("3 * pi")
    with pytest.raises(wb.InputTypeError, match="has no variables"):
        wb.derivative(sympy.Integer(3))


def test_trace_and_steps_take_texts_too():
    assert wb.trace("x**2 * sin(x)").expr == X ** 2 * sympy.sin(X)
    assert same(wb.steps("x * csc(x)").result, sympy.diff(X * sympy.csc(X), X))


# ----- Heaviside, max/min spellings -----
def test_heaviside_values_follow_numpy_and_sympy():
    one_arg = parse("Heaviside(x)").function()
    two_args = parse("Heaviside(x, h)").function()
    for v in (-1.0, 0.0, 2.0):
        assert float(one_arg(v)) == float(np.heaviside(v, 0.5)) == float(
            sympy.Heaviside(v))
        assert float(two_args(v, 0.25)) == float(np.heaviside(v, 0.25))


def test_heaviside_derivative_is_zero_like_jax():
    jax = require("jax")
    jnp = jax.numpy
    f = parse("Heaviside(x) * 3").function()
    for v in (-1.0, 0.0, 2.0):
        assert float(wb.grad(f)(v)) == float(jax.grad(lambda t: 3 * jnp.heaviside(t, 0.5))(v))
    assert wb.derivative("Heaviside(x) * 3").expr == 0


def test_max_of_three_splits_ties_evenly_like_torch_amax(torch):
    d = wb.derivative("Max(x, y, z)", 1.0, 1.0, 0.5, argnums=(0, 1, 2))
    xs, ys, zs = (d.symbols[n] for n in "xyz")
    point = {xs: 1, ys: 1, zs: sympy.Rational(1, 2)}
    want = torch.func.grad(lambda v: torch.amax(v))(torch.tensor([1.0, 1.0, 0.5]))
    assert [float(e.subs(point)) for e in d] == want.tolist()


# ----- order -----
def test_order_three_and_more_agree_with_sympy():
    assert wb.derivative("sin(x)", order=3).expr == sympy.diff(sympy.sin(X), X, 3) == \
        -sympy.cos(X)
    for order in (4, 5):
        d = wb.derivative(lambda x: x ** 3 * np.log(x) + np.exp(x) * np.sin(x), order=order)
        want = sympy.diff(X ** 3 * sympy.log(X) + sympy.exp(X) * sympy.sin(X), X, order)
        assert same(d.expr, want), order
    assert wb.derivative("sin(x)", order=3).label(0, latex=True) == \
        r"\frac{d^{3} f}{d x^{3}}"
    assert repr(wb.derivative("sin(x)", order=3)).startswith("d³f/dx³ = -cos(x)")


def test_order_three_of_an_array_parameter():
    v0, v1 = sympy.symbols("v_0 v_1", real=True)
    d = wb.derivative(lambda v: v[0] ** 3 * v[1] ** 2, np.array([1.0, 2.0]), order=3)
    want = sympy.derive_by_array(sympy.derive_by_array(sympy.derive_by_array(
        v0 ** 3 * v1 ** 2, (v0, v1)), (v0, v1)), (v0, v1))
    assert d.expr.shape == (2, 2, 2)
    assert all(sympy.expand(d.expr[i, j, k] - want[i, j, k]) == 0
               for i in range(2) for j in range(2) for k in range(2))


@pytest.mark.parametrize("order, error", [
    (0, wb.ArgnumsError), (-2, wb.ArgnumsError), (1.5, wb.ArgnumsTypeError),
    ("3", wb.ArgnumsTypeError), (True, wb.ArgnumsTypeError),
])
def test_bad_order_names_order(order, error):
    with pytest.raises(error, match="order must be a positive integer"):
        wb.derivative("x**2", order=order)


def test_higher_order_is_bounded():
    with pytest.raises(wb.BudgetExceededError, match="order=5"):
        wb.derivative(lambda v: (v ** 5).sum(), np.ones(20), order=5)
