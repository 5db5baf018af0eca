"""wb.trace and wb.derivative: readable formulas, parameter names, order 2, guards, budgets."""

from __future__ import annotations

import time

import numpy as np
import pytest
import sympy

import workbench as wb
from tests.conftest import central_difference
from workbench import sympy_functions as sf

x, y = sympy.symbols("x y", real=True)


def close(expr, symbols, point, expected):
    value = float(sympy.N(expr.subs(dict(zip(symbols, point)))))
    assert value == pytest.approx(expected, rel=1e-10, abs=1e-12)


# ----- names and forms -----
def test_no_example_args_uses_parameter_names():
    d = wb.derivative(lambda x, y: np.sin(x) * y ** 3 + np.exp(x * y))
    assert d.symbols == {"x": x, "y": y}
    assert sympy.simplify(d.expr - (y**3 * sympy.cos(x) + y * sympy.exp(x * y))) == 0


def test_named_function_and_latex():
    def loss(theta):
        return theta ** 2 * np.log(theta)

    d = wb.derivative(loss)
    theta = d.symbols["theta"]
    assert sympy.simplify(d.expr - (2 * theta * sympy.log(theta) + theta)) == 0
    latex = d._repr_latex_()
    assert latex.startswith("$") and r"\frac{d\,\mathrm{loss}}{d \theta}" in latex
    assert "dloss/dtheta" in repr(d)


def test_array_elements_are_indexed_symbols():
    d = wb.derivative(lambda w: np.sum(w ** 3), np.ones(3))
    w0, w1, w2 = sympy.symbols("w_0 w_1 w_2", real=True)
    assert d.expr == sympy.Array([3 * w0**2, 3 * w1**2, 3 * w2**2])
    assert "w_{0}" in d.latex() and r"\nabla_{w}" in d.latex()


def test_matrix_parameter_elements():
    d = wb.derivative(lambda a: (a * a).sum(), np.ones((2, 2)))
    assert d.expr.shape == (2, 2)
    assert str(d.expr[1, 0]) == "2*a_1,0"


def test_argnums_tuple_gives_one_formula_each():
    d = wb.derivative(lambda x, y: x * sympy_free_sin(y), argnums=(0, 1))
    dx, dy = d.expr
    assert dx == sympy.sin(y) and dy == x * sympy.cos(y)
    assert "∂f/∂x" in repr(d) and "∂f/∂y" in repr(d)


def sympy_free_sin(v):
    return np.sin(v)


def test_second_derivative_scalar_and_hessian():
    d2 = wb.derivative(lambda x: x ** 4 * np.sin(x), order=2)
    expected = sympy.diff(x**4 * sympy.sin(x), x, 2)
    assert sympy.simplify(d2.expr - expected) == 0
    h = wb.derivative(lambda v: v[0] ** 2 * v[1] ** 3, np.array([1.0, 2.0]), order=2)
    v0, v1 = sympy.symbols("v_0 v_1", real=True)
    hess = sympy.hessian(v0**2 * v1**3, (v0, v1))
    assert all(sympy.simplify(h.expr[i, j] - hess[i, j]) == 0 for i in range(2) for j in range(2))


def test_agrees_with_wb_grad_and_finite_differences():
    def f(a, b):
        return np.tanh(a) * np.sqrt(b) + np.log1p(a * a * b)

    d = wb.derivative(f, argnums=(0, 1))
    a, b = d.symbols["a"], d.symbols["b"]
    rng = np.random.default_rng(0)
    for _ in range(3):
        p = rng.uniform(0.2, 2.0, size=2)
        ga, gb = wb.grad(f, argnums=(0, 1))(*p)
        close(d.expr[0], (a, b), p, float(ga))
        close(d.expr[1], (a, b), p, float(gb))
        fd = central_difference(lambda t, b=p[1]: f(t, b), p[0])
        assert float(ga) == pytest.approx(float(fd), rel=1e-6)


# ----- non-smooth ops keep torch's conventions -----
def test_relu_and_abs_conventions_match_torch(torch):
    func = torch.func
    d_relu = wb.derivative(wb.relu).expr
    d_abs = wb.derivative(np.abs).expr
    xs = d_relu.free_symbols.pop()
    for v in (-1.5, 0.0, 2.0):
        t = torch.tensor(v)
        assert float(d_relu.subs(xs, v)) == float(func.grad(torch.relu)(t))
        assert float(d_abs.subs(d_abs.free_symbols.pop(), v)) == float(func.grad(torch.abs)(t))


