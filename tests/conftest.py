"""Shared test helpers: finite differences and the torch oracle."""

from __future__ import annotations

import importlib
import os
import shutil

import numpy as np
import pytest

from workbench.transforms import staging


def central_difference(f, x, eps=None):
    """Central finite-difference gradient of scalar ``f`` at float or array ``x``."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.ravel()
    grad = np.zeros_like(flat)
    for i in range(flat.size):
        h = (eps or 1e-6) * max(1.0, abs(flat[i]))
        up, down = flat.copy(), flat.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (float(f(up.reshape(x.shape))) - float(f(down.reshape(x.shape)))) / (2 * h)
    return grad.reshape(x.shape)


def require(module: str):
    """Import an oracle library; skip without it locally, but fail in CI (where it is installed)."""
    if os.environ.get("CI"):
        return importlib.import_module(module)
    return pytest.importorskip(module)


#: The system's C compiler, which exported C is compiled with.
C_COMPILER = shutil.which("cc") or shutil.which("gcc")


@pytest.fixture
def c_compiler() -> str:
    """The C compiler's path: skip on a user's machine without one, fail in CI (.ci/run
    installs gcc), so the exported-C tests can never pass by not running there."""
    if C_COMPILER is None:
        message = "no C compiler (cc or gcc) to compile exported C: install gcc"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return C_COMPILER


@pytest.fixture
def torch():
    torch = require("torch")
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(torch.float32)


def compiled_versions(transform) -> list:
    """Every compiled version in a transform's caches (grad-like, or vmap's two levels)."""
    staged = getattr(transform, "__wb_staged__", None)
    caches = [staged.cache] if staged is not None else []
    batched = getattr(transform, "__wb_batched__", None)
    if batched is not None:
        caches += [batched.cache, batched.array_staged.cache]
    return [e for cache in caches for versions in cache.values() for e in versions]


@pytest.fixture
def traces(monkeypatch):
    """Counts how often (``traces["n"]``) any transform traces its function (i.e. cache misses)."""
    count = {"n": 0}
    original = staging.Staged.trace

    def counting(self, *args, **kwargs):
        count["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(staging.Staged, "trace", counting)
    return count
