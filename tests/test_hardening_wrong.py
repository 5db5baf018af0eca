"""Silent wrong answers (issue 11): every case checked against numpy, torch or jax run live, or
against mathematics.

* every way a traced value becomes a Python value records a guard (or is refused);
* writes into a differentiated argument are refused, as torch refuses them;
* every keyword argument of an accepted numpy / torch function is honoured or refused by name
  (a table run through workbench and through jax / torch.func on the very same code);
* numpy's and torch's semantics at the edges (clip with lo > hi, % with tiny and infinite
  divisors, np.inner of matrices, logaddexp's second derivative at a tie, IEEE constant folding).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require

import workbench as wb
from workbench.graph import Graph

RNG = np.random.default_rng(11)


# ----- guards: every traced -> Python conversion -----
def test_item_of_a_boolean_records_a_guard():
    g = wb.grad(lambda x: x**3 if (x > 0).item() else -x)
    assert float(g(1.0)) == 3.0
    assert float(g(-1.0)) == -1.0  # mathematics: d(-x)/dx
    assert float(g(2.0)) == 12.0


def test_item_of_a_boolean_guards_the_exported_program_too():
    def f(x):
        return x**3 if (x > 0).item() else -x

    exported = wb.export(f, 1.0, target="numpy")
    namespace: dict = {}
    exec(compile(exported.source, "<exported>", "exec"), namespace)  # our own exported module
    grad_f = namespace[exported.functions[0]]
    assert float(grad_f(2.0)) == 12.0
    with pytest.raises(ValueError):  # the exported branch does not hold at -1
        grad_f(-1.0)


@pytest.mark.parametrize("convert", [
    lambda x: x.item(),
    lambda x: bool(x),
    lambda x: float(f"{x:.6f}"),
    lambda x: 1.0 in np.stack([x, x]),
    lambda x: bool(np.stack([x, x]).all()),
    lambda x: bool(np.stack([x, x]).any()),
    lambda x: bool(np.any(np.stack([x, 2 * x]) > 1.5)),
], ids=["item", "bool", "format", "contains", "all", "any", "np.any"])
def test_every_conversion_to_a_python_value_records_a_guard(convert):
    """Each f branches on a Python value taken from x: after a call at one point, a call at a
    point on the other side must re-trace, not reuse the first branch."""

    def f(x):
        return x * x if convert(x) else 3.0 * x

    g = wb.grad(f)
    points = [1.0, 0.0, 2.0, 1.0, 0.0]
    for x0 in points:
        taken = bool(convert(np.float64(x0)))  # the same code on a plain number
        expected = 2 * x0 if taken else 3.0
        assert float(g(x0)) == expected, x0


def test_item_at_nan_is_nan_not_an_internal_error():
    torch = require("torch")
    got = wb.grad(lambda x: x * x.item())(float("nan"))
    want = torch.func.grad(lambda x: x * x.item())(torch.tensor(float("nan"), dtype=torch.float64))
    assert np.isnan(float(got)) and np.isnan(float(want))


def test_bool_of_a_number_is_x_not_zero():
    g = wb.grad(lambda x: x * x if x else 5.0 * x)
    assert float(g(0.5)) == 1.0 and float(g(0.0)) == 5.0 and float(g(-0.5)) == -1.0


def test_hash_of_a_traced_value_is_refused():
    with pytest.raises(TypeError):
        wb.grad(lambda x: {x: 1}[x] * x)(1.0)


# ----- writes into differentiated arguments -----
def test_writing_into_a_differentiated_argument_is_refused_like_torch():
    torch = require("torch")

    def f(x):
        x[0] = 0.0
        return (x * x).sum()

    with pytest.raises(RuntimeError):  # torch refuses: the behaviour workbench follows
        torch.func.grad(f)(torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=False))
    with pytest.raises(wb.UnsupportedOperationError, match=r"argument 0.*copy"):
        wb.grad(f)(np.array([1.0, 2.0]))


@pytest.mark.parametrize("write", [
    lambda x: x.__setitem__(0, 0.0),
    lambda x: x[0:1].__setitem__(0, 0.0),
    lambda x: x.reshape(2, 1).__setitem__((0, 0), 0.0),
    lambda x: x.T.__setitem__(0, 0.0),
], ids=["item", "slice view", "reshape view", "transpose view"])
def test_writes_through_views_of_a_differentiated_argument_are_refused(write):
    def f(x):
        write(x)
        return (x * x).sum()

    with pytest.raises(wb.UnsupportedOperationError, match="copy"):
        wb.grad(f)(np.array([1.0, 2.0]))


def test_writing_into_a_copy_gives_the_gradient_of_the_copy():
    def f(x):
        y = x.copy()
        y[0] = 0.0
        return (y * y).sum() + x[0]

    # mathematics: d/dx (x1^2 + x0) = (1, 2 x1)
    np.testing.assert_array_equal(wb.grad(f)(np.array([3.0, 2.0])), [1.0, 4.0])


def test_torch_in_place_methods_are_refused_by_name():
    torch = require("torch")
    with pytest.raises(wb.UnsupportedOperationError, match=r"add_\(\).*out-of-place"):
        wb.grad(lambda x: x.add_(1.0).sum())(torch.tensor([1.0, 2.0], dtype=torch.float64))


# ----- np.array of traced values, any / all, meta tensors -----
@pytest.mark.parametrize("build", [
    lambda xp, x, y: xp.array([x, y]),
    lambda xp, x, y: xp.asarray([x, y * y]),
    lambda xp, x, y: xp.array([[x, y], [y, x]]),
    lambda xp, x, y: xp.array([[x, 1.0], [2.0, y]]),
], ids=["list", "asarray", "nested", "mixed constants"])
def test_np_array_of_traced_values_works(build):
    """The same code through workbench (np.array) and jax (jnp.array)."""
    jax, jnp = _jax()
    shape = np.shape(build(np, 1.0, 1.0))
    weights = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)

    def f(xp):
        # polynomial, not xp.sin: numpy's ufuncs on an object array holding plain numbers call
        # number.sin(), which floats do not have (a numpy limitation, not a workbench one)
        return lambda x, y: (build(xp, x, y) ** 3 * weights).sum() + xp.sum(build(xp, x, y))

    x0, y0 = 0.3, -0.7
    got = wb.grad(f(np), argnums=(0, 1))(x0, y0)
    want = jax.grad(f(jnp), argnums=(0, 1))(x0, y0)
    np.testing.assert_allclose(np.array(got, dtype=float), np.array(want, dtype=float), rtol=1e-12)


def test_a_returned_np_array_of_traced_values_is_an_array_output():
    x0 = np.array([0.5, 2.0])
    jac = wb.jacrev(lambda x: np.array([x[0] * x[1], np.sin(x[0])]))(x0)
    np.testing.assert_allclose(jac, [[2.0, 0.5], [np.cos(0.5), 0.0]], rtol=1e-15)


def test_meta_tensors_are_refused_clearly():
    torch = require("torch")
    with pytest.raises(wb.InputTypeError, match="meta tensor"):
        wb.grad(lambda x: x.sum())(torch.ones(2, device="meta"))


# ----- semantics at the edges, against numpy / torch / jax -----
@pytest.mark.parametrize("x0", [0.5, 1.0, 1.5, 2.0, 3.0, float("nan")])
def test_clip_with_lo_above_hi_matches_numpy_and_torch_on_every_path(x0):
    torch = require("torch")
    t = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    torch.clamp(t, 2.0, 1.0).backward()
    want_value, want_grad = np.clip(x0, 2.0, 1.0), float(t.grad)
    got_value = wb.vmap(lambda x: np.clip(x, 2.0, 1.0))(np.array([x0]))[0]
    np.testing.assert_array_equal(got_value, want_value)  # batch backend
    value, grad = wb.grad_and_value(lambda x: np.clip(x, 2.0, 1.0))(x0)[::-1]
    np.testing.assert_array_equal(value, want_value)  # scalar backend
    if not np.isnan(x0):
        assert float(grad) == want_grad


@pytest.mark.parametrize("a, b", [(1.0, 1e-300), (1.0, np.inf), (-1.0, np.inf), (-1.0, -np.inf),
                                  (1.0, 0.1), (5.0, -3.0), (-0.0, 2.0), (1.0, 0.0)])
def test_remainder_and_floor_divide_match_numpy(a, b):
    with np.errstate(all="ignore"):
        want_mod, want_div = np.remainder(a, b), np.floor_divide(a, b)
    got = wb.vmap(lambda x, y: (x % y, x // y))(np.array([a]), np.array([b]))
    np.testing.assert_array_equal(got[0], [want_mod])
    np.testing.assert_array_equal(got[1], [want_div])
    got_scalar = wb.jvp(lambda x: (x % b, x // b), (a,), (1.0,))[0]
    np.testing.assert_array_equal(np.asarray(got_scalar, dtype=float), [want_mod, want_div])


def test_remainder_gradient_matches_torch():
    torch = require("torch")
    x = torch.tensor([5.0, -7.5, 0.3], dtype=torch.float64)
    y = torch.tensor([3.0, 2.0, -0.25], dtype=torch.float64)
    want = torch.func.grad(lambda a, b: torch.remainder(a, b).sum(), argnums=(0, 1))(x, y)
    got = wb.grad(lambda a, b: torch.remainder(a, b).sum(), argnums=(0, 1))(x, y)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-15)


def test_inner_of_matrices_matches_numpy_and_jax():
    jax, jnp = _jax()
    A, B = RNG.normal(size=(2, 3)), RNG.normal(size=(4, 3))
    W = RNG.normal(size=(2, 4))
    np.testing.assert_allclose(_value(lambda a: np.inner(a, B), A), np.inner(A, B), rtol=1e-14)
    got = wb.grad(lambda a: (np.inner(a, B) * W).sum())(A)
    want = jax.grad(lambda a: (jnp.inner(a, B) * W).sum())(A)
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_logaddexp_second_derivative_at_a_tie_matches_jax_and_torch():
    jax, jnp = _jax()
    torch = require("torch")
    for x0 in (0.0, 1.0, -3.0):
        want = float(jax.grad(jax.grad(lambda x: jnp.logaddexp(x, 0.0)))(x0))
        t = torch.tensor(x0, dtype=torch.float64)
        want_t = float(torch.func.grad(torch.func.grad(
            lambda x: torch.logaddexp(x, torch.zeros((), dtype=torch.float64))))(t))
        got = float(wb.grad(wb.grad(lambda x: np.logaddexp(x, 0.0)))(x0))
        assert got == pytest.approx(want, rel=1e-14) and got == pytest.approx(want_t, rel=1e-14)


@pytest.mark.parametrize("a, b", [(-np.inf, -np.inf), (np.inf, np.inf), (np.inf, 1.0),
                                  (-np.inf, 2.0), (1000.0, 1000.0), (-1000.0, 3.0)])
def test_logaddexp_values_at_infinities_match_numpy(a, b):
    got = wb.vmap(lambda x, y: np.logaddexp(x, y))(np.array([a]), np.array([b]))
    np.testing.assert_array_equal(got, np.logaddexp([a], [b]))


@pytest.mark.parametrize("a, b", [(3e200, 4e200), (3e-200, 4e-200), (0.0, 0.0), (-3.0, 4.0)])
def test_hypot_does_not_overflow(a, b):
    got = wb.vmap(lambda x, y: np.hypot(x, y))(np.array([a]), np.array([b]))
    np.testing.assert_allclose(got, np.hypot([a], [b]), rtol=1e-15)


@pytest.mark.parametrize("fn", [
    lambda x: 0 * np.log(x),
    lambda x: 0.0 - x,
    lambda x: x + 0.0,
    lambda x: x - x,
    lambda x: 0.0 / x,
    lambda x: (x * 0.0) * np.inf,
    lambda x: 1.0 / (x * -0.0 + 0.0),
    lambda x: -0.0 + x,
], ids=["0*log", "0-x", "x+0", "x-x", "0/x", "0*x*inf", "sign of zero", "-0+x"])
def test_constant_folding_keeps_ieee_results(fn):
    xs = np.array([0.0, -0.0, 1.0, -2.0, np.inf, -np.inf, np.nan])
    with np.errstate(all="ignore"):
        want = fn(xs)
        got = wb.vmap(fn)(xs)
        got_scalar = np.array([float(_value(fn, float(v))) for v in xs])
    for result in (got, got_scalar):
        np.testing.assert_array_equal(result, want)
        np.testing.assert_array_equal(np.signbit(result), np.signbit(want))


def test_float32_policy_is_computed_in_float64_and_rounded_consistently():
    """The stated dtype policy (README): float32 inputs are computed in float64 and the result is
    rounded to float32 once, the same on every path (so it is never *less* accurate than numpy's
    float32, and it does not depend on the path)."""
    x = np.array([1.0, 2.0], dtype=np.float32)

    def f(v):
        return (v + np.float32(1e8)) - np.float32(1e8)

    want = ((x.astype(np.float64) + 1e8) - 1e8).astype(np.float32)
    batch = wb.vmap(f)(x)
    single = np.array([wb.vmap(f)(x[i:i + 1])[0] for i in range(2)], dtype=np.float32)
    assert batch.dtype == np.float32
    np.testing.assert_array_equal(batch, want)
    np.testing.assert_array_equal(single, want)


# ----- keyword arguments: honoured (same result as numpy via jax) or refused by name -----
X34 = RNG.normal(size=(3, 4))
MASK = RNG.uniform(size=(3, 4)) > 0.4
MASK[:, 0] = True

NUMPY_CASES = {
    "sum axis": lambda xp, x: xp.sum(x, axis=1),
    "sum negative axis": lambda xp, x: xp.sum(x, axis=-2),
    "sum axis tuple keepdims": lambda xp, x: xp.sum(x, axis=(0, 1), keepdims=True),
    "sum initial": lambda xp, x: xp.sum(x, axis=0, initial=2.5),
    "sum where": lambda xp, x: xp.sum(x, axis=1, where=MASK),
    "sum dtype": lambda xp, x: xp.sum(x, dtype=xp.float64),
    "prod initial where": lambda xp, x: xp.prod(x, axis=0, initial=-1.5, where=MASK),
    "max initial": lambda xp, x: xp.max(x, axis=1, initial=0.3),
    "max where initial": lambda xp, x: xp.max(x, axis=0, where=MASK, initial=-10.0),
    "min initial": lambda xp, x: xp.min(x, axis=1, initial=-0.2),
    "mean where": lambda xp, x: xp.mean(x, axis=1, where=MASK),
    "mean keepdims": lambda xp, x: xp.mean(x, axis=0, keepdims=True),
    "var ddof": lambda xp, x: xp.var(x, axis=1, ddof=1),
    "std ddof keepdims": lambda xp, x: xp.std(x, axis=0, ddof=1, keepdims=True),
    "norm default": lambda xp, x: xp.linalg.norm(x),
    "norm fro": lambda xp, x: xp.linalg.norm(x, ord="fro"),
    "norm 1 matrix": lambda xp, x: xp.linalg.norm(x, ord=1),
    "norm inf matrix": lambda xp, x: xp.linalg.norm(x, ord=np.inf),
    "norm -1 matrix": lambda xp, x: xp.linalg.norm(x, ord=-1, axis=(0, 1)),
    "norm inf axes reversed": lambda xp, x: xp.linalg.norm(x, ord=np.inf, axis=(1, 0)),
    "norm 1 stacked keepdims": lambda xp, x: xp.linalg.norm(x.reshape(3, 2, 2), ord=1, axis=(2, 1),
                                                             keepdims=True),
    "norm axis 1": lambda xp, x: xp.linalg.norm(x, axis=1),
    "norm ord 1 axis": lambda xp, x: xp.linalg.norm(x, ord=1, axis=1),
    "norm ord 3 axis": lambda xp, x: xp.linalg.norm(x, ord=3, axis=0),
    "norm ord inf axis": lambda xp, x: xp.linalg.norm(x, ord=np.inf, axis=1, keepdims=True),
    "norm ord -inf axis": lambda xp, x: xp.linalg.norm(x, ord=-np.inf, axis=0),
    "norm ord 0.5 vector": lambda xp, x: xp.linalg.norm(x[0], ord=0.5),
    "norm ord 0 vector": lambda xp, x: x[0] * xp.linalg.norm(x[0] * (x[0] > 0), ord=0),
    "cumsum axis": lambda xp, x: xp.cumsum(x, axis=1),
    "cumsum flat": lambda xp, x: xp.cumsum(x),
    "clip": lambda xp, x: xp.clip(x, -0.5, 0.7),
    "clip lo > hi": lambda xp, x: xp.clip(x, 0.7, -0.5),
    "clip array bounds": lambda xp, x: xp.clip(x, np.full(4, -0.5), np.array([0.7, -1.0, 1.0, 0.2])),
    "clip traced bounds": lambda xp, x: xp.clip(x, x[0] * 0.5, x[1] + 1.0),
    "inner matrices": lambda xp, x: xp.inner(x, x[:2]),
    "inner vector": lambda xp, x: xp.inner(x, x[0]),
    "trace offset": lambda xp, x: xp.trace(x, offset=1),
    "logaddexp": lambda xp, x: xp.logaddexp(x, x[::-1]),
    "hypot": lambda xp, x: xp.hypot(x, 0.5),
    "remainder": lambda xp, x: xp.remainder(x, 0.3),
    "mod operator": lambda xp, x: x % -0.7,
    "maximum.reduce": lambda xp, x: xp.maximum(x[0], x[1]),
    "all/any as numbers": lambda xp, x: x * xp.all(x > -10.0) + x * xp.any(x > 10.0, axis=0),
    "concatenate axis": lambda xp, x: xp.concatenate([x, 2 * x], axis=1),
    # structural functions, each with its arguments
    "reshape order F": lambda xp, x: xp.reshape(x, (4, 3), order="F"),
    "transpose axes": lambda xp, x: xp.transpose(x[None], (2, 0, 1)),
    "stack axis": lambda xp, x: xp.stack([x, x * x], axis=-1),
    "hstack vstack column_stack": lambda xp, x: xp.hstack([x, x]).sum() + xp.vstack([x, x])
    + xp.column_stack([x[0], x[1]]).sum(),
    "expand_dims squeeze": lambda xp, x: xp.squeeze(xp.expand_dims(x, 1), axis=1),
    "broadcast_to": lambda xp, x: xp.broadcast_to(x[0], (2, 4)),
    "flip axis": lambda xp, x: xp.flip(x, axis=1) * x,
    "flip all axes, roll flattened": lambda xp, x: xp.flip(x) * xp.roll(x, -5) ** 2,
    "roll shift axis": lambda xp, x: xp.roll(x, 2, axis=1) * x,
    "tile": lambda xp, x: xp.tile(x, (2, 1)),
    "repeat axis": lambda xp, x: xp.repeat(x, 2, axis=0),
    "ravel atleast": lambda xp, x: xp.ravel(x) * xp.atleast_1d(x[0, 0]) + xp.atleast_2d(x[0]).sum(),
    "diagonal offset": lambda xp, x: xp.diagonal(x, offset=1),
    "swapaxes moveaxis": lambda xp, x: xp.swapaxes(x, 0, 1) * xp.moveaxis(x, 0, -1),
    "copy": lambda xp, x: xp.copy(x) * x,
    "split": lambda xp, x: xp.concatenate(xp.split(x, 2, axis=1), axis=0),
    "array_split": lambda xp, x: xp.concatenate(xp.array_split(x, 3, axis=1), axis=1),
    "shape ndim size": lambda xp, x: x * xp.size(x, axis=1) + xp.ndim(x) + xp.shape(x)[0],
    "outer vdot": lambda xp, x: xp.outer(x[0], x[1]) * xp.vdot(x, x),
    "zeros_like ones_like": lambda xp, x: x * xp.ones_like(x) + xp.zeros_like(x, dtype=float),
    "where": lambda xp, x: xp.where(x > 0.2, x * x, -x),
    "dot": lambda xp, x: xp.dot(x, x.T),
    "matmul": lambda xp, x: xp.matmul(x.T, x),
    "amax amin": lambda xp, x: xp.amax(x, axis=0) * xp.amin(x, axis=1, keepdims=True),
    "prod": lambda xp, x: xp.prod(x, axis=1),
    "std var": lambda xp, x: xp.std(x) * xp.var(x, axis=0),
    "all any where=": lambda xp, x: x * xp.all(x > -3.0, axis=1, keepdims=True)
    + x * xp.any(x > 0.0, where=MASK),
}


# Functions only the array level traces (the element level refuses them with a clear error).
TAKE_ALONG = np.array([[0, 3, 3], [1, 1, 2], [2, 0, 1]])
ARRAY_LEVEL_CASES = {
    "einsum": lambda xp, x: xp.einsum("ij,ik->jk", x, x) + xp.einsum("ij,i->j", x, x[:, 0]),
    "tensordot": lambda xp, x: xp.tensordot(x, x, axes=([0], [0])) + xp.tensordot(x.T, x, 1),
    "take_along_axis": lambda xp, x: xp.take_along_axis(x, TAKE_ALONG, axis=1) +
    xp.take_along_axis(x, TAKE_ALONG[:, :1], axis=1),  # repeated indices accumulate
}


@pytest.mark.parametrize("name", list(NUMPY_CASES) + list(ARRAY_LEVEL_CASES))
def test_numpy_functions_with_keyword_arguments_match_jax(name):
    """The very same code through workbench (np) and jax (jnp): value and gradient."""
    jax, jnp = _jax()
    fn = NUMPY_CASES.get(name) or ARRAY_LEVEL_CASES[name]
    weights = RNG.normal(size=np.shape(fn(np, X34)))
    want_value = fn(np, X34)
    got_value = _value(lambda x: fn(np, x), X34)
    np.testing.assert_allclose(got_value, want_value, rtol=1e-13, atol=1e-15)
    got = wb.grad(lambda x: (fn(np, x) * weights).sum())(X34)
    want = jax.grad(lambda x: (fn(jnp, x) * weights).sum())(X34)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("call, word", [
    (lambda x: np.linalg.norm(x, ord=2, axis=(0, 1)), "spectral"),
    (lambda x: np.linalg.norm(x, ord=2), "spectral"),
    (lambda x: np.linalg.norm(x, ord="nuc"), "nuclear"),
    (lambda x: np.sum(x, axis=3), "axis 3"),
    (lambda x: np.sum(x, axis=(0, 0)), "twice"),
    (lambda x: np.mean(x, axis=-3), "axis -3"),
    (lambda x: np.max(x, axis=0, where=MASK), "initial"),
    (lambda x: np.sum(x, out=np.zeros(4), axis=0), "out="),
    (lambda x: np.exp(x, where=MASK), "where="),
    (lambda x: np.add(x, 1.0, casting="unsafe"), "casting"),
    (lambda x: np.sum(x, dtype=np.int64), "int64"),
    (lambda x: np.stack([x, x], out=np.zeros((2, 3, 4))), "out="),
    (lambda x: np.var(x, mean=np.zeros((3, 1))), "mean="),
    (lambda x: np.add.reduce(x, axis=0, out=np.zeros(4)), "out="),
], ids=lambda v: v if isinstance(v, str) else "")
def test_numpy_arguments_that_cannot_be_honoured_are_refused_by_name(call, word):
    with pytest.raises(wb.WorkbenchError, match=word):
        wb.grad(lambda x: call(x).sum())(X34)


def _torch_cases(torch):
    F = torch.nn.functional
    return {
        "div floor": lambda x: torch.div(x, 0.3, rounding_mode="floor") + x,
        "div trunc": lambda x: torch.div(x, -0.3, rounding_mode="trunc") * x,
        "div true": lambda x: torch.div(x, 0.3, rounding_mode=None),
        "add alpha": lambda x: torch.add(x, x * x, alpha=2.5),
        "sub alpha": lambda x: torch.sub(x, x.exp(), alpha=-0.5),
        "sum dim keepdim": lambda x: torch.sum(x, dim=1, keepdim=True),
        "sum dtype": lambda x: torch.sum(x, 0, dtype=torch.float64),
        "mean dims": lambda x: torch.mean(x, dim=(0, 1)),
        "norm p1": lambda x: torch.norm(x, p=1),
        "norm p3 dim": lambda x: torch.norm(x, p=3, dim=1),
        "norm inf dim": lambda x: torch.norm(x, p=float("inf"), dim=0),
        "norm fro dims": lambda x: torch.norm(x, p="fro", dim=(0, 1)),
        "norm p1 dims is a vector norm": lambda x: torch.norm(x, p=1, dim=(0, 1), keepdim=True),
        "norm p3 dims": lambda x: torch.norm(x, p=3, dim=(1, 0)),
        "linalg.norm matrix 1": lambda x: torch.linalg.norm(x, ord=1),
        "linalg.norm fro": lambda x: torch.linalg.norm(x),
        "linalg.vector_norm ord 3": lambda x: torch.linalg.vector_norm(x, ord=3, dim=1),
        "linalg.vector_norm flat": lambda x: torch.linalg.vector_norm(x, ord=1.5),
        "softplus beta threshold": lambda x: F.softplus(3 * x, beta=2.0, threshold=1.0),
        "softmax dtype": lambda x: torch.softmax(x, dim=1, dtype=torch.float64),
        "log_softmax": lambda x: torch.log_softmax(x, dim=0),
        "var correction": lambda x: torch.var(x, dim=1, correction=0),
        "std unbiased": lambda x: torch.std(x, dim=0, unbiased=False),
        "cumsum dtype": lambda x: torch.cumsum(x, dim=1, dtype=torch.float64),
        "clamp": lambda x: torch.clamp(x, min=-0.5, max=0.6),
        "clamp min above max": lambda x: torch.clamp(x, min=0.6, max=-0.5),
        "remainder": lambda x: torch.remainder(x, 0.4),
        "logsumexp": lambda x: torch.logsumexp(x, dim=1, keepdim=True),
        "amax keepdim": lambda x: torch.amax(x, dim=0, keepdim=True),
        "amin prod": lambda x: torch.amin(x, dim=1) * torch.prod(x, 0).sum(),
        "max min": lambda x: torch.max(x) * torch.min(x) + torch.max(x, x.flip(0)),
        "getitem len dim numel size": lambda x: x[1:] * len(x) * x.dim() + x.numel() + x.size(1),
        "matmul mm mv dot": lambda x: torch.matmul(x, x.T) + torch.mm(x, x.T)
        + torch.mv(x, x[0]) + torch.dot(x[0], x[1]) + x @ x.T,
        "outer inner": lambda x: torch.outer(x[0], x[1]) * torch.inner(x[0], x[2]),
        "pow ** square reciprocal rsqrt": lambda x: torch.pow(x, 3) + x ** 2 + torch.square(x)
        + torch.reciprocal(x + 5.0) + torch.rsqrt(x * x + 1.0),
        "true_divide divide": lambda x: torch.true_divide(x, 3.0) + torch.divide(x, x * x + 1.0),
        "relu tanh sigmoid": lambda x: F.relu(x) + torch.tanh(x) * torch.sigmoid(x),
        "cat stack": lambda x: torch.cat([x, x * x], dim=1).sum() + torch.stack([x, x], dim=2),
        "reshape flatten t permute transpose": lambda x: torch.reshape(x, (4, 3))
        + torch.flatten(x).reshape(4, 3) + x.t() + x.permute(1, 0) + torch.transpose(x, 0, 1),
        "expand repeat": lambda x: x[:1].expand(3, 4) * x.repeat(2, 1)[:3],
        "masked_fill where": lambda x: x.masked_fill(x > 0.0, 0.5) + torch.where(x > 0.1, x, -x),
        "like": lambda x: torch.zeros_like(x) + torch.ones_like(x) * x + torch.full_like(x, 2.0) * x,
        "mse_loss": lambda x: F.mse_loss(x, x.flip(1) * 0.5, reduction="sum"),
        "item detach": lambda x: x * x[0, 0].item() + x.detach() * x,
        "to double": lambda x: x.to(torch.float64) * 2 + x.double(),
        "float32 round trip": lambda x: x.float().double() * 3,
        "floor_divide detached": lambda x: torch.floor_divide(x, 0.4).detach() * x,
        "divide floor": lambda x: torch.divide(x, 0.4, rounding_mode="floor") * x,
        "clip": lambda x: torch.clip(x, -0.3, 0.3),
        "torch.t numel detach": lambda x: torch.t(x).T * torch.numel(x) + torch.detach(x) * x,
        "split chunk unbind": lambda x: torch.cat(torch.split(x, [1, 3], dim=1)[::-1], 1)
        + torch.cat(x.chunk(2, dim=1)[::-1], 1) * torch.stack(torch.unbind(x, 0)[::-1]),
        "narrow index_select": lambda x: x.narrow(1, 1, 2).sum()
        * x.index_select(1, torch.tensor([3, 0, 0, 1])),
        "contiguous cpu type": lambda x: x.contiguous().cpu() * 2 + x.type(torch.float64) * x,
        "float16 half": lambda x: x.half().double() * 3,
        "isnan isinf isfinite": lambda x: torch.where(torch.isnan(torch.log(x)) | torch.isinf(
            1.0 / (x - x[0, 0])), 0.0, x) * torch.isfinite(x),
        "any all": lambda x: x * torch.any(x > 1.0, dim=1, keepdim=True)
        + x * torch.all(x > -5.0),
        "tensor @ and ** traced": lambda x: (torch.ones(4, 4, dtype=torch.float64) * 0.5) @ x.T
        + (torch.full((4, 3), 1.5, dtype=torch.float64) ** x.T),
    }


# torch rounds float32/float16 intermediates; workbench computes in float64 (README's policy)
_DTYPE_RTOL = {"float32": 1e-7, "float16": 1e-3}


def test_torch_functions_with_keyword_arguments_match_torch_func():
    torch = require("torch")
    x = torch.from_numpy(RNG.normal(size=(3, 4)))
    failures = []
    for name, fn in _torch_cases(torch).items():
        weights = torch.from_numpy(RNG.normal(size=tuple(fn(x).shape)))

        def loss(v, fn=fn, weights=weights):
            return (fn(v) * weights).sum()

        try:
            got = wb.grad(loss)(x)
        except Exception as error:  # collect all, report together
            failures.append(f"{name}: {type(error).__name__}: {error}")
            continue
        want = torch.func.grad(loss)(x)
        # float32 values: computed in float64 and rounded once (README's dtype policy)
        np.testing.assert_allclose(_value(fn, x).numpy(), fn(x).numpy(),
                                   rtol=_DTYPE_RTOL.get(name.split()[0], 1e-13), atol=1e-15)
        if not np.allclose(got.numpy(), want.numpy(), rtol=_DTYPE_RTOL.get(name.split()[0], 1e-12),
                           atol=1e-14):
            failures.append(f"{name}: gradient {got} != torch {want}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("call, word", [
    (lambda torch, x: torch.exp(x, out=torch.zeros(3)), "out"),
    (lambda torch, x: torch.div(x, 2.0, rounding_mode="round"), "rounding_mode"),
    (lambda torch, x: torch.norm(x, p="nuc", dim=(0, 1)), "nuc"),
    (lambda torch, x: torch.sum(x, dim=5), "axis 5"),
    (lambda torch, x: torch.mul(x, 2.0, out=torch.zeros(3)), "out"),
    (lambda torch, x: x.numpy(), "drop the gradient"),
    (lambda torch, x: x.long(), "int64"),
    (lambda torch, x: x.int(), "int32"),
    (lambda torch, x: x.bool(), "bool"),
    (lambda torch, x: torch.clamp(x), "min and max"),
    (lambda torch, x: x.masked_fill(x, 0.0), "boolean"),
    pytest.param(lambda torch, x: torch.add(x, x, x), "2 tensor arguments",
                 marks=pytest.mark.filterwarnings("ignore:This overload")),
    (lambda torch, x: x.gather(0, torch.tensor([5])), "gather"),  # out of bounds
    (lambda torch, x: x[7], "out of bounds"),
    (lambda torch, x: x.size(3), "out of range"),
    (lambda torch, x: torch.stack([x, x], 5), "axis 5"),
    (lambda torch, x: x.view(7), "reshape"),
], ids=["exp out", "rounding", "nuc", "dim out of range", "mul out", "numpy()", "long()",
        "int()", "bool()", "clamp no bounds", "float mask", "extra argument", "gather", "index",
        "size", "stack axis", "view"])
def test_torch_arguments_that_cannot_be_honoured_are_refused_by_name(call, word):
    torch = require("torch")
    x = torch.ones(3, dtype=torch.float64) if word != "nuc" else torch.ones((2, 2), dtype=torch.float64)
    with pytest.raises(wb.WorkbenchError, match=word):
        wb.grad(lambda v: call(torch, v).sum())(x)


# ----- helpers -----
def _jax():
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    return jax, jax.numpy


def _value(fn, x):
    """The traced function's value through a transform (vjp returns the primal output)."""
    return wb.vjp(fn, x)[0]