def test_maximum_ties_split_like_torch(torch):
    d = wb.derivative(np.maximum, argnums=(0, 1))
    a, b = d.symbols["x1"], d.symbols["x2"]  # numpy's own parameter names
    ga, gb = torch.func.grad(torch.maximum, argnums=(0, 1))(torch.tensor(1.0), torch.tensor(1.0))
    assert float(d.expr[0].subs({a: 1, b: 1})) == float(ga) == 0.5
    assert float(d.expr[1].subs({a: 1, b: 1})) == float(gb) == 0.5


def test_custom_sympy_functions_follow_torch():
    t = sympy.Symbol("t", real=True)
    assert sf.relu(t).diff(t) == sympy.Heaviside(t, 0)
    assert sympy.Heaviside(0, 0) == 0
    assert sf.stop_gradient(t).diff(t) == 0
    assert sf.step_tie(t, 1).diff(t) == 0 and sf.step_tie(1, 1) == sympy.Rational(1, 2)
    assert sf.in_range(t, -1, 1).diff(t) == 0 and sf.in_range(1, -1, 1) == 1
    assert float(sf.sigmoid(t).diff(t).subs(t, 0)) == 0.25
    assert float(sf.softplus(t).diff(t).subs(t, 30)) == 1.0  # torch: exactly 1 above 20
    assert float(sf.sigmoid(t).subs(t, 1).evalf()) == pytest.approx(1 / (1 + np.exp(-1.0)))
    assert float(sf.softplus(t).subs(t, 2).evalf()) == pytest.approx(np.log1p(np.exp(2.0)))


# ----- control flow -----
def test_branch_taken_is_shown_as_a_condition():
    def f(x):
        if x > 1:
            return x ** 3
        return -x

    d = wb.derivative(f)  # traced at 0.5: the second branch
    assert d.expr == -1
    assert d.guards == [x <= 1]
    d3 = wb.derivative(f, 2.0)
    assert d3.expr == 3 * x**2 and d3.guards == [x > 1]
    assert "traced where" in repr(d3) and r"\text{where }" in d3.latex()


# ----- trace -----
def test_trace_shows_expressions_and_sizes():
    t = wb.trace(lambda a, b: np.stack([a * b, a + b]), 1.0, 2.0)
    a, b = t.symbols["a"], t.symbols["b"]
    assert t.expr == sympy.Array([a * b, a + b])
    assert "size:" in repr(t) and "before CSE" in repr(t)
    assert t._repr_latex_().startswith(r"$\displaystyle f(a, b) =")


# ----- budgets -----
def nested(depth):
    def f(x):
        for _ in range(depth):
            x = np.sin(x) * x
        return x

    return f


def test_large_derivative_is_shown_as_shared_subexpressions_quickly():
    start = time.perf_counter()
    d = wb.derivative(nested(40))
    assert time.perf_counter() - start < 20  # generous: a hang would be minutes
    formula = d.formulas[0]
    assert formula.expr is None and formula.assignments
    assert formula.size.tree > 10**9 and formula.size.ops < 1000
    assert any("shared subexpressions" in n for n in d.notes)
    assert "t_{0}" in d.latex() and "before CSE" in d.size_line()


def test_above_the_pretty_budget_nothing_is_printed(monkeypatch):
    monkeypatch.setattr(wb.config, "pretty_max_ops", 20)
    d = wb.derivative(nested(10))
    assert d.formulas[0].expr is None and not d.formulas[0].assignments
    assert len([n for n in d.notes if "too large" in n or "above" in n]) == 1
    assert "too large to display" in d.latex()


def test_simplify_budget_falls_back_to_a_correct_form(monkeypatch):
    monkeypatch.setattr(wb.config, "simplify_max_ops", 3)
    d = wb.derivative(lambda x: np.exp(x) * np.sin(x) + np.exp(x) * np.cos(x))
    assert any("not simplified" in n for n in d.notes)
    assert sympy.simplify(d.expr - 2 * sympy.exp(x) * sympy.cos(x)) == 0


