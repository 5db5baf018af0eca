"""wb.grad against torch.func.grad, run live in float64, on a catalogue of functions, and against
central finite differences (of the same function run by torch, not by workbench) at smooth points.

Each function is written once in torch style; workbench traces it through ``__torch_function__``
and the tensor methods, so both libraries run the very same code. Non-smooth points (relu'(0),
abs'(0), ties in maximum/max(), clamp at its bounds, sqrt and pow at 0...) are checked against
torch, never against a guessed convention.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import central_difference, require

import workbench as wb

torch = require("torch")
tfunc = require("torch.func")


def T(*values):
    return torch.tensor(values if len(values) != 1 else values[0], dtype=torch.float64)


RNG = np.random.default_rng(3)


def rand(*shape, low=-1.0, high=1.0):
    return torch.from_numpy(RNG.uniform(low, high, size=shape))


VEC = rand(4)
POS = rand(4, low=0.2, high=2.0)
UNIT = rand(4, low=-0.8, high=0.8)
MAT = rand(3, 4)
W34 = rand(3, 4)
B3 = rand(3)
SCAL = T(0.37)


# name -> (function, args, argnums)
CATALOGUE = {
    # ----- elementwise -----
    "sin": (lambda x: torch.sin(x).sum(), (VEC,), 0),
    "cos": (lambda x: x.cos().sum(), (VEC,), 0),
    "tan": (lambda x: torch.tan(x).sum(), (UNIT,), 0),
    "exp": (lambda x: x.exp().sum(), (VEC,), 0),
    "log": (lambda x: torch.log(x).sum(), (POS,), 0),
    "log1p expm1": (lambda x: (torch.log1p(x * x) + torch.expm1(x)).sum(), (VEC,), 0),
    "log2 log10": (lambda x: (torch.log2(x) * torch.log10(x + 1)).sum(), (POS,), 0),
    "sqrt": (lambda x: x.sqrt().sum(), (POS,), 0),
    "tanh": (lambda x: torch.tanh(x).sum(), (VEC,), 0),
    "sigmoid": (lambda x: torch.sigmoid(3 * x).sum(), (VEC,), 0),
    "softplus": (lambda x: torch.nn.functional.softplus(4 * x).sum(), (VEC,), 0),
    "relu": (lambda x: torch.relu(x).sum() + x.relu().pow(2).sum(), (VEC,), 0),
    "abs": (lambda x: (x.abs() * x).sum(), (VEC,), 0),
    "asin acos atan": (lambda x: (torch.asin(x) * torch.acos(x) + torch.atan(x)).sum(), (UNIT,), 0),
    "sinh cosh": (lambda x: (torch.sinh(x) / torch.cosh(x)).sum(), (VEC,), 0),
    "asinh acosh atanh": (lambda x: (torch.asinh(x) + torch.acosh(x + 2) + torch.atanh(x * 0.9)).sum(),
                          (UNIT,), 0),
    "pow int": (lambda x: (x ** 3).sum(), (VEC,), 0),
    "pow frac": (lambda x: x.pow(2.5).sum(), (POS,), 0),
    "pow negative": (lambda x: (x ** -1.5).sum(), (POS,), 0),
    "pow both": (lambda x, y: (x ** y).sum(), (POS, VEC), (0, 1)),
    "rpow": (lambda x: (2.0 ** x).sum(), (VEC,), 0),
    "div": (lambda x, y: (x / (y + 3)).sum(), (VEC, VEC), (0, 1)),
    "reciprocal rsqrt": (lambda x: (x.reciprocal() + torch.rsqrt(x)).sum(), (POS,), 0),
    "atan2": (lambda y, x: torch.atan2(y, x).sum(), (VEC, POS), (0, 1)),
    "maximum minimum": (lambda x, y: (torch.maximum(x, y) * torch.minimum(x, y * 2)).sum(),
                        (VEC, UNIT), (0, 1)),
    "clamp": (lambda x: torch.clamp(x, -0.5, 0.5).sum() + x.clamp(min=0.1).sum(), (VEC,), 0),
    "where": (lambda x: torch.where(x > 0, x ** 2, -x).sum(), (VEC,), 0),
    "remainder %": (lambda x, y: (x % (y + 2)).sum() + torch.remainder(x, -1.5).sum(), (VEC, VEC), (0, 1)),
    "square neg sub": (lambda x: (torch.square(x) - (-x) * 2).sum(), (VEC,), 0),
    # ----- reductions -----
    "sum dim": (lambda x: (x.sum(dim=1) ** 2).sum(), (MAT,), 0),
    "mean keepdim": (lambda x: (x.mean(dim=0, keepdim=True) * x).sum(), (MAT,), 0),
    "prod": (lambda x: x.prod(), (POS,), 0),
    "amax amin": (lambda x: torch.amax(x, dim=1).sum() + x.amin(), (MAT,), 0),
    "max": (lambda x: x.max() * x.sum(), (VEC,), 0),
    "var std": (lambda x: torch.var(x) + x.std(correction=0) + x.var(unbiased=False), (VEC,), 0),
    "var std methods, torch defaults": (lambda x: x.var() + x.std() + x.var(dim=1).sum(), (MAT,), 0),
    "norm": (lambda x: x.norm(), (VEC,), 0),
    # ----- dot / matmul -----
    "dot": (lambda v, w: v.dot(w), (VEC, POS), (0, 1)),
    "matmul mat-vec": (lambda m, v: (m @ v).sin().sum(), (W34, VEC), (0, 1)),
    "matmul mat-mat": (lambda a, b: torch.matmul(a, b.T).tanh().sum(), (MAT, W34), (0, 1)),
    "mv mm": (lambda m: torch.mv(m, VEC).sum() + torch.mm(m, m.T).sum(), (W34,), 0),
    "outer": (lambda a, b: torch.outer(a, b).exp().mean(), (B3, VEC), (0, 1)),
    # ----- compositions -----
    "linear layer": (lambda w, b, x: torch.tanh(w @ x + b).sum(), (W34, B3, VEC), (0, 1, 2)),
    "mlp 2 layers": (lambda w, x: (torch.relu(w @ x) ** 2).sum().sqrt(), (W34, VEC), (0, 1)),
    "softmax cross-entropy": (
        lambda z: -(z[1] - torch.log(torch.exp(z - z.max()).sum()) - z.max()), (VEC,), 0),
    "logistic loss": (lambda w, x: torch.nn.functional.softplus(-(x @ w)).mean(), (VEC, MAT), 0),
    "rosenbrock": (lambda x: ((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2).sum(), (VEC,), 0),
    "mse": (lambda w, x, y: ((x @ w - y) ** 2).mean(), (VEC, MAT, B3), 0),
    "x sin x cos": (lambda x: (x * x.sin() * (x * x).cos()).sum(), (VEC,), 0),
    "reshape transpose index": (lambda m: (m.reshape(4, 3).T[1:, ::2] ** 2).sum(), (MAT,), 0),
    "stack cat": (lambda x: (torch.stack([x, x ** 2]).sum(0) * torch.cat([x, x])[:4]).sum(), (VEC,), 0),
    "python control flow": (lambda x: x.sum() ** 2 if x.sum() > 0 else x.exp().sum(), (VEC,), 0),
    # ----- more torch idioms -----
    "zeros_like ones_like": (lambda x: (x * torch.ones_like(x) + torch.zeros_like(x)).pow(2).sum(),
                             (VEC,), 0),
    "F.mse_loss": (lambda x, y: torch.nn.functional.mse_loss(x, y), (VEC, POS), (0, 1)),
    "logsumexp": (lambda m: torch.logsumexp(m, 1).sum() + torch.logsumexp(m, 0, keepdim=True).sum(),
                  (MAT,), 0),
    "softmax log_softmax": (lambda m: (torch.softmax(m, 1) * W34).sum()
                            + torch.nn.functional.log_softmax(m, dim=0)[1].sum(), (MAT,), 0),
    "expand repeat": (lambda x: (x[:1].expand(4) * x).sum() + (x.repeat(2) ** 2).sum(), (VEC,), 0),
    "permute transpose": (lambda m: (m.permute(1, 0) @ m).sum() + torch.transpose(m, 0, 1)[0].sum(),
                          (MAT,), 0),
    "transpose 3-d": (lambda m: (m.reshape(2, 3, 2).transpose(0, 2)[1] * W34[:2, :3].T).sum(),
                      (MAT,), 0),
    "masked_fill": (lambda x: x.masked_fill(x > 0, 0.0).pow(2).sum(), (VEC,), 0),
    "cumsum": (lambda x: torch.cumsum(x, 0).pow(2).sum(), (VEC,), 0),
    "to double": (lambda x: x.to(torch.float64).double().sin().sum(), (VEC,), 0),
    "linalg.norm": (lambda m: torch.linalg.norm(m) + torch.linalg.vector_norm(m, dim=1).sum(), (MAT,), 0),
    "add sub alpha": (lambda x: x.sub(x * x, alpha=2).add(x.exp(), alpha=0.5).sum(), (VEC,), 0),
    # ----- broadcasting -----
    "broadcast column row": (lambda a, b: (a[:, None] * b[None, :]).sin().sum(), (B3, VEC), (0, 1)),
    "broadcast scalar tensor": (lambda s, v: (s * v + s ** 2).sum(), (SCAL, VEC), (0, 1)),
    "broadcast python scalar": (lambda x: (1.5 - x * 2 + 3 / (x + 4)).sum(), (VEC,), 0),
    # ----- pytrees -----
    "dict params": (lambda p, x: torch.tanh(p["w"] @ x + p["b"]).sum(), ({"w": W34, "b": B3}, VEC), 0),
    "tuple params": (lambda p: (p[0] * p[1][0]).sum() + p[1][1].sin(), ((VEC, (POS, SCAL)),), 0),
    "list params": (lambda p: (p[0] @ p[1]).sum(), ([W34, VEC],), 0),
}

NESTED = {
    "grad grad sin": (lambda g: g(g(lambda x: torch.sin(x))), (SCAL,)),
    "grad^3 poly exp": (lambda g: g(g(g(lambda x: x ** 4 * x.exp()))), (SCAL,)),
    "grad of x * grad": (lambda g: g(lambda x: x * g(lambda y: (y * x).sin())(x)), (SCAL,)),
    "hvp": (lambda g: g(lambda x: (g(lambda y: (y ** 3).sum() + (y[0] * y[1]).sin())(x) * POS).sum()),
            (VEC,)),
    "grad wrt pytree of grad": (lambda g: g(lambda p: g(lambda w: (w * p["a"]).sin().sum())(p["a"]).sum()),
                                ({"a": VEC},)),
}


def _torch_grad(fn, args, argnums):
    return tfunc.grad(fn, argnums=argnums)(*args)


def _assert_tree_close(got, want, rtol=1e-10, atol=1e-12):
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want)
        for k in want:
            _assert_tree_close(got[k], want[k], rtol, atol)
    elif isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want)
        for g, w in zip(got, want):
            _assert_tree_close(g, w, rtol, atol)
    else:
        assert isinstance(got, torch.Tensor), type(got)
        assert got.shape == want.shape and got.dtype == want.dtype
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol)


def test_catalogue_is_big_enough():
    assert len(CATALOGUE) + len(NESTED) >= 40


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_against_torch_func(name):
    fn, args, argnums = CATALOGUE[name]
    want = _torch_grad(fn, args, argnums)
    got = wb.grad(fn, argnums=argnums)(*args)
    _assert_tree_close(got, want)


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_grad_and_value_against_torch_func(name):
    fn, args, argnums = CATALOGUE[name]
    want_g, want_v = tfunc.grad_and_value(fn, argnums=argnums)(*args)
    got_g, got_v = wb.grad_and_value(fn, argnums=argnums)(*args)
    _assert_tree_close(got_g, want_g)
    _assert_tree_close(got_v, want_v)


@pytest.mark.parametrize("name", list(NESTED))
def test_nested_against_torch_func(name):
    make, args = NESTED[name]
    _assert_tree_close(make(wb.grad)(*args), make(tfunc.grad)(*args))


@pytest.mark.parametrize("name", [n for n, (_, args, _) in CATALOGUE.items()
                                  if isinstance(args[0], torch.Tensor)])
def test_against_central_differences(name):
    fn, args, argnums = CATALOGUE[name]
    first = argnums if isinstance(argnums, int) else argnums[0]

    def plain(a):  # the function run by torch alone, on plain tensors
        new = list(args)
        new[first] = torch.from_numpy(np.asarray(a, dtype=np.float64))
        return float(fn(*new))

    got = wb.grad(fn, argnums=first)(*args)
    fd = central_difference(plain, args[first].numpy())
    np.testing.assert_allclose(got.numpy(), fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sin", "mse", "rosenbrock", "linear layer", "dot", "max"])
def test_numpy_inputs_give_numpy_outputs_with_the_same_values(name):
    fn, args, argnums = CATALOGUE[name]
    want = _torch_grad(fn, args, argnums)
    got = wb.grad(fn, argnums=argnums)(*[a.numpy() for a in args])
    for g, w in zip(got if isinstance(argnums, tuple) else (got,),
                    want if isinstance(argnums, tuple) else (want,)):
        assert isinstance(g, np.ndarray)
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-10, atol=1e-12)


def test_one_transform_called_with_numpy_then_torch_keeps_each_meaning():
    # x.var() is ddof=0 for numpy arrays and correction=1 for torch tensors
    g = wb.grad(lambda t: t.var())
    x = VEC.numpy()
    np.testing.assert_allclose(g(x), 2 * (x - x.mean()) / 4)
    torch.testing.assert_close(g(VEC), tfunc.grad(lambda t: t.var())(VEC))
    np.testing.assert_allclose(g(x), 2 * (x - x.mean()) / 4)


def test_torch_max_with_dim_is_refused_with_advice():
    # torch's x.max(dim) returns (values, indices) and sends the gradient to one index only
    with pytest.raises(wb.UnsupportedOperationError, match="amax"):
        wb.grad(lambda m: m.max(dim=1).values.sum())(MAT)
    with pytest.raises(wb.UnsupportedOperationError, match="amax"):
        wb.grad(lambda m: m.max(1)[0].sum())(MAT)
    with pytest.raises(wb.UnsupportedOperationError, match="amax"):
        wb.grad(lambda m: torch.max(m, 1)[0].sum())(MAT)


def test_float32_inputs_stay_float32():
    x = VEC.to(torch.float32)
    got = wb.grad(lambda t: (t.sin() * t).sum())(x)
    want = tfunc.grad(lambda t: (t.sin() * t).sum())(x)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)


# ----- non-smooth points: torch's conventions, checked live -----
NON_SMOOTH = {
    "relu'(0)": (lambda x: torch.relu(x), T(0.0)),
    "relu at 0 via method": (lambda x: x.relu().sum(), T(0.0, -1.0, 2.0)),
    "abs'(0)": (lambda x: torch.abs(x), T(0.0)),
    "sign'(0)": (lambda x: torch.sign(x) * 3, T(0.0)),
    "sqrt'(0)": (lambda x: torch.sqrt(x), T(0.0)),
    "x ** 0.5 at 0": (lambda x: x ** 0.5, T(0.0)),
    "x ** 3 at 0": (lambda x: x ** 3, T(0.0)),
    "x ** 0 at 0": (lambda x: x ** 0.0, T(0.0)),
    "x ** -1 at 0": (lambda x: x ** -1.0, T(0.0)),
    "x ** 1.5 at 0": (lambda x: x ** 1.5, T(0.0)),
    "x ** x at 0": (lambda x: x ** x, T(0.0)),
    "0 ** y at y = 0": (lambda y: T(0.0) ** y, T(0.0)),
    "0 ** y at y = 2": (lambda y: T(0.0) ** y, T(2.0)),
    "x ** 0.5 at negative x": (lambda x: x ** 0.5, T(-2.0)),
    "maximum tie": (lambda x: torch.maximum(x[0], x[1]), T(1.0, 1.0)),
    "minimum tie": (lambda x: torch.minimum(x[0], x[1]), T(1.0, 1.0)),
    "maximum with 0 at 0": (lambda x: torch.maximum(x, T(0.0)), T(0.0)),
    "max() reduction, 3-way tie": (lambda x: x.max(), T(1.0, 3.0, 3.0, 3.0)),
    "min() reduction, tie": (lambda x: x.min(), T(1.0, 1.0, 3.0)),
    "amax over a dim with ties": (lambda x: torch.amax(x, dim=0).sum(), T([1.0, 3.0], [1.0, 2.0])),
    "clamp at both bounds": (lambda x: torch.clamp(x, 0.0, 1.0).sum(), T(0.0, 1.0, 0.5, -1.0, 2.0)),
    "clamp min only at bound": (lambda x: x.clamp(min=0.5).sum(), T(0.5, 0.2, 0.9)),
    "where at the boundary": (lambda x: torch.where(x > 0, x, T(0.0)), T(0.0)),
    "floor": (lambda x: torch.floor(x) * x, T(1.0)),
    "softplus above the threshold": (lambda x: torch.nn.functional.softplus(x), T(25.0)),
    "softplus at the threshold": (lambda x: torch.nn.functional.softplus(x), T(20.0)),
    "atan2 at the origin": (lambda x: torch.atan2(x, x), T(0.0)),
    "norm at 0": (lambda x: x.norm(), T(0.0, 0.0, 0.0)),
    "std of a constant": (lambda x: x.std(), T(1.0, 1.0, 1.0)),
    "x log x at 0": (lambda x: x * torch.log(x), T(0.0)),
    "log at 0": (lambda x: torch.log(x), T(0.0)),
    "abs of max tie": (lambda x: x.abs().max(), T(-2.0, 2.0)),
    "relu at nan": (lambda x: torch.relu(x), T(math.nan)),
    "maximum with nan": (lambda x: torch.maximum(x[0], x[1]), T(1.0, math.nan)),
    "max() with nan": (lambda x: x.max(), T(1.0, math.nan)),
    "clamp at nan": (lambda x: torch.clamp(x, 0.0, 1.0), T(math.nan)),
}


@pytest.mark.parametrize("name", list(NON_SMOOTH))
def test_non_smooth_point_matches_torch(name):
    fn, x = NON_SMOOTH[name]
    want = tfunc.grad(fn)(x)
    got = wb.grad(fn)(x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)
    # numpy inputs follow the same conventions (the op table is shared)
    np.testing.assert_allclose(np.asarray(wb.grad(fn)(x.numpy())), want.numpy(), rtol=1e-12,
                               atol=1e-12, equal_nan=True)


def test_non_smooth_values_match_torch():
    for name, (fn, x) in NON_SMOOTH.items():
        want = fn(x)
        _, got = wb.grad_and_value(fn)(x)
        torch.testing.assert_close(got, want, equal_nan=True, msg=name)


NUMPY_SPELLINGS = {
    "np.maximum(x, 0) at 0": (lambda x: np.maximum(x, 0.0), lambda t: torch.maximum(t, T(0.0)), 0.0),
    "np.abs at 0": (np.abs, torch.abs, 0.0),
    "wb.relu at 0": (wb.relu, torch.relu, 0.0),
    "np.clip at the upper bound": (lambda x: np.clip(x, 0.0, 1.0), lambda t: torch.clamp(t, 0.0, 1.0),
                                   1.0),
    "np.sqrt at 0": (np.sqrt, torch.sqrt, 0.0),
    "np.max of a tie": (lambda x: np.max(np.stack([x, x, 2 * x - 1.0])),
                        lambda t: torch.stack([t, t, 2 * t - 1.0]).max(), 1.0),
}


@pytest.mark.parametrize("name", list(NUMPY_SPELLINGS))
def test_numpy_spelling_of_non_smooth_points_matches_torch(name):
    np_fn, torch_fn, x = NUMPY_SPELLINGS[name]
    assert float(wb.grad(np_fn)(x)) == float(tfunc.grad(torch_fn)(T(x)))


@pytest.mark.parametrize("name", [n for n, (_, x) in NON_SMOOTH.items() if x.dim() == 0])
def test_non_smooth_point_in_a_batch_matches_torch(name):
    # vmap evaluates the numpy printers of the same ops: they must keep the same conventions
    fn, x = NON_SMOOTH[name]
    batch = torch.stack([x, x + 0.5, x - 0.5, x])
    want = torch.vmap(tfunc.grad(fn))(batch)
    got = wb.vmap(wb.grad(fn))(batch)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)


SECOND_ORDER = {
    "relu''(0)": (lambda x: torch.relu(x), T(0.0)),
    "abs''(0)": (lambda x: torch.abs(x), T(0.0)),
    "sqrt''(0)": (lambda x: torch.sqrt(x), T(0.0)),
    "(x |x|)''(0)": (lambda x: x * torch.abs(x), T(0.0)),
    "maximum'' at a tie": (lambda x: torch.maximum(x, x * x), T(1.0)),
    "max()'' at a tie": (lambda x: torch.stack([x * x, x]).max(), T(1.0)),
    "clamp'' at the bound": (lambda x: torch.clamp(x * x, 0.0, 1.0), T(1.0)),
    "softplus'' above the threshold": (lambda x: torch.nn.functional.softplus(x), T(25.0)),
    "(x ** 2.5)''(0)": (lambda x: x ** 2.5, T(0.0)),
    "(x ** 3)''(0)": (lambda x: x ** 3, T(0.0)),
    "(0 ** y)''": (lambda y: T(0.0) ** y, T(2.0)),
    "where'' at the boundary": (lambda x: torch.where(x > 0, x ** 3, x ** 2), T(0.0)),
    "(1/x)''(0)": (lambda x: 1 / x, T(0.0)),
    "log''(0)": (lambda x: torch.log(x), T(0.0)),
    "std''": (lambda x: torch.stack([x, 2 * x, T(3.0)]).std(), T(1.0)),
    "softmax''": (lambda x: torch.softmax(torch.stack([x, 2 * x]), 0)[0], T(0.3)),
}


@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_second_derivative_at_non_smooth_points_matches_torch(name):
    fn, x = SECOND_ORDER[name]
    torch.testing.assert_close(wb.grad(wb.grad(fn))(x), tfunc.grad(tfunc.grad(fn))(x),
                               rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name", [n for n, (_, args, _) in CATALOGUE.items()
                                  if not isinstance(args[0], torch.Tensor)])
def test_pytree_arguments_against_central_differences(name):
    from workbench import pytree

    fn, args, argnums = CATALOGUE[name]
    leaves, tree = pytree.flatten(args[0])
    got_leaves, _ = pytree.flatten(wb.grad(fn)(*args))
    for k, leaf in enumerate(leaves):
        def plain(a, k=k):  # torch alone, with leaf k replaced
            new = list(leaves)
            new[k] = torch.from_numpy(np.asarray(a, dtype=np.float64))
            return float(fn(pytree.unflatten(tree, new), *args[1:]))

        fd = central_difference(plain, leaf.numpy())
        np.testing.assert_allclose(got_leaves[k].numpy(), fd, rtol=1e-5, atol=1e-6)


# ----- random compositions (first and second order), at smooth and non-smooth points -----
_UNARY = {
    "sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
    "relu": torch.relu, "abs": torch.abs, "softplus": torch.nn.functional.softplus,
    "atan": torch.atan, "neg": torch.neg, "square": torch.square, "sign": torch.sign,
    "floor": torch.floor, "exp": lambda v: torch.exp(torch.clamp(v, -30.0, 30.0)),
    "sqrt": lambda v: torch.sqrt(torch.abs(v) + 0.1),
}
_BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul,
    "div": lambda a, b: a / (b * b + 0.5), "maximum": torch.maximum, "minimum": torch.minimum,
    "atan2": torch.atan2, "pow": lambda a, b: (a * a + 0.1) ** (b * 0.3),
    "where": lambda a, b: torch.where(a > b, a, 2 * b),
}


def _random_expression(rng, depth):
    if depth == 0 or rng.random() < 0.25:
        return ("x", rng.randrange(3)) if rng.random() < 0.8 else ("c", rng.choice([0.0, 1.0, -0.5]))
    if rng.random() < 0.5:
        return (rng.choice(sorted(_UNARY)), _random_expression(rng, depth - 1))
    return (rng.choice(sorted(_BINARY)), _random_expression(rng, depth - 1),
            _random_expression(rng, depth - 1))


def _evaluate(expression, v):
    kind = expression[0]
    if kind == "x":
        return v[expression[1]]
    if kind == "c":
        return T(expression[1])
    if len(expression) == 2:
        return _UNARY[kind](_evaluate(expression[1], v))
    return _BINARY[kind](_evaluate(expression[1], v), _evaluate(expression[2], v))


@pytest.mark.parametrize("seed", range(40))
def test_random_compositions_match_torch(seed):
    import random

    rng = random.Random(seed)
    expression = _random_expression(rng, 4)
    x = T(*[rng.choice([0.0, 1.0, -1.0, 0.5, rng.uniform(-2, 2)]) for _ in range(3)])

    def f(v):
        return _evaluate(expression, v) + v.sum() * 0.0

    def df_sum(grad):
        return lambda v: grad(f)(v).sum()

    torch.testing.assert_close(wb.grad(f)(x), tfunc.grad(f)(x), rtol=1e-9, atol=1e-9,
                               equal_nan=True, msg=str(expression))
    torch.testing.assert_close(wb.grad(df_sum(wb.grad))(x), tfunc.grad(df_sum(tfunc.grad))(x),
                               rtol=1e-8, atol=1e-8, equal_nan=True, msg=str(expression))


def test_transpose_of_two_dims_swaps_them_for_torch_inputs_at_element_level(monkeypatch):
    # torch's x.transpose(0, 1) on a 2-D tensor swaps the dims (numpy's would be the identity
    # permutation): the element level used to read it the numpy way, a silently wrong gradient.
    torch = require("torch")
    monkeypatch.setattr(wb.config, "array_level", False)
    a = torch.arange(9.0, dtype=torch.float64).reshape(3, 3)
    x = torch.tensor([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0], [1.5, 0.2, -0.7]], dtype=torch.float64)

    def f(x):
        return (x.transpose(0, 1) * a).sum() + (x @ x.transpose(0, 1)).sum()

    torch.testing.assert_close(wb.grad(f)(x), torch.func.grad(f)(x))
    xs = x.numpy()
    np.testing.assert_allclose(wb.grad(lambda v: (v.transpose(0, 1) * a.numpy()).sum())(xs),
                               a.numpy())  # numpy's meaning for numpy inputs: the identity
