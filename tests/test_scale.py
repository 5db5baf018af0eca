"""Compile at scale (issue 6): 10^5-operation programs, the hard size budget, no deep recursion.

Expected values come from closed forms or from an independent forward-mode loop in plain Python,
never from workbench itself. Recursion is checked by running the work with Python's recursion
limit lowered to a little above the current stack depth: any recursive walk over a deep graph
would raise ``RecursionError`` there.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import operator
import sys

import numpy as np
import pytest

import workbench as wb
from workbench.errors import BudgetExceededError
from workbench.tracing import STATE

HEADROOM = 120  # frames allowed above the caller: enough for the call path, not for a deep walk


@contextlib.contextmanager
def shallow_stack(headroom: int = HEADROOM):
    """Run the body with the recursion limit only ``headroom`` frames above the current depth."""
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + headroom)
    try:
        yield
    finally:
        sys.setrecursionlimit(saved)


def nested(depth: int):
    """x -> sin(x) * x, composed ``depth`` times (W2 of the issue)."""

    def f(x):
        for _ in range(depth):
            x = np.sin(x) * x
        return x

    return f


def nested_reference(x: float, depth: int) -> tuple[float, float]:
    """Value and derivative of ``nested(depth)`` by forward mode in plain floats (chain rule)."""
    derivative = 1.0
    for _ in range(depth):
        derivative *= math.sin(x) + x * math.cos(x)
        x = math.sin(x) * x
    return x, derivative


def only_entry(transform):
    """The single compiled version in a transform's cache (the one its first call made)."""
    entries = {id(e): e for versions in transform.__wb_staged__.cache.values() for e in versions}
    assert len(entries) == 1
    return next(iter(entries.values()))


# ----- 10^5 operations -----


def test_deep_chain_of_1e5_operations_compiles_and_matches_the_chain_rule():
    depth = 20_000  # sin and mul per step forward, cos/mul/add/mul per step backward
    x0 = 1.2
    grad_and_value = wb.grad_and_value(nested(depth))
    with shallow_stack():
        gradient, value = grad_and_value(x0)
    entry = only_entry(grad_and_value)
    assert entry.scalar.n_assignments >= 100_000
    expected_value, expected_gradient = nested_reference(x0, depth)
    assert float(value) == pytest.approx(expected_value, rel=1e-9, abs=1e-300)
    assert float(gradient) == pytest.approx(expected_gradient, rel=1e-9, abs=1e-300)
    # The numpy backend (used for batches and where math raises) is generated the same way.
    with shallow_stack():
        program = entry.numpy
    g_np, v_np = program.function(x0)
    assert float(g_np) == pytest.approx(expected_gradient, rel=1e-9, abs=1e-300)


def test_affine_chain_matches_its_closed_form():
    # f(x) = c^n x + s (c^n - 1) / (c - 1): value and derivative c^n in closed form.
    n, c, s = 10_000, 1.00001, 0.5

    def f(x):
        for _ in range(n):
            x = x * c + s
        return x

    with shallow_stack():
        gradient, value = wb.grad_and_value(f)(0.25)
    assert float(gradient) == pytest.approx(c ** n, rel=1e-9)
    assert float(value) == pytest.approx(c ** n * 0.25 + s * (c ** n - 1) / (c - 1), rel=1e-9)


def test_wide_sum_of_1e5_terms_compiles_and_matches_numpy(monkeypatch):
    # Element level: one n-ary sum of 4*10^4 products: long lines are split, the gradient is
    # elementwise.
    monkeypatch.setattr(wb.config, "array_level", False)
    x = np.linspace(-3.0, 3.0, 40_000)
    transform = wb.grad(lambda v: np.sum(np.sin(v) * v))
    with shallow_stack():
        gradient = transform(x)
    assert only_entry(transform).scalar.n_assignments >= 100_000
    np.testing.assert_allclose(gradient, np.sin(x) + x * np.cos(x), rtol=1e-12, atol=1e-12)


def test_wide_sum_at_array_level_is_a_handful_of_statements():
    # The same program at array level: one statement per array op, whatever the length.
    x = np.linspace(-3.0, 3.0, 400_000)
    transform = wb.grad(lambda v: np.sum(np.sin(v) * v))
    gradient = transform(x)
    assert only_entry(transform).program.n_statements <= 8
    np.testing.assert_allclose(gradient, np.sin(x) + x * np.cos(x), rtol=1e-12, atol=1e-12)


def test_array_level_budget_counts_array_operations(monkeypatch):
    # A Python loop over elements makes one array op per step: past the budget, a clear error.
    monkeypatch.setattr(wb.config, "max_nodes", 500)
    with pytest.raises(wb.BudgetExceededError, match="array operations"):
        wb.grad(lambda v: sum(v[i] * v[i] for i in range(len(v))))(np.ones(1000))
    assert not STATE.graphs


def test_1e5_operations_under_vmap_and_the_numpy_backend():
    xs = np.linspace(0.5, 1.5, 7)
    depth = 12_500
    with shallow_stack():
        gradients = wb.vmap(wb.grad(nested(depth)))(xs)
    expected = [nested_reference(float(x), depth)[1] for x in xs]
    np.testing.assert_allclose(gradients, expected, rtol=1e-9, atol=1e-300)


def test_long_sums_and_maxima_keep_left_to_right_float_semantics():
    # n-ary kernels fold in chunks; the result must be the sequential left-to-right sum, bit for
    # bit, in the traced value and in the compiled program alike.
    x = np.random.default_rng(1).standard_normal(5_000) * 1e3
    expected = functools.reduce(operator.add, x.tolist())
    gradient, value = wb.grad_and_value(lambda v: np.sum(v))(x)
    assert float(value) == expected
    np.testing.assert_array_equal(gradient, np.ones_like(x))
    x[1234] = np.nan
    assert np.isnan(wb.grad_and_value(lambda v: np.max(v))(x)[1])