def test_graph_constants_keep_the_sign_of_zero_and_share_nan():
    g = Graph()
    assert g.const(0.0) != g.const(-0.0)
    assert g.const(float("nan")) == g.const(float("nan"))


# ----- the scalar (math) and the batch (numpy) backends agree on every op -----
_SPECIAL_VALUES = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 20.0, 21.0, 1e308, -1e308, 1e-310,
                   np.inf, -np.inf, np.nan, 3.0, 0.1]
# numpy's maximum/minimum pick either zero at a (0.0, -0.0) tie; the scalar kernels follow torch
_TIE_SIGN_OPS = {"maximum", "minimum", "max_n", "min_n"}


def _op_cases():
    from workbench.ops import OP_LIST

    return [op for op in OP_LIST if op.name not in ("input", "const")]


@pytest.mark.parametrize("op", _op_cases(), ids=lambda op: op.name)
def test_scalar_and_numpy_kernels_agree_on_special_values(op):
    """Every op's scalar kernel (what tracing and the scalar backend compute) against its numpy
    printer (the batch backend), on zeros of both signs, infinities, nan, huge and tiny values:
    the same value (to libm's last-bit differences), the same nan-ness and the same sign."""
    import itertools

    from workbench.ops import RUNTIME, render

    n = op.arity or 2
    params = (-1.0, 2.0) if op.name in ("clip", "in_range") else ()
    names = [f"a{i}" for i in range(n)]
    batch = eval(f"lambda {', '.join(names)}: {render(op.np, names, params)}", RUNTIME)  # noqa: S307  (our own op table)
    values = _SPECIAL_VALUES if n <= 2 else _SPECIAL_VALUES[:6]
    for args in itertools.product(values, repeat=n):
        if op.name.startswith("logical"):
            args = tuple(bool(v) for v in args)
        if op.name == "where":
            args = (bool(args[0]),) + args[1:]
        scalar = op.kernel(*args, params=params)
        with np.errstate(all="ignore"):
            vector = np.asarray(batch(*[np.array([v]) for v in args])).ravel()[0]
        if op.boolean:
            assert bool(scalar) == bool(vector), args
            continue
        scalar, vector = float(scalar), float(vector)
        assert np.isnan(scalar) == np.isnan(vector), (args, scalar, vector)
        if np.isnan(scalar):
            continue
        assert scalar == pytest.approx(vector, rel=4e-16, abs=0.0), (args, scalar, vector)
        if not (op.name in _TIE_SIGN_OPS and scalar == 0.0):
            assert np.signbit(scalar) == np.signbit(vector), (args, scalar, vector)