def test_simplify_time_budget(monkeypatch):
    monkeypatch.setattr(wb.config, "simplify_seconds", 1e-4)
    d = wb.derivative(lambda x: np.log(x + np.sqrt(x * x + 1)))
    assert sympy.simplify(d.expr - 1 / sympy.sqrt(x**2 + 1)) == 0


def test_unsimplified_on_request():
    d = wb.derivative(lambda x: x ** np.sin(x), simplify=False)
    assert d.expr == d.raw and d.expr.has(sympy.Piecewise)  # torch's masks, as traced


# ----- errors -----
def test_errors_are_clear():
    with pytest.raises(wb.NonScalarOutputError, match="scalar"):
        wb.derivative(lambda v: v * 2, np.ones(2))
    for bad in (0, -1):
        with pytest.raises(wb.ArgnumsError, match="order must be a positive integer"):
            wb.derivative(np.sin, order=bad)
    for bad in (1.5, "2", True, None):
        with pytest.raises(wb.ArgnumsTypeError, match="order must be a positive integer"):
            wb.derivative(np.sin, order=bad)
    with pytest.raises(wb.InputTypeError, match="cannot be differentiated"):
        wb.derivative(lambda x, n: x ** n, 1.0, 3, argnums=1)
    with pytest.raises(wb.ArgnumsError, match="argument 2"):
        wb.derivative(lambda x, y: x * y, argnums=2)
    with pytest.raises(wb.ArgnumsError, match="order=2"):
        wb.derivative(lambda x, y: x * y, argnums=(0, 1), order=2)


def test_torch_functions_and_tensor_examples(torch):
    d = wb.derivative(lambda v: (torch.sin(v) * v).sum(), torch.ones(2, dtype=torch.float64))
    v0 = sympy.Symbol("v_0", real=True)
    assert d.expr[0] == v0 * sympy.cos(v0) + sympy.sin(v0)


def test_lambdify_evaluates_custom_functions_with_torch_conventions():
    t = sympy.Symbol("t", real=True)
    expr = sf.relu(t) + sf.step_tie(t, 0) + sf.in_range(t, -1, 1) + sf.softplus(t) \
        + sf.stop_gradient(t) * sf.sigmoid(t)
    f = sympy.lambdify(t, expr, "numpy")
    for v in (-2.0, 0.0, 0.5, 30.0):
        expected = (max(v, 0) + (1.0 if v > 0 else 0.5 if v == 0 else 0.0)
                    + (1.0 if -1 <= v <= 1 else 0.0)
                    + (v if v > 20 else np.log1p(np.exp(v))) + v / (1 + np.exp(-v)))
        assert float(f(v)) == pytest.approx(expected, rel=1e-12)


def test_simplification_gives_back_an_outer_alarm_timer():
    import signal

    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        wb.derivative(lambda x: np.exp(x) * np.sin(x))
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < left <= 30.0 and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("f, slope", [
    (lambda s: np.where(s - s > 0.0, s, 2 * s), 2.0),          # the condition folds to 0 > 0
    (lambda s: np.where(s + 1.0 - s > 0.5, s, 2 * s), 1.0),    # ... and to 1 > 0.5
])
def test_a_condition_that_folds_to_numbers_is_decided(f, slope):
    # Found by the array-program property test: an unevaluated 0 > 0 made SymPy's Piecewise raise.
    d = wb.derivative(f, 0.5)
    assert float(sympy.sympify(d).subs(sympy.Symbol("s"), 0.5)) == slope


def test_a_sympy_failure_inside_one_simplification_pass_does_not_sink_the_others(monkeypatch):
    # Seen in CI: mpmath's PSLQ asserted inside sympy.simplify at a random test point, and the
    # AssertionError came out of wb.derivative. One optional pass failing must only skip it.
    from workbench.symbolic import simplify as simplify_module

    def broken(expr):
        raise AssertionError("mpmath pslq: assert tol")

    passes = [(name, broken if name == "simplify" else rewrite)
              for name, rewrite in simplify_module._PASSES]
    assert any(name == "simplify" for name, _ in passes)
    monkeypatch.setattr(simplify_module, "_PASSES", passes)
    d = wb.derivative(lambda x: x ** 2 * x + x * x ** 2)
    x = sympy.Symbol("x", real=True)
    assert sympy.simplify(d.expr - 6 * x ** 2) == 0