# ----- Jacobians, Hessians: every path against closed forms -----


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_derivatives(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of the Rosenbrock function in closed form."""
    n = x.size
    g, h = np.zeros(n), np.zeros((n, n))
    for i in range(n - 1):
        g[i] += -400.0 * x[i] * (x[i + 1] - x[i] ** 2) - 2.0 * (1.0 - x[i])
        g[i + 1] += 200.0 * (x[i + 1] - x[i] ** 2)
        h[i, i] += 1200.0 * x[i] ** 2 - 400.0 * x[i + 1] + 2.0
        h[i + 1, i + 1] += 200.0
        h[i, i + 1] = h[i + 1, i] = -400.0 * x[i]
    return g, h


def test_rosenbrock_n200_gradient_and_hessian_match_closed_forms():
    x = np.random.default_rng(2).uniform(-1.5, 1.5, 200)
    gradient, hessian = rosenbrock_derivatives(x)
    np.testing.assert_allclose(wb.grad(rosenbrock)(x), gradient, rtol=1e-12, atol=1e-9)
    for name, result in (("hessian", wb.hessian(rosenbrock)(x)),
                         ("jacrev(grad)", wb.jacrev(wb.grad(rosenbrock))(x)),
                         ("jacfwd(grad)", wb.jacfwd(wb.grad(rosenbrock))(x))):
        np.testing.assert_allclose(result, hessian, rtol=1e-12, atol=1e-9, err_msg=name)


# ----- W2 d=80 through every core path -----


def test_deep_nesting_d80_through_every_core_path():
    f = nested(80)
    x0 = 1.5
    _, d1 = nested_reference(x0, 80)
    h = 1e-4
    second = (nested_reference(x0 + h, 80)[1] - nested_reference(x0 - h, 80)[1]) / (2 * h)
    with shallow_stack():
        first = wb.grad(f)(x0)
        hessian = wb.hessian(f)(x0)
        grad_grad = wb.grad(wb.grad(f))(x0)
        jacobian = wb.jacrev(f)(np.array(x0))
        batched = wb.vmap(wb.grad(f))(np.array([x0, x0]))
    assert float(first) == pytest.approx(d1, rel=1e-10)
    assert float(jacobian) == pytest.approx(d1, rel=1e-10)
    np.testing.assert_allclose(batched, [d1, d1], rtol=1e-10)
    assert float(grad_grad) == pytest.approx(second, rel=1e-5)
    assert float(hessian) == pytest.approx(second, rel=1e-5)


def test_deep_nesting_d80_converts_to_sympy_without_recursion():
    sympy = pytest.importorskip("sympy")
    from workbench.symbolic.to_sympy import cse_assignments, operation_count, to_sympy, tree_sizes

    transform = wb.grad(nested(80))
    transform(1.5)
    entry = only_entry(transform)
    (root,) = entry.outputs
    x_symbol = sympy.Symbol("x", real=True)
    symbols = {entry.inputs[0]: x_symbol}
    with shallow_stack():
        (expr,) = to_sympy(entry.graph, [root], symbols)
        sizes = tree_sizes(entry.graph, [root])
        assignments, (final,) = cse_assignments(entry.graph, [root], symbols)
        count = operation_count(entry.graph, [root])
    # The tree is astronomically larger than the DAG: why workbench never builds it by diff().
    assert sizes[root] > 10 ** 20
    assert count < 1_000
    assert isinstance(expr, sympy.Expr)
    # The CSE'd form is small and evaluates, assignment by assignment, to the chain rule's value.
    env = {x_symbol: sympy.Float(1.5, 30)}
    for name, value in assignments:
        env[name] = value.xreplace(env).evalf(30)
    assert float(final.xreplace(env).evalf(30)) == pytest.approx(nested_reference(1.5, 80)[1],
                                                                rel=1e-9)


# ----- the hard budget -----


def test_hard_budget_raises_a_clear_error_suggesting_the_tape(monkeypatch):
    monkeypatch.setattr(wb.config, "max_nodes", 5_000)
    monkeypatch.setattr(wb.config, "array_level", False)  # the element level's budget
    transform = wb.grad(lambda v: np.sum(np.tanh(v) * v))
    with pytest.raises(wb.BudgetExceededError) as caught:
        transform(np.ones(10_000))
    message = str(caught.value)
    assert "5,000" in message and "wb.tape" in message and "max_nodes" in message
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, wb.WorkbenchError)
    assert not STATE.graphs  # the failed trace left no tracing state behind
    # Within the budget the same transform still works.
    np.testing.assert_allclose(transform(np.array([0.5])), [np.tanh(0.5) + 0.5 / np.cosh(0.5) ** 2])


def test_hard_budget_counts_the_derivative_too(monkeypatch):
    # The forward trace fits, its gradient does not: the error still comes, during differentiation.
    depth = 1_000
    monkeypatch.setattr(wb.config, "max_nodes", 3 * depth)
    with pytest.raises(BudgetExceededError, match="tape"):
        wb.grad(nested(depth))(1.2)
    assert not STATE.graphs


def test_hard_budget_stops_early_instead_of_exhausting_memory(monkeypatch):
    # A trace that would take 10^7 nodes stops at the budget, long before building them all.
    monkeypatch.setattr(wb.config, "max_nodes", 20_000)
    calls = []

    def huge(v):
        total = v
        for k in range(10_000_000):
            calls.append(k)
            total = np.sin(total) * v
        return total

    with pytest.raises(BudgetExceededError):
        wb.grad(huge)(0.5)
    assert len(calls) < 20_000
