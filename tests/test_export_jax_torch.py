"""wb.export(target="jax" / "torch"): modules over jax.numpy / torch, checked live against
jax.grad and torch.func.grad of the same function written in those libraries."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import workbench as wb
from tests.conftest import require


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def f_numpy(x, w):
    h = np.tanh(w @ x)
    return np.sum(wb.relu(h) * np.exp(-x[:2] ** 2)) + np.maximum(x[0], x[2]) \
        + np.clip(x[1], -0.5, 0.5) + np.sum(np.log1p(x ** 2)) / np.sqrt(1.0 + w[0, 0] ** 2)


# Includes a tie of maximum (x0 == x2) and, in the last point, clip's upper bound (x1 == 0.5).
POINTS = [np.array([0.3, -0.2, 0.9]), np.array([1.0, 0.0, 1.0]), np.array([-0.4, 0.5, 0.2])]
# At clip's bounds JAX's gradient is 1/2 (jnp.clip is a min of a max) where torch's, and ours,
# is 1: the JAX comparison stays inside the bounds.
JAX_POINTS = POINTS[:2] + [np.array([-0.4, 0.45, 0.2])]
W = np.array([[0.5, -1.0, 0.25], [1.5, 0.75, -0.5]])


@pytest.fixture
def jax():
    jax = require("jax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", previous)


def test_jax_module_matches_jax_grad(tmp_path, jax):
    jnp = jax.numpy

    def f_jax(x, w):
        h = jnp.tanh(w @ x)
        return jnp.sum(jax.nn.relu(h) * jnp.exp(-x[:2] ** 2)) + jnp.maximum(x[0], x[2]) \
            + jnp.clip(x[1], -0.5, 0.5) + jnp.sum(jnp.log1p(x ** 2)) / jnp.sqrt(1.0 + w[0, 0] ** 2)

    wb.export(f_numpy, POINTS[0], W, argnums=(0, 1), target="jax", path=tmp_path / "mj.py")
    module = load(tmp_path / "mj.py")
    jitted = jax.jit(module.grad_f_numpy)
    for x in JAX_POINTS:
        ex, ew = jax.grad(f_jax, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(W))
        for gx, gw in (module.grad_f_numpy(x, W), jitted(x, W)):
            np.testing.assert_allclose(np.asarray(gx), np.asarray(ex), rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(np.asarray(gw), np.asarray(ew), rtol=1e-12, atol=1e-14)


def test_torch_module_matches_torch_func_grad(tmp_path, torch):
    def f_torch(x, w):
        h = torch.tanh(w @ x)
        return torch.sum(torch.relu(h) * torch.exp(-x[:2] ** 2)) + torch.maximum(x[0], x[2]) \
            + torch.clamp(x[1], -0.5, 0.5) \
            + torch.sum(torch.log1p(x ** 2)) / torch.sqrt(1.0 + w[0, 0] ** 2)

    wb.export(f_numpy, POINTS[0], W, argnums=(0, 1), target="torch", path=tmp_path / "mt.py")
    module = load(tmp_path / "mt.py")
    tw = torch.tensor(W)
    for x in POINTS:
        ex, ew = torch.func.grad(f_torch, argnums=(0, 1))(torch.tensor(x), tw)
        gx, gw = module.grad_f_numpy(torch.tensor(x), tw)
        assert gx.dtype == torch.float64 and gw.shape == (2, 3)
        torch.testing.assert_close(gx, ex, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(gw, ew, rtol=1e-12, atol=1e-14)


def piecewise(x, y):
    if x * y > 0.5:
        return np.sin(x) * y ** 2
    return x - y


def test_guards_raise_outside_the_traced_branch(tmp_path, jax, torch):
    for target in ("jax", "torch"):
        wb.export(piecewise, 1.0, 1.0, argnums=(0, 1), target=target,
                  path=tmp_path / f"p_{target}.py")
        module = load(tmp_path / f"p_{target}.py")
        gx, gy = module.grad_piecewise(1.5, 2.0)
        assert float(gx) == pytest.approx(4 * np.cos(1.5)) and float(gy) == pytest.approx(
            4 * np.sin(1.5))
        with pytest.raises(ValueError, match="outside the region"):
            module.grad_piecewise(0.1, 0.2)


def test_torch_module_under_torch_func_grad_of_value(tmp_path, torch):
    """The exported value function is itself differentiable by torch (a second oracle)."""
    wb.export(f_numpy, POINTS[0], W, argnums=0, target="torch", path=tmp_path / "mv.py",
              with_value=True)
    module = load(tmp_path / "mv.py")
    x = torch.tensor(POINTS[2])
    torch.testing.assert_close(module.grad_f_numpy(x, torch.tensor(W)),
                               torch.func.grad(module.value_f_numpy)(x, torch.tensor(W)))


def test_jax_guard_is_checked_under_jit(tmp_path, jax):
    wb.export(piecewise, 1.0, 1.0, argnums=(0, 1), target="jax", path=tmp_path / "pj.py")
    jitted = jax.jit(load(tmp_path / "pj.py").grad_piecewise)
    assert float(jitted(1.5, 2.0)[0]) == pytest.approx(4 * np.cos(1.5))
    with pytest.raises(Exception, match="outside the region this code was traced in"):
        jax.block_until_ready(jitted(0.1, 0.2))