# ----- booleans, nan tests, divmod: numpy's meanings -----
BOOL_CASES = {
    "sum of a mask counts": lambda xp, x: x * xp.sum(x > 0.0),
    "mean of a mask": lambda xp, x: x * xp.mean(x > 0.0, axis=0, dtype=xp.float64),
    "mask + mask is or": lambda xp, x: x * ((x > 0.0) + (x < -0.5)),
    "mask * mask is and": lambda xp, x: x * ((x > -0.5) * (x < 0.5)),
    "isnan / isinf / isfinite": lambda xp, x: xp.where(xp.isnan(x) | xp.isinf(x), 0.0, x)
    * xp.isfinite(x),
    "divmod": lambda xp, x: divmod(x, 0.3)[1] + divmod(x, 0.3)[0],
}


@pytest.mark.parametrize("name", list(BOOL_CASES))
def test_boolean_and_nan_semantics_match_numpy_via_jax(name):
    jax, jnp = _jax()
    fn = BOOL_CASES[name]
    np.testing.assert_allclose(_value(lambda x: fn(np, x), X34), fn(np, X34), rtol=1e-14)
    got = wb.grad(lambda x: fn(np, x).sum())(X34)
    want = jax.grad(lambda x: fn(jnp, x).sum())(X34)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-13)


