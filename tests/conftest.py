"""Shared test helpers: finite differences and the torch oracle."""

from __future__ import annotations

import importlib
import os

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


@pytest.fixture
def torch():
    torch = require("torch")
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(torch.float32)


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
