"""Each VJP of the tape against a hand-derived closed form (and its kink conventions against torch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import require

import workbench as wb

tg = wb.tape.grad
a, b = 0.7, 1.9  # generic points away from every kink and domain edge

# (name, f(x), x, closed-form f'(x))
UNARY = [
    ("neg", lambda x: -x, a, -1.0),
    ("sin", np.sin, a, math.cos(a)),
    ("cos", np.cos, a, -math.sin(a)),
    ("tan", np.tan, a, 1.0 / math.cos(a) ** 2),
    ("asin", np.arcsin, 0.3, 1.0 / math.sqrt(1.0 - 0.09)),
    ("acos", np.arccos, 0.3, -1.0 / math.sqrt(1.0 - 0.09)),
    ("atan", np.arctan, a, 1.0 / (1.0 + a * a)),
    ("sinh", np.sinh, a, math.cosh(a)),
    ("cosh", np.cosh, a, math.sinh(a)),
    ("tanh", np.tanh, a, 1.0 - math.tanh(a) ** 2),
    ("asinh", np.arcsinh, a, 1.0 / math.sqrt(a * a + 1.0)),
    ("acosh", np.arccosh, b, 1.0 / math.sqrt(b * b - 1.0)),
    ("atanh", np.arctanh, 0.3, 1.0 / (1.0 - 0.09)),
    ("exp", np.exp, a, math.exp(a)),
    ("expm1", np.expm1, a, math.exp(a)),
    ("log", np.log, b, 1.0 / b),
    ("log1p", np.log1p, a, 1.0 / (1.0 + a)),
    ("log2", np.log2, b, 1.0 / (b * math.log(2.0))),
    ("log10", np.log10, b, 1.0 / (b * math.log(10.0))),
    ("sqrt", np.sqrt, b, 0.5 / math.sqrt(b)),
    ("abs", np.abs, -a, -1.0),
    ("relu", wb.relu, a, 1.0),
    ("relu<0", wb.relu, -a, 0.0),
    ("sigmoid", wb.sigmoid, a, math.exp(-a) / (1.0 + math.exp(-a)) ** 2),
    ("softplus", wb.softplus, a, 1.0 / (1.0 + math.exp(-a))),
    ("sign", np.sign, a, 0.0),
    ("floor", np.floor, 1.5, 0.0),
    ("ceil", np.ceil, 1.5, 0.0),
    ("stop_gradient", wb.stop_gradient, a, 0.0),
    ("pow const", lambda x: x ** 3.0, a, 3.0 * a * a),
    ("square", np.square, a, 2.0 * a),
    ("reciprocal", np.reciprocal, b, -1.0 / (b * b)),
    ("clip inside", lambda x: np.clip(x, 0.0, 1.0), a, 1.0),
    ("clip outside", lambda x: np.clip(x, 0.0, 0.5), a, 0.0),
    # torch's conventions at non-smooth points
    ("relu'(0) = 0", wb.relu, 0.0, 0.0),
    ("abs'(0) = 0", np.abs, 0.0, 0.0),
    ("sqrt'(0) = inf", np.sqrt, 0.0, math.inf),
    ("clip at lo: 1", lambda x: np.clip(x, 0.7, 2.0), 0.7, 1.0),
    ("clip at hi: 1", lambda x: np.clip(x, -1.0, 0.7), 0.7, 1.0),
    ("softplus above 20: exactly 1", wb.softplus, 30.0, 1.0),
    ("pow(x, 0)' at 0 = 0", lambda x: x ** 0.0, 0.0, 0.0),
    ("maximum tie: 0.5 + 0.5", lambda x: np.maximum(x, x), a, 1.0),
]


@pytest.mark.parametrize("name, f, x, expected", UNARY, ids=[u[0] for u in UNARY])
def test_unary_closed_forms(name, f, x, expected):
    assert float(tg(f)(x)) == pytest.approx(expected, rel=1e-12, abs=1e-14)


BINARY = [
    ("add", lambda x, y: x + y, (1.0, 1.0)),
    ("sub", lambda x, y: x - y, (1.0, -1.0)),
    ("mul", lambda x, y: x * y, (b, a)),
    ("div", lambda x, y: x / y, (1.0 / b, -a / b ** 2)),
    ("pow", lambda x, y: x ** y, (b * a ** (b - 1.0), a ** b * math.log(a))),
    ("atan2", np.arctan2, (b / (a * a + b * b), -a / (a * a + b * b))),
    ("maximum", np.maximum, (0.0, 1.0)),
    ("minimum", np.minimum, (1.0, 0.0)),
    ("where", lambda x, y: np.where(x > 0.5, x * y, y), (b, a)),
    ("logaddexp", np.logaddexp, (math.exp(a) / (math.exp(a) + math.exp(b)),
                                 math.exp(b) / (math.exp(a) + math.exp(b)))),
    ("hypot", np.hypot, (a / math.hypot(a, b), b / math.hypot(a, b))),
]


@pytest.mark.parametrize("name, f, expected", BINARY, ids=[u[0] for u in BINARY])
def test_binary_closed_forms(name, f, expected):
    gx, gy = tg(f, argnums=(0, 1))(a, b)
    assert (float(gx), float(gy)) == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_kink_conventions_of_binary_ops():
    assert [float(g) for g in tg(np.maximum, argnums=(0, 1))(a, a)] == [0.5, 0.5]
    assert [float(g) for g in tg(np.minimum, argnums=(0, 1))(a, a)] == [0.5, 0.5]
    # pow: torch masks d/dy at x == 0 (y >= 0) and d/dx where y == 0
    assert [float(g) for g in tg(lambda x, y: x ** y, argnums=(0, 1))(0.0, 2.0)] == [0.0, 0.0]
    assert [float(g) for g in tg(lambda x, y: x ** y, argnums=(0, 1))(0.0, 0.0)] == [0.0, 0.0]


x3 = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.5]])

ARRAYS = [
    ("sum", lambda x: np.sum(x), np.ones_like(x3)),
    ("sum axis 0 weighted", lambda x: np.sum(np.sum(x, axis=0) * np.array([1.0, 2.0, 3.0])),
     np.array([[1.0, 2.0, 3.0]] * 2)),
    ("sum keepdims", lambda x: np.sum(np.sum(x, axis=1, keepdims=True) * np.array([[2.0], [3.0]])),
     np.array([[2.0] * 3, [3.0] * 3])),
    ("mean", lambda x: x.mean(), np.full(x3.shape, 1.0 / 6.0)),
    ("mean dim (torch style)", lambda x: (x.mean(dim=1) * np.array([1.0, 2.0])).sum(),
     np.array([[1.0 / 3] * 3, [2.0 / 3] * 3])),
    ("prod", lambda x: np.prod(x), np.prod(x3) / x3),
    ("prod axis", lambda x: np.prod(x, axis=1).sum(),
     np.array([[-6.0, 3.0, -2.0], [-6.0, -0.75, 2.0]])),
    ("amax", lambda x: np.max(x), np.array([[0, 0, 0], [0, 1.0, 0]])),
    ("amax axis", lambda x: np.max(x, axis=0).sum(), np.array([[1.0, 0, 1.0], [0, 1.0, 0]])),
    ("amin keepdims", lambda x: np.min(x, axis=1, keepdims=True).sum(),
     np.array([[0, 1.0, 0], [0, 0, 1.0]])),
    ("var", lambda x: np.var(x), 2.0 * (x3 - x3.mean()) / 6.0),
    ("std ddof", lambda x: np.std(x, ddof=1),
     (x3 - x3.mean()) / (5.0 * np.sqrt(np.sum((x3 - x3.mean()) ** 2) / 5.0))),
    ("norm", lambda x: np.linalg.norm(x), x3 / np.sqrt(np.sum(x3 ** 2))),
    ("transpose", lambda x: np.sum(x.T * np.arange(6.0).reshape(3, 2)),
     np.arange(6.0).reshape(3, 2).T),
    ("reshape", lambda x: np.sum(x.reshape(3, 2) * np.arange(6.0).reshape(3, 2)),
     np.arange(6.0).reshape(2, 3)),
    ("getitem basic", lambda x: x[1, 1:].sum(), np.array([[0, 0, 0], [0, 1.0, 1.0]])),
    ("getitem repeated (scatter-add)", lambda x: x[0, [0, 0, 2]].sum(),
     np.array([[2.0, 0, 1.0], [0, 0, 0]])),
    ("getitem mask", lambda x: x[x > 0].sum(), (x3 > 0).astype(float)),
    ("flip", lambda x: np.sum(np.flip(x, axis=1) * np.array([1.0, 2.0, 3.0])),
     np.array([[3.0, 2.0, 1.0]] * 2)),
    ("tile", lambda x: np.tile(x, 2).sum(), np.full(x3.shape, 2.0)),
    ("repeat", lambda x: np.repeat(x, 3, axis=0).sum(), np.full(x3.shape, 3.0)),
    ("stack", lambda x: np.sum(np.stack([x, 2.0 * x]) ** 2), 10.0 * x3),
    ("concatenate", lambda x: np.sum(np.concatenate([x, x * x], axis=1)), 1.0 + 2.0 * x3),
    ("hstack", lambda x: np.sum(np.hstack([x, x])), np.full(x3.shape, 2.0)),
    ("expand/squeeze", lambda x: np.sum(np.squeeze(np.expand_dims(x, 0), 0) * x3), x3),
    ("broadcast (3,) * (2,3)", lambda x: np.sum(x * np.array([1.0, 2.0, 3.0])),
     np.array([[1.0, 2.0, 3.0]] * 2)),
    ("cumsum", lambda x: np.sum(np.cumsum(x, axis=1) * np.array([1.0, 2.0, 3.0])),
     np.array([[6.0, 5.0, 3.0]] * 2)),
    ("outer", lambda x: np.sum(np.outer(x[0], np.array([1.0, 2.0]))),
     np.array([[3.0, 3.0, 3.0], [0, 0, 0]])),
    ("trace", lambda x: np.trace(x[:, :2]), np.array([[1.0, 0, 0], [0, 1.0, 0]])),
    ("clip array", lambda x: np.sum(np.clip(x, -1.5, 3.0)),
     np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])),
]


@pytest.mark.parametrize("name, f, expected", ARRAYS, ids=[u[0] for u in ARRAYS])
def test_array_ops_closed_forms(name, f, expected):
    np.testing.assert_allclose(tg(f)(x3.copy()), expected, rtol=1e-12, atol=1e-14)


def test_amax_ties_split_evenly():
    np.testing.assert_array_equal(tg(np.max)(np.array([1.0, 3.0, 3.0, 3.0])),
                                  [0.0, 1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_array_equal(tg(lambda x: wb.maximum(x, 0.0).sum())(np.array([0.0, 1.0])),
                                  [0.5, 1.0])


def test_prod_with_a_zero_is_the_product_of_the_others():
    np.testing.assert_array_equal(tg(np.prod)(np.array([2.0, 0.0, 3.0])), [0.0, 6.0, 0.0])


@pytest.mark.parametrize("shape_a, shape_b", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)),
                                             ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
                                             ((5, 2, 3), (1, 3, 4))])
def test_matmul_vjps_are_the_matrix_calculus_forms(shape_a, shape_b):
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=shape_a), rng.normal(size=shape_b)
    C = rng.normal(size=np.matmul(A, B).shape)
    f = lambda A, B: np.sum((A @ B) * C)  # noqa: E731
    gA, gB = tg(f, argnums=(0, 1))(A, B)
    # f is linear in each argument, so d f / d A[i] = f(e_i, B) with e_i a unit array.
    np.testing.assert_allclose(gA, _by_units(lambda E: f(E, B), A.shape), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gB, _by_units(lambda E: f(A, E), B.shape), rtol=1e-12, atol=1e-14)


def _by_units(linear, shape):
    out = np.zeros(shape)
    for index in np.ndindex(*shape):
        unit = np.zeros(shape)
        unit[index] = 1.0
        out[index] = linear(unit)
    return out


@pytest.mark.parametrize("name, f, x", [
    ("relu at 0", lambda t: t.relu().sum(), [0.0, -1.0, 2.0]),
    ("abs at 0", lambda t: t.abs().sum(), [0.0, -1.0, 2.0]),
    ("maximum tie", lambda t: wb.maximum(t, t[[1, 0, 2]]).sum(), [2.0, 2.0, 1.0]),
    ("amax ties", lambda t: t.amax() if hasattr(t, "amax") else t.max(), [2.0, 2.0, 2.0]),
    ("clamp bounds", lambda t: t.clamp(0.0, 2.0).sum(), [0.0, 2.0, 3.0]),
    ("sqrt at 0", lambda t: t.sqrt().sum(), [0.0, 4.0]),
    ("softplus threshold", lambda t: t.softplus().sum() if hasattr(t, "softplus")
     else __import__("torch").nn.functional.softplus(t).sum(), [25.0, 1.0]),
    ("atan2 at the origin", lambda t: wb.atan2(t[0], t[1]), [0.0, 0.0]),
    ("std of a constant", lambda t: t.std(correction=0), [1.5, 1.5]),
    ("std unbiased", lambda t: t.std(dim=0, unbiased=True), [1.5, 2.5, -1.0]),
    ("norm at 0", lambda t: t.norm(), [0.0, 0.0]),
    ("relu at nan", lambda t: t.relu().sum(), [float("nan"), 1.0]),
    ("maximum at nan", lambda t: wb.maximum(t, t * 0.0 + 1.0).sum(), [float("nan"), 2.0, 0.5]),
    ("max() at nan", lambda t: t.max(), [float("nan"), 2.0]),
])
def test_conventions_match_torch_live(name, f, x):
    torch = require("torch")
    expected = torch.func.grad(f)(torch.tensor(x, dtype=torch.float64)).numpy()
    np.testing.assert_array_equal(tg(f)(np.array(x)), expected)  # nan == nan here