def test_subtracting_masks_is_refused_like_numpy():
    with pytest.raises(TypeError):
        (X34 > 0) - (X34 < 0)  # numpy refuses
    with pytest.raises(wb.UnsupportedOperationError, match="boolean"):
        wb.grad(lambda x: (x * ((x > 0) - (x < 0))).sum())(X34)


def test_torch_inner_and_flatten_match_torch():
    torch = require("torch")
    a = torch.from_numpy(RNG.normal(size=(2, 3, 4)))
    b = torch.from_numpy(RNG.normal(size=(5, 4)))
    for fn in (lambda v: torch.inner(v, b), lambda v: torch.flatten(v, 1) * 2.0,
               lambda v: v.flatten(0, 1).sin(), lambda v: torch.zeros_like(v) + v):
        weights = torch.from_numpy(RNG.normal(size=tuple(fn(a).shape)))

        def loss(v, fn=fn, weights=weights):
            return (fn(v) * weights).sum()

        np.testing.assert_allclose(wb.grad(loss)(a).numpy(), torch.func.grad(loss)(a).numpy(),
                                   rtol=1e-13)


# ----- in-place operators: numpy's aliasing, torch's refusal on differentiated arguments -----
def test_augmented_assignment_updates_aliases_as_numpy_does():
    jax, jnp = _jax()

    def f_numpy(x):
        y = x * 1.0
        alias = y
        view = y[1:]
        y += x * x  # numpy: alias and view see the update
        view *= 3.0
        return (alias * np.arange(1.0, 4.0)).sum()

    def f_jax(x):  # the same computation written functionally
        y = x * 1.0 + x * x
        y = y.at[1:].multiply(3.0)
        return (y * jnp.arange(1.0, 4.0)).sum()

    x0 = np.array([0.5, -1.5, 2.0])
    assert float(_value(f_numpy, x0)) == pytest.approx(f_numpy(x0.copy()), rel=1e-15)
    np.testing.assert_allclose(wb.grad(f_numpy)(x0), jax.grad(f_jax)(x0), rtol=1e-15)


