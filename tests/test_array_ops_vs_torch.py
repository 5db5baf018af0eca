"""Every array op a user writes in numpy, differentiated by workbench and by torch.func live in
float64: grad (all argnums), vjp, jvp, jacrev, jacfwd, the Hessian and grad of grad, on random
shapes with broadcasting and size-1 axes (``array_cases.CASES``), and at kinks, where torch's
conventions are the expected values (``array_cases.KINKS``).

Each case is the scalar loss ``L = sum(op(*inputs) * R)`` for a fixed random R (so every output
element counts with its own weight), or the op itself for vjp/jvp. Only the public API is used,
so the array-level engine must pass these unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest
from array_cases import CASES, KINKS, T, broadcast_pair, params, to_torch
from conftest import central_difference, require

import workbench as wb

torch = require("torch")
tfunc = require("torch.func")

RTOL, ATOL = 1e-9, 1e-10
# Hessians cost (elements)^2 on today's element-level engine: keep the total input size modest.
HESSIAN_MAX_ELEMENTS = 40


def close(ours, theirs, what: str) -> None:
    """``ours`` (numpy from workbench) equals ``theirs`` (torch) in shape and value."""
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs), what
        for k, (o, t) in enumerate(zip(ours, theirs)):
            close(o, t, f"{what}[{k}]")
        return
    # force=True: torch returns lazy ZeroTensors for some second derivatives (abs)
    want = theirs.detach().numpy(force=True) if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    got = np.asarray(ours, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, torch gives {want.shape}"
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=what)


def losses(case):
    """The scalar loss in numpy (for workbench) and in torch, with the same fixed weights."""
    weights = case.weights()
    weights_t = T(weights)

    def loss(*xs):
        return np.sum(case.numpy(*xs) * weights)

    def loss_t(*ts):
        return (case.torch(*ts) * weights_t).sum()

    return loss, loss_t


def _check_grad(case):
    xs = case.inputs()
    loss, loss_t = losses(case)
    argnums = tuple(range(len(xs)))
    ours = wb.grad(loss, argnums=argnums)(*xs)
    theirs = tfunc.grad(loss_t, argnums=argnums)(*to_torch(xs))
    close(ours, theirs, f"grad of {case.name}")


def _check_vjp(case):
    xs = case.inputs()
    out, vjp_fn = wb.vjp(case.numpy, *xs)
    out_t, vjp_t = tfunc.vjp(case.torch, *to_torch(xs))
    close(out, out_t, f"vjp primal of {case.name}")
    cotangent = case.rng("cotangent").standard_normal(tuple(out_t.shape))
    close(vjp_fn(cotangent), vjp_t(T(cotangent)), f"vjp of {case.name}")


def _check_jvp(case):
    xs = case.inputs()
    rng = case.rng("tangent")
    tangents = [rng.standard_normal(np.shape(x)) for x in xs]
    ours = wb.jvp(case.numpy, tuple(xs), tuple(tangents))
    theirs = tfunc.jvp(case.torch, tuple(to_torch(xs)), tuple(to_torch(tangents)))
    close(ours, theirs, f"jvp of {case.name}")


@pytest.mark.parametrize("case", params(CASES, "grad"))
def test_grad(case):
    _check_grad(case)


@pytest.mark.parametrize("case", params(CASES, "vjp"))
def test_vjp(case):
    _check_vjp(case)


@pytest.mark.parametrize("case", params(CASES, "jvp"))
def test_jvp(case):
    _check_jvp(case)


def _check_jacobian(case, transform):
    xs = case.inputs()
    argnums = tuple(range(len(xs)))
    ours = getattr(wb, transform)(case.numpy, argnums=argnums)(*xs)
    theirs = getattr(tfunc, transform)(case.torch, argnums=argnums)(*to_torch(xs))
    close(ours, theirs, f"{transform} of {case.name}")


@pytest.mark.parametrize("case", params(CASES, "jacrev"))
def test_jacrev(case):
    """The op's full Jacobian w.r.t. every input (a non-scalar output: every row at once)."""
    _check_jacobian(case, "jacrev")


@pytest.mark.parametrize("case", params(CASES, "jacfwd"))
def test_jacfwd(case):
    _check_jacobian(case, "jacfwd")


