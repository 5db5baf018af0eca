"""no_grad inside and around transforms, as the reference's note on torch.func.grad says.

Case 1: ``no_grad`` inside the function is respected (what it computes is a constant).
Case 2: ``no_grad`` around the ``grad(f)(x)`` call is ignored.
Nested levels are checked against torch.func run live: the same function body runs once with
``torch.func.grad`` + ``torch.no_grad`` and once with ``wb.grad`` + ``wb.no_grad`` (or
``torch.no_grad`` on traced values).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest

import workbench as wb


def case1(no_grad):
    def f(x):
        with no_grad():
            c = x ** 2
        return x - c

    return f


# ----- workbench's own no_grad, closed forms -----
def test_no_grad_inside_makes_a_constant():
    assert float(wb.grad(case1(wb.no_grad))(3.0)) == 1.0          # d/dx (x - c) = 1
    g, v = wb.grad_and_value(case1(wb.no_grad))(3.0)
    assert (float(g), float(v)) == (1.0, 3.0 - 9.0)                # the value still follows x


def test_no_grad_around_the_call_has_no_effect():
    with wb.no_grad():
        assert float(wb.grad(lambda x: x ** 2)(3.0)) == 6.0
        assert float(wb.grad(case1(wb.no_grad))(3.0)) == 1.0
        g, v = wb.grad_and_value(np.sin)(0.5)
    assert math.isclose(float(g), math.cos(0.5)) and math.isclose(float(v), math.sin(0.5))


def test_no_grad_around_a_cached_call_has_no_effect():
    g = wb.grad(lambda x: (x ** 3).sum())
    first = g(np.array([1.0, 2.0]))
    with wb.no_grad():
        again = g(np.array([1.0, 2.0]))       # cached version
        other = g(np.array([1.0, 2.0, 3.0]))  # traced under the outer no_grad
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(other, [3.0, 12.0, 27.0])


def test_no_grad_covers_every_kind_of_operation():
    def f(x):
        with wb.no_grad():
            c = (np.sin(x) @ np.ones(3)) + x.sum() * x.max() + np.dot(x, x) + wb.relu(x).mean()
        return c * x.sum()

    x = np.array([0.1, 0.2, 0.3])
    with wb.no_grad():
        c = (np.sin(x) @ np.ones(3)) + x.sum() * x.max() + np.dot(x, x) + np.maximum(x, 0).mean()
    np.testing.assert_allclose(wb.grad(f)(x), np.full(3, c))


def test_enable_grad_inside_no_grad_inside_the_function():
    def f(x):
        with wb.no_grad():
            with wb.enable_grad():
                c = x ** 2
            d = x ** 3
        return c + d

    assert float(wb.grad(f)(2.0)) == 4.0


def test_no_grad_as_decorator_inside_the_function():
    @wb.no_grad()
    def constant_square(x):
        return x ** 2

    assert float(wb.grad(lambda x: x * constant_square(x))(3.0)) == 9.0


def test_grad_mode_is_restored_after_errors():
    def f(x):
        with wb.no_grad():
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        wb.grad(f)(1.0)
    assert wb.modes.is_grad_enabled()
    assert float(wb.grad(lambda x: x * x)(2.0)) == 4.0


def test_stop_gradient_equals_no_grad():
    a = wb.grad(lambda x: x * wb.stop_gradient(x ** 2))(2.0)
    b = wb.grad(lambda x: x * case1(wb.no_grad)(x) + x * x ** 2 - x * x)(2.0)
    # b = x (x - c) + x^3 - x^2 with c = x^2 constant: b' = 3 x^2 - c
    assert float(a) == 4.0 and float(b) == 3 * 4.0 - 4.0


# ----- nested levels: the same bodies under torch.func and workbench -----
def inner_no_grad(grad, no_grad):
    """no_grad inside the inner function: only the inner level sees c as a constant."""
    def outer(x):
        def inner(y):
            with no_grad():
                c = x * y
            return c + y * y
        return grad(inner)(x) * x
    return outer


def no_grad_around_inner_grad(grad, no_grad):
    """no_grad around a nested grad call: the inner grad works, its result is a constant."""
    def outer(x):
        with no_grad():
            gy = grad(lambda y: x * y * y)(x)
        return gy * x + x ** 2
    return outer


def outer_constant_used_inside(grad, no_grad):
    def outer(x):
        with no_grad():
            c = x ** 2
        return grad(lambda y: c * y * y + x * y)(x)
    return outer


def enable_grad_inside(grad, no_grad, enable_grad):
    def outer(x):
        with no_grad():
            with enable_grad():
                gy = grad(lambda y: (x * y).sin())(x)
        return gy * x
    return outer


def third_order_with_no_grad(grad, no_grad):
    def f(x):
        with no_grad():
            c = x.exp()
        return c * x ** 4 + x ** 3
    return grad(grad(grad(f)))


NESTED = {
    "no_grad inside the inner function": inner_no_grad,
    "no_grad around the inner grad call": no_grad_around_inner_grad,
    "outer no_grad constant used inside": outer_constant_used_inside,
    "third order with a no_grad constant": third_order_with_no_grad,
}


@pytest.mark.parametrize("name", list(NESTED))
@pytest.mark.parametrize("our_no_grad", ["wb.no_grad", "torch.no_grad"])
def test_nested_no_grad_matches_torch_func(torch, name, our_no_grad):
    make = NESTED[name]
    x = torch.tensor(0.7)
    expected = make(torch.func.grad, torch.no_grad)
    if name.startswith("third"):
        want = expected(x)
    else:
        want = torch.func.grad(expected)(x)
    ours_ng = wb.no_grad if our_no_grad == "wb.no_grad" else torch.no_grad
    ours = make(wb.grad, ours_ng)
    got = ours(x) if name.startswith("third") else wb.grad(ours)(x)
    assert isinstance(got, torch.Tensor)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_nested_enable_grad_matches_torch_func(torch):
    x = torch.tensor(0.4)
    want = torch.func.grad(enable_grad_inside(torch.func.grad, torch.no_grad, torch.enable_grad))(x)
    got = wb.grad(enable_grad_inside(wb.grad, wb.no_grad, wb.enable_grad))(x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


# ----- torch.no_grad, as in the reference's note -----
def test_torch_no_grad_case_1_inside(torch):
    f = case1(torch.no_grad)
    x = torch.tensor(3.0)
    want = torch.func.grad(f)(x)
    got = wb.grad(f)(x)
    assert isinstance(got, torch.Tensor)
    torch.testing.assert_close(got, want)
    assert float(got) == 1.0


def test_torch_no_grad_case_2_around(torch):
    f = case1(torch.no_grad)
    x = torch.tensor(3.0)
    with torch.no_grad():
        want = torch.func.grad(f)(x)
        got = wb.grad(f)(x)
        plain = wb.grad(lambda t: (t ** 2).sin())(x)
        plain_want = torch.func.grad(lambda t: (t ** 2).sin())(x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(plain, plain_want)
    assert torch.is_grad_enabled()


def test_torch_no_grad_applies_to_numpy_inputs_too(torch):
    assert float(wb.grad(case1(torch.no_grad))(3.0)) == 1.0


def test_torch_no_grad_state_is_restored(torch):
    with torch.no_grad():
        wb.grad(case1(torch.no_grad))(torch.tensor(1.0))
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


@pytest.mark.parametrize("ctx", [contextlib.nullcontext, "wb", "torch"])
def test_outer_context_never_changes_nested_results(torch, ctx):
    manager = {"wb": wb.no_grad, "torch": torch.no_grad}.get(ctx, ctx)
    f = wb.grad(wb.grad(lambda x: x.sin() * x))
    with manager():
        got = f(torch.tensor(0.3))
    want = torch.func.grad(torch.func.grad(lambda x: x.sin() * x))(torch.tensor(0.3))
    torch.testing.assert_close(got, want)