def test_augmented_assignment_to_a_differentiated_argument_is_refused():
    def f(x):
        x += 1.0
        return (x * x).sum()

    with pytest.raises(wb.UnsupportedOperationError, match=r"x \+= .*argument 0"):
        wb.grad(f)(np.array([1.0, 2.0]))


def test_augmented_assignment_of_a_scalar_element_rebinds_as_numpy():
    def f(x):
        s = x[0]
        s += 10.0  # x[0] is a copy in numpy: x is unchanged
        return s * x[0]

    np.testing.assert_array_equal(wb.grad(f)(np.array([2.0, 5.0])), [2 * 2.0 + 10.0, 0.0])


def test_running_sum_with_plus_equals_is_unaffected():
    def f(x):
        total = 0.0
        for v in x:
            total += v * v
        return total

    np.testing.assert_array_equal(wb.grad(f)(np.array([1.0, -2.0, 3.0])), [2.0, -4.0, 6.0])


def test_repeat_and_cumsum_methods_follow_the_library_of_the_input():
    torch = require("torch")
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(_value(lambda v: v.repeat(2), x), x.repeat(2))
    np.testing.assert_array_equal(_value(lambda v: v.reshape(3, 1).cumsum(), x),
                                  x.reshape(3, 1).cumsum())
    t = torch.tensor(x)
    np.testing.assert_array_equal(_value(lambda v: v.repeat(2), t).numpy(), t.repeat(2).numpy())
    np.testing.assert_array_equal(_value(lambda v: v.div(2.0, rounding_mode="floor"), t).numpy(),
                                  t.div(2.0, rounding_mode="floor").numpy())


