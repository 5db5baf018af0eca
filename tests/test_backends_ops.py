"""Every array op's value and derivative through every backend workbench has: the compiled,
cached call (again at a new point), the vmap batch code, the exported numpy module and the
exported C compiled with the system compiler.

Expected values are computed directly: values by running the op's numpy code on plain arrays,
derivatives by torch.func live (float64) -- never by ``wb.grad``. Each op is checked on its own,
so a wrong printer for one op in one backend fails the test that names that op and backend.
Kink cases run at their non-smooth points, so each backend's conventions are checked against
torch's too.
"""

from __future__ import annotations

import numpy as np
import pytest
from array_cases import CASES, KINKS, T, params, to_torch
from conftest import require
from test_export_c import call, compile_export
from test_export_numpy import load

import workbench as wb

torch = require("torch")
tfunc = require("torch.func")

RTOL, ATOL = 1e-9, 1e-10

# one draw of shapes per op is enough here (the op tests run a second draw)
BACKEND_CASES = [c for c in CASES if not c.name.endswith("(draw 2)")] + KINKS


@pytest.fixture(autouse=True)
def _no_docstring_simplification(monkeypatch):
    """Exported code carries its formula in the docstring; simplifying it (up to
    ``simplify_seconds`` per formula) is not what these tests check, and would dominate them."""
    monkeypatch.setattr(wb.config, "simplify_max_ops", 0)


def close(got, want, what: str) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=what)


def named_loss(case):
    """``loss(a, b, ...) = sum(op(a, b, ...) * R)`` with named parameters (export names its
    inputs after them), and its torch twin."""
    op, weights, weights_t = case.numpy, case.weights(), T(case.weights())
    if case.arity == 1:
        def loss(a):
            return np.sum(op(a) * weights)
    elif case.arity == 2:
        def loss(a, b):
            return np.sum(op(a, b) * weights)
    else:
        def loss(a, b, c):
            return np.sum(op(a, b, c) * weights)

    def loss_t(*ts):
        return (case.torch(*ts) * weights_t).sum()

    return loss, loss_t


def points(case) -> list[list[np.ndarray]]:
    """The case's point, and a nearby one (same shapes, same side of every guard in practice)."""
    first = case.inputs()
    rng = case.rng("nearby")
    return [first, [x + 0.01 * rng.standard_normal(np.shape(x)) for x in first]]


def expected(case, loss_t, xs):
    """(value, gradient) computed directly: numpy for the value, torch.func for the gradient."""
    argnums = tuple(range(len(xs)))
    with np.errstate(all="ignore"):  # kink points include log(0), sqrt(-1) ...
        value = np.sum(case.numpy(*xs) * case.weights())  # plain numpy arrays: nothing is traced
    grads = tfunc.grad(loss_t, argnums=argnums)(*to_torch(xs))
    return value, [g.detach().numpy(force=True) for g in grads]


@pytest.mark.parametrize("case", params(BACKEND_CASES, "compiled"))
def test_compiled_call(case):
    """First call, the same point again (cached), then a new point through the cached code."""
    loss, loss_t = named_loss(case)
    argnums = tuple(range(case.arity))
    grad_and_value = wb.grad_and_value(loss, argnums=argnums)
    first, nearby = points(case)
    for label, xs in (("first call", first), ("cached call", first), ("new point", nearby)):
        grads, value = grad_and_value(*xs)
        want_value, want_grads = expected(case, loss_t, xs)
        close(value, want_value, f"{case.name}, {label}: value")
        for k, (g, w) in enumerate(zip(grads, want_grads)):
            close(g, w, f"{case.name}, {label}: gradient {k}")


@pytest.mark.parametrize("case", params(BACKEND_CASES, "vmap"))
def test_vmap_batch(case):
    """The op's values, the loss and its per-sample gradients over a batch of three points."""
    loss, loss_t = named_loss(case)
    argnums = tuple(range(case.arity))
    first, nearby = points(case)
    rows = [first, nearby, first]
    batch = [np.stack(column) for column in zip(*rows)]

    op_values = wb.vmap(case.numpy)(*batch)
    values = wb.vmap(loss)(*batch)
    grads = wb.vmap(wb.grad(loss, argnums=argnums))(*batch)
    for i, xs in enumerate(rows):
        with np.errstate(all="ignore"):
            want_op = case.numpy(*xs)
        close(op_values[i], want_op, f"{case.name}, row {i}: op value")
        want_value, want_grads = expected(case, loss_t, xs)
        close(values[i], want_value, f"{case.name}, row {i}: loss value")
        for k, w in enumerate(want_grads):
            close(grads[k][i], w, f"{case.name}, row {i}: gradient {k}")


@pytest.mark.parametrize("case", params(BACKEND_CASES, "export_numpy"))
def test_exported_numpy(case, tmp_path):
    loss, loss_t = named_loss(case)
    first, nearby = points(case)
    code = wb.export(loss, *first, argnums=tuple(range(case.arity)), target="numpy",
                     path=tmp_path / "exported.py", with_value=True)
    assert code.functions == ["grad_loss", "value_loss"]
    module = load(tmp_path / "exported.py", name=f"exported_op_{abs(hash(case.name))}")
    for label, xs in (("traced point", first), ("new point", nearby)):
        want_value, want_grads = expected(case, loss_t, xs)
        close(module.value_loss(*xs), want_value, f"{case.name}, {label}: exported value")
        grads = module.grad_loss(*xs)
        assert len(grads) == case.arity
        for k, (g, w) in enumerate(zip(grads, want_grads)):
            close(g, w, f"{case.name}, {label}: exported gradient {k}")


@pytest.mark.usefixtures("c_compiler")
@pytest.mark.parametrize("case", params(BACKEND_CASES, "export_c"))
def test_exported_c(case, tmp_path):
    loss, loss_t = named_loss(case)
    first, nearby = points(case)
    _, lib = compile_export(tmp_path, loss, *first, argnums=tuple(range(case.arity)),
                            stem="op", with_value=True)
    for label, xs in (("traced point", first), ("new point", nearby)):
        want_value, want_grads = expected(case, loss_t, xs)
        status, (value,) = call(lib.value_loss, xs, (1,))
        assert status == 0, f"{case.name}, {label}: the exported C value refused the point"
        close(value[0], want_value, f"{case.name}, {label}: exported C value")
        status, grads = call(lib.grad_loss, xs, [np.size(x) for x in xs])
        assert status == 0, f"{case.name}, {label}: the exported C gradient refused the point"
        for k, (g, w) in enumerate(zip(grads, want_grads)):
            close(g.reshape(np.shape(w)), w, f"{case.name}, {label}: exported C gradient {k}")


def test_every_op_reaches_every_backend():
    """No op is left out of the backend tests (only the second shape draws are)."""
    names = {c.name for c in BACKEND_CASES}
    assert {c.name for c in CASES if not c.name.endswith("(draw 2)")} <= names
    assert {c.name for c in KINKS} <= names