HESSIAN_CASES = [c for c in CASES if sum(np.size(x) for x in c.inputs()) <= HESSIAN_MAX_ELEMENTS]


@pytest.mark.parametrize("case", params(HESSIAN_CASES, "hessian"))
def test_hessian(case):
    """Second order, all argnums: the full block Hessian ((H00, H01), (H10, H11))."""
    xs = case.inputs()
    loss, loss_t = losses(case)
    argnums = tuple(range(len(xs)))
    ours = wb.hessian(loss, argnums=argnums)(*xs)
    theirs = tfunc.hessian(loss_t, argnums=argnums)(*to_torch(xs))
    close(ours, theirs, f"hessian of {case.name}")


@pytest.mark.parametrize("case", params(CASES[::3], "grad of grad"))
def test_grad_of_grad_contracted(case):
    """grad of <grad L, v>: a Hessian-vector product through nested grad (not wb.hessian)."""
    xs = case.inputs()
    loss, loss_t = losses(case)
    argnums = tuple(range(len(xs)))
    rng = case.rng("direction")
    vs = [rng.standard_normal(np.shape(x)) for x in xs]
    vs_t = to_torch(vs)

    def inner(*ys):
        return sum(np.sum(g * v) for g, v in zip(wb.grad(loss, argnums=argnums)(*ys), vs))

    def inner_t(*ys):
        return sum((g * v).sum() for g, v in zip(tfunc.grad(loss_t, argnums=argnums)(*ys), vs_t))

    ours = wb.grad(inner, argnums=argnums)(*xs)
    theirs = tfunc.grad(inner_t, argnums=argnums)(*to_torch(xs))
    close(ours, theirs, f"grad of grad of {case.name}")


# ----- non-smooth points: torch's conventions, computed live -----
@pytest.mark.parametrize("case", params(KINKS, "grad"))
def test_grad_at_kink(case):
    _check_grad(case)


@pytest.mark.parametrize("case", params(KINKS, "vjp"))
def test_vjp_at_kink(case):
    _check_vjp(case)


@pytest.mark.parametrize("case", params(KINKS, "jvp"))
def test_jvp_at_kink(case):
    _check_jvp(case)


@pytest.mark.parametrize("case", params(KINKS, "jacrev"))
def test_jacrev_at_kink(case):
    _check_jacobian(case, "jacrev")


@pytest.mark.parametrize("case", params(KINKS, "jacfwd"))
def test_jacfwd_at_kink(case):
    _check_jacobian(case, "jacfwd")


@pytest.mark.parametrize("case", params(KINKS, "hessian"))
def test_hessian_at_kink(case):
    xs = case.inputs()
    loss, loss_t = losses(case)
    argnums = tuple(range(len(xs)))
    close(wb.hessian(loss, argnums=argnums)(*xs),
          tfunc.hessian(loss_t, argnums=argnums)(*to_torch(xs)), f"hessian of {case.name}")


WEIGHTS_3x3 = np.random.default_rng(8).standard_normal((3, 3))


def test_fancy_iadd_with_repeated_indices_matches_finite_differences():
    """``y[idx] += v`` with a repeated index writes that element once (numpy's semantics). torch
    leaves index_put with repeated indices undefined (its gradient counts the repeat), so the
    oracle here is central differences of the numpy function itself."""
    def f(x):
        y = x.copy()
        y[[1, 1, 0], [2, 2, 0]] += np.sin(x[0, 1]) * x[0, 0]
        return np.sum(y * WEIGHTS_3x3)

    x = np.random.default_rng(7).uniform(-1, 1, size=(3, 3))
    np.testing.assert_allclose(wb.grad(f)(x), central_difference(f, x), rtol=1e-7, atol=1e-9)


def test_catalogue_covers_broadcasting_and_size_one_axes():
    """The random shapes really include size-1 axes, 0-d arrays and broadcasting pairs."""
    shapes = [np.shape(x) for c in CASES for x in c.inputs()]
    assert any(s == () for s in shapes)
    assert sum(1 in s for s in shapes) >= 10
    pairs = [[np.shape(x) for x in c.inputs()] for c in CASES if c.shapes is broadcast_pair]
    assert pairs and all(a != b and np.broadcast_shapes(a, b) not in (a, b) for a, b in pairs)