def test_zero_cotangents_flow_through_infinite_partials_as_in_torch_and_jax():
    torch = require("torch")
    jax, jnp = _jax()
    want_t = torch.func.grad(lambda x: 0 * torch.log(x))(torch.tensor(0.0, dtype=torch.float64))
    want_j = jax.grad(lambda x: 0.0 * jnp.log(x))(0.0)
    got = wb.grad(lambda x: 0 * np.log(x))(0.0)
    assert np.isnan(float(want_t)) and np.isnan(float(want_j)) and np.isnan(float(got))
    # away from the singular point the gradient is an exact 0
    assert float(wb.grad(lambda x: 0 * np.log(x))(2.0)) == 0.0


# ----- every accepted numpy ufunc and torch elementwise function, against jax / torch.func -----
def _ufunc_names() -> list[str]:
    from workbench.array_api import UFUNC_HANDLERS
    from workbench.ops import NUMPY_UFUNCS

    return sorted(n for n in set(NUMPY_UFUNCS) | set(UFUNC_HANDLERS)
                  if isinstance(getattr(np, n, None), np.ufunc))


_POSITIVE = RNG.uniform(0.2, 0.9, size=(3, 4))
_MIXED = RNG.uniform(-2.0, 2.0, size=(3, 4))


def _ufunc_call(name: str):
    """A scalar loss that uses ufunc ``name`` of numpy or jax.numpy (``xp``) on its domain."""
    def call(xp, x, y):
        u = getattr(xp, name)
        if name == "matmul":
            out = u(x, y.T)
        elif name.startswith("logical"):
            masks = (x > 0.5, y > 0.5)[:getattr(np, name).nin]
            out = xp.where(u(*masks), x, 2.0 * y)
        elif name in ("isnan", "isinf", "isfinite"):
            out = xp.where(u(xp.log(x - 0.5)), x, 2.0 * y)  # nan below 0.5
        elif getattr(np, name).nin == 2:
            out = u(x, y)
            if out.dtype == bool:
                out = xp.where(out, x, 2.0 * y)
        elif name == "arccosh":
            out = u(x + 1.0)
        else:
            out = u(x)
        return out

    return call


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # log of negatives: nan
@pytest.mark.parametrize("name", _ufunc_names())
def test_every_accepted_numpy_ufunc_matches_jax(name):
    jax, jnp = _jax()
    call = _ufunc_call(name)
    domain = _POSITIVE if name in ("arccos", "arcsin", "arctanh", "log", "log10", "log1p", "log2",
                                   "sqrt", "power", "float_power", "arccosh", "isnan", "isinf",
                                   "isfinite", "cbrt", "reciprocal") else _MIXED
    other = _POSITIVE + 0.3
    weights = RNG.normal(size=np.shape(call(np, domain, other)))
    np.testing.assert_allclose(wb.vjp(lambda x, y: call(np, x, y), domain, other)[0],
                               call(np, domain, other), rtol=1e-14)
    got = wb.grad(lambda x, y: (call(np, x, y) * weights).sum(), argnums=(0, 1))(domain, other)
    want = jax.grad(lambda x, y: (call(jnp, x, y) * weights).sum(), argnums=(0, 1))(domain, other)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-12, atol=1e-15)


def _torch_elementwise_names(torch) -> list[str]:
    from workbench.ops import TORCH_FUNCTIONS

    return sorted(n for n in TORCH_FUNCTIONS if not n.startswith("_") and callable(
        getattr(torch, n, None)) and n not in ("detach", "floor_divide"))


def test_every_accepted_torch_elementwise_function_matches_torch_func():
    """floor_divide is left out: torch has no derivative for it (workbench's is 0, as JAX's)."""
    torch = require("torch")
    positive = torch.from_numpy(_POSITIVE)
    other = torch.from_numpy(_POSITIVE + 0.3)
    failures = []
    for name in _torch_elementwise_names(torch):
        fn = getattr(torch, name)

        unary = _takes_one(fn, positive)

        def loss(x, y, fn=fn, name=name, unary=unary):
            if name.startswith("logical"):
                out = fn(*(x > 0.5, y > 0.5)[:1 if name == "logical_not" else 2])
            elif name in ("clamp", "clip"):
                out = fn(x, 0.4, 0.7)
            elif name == "where":
                out = fn(x > 0.5, x, y)
            elif unary:
                out = fn(x + 1.0) if name in ("acosh", "arccosh") else fn(x)
            else:
                out = fn(x, y)
            if str(out.dtype) in ("torch.bool", "bool"):  # a torch or a traced mask
                out = torch.where(out, x, 2.0 * y)
            return (out * torch.arange(1.0, 13.0, dtype=torch.float64).reshape(3, 4)).sum()

        try:
            got = wb.grad(loss, argnums=(0, 1))(positive, other)
            want = torch.func.grad(loss, argnums=(0, 1))(positive, other)
        except Exception as error:  # collect every failure
            failures.append(f"{name}: {type(error).__name__}: {error}")
            continue
        for g, w in zip(got, want):
            w = torch.zeros_like(g).add(w).numpy()  # torch.func may return a ZeroTensor
            if not np.allclose(g.numpy(), w, rtol=1e-12, atol=1e-15, equal_nan=True):
                failures.append(f"{name}: {g} != torch {w}")
    assert not failures, "\n".join(failures)


def _takes_one(fn, x) -> bool:
    try:
        fn(x)
    except (TypeError, RuntimeError):
        return False
    return True


# ----- coverage: every accepted numpy / torch function is in a table above -----
def test_every_accepted_numpy_function_is_exercised_by_the_tables(monkeypatch):
    """An accepted function missing from the tables could ignore an argument unnoticed."""
    from workbench import array_api

    monkeypatch.setattr(wb.config, "array_level", False)  # the element level's table
    called = set()
    for fn, handler in list(array_api.ARRAY_FUNCTIONS.items()):
        def spy(*args, _fn=fn, _handler=handler, **kwargs):
            called.add(_fn)
            return _handler(*args, **kwargs)

        monkeypatch.setitem(array_api.ARRAY_FUNCTIONS, fn, spy)
    for fn in NUMPY_CASES.values():
        _value(lambda x, fn=fn: fn(np, x), X34)
    missing = {array_api.numpy_name(f) for f in set(array_api.ARRAY_FUNCTIONS) - called}
    assert not missing, f"accepted numpy functions with no test case: {sorted(missing)}"


def test_every_array_level_numpy_function_is_exercised_by_the_tables(monkeypatch):
    """The same for the array level's table (``workbench.arrays.traced``)."""
    from workbench import array_api
    from workbench.arrays import traced

    called = set()
    for fn, handler in list(traced._FUNCTIONS.items()):
        def spy(*args, _fn=fn, _handler=handler, **kwargs):
            called.add(_fn)
            return _handler(*args, **kwargs)

        monkeypatch.setitem(traced._FUNCTIONS, fn, spy)
    for fn in list(NUMPY_CASES.values()) + list(ARRAY_LEVEL_CASES.values()):
        _value(lambda x, fn=fn: fn(np, x), X34)
    missing = {array_api.numpy_name(f) for f in set(traced._FUNCTIONS) - called}
    assert not missing, f"array-level numpy functions with no test case: {sorted(missing)}"


def test_every_accepted_torch_function_is_exercised_by_the_tables(monkeypatch):
    torch = require("torch")
    from workbench import torch_support

    # the element level's handlers: torch tensors would otherwise trace at array level first
    monkeypatch.setattr(wb.config, "array_level", False)

    called = set()
    for name, handler in list(torch_support.HANDLERS.items()):
        def spy(*args, _name=name, _handler=handler, **kwargs):
            called.add(_name)
            return _handler(*args, **kwargs)

        monkeypatch.setitem(torch_support.HANDLERS, name, spy)
    x = torch.from_numpy(X34)
    for fn in _torch_cases(torch).values():
        _value(fn, x)
    # x.dim(), x.size(), x.item(), x[i], len(x)... are Traced's own methods (the handlers are
    # what torch would dispatch to; torch's C methods do not dispatch on non-tensors)
    from workbench.tracing import Traced

    refusals = {"numpy", "bool", "long", "int"}  # tested by the refusal test above
    missing = {n for n in set(torch_support.HANDLERS) - called
               if n not in vars(Traced) and n not in refusals}
    assert not missing, f"accepted torch functions with no test case: {sorted(missing)}"


def test_exported_remainder_and_floor_divide_match_numpy(tmp_path):
    """The value of a % b + (a // b) * c through every export target that runs here: numpy
    (Python) and C (compiled), against numpy at tiny, infinite, zero and signed divisors."""
    import ctypes
    import shutil
    import subprocess

    def f(a, b):
        return a % b + (a // b) * 0.5 + a * b

    cases = [(1.0, 1e-300), (1.0, np.inf), (-1.0, np.inf), (-1.0, -np.inf), (5.0, -3.0),
             (-7.5, 2.0), (0.3, 0.1), (-0.0, 2.0)]
    exported = wb.export(f, 1.0, 2.0, argnums=(0, 1), target="numpy", with_value=True)
    namespace: dict = {}
    exec(compile(exported.source, "<exported>", "exec"), namespace)  # our own exported module
    value_py = namespace["value_f"]
    cc = shutil.which("cc") or shutil.which("gcc")
    value_c = None
    if cc is not None:
        code = wb.export(f, 1.0, 2.0, argnums=(0, 1), target="c", path=tmp_path / "m.c",
                         with_value=True)
        del code
        subprocess.run([cc, "-std=c99", "-O2", "-shared", "-fPIC", "-o", str(tmp_path / "m.so"),
                        str(tmp_path / "m.c"), "-lm"], check=True, capture_output=True, timeout=120)
        value_c = ctypes.CDLL(str(tmp_path / "m.so")).value_f
        value_c.restype = ctypes.c_int
    for a, b in cases:
        with np.errstate(all="ignore"):
            want = np.float64(a) % b + (np.float64(a) // b) * 0.5 + a * b
        got = value_py(a, b)
        np.testing.assert_array_equal(got, want)
        if value_c is not None:
            out = (ctypes.c_double * 1)()
            assert value_c(ctypes.c_double(a), ctypes.c_double(b), out) == 0
            np.testing.assert_array_equal(out[0], want)


def test_np_asarray_of_an_argument_refuses_writes_it_could_not_alias():
    def f(x):
        y = np.asarray(x)  # numpy: y is x, so writing y writes x
        y[0] = 0.0
        return (x * x).sum()

    with pytest.raises(ValueError, match="read-only"):
        wb.grad(f)(np.array([1.0, 2.0]))
    # np.array copies in numpy too: writing the copy leaves x alone
    def g(x):
        y = np.array(x)
        y[0] = 0.0
        return (x * x).sum() + (y * y).sum()

    np.testing.assert_array_equal(wb.grad(g)(np.array([1.0, 2.0])), [2.0, 8.0])


@pytest.mark.parametrize("other", [np.float64(1.0), np.array(1.0), np.ones(2)])
def test_float32_with_numpy_float64_operands_promotes_as_numpy(other):
    x = np.array([1.0, 2.0], dtype=np.float32)
    want = (x * other).dtype
    assert wb.vmap(lambda v: v * other)(x).dtype == want


@pytest.mark.parametrize("row", [[-np.inf, -np.inf], [np.inf, 1.0], [-np.inf, 2.0], [1e308, 1e308]])
def test_logsumexp_at_infinities_matches_torch(row):
    torch = require("torch")
    t = torch.tensor([row], dtype=torch.float64)
    got = wb.vmap(lambda v: torch.logsumexp(v, dim=0))(t)
    np.testing.assert_array_equal(got.numpy(), torch.logsumexp(t, dim=1).numpy())


@pytest.mark.parametrize("write", [
    lambda x: x.__setitem__(0, 0.0),
    lambda x: x.__iadd__(1.0),
], ids=["setitem", "+="])
def test_writes_into_arguments_cannot_corrupt_derivative_or_export(write):
    """wb.derivative and wb.export remember the argument's nodes: a write must not redirect them."""
    def f(x):
        write(x)
        return (x * x).sum()

    for run in (lambda: wb.derivative(f, np.array([1.0, 2.0])),
                lambda: wb.export(f, np.array([1.0, 2.0])),
                lambda: wb.grad(lambda x, y: (x * f(y)).sum(), argnums=0)(1.0, np.array([1.0, 2.0]))):
        with pytest.raises(wb.UnsupportedOperationError, match="copy"):
            run()


def test_clamp_with_tensor_bounds_has_torchs_gradient_at_the_bounds():
    torch = require("torch")
    x = torch.tensor([0.0, 0.5, 1.0, 2.0, -1.0, 0.25], dtype=torch.float64)
    lo = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.5], dtype=torch.float64)
    hi = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64)  # last: lo > hi
    weights = torch.arange(1.0, 7.0, dtype=torch.float64)

    def loss(x, lo, hi):
        return (torch.clamp(x, lo, hi) * weights).sum()

    np.testing.assert_array_equal(_value(lambda v: torch.clamp(v, lo, hi), x).numpy(),
                                  np.clip(x.numpy(), lo.numpy(), hi.numpy()))
    got = wb.grad(loss, argnums=(0, 1, 2))(x, lo, hi)
    want = torch.func.grad(loss, argnums=(0, 1, 2))(x, lo, hi)
    for g, w in zip(got, want):  # the lo > hi element: torch's gradient is not a derivative
        np.testing.assert_array_equal(g.numpy()[:5], w.numpy()[:5])


def test_reflected_remainder_and_floor_divide_with_tensors():
    torch = require("torch")
    t = torch.tensor([5.0, -7.0], dtype=torch.float64)
    x = torch.tensor([3.0, 2.0], dtype=torch.float64)
    got = _value(lambda v: (t % v, t // v, 7.0 % v, 7.0 // v), x)
    want = (t % x, t // x, 7.0 % x, 7.0 // x)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.numpy())
