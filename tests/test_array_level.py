"""The array level is what runs: typical numpy programs compile to one statement per array op,
and where the array level cannot trace a function the element level takes over, with the same
results. Expected values come from closed forms, finite differences or torch.func run live.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import central_difference, compiled_versions, require

import workbench as wb
from workbench.tracing import STATE

rng = np.random.default_rng(12)


def the_entry(transform):
    found = compiled_versions(transform)
    assert len(found) == 1, found
    return found[0]


def mlp_loss(params, x, y):
    w1, b1, w2, b2 = params
    h = np.maximum(x @ w1 + b1, 0.0)
    z = h @ w2 + b2
    m = z.max(axis=1, keepdims=True)
    logp = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    return -(logp * y).sum() / x.shape[0]


def mlp_args(batch=8, n_in=6, hidden=5, n_out=3):
    params = (rng.standard_normal((n_in, hidden)), rng.standard_normal(hidden),
              rng.standard_normal((hidden, n_out)), rng.standard_normal(n_out))
    x = rng.standard_normal((batch, n_in))
    y = np.eye(n_out)[rng.integers(0, n_out, batch)]
    return params, x, y


def test_mlp_gradient_is_array_level_and_matches_torch(torch):
    params, x, y = mlp_args()
    grad = wb.grad(mlp_loss)
    ours = grad(params, x, y)
    entry = the_entry(grad)
    assert entry.array_level and entry.program.n_statements < 60
    tparams = tuple(torch.tensor(p) for p in params)

    def tloss(p, x, y):
        w1, b1, w2, b2 = p
        z = torch.relu(x @ w1 + b1) @ w2 + b2
        return -(torch.log_softmax(z, dim=1) * y).sum() / x.shape[0]

    want = torch.func.grad(tloss)(tparams, torch.tensor(x), torch.tensor(y))
    for a, b in zip(ours, want):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-12, atol=1e-13)
    # The cached program at a new point equals a fresh trace there.
    params2, x2, y2 = mlp_args()
    again = grad(params2, x2, y2)
    fresh = wb.grad(lambda *a: mlp_loss(*a))(params2, x2, y2)
    for a, b in zip(again, fresh):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    assert len(compiled_versions(grad)) == 1


def test_size_is_not_limited_by_the_element_budget():
    # 10^6 multiply-adds: far past the element budget (5e5 scalar nodes), a few array ops here.
    x = rng.standard_normal((1000, 1000))
    t = rng.standard_normal(1000)
    w = rng.standard_normal(1000)
    grad = wb.grad(lambda w, x, t: ((x @ w - t) ** 2).mean())
    np.testing.assert_allclose(grad(w, x, t), 2 * x.T @ (x @ w - t) / 1000, rtol=1e-10)
    assert the_entry(grad).array_level


def test_per_sample_gradients_are_one_array_program():
    def loss(w, x, t):
        return (np.maximum(x @ w, 0.0) - t) ** 2

    per_sample = wb.vmap(wb.grad(loss), in_dims=(None, 0, 0))
    w, x, t = rng.standard_normal(5), rng.standard_normal((300, 5)), rng.standard_normal(300)
    z = x @ w
    np.testing.assert_allclose(per_sample(w, x, t),
                               (2 * (np.maximum(z, 0) - t) * (z > 0))[:, None] * x, rtol=1e-12)
    entry = the_entry(per_sample)
    assert entry.array_level and entry.program.n_statements <= 12


@pytest.mark.parametrize("nest", ["grad(grad)", "hessian", "jacfwd(jacrev)", "grad(vmap)",
                                  "vmap(vmap)", "jacrev(vmap)"])
def test_nested_transforms_at_array_level_match_torch(nest, torch):
    x = rng.standard_normal(4)
    a = rng.standard_normal((3, 4))

    def f(x):
        return np.tanh(a @ x).sum() * np.sin(x).sum()

    def tf(x):
        return torch.tanh(torch.tensor(a) @ x).sum() * torch.sin(x).sum()

    tx = torch.tensor(x)
    cases = {
        "grad(grad)": (lambda: wb.grad(lambda x: wb.grad(f)(x).sum())(x),
                       lambda: torch.func.grad(lambda x: torch.func.grad(tf)(x).sum())(tx)),
        "hessian": (lambda: wb.hessian(f)(x), lambda: torch.func.hessian(tf)(tx)),
        "jacfwd(jacrev)": (lambda: wb.jacfwd(wb.jacrev(f))(x),
                           lambda: torch.func.jacfwd(torch.func.jacrev(tf))(tx)),
        "grad(vmap)": (lambda: wb.grad(lambda x: wb.vmap(lambda r: np.sin(r @ x))(a).sum())(x),
                       lambda: torch.func.grad(lambda x: torch.func.vmap(
                           lambda r: torch.sin(r @ x))(torch.tensor(a)).sum())(tx)),
        "vmap(vmap)": (lambda: wb.vmap(wb.vmap(lambda u, v: np.sin(u) * v, (0, None)),
                                       (None, 0))(a, x),
                       lambda: torch.func.vmap(torch.func.vmap(lambda u, v: torch.sin(u) * v,
                                                               (0, None)), (None, 0))(
                           torch.tensor(a), tx)),
        "jacrev(vmap)": (lambda: wb.jacrev(lambda x: wb.vmap(lambda r: np.tanh(r * x).sum())(a))(x),
                         lambda: torch.func.jacrev(lambda x: torch.func.vmap(
                             lambda r: torch.tanh(r * x).sum())(torch.tensor(a)))(tx)),
    }
    ours, theirs = cases[nest]
    np.testing.assert_allclose(ours(), theirs().numpy(), rtol=1e-11, atol=1e-12)


def test_control_flow_is_a_guard_and_the_other_branch_is_traced_again(traces):
    def f(x):
        if x.sum() > 0:
            return (x * x).sum()
        return np.sin(x).sum()

    grad = wb.grad(f)
    up, down = np.array([1.0, 2.0]), np.array([-1.0, -2.0])
    np.testing.assert_allclose(grad(up), 2 * up)
    np.testing.assert_allclose(grad(down), np.cos(down))
    np.testing.assert_allclose(grad(up * 3), 6 * up)  # the first version, from the cache
    assert traces["n"] == 2
    assert all(e.array_level and e.guards for e in compiled_versions(grad))


def test_no_grad_inside_is_a_constant():
    def f(x):
        with wb.no_grad():
            scale = (x * x).sum()
        return scale * x.sum()

    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(wb.grad(f)(x), np.full(3, (x * x).sum()))


def test_float32_is_computed_in_float64_and_rounded_once():
    x = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    g = wb.grad(lambda x: (np.sin(x) * x).sum())(x)
    assert g.dtype == np.float32
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(g, (np.sin(x64) + x64 * np.cos(x64)).astype(np.float32))


def _scaled_copy(x):
    y = x.copy()
    y[0] = y[0] * 3.0
    return (y * x).sum()


@pytest.mark.parametrize("program", [
    _scaled_copy,                                  # a write into an array: element level only
    lambda x: (x * x).sum() * np.all(x < 3.0),     # np.all: element level only, for now
    lambda x: x @ x * np.any(x > 1.0),
])
def test_what_the_array_level_cannot_trace_runs_element_by_element(program):
    x = np.array([0.3, -0.7, 1.1])
    grad = wb.grad(program)
    np.testing.assert_allclose(grad(x), central_difference(program, x), rtol=1e-6, atol=1e-8)
    entry = the_entry(grad)
    assert not entry.array_level
    assert grad.__wb_staged__.element_only  # and the reason is kept for whoever debugs it


def test_writes_into_arguments_are_refused_as_before():
    def f(x):
        x += 1.0
        return x.sum()

    with pytest.raises(wb.UnsupportedOperationError):
        wb.grad(f)(np.array([1.0, 2.0]))
    assert not STATE.graphs


def test_torch_inputs_trace_at_array_level():  # tests/test_torch_arrays.py has the catalogue
    torch = require("torch")
    x = torch.tensor([0.5, 1.5], dtype=torch.float64)
    grad = wb.grad(lambda x: (torch.sin(x) * x).sum())
    out = grad(x)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), (torch.sin(x) + x * torch.cos(x)).numpy())
    assert the_entry(grad).array_level


def test_array_level_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(wb.config, "array_level", False)
    grad = wb.grad(lambda x: (x * x).sum())
    np.testing.assert_allclose(grad(np.array([1.0, 2.0])), [2.0, 4.0])
    assert not the_entry(grad).array_level


# ----- norms: the element level's definitions (workbench.norms), traced as array ops -----
NORM_X = np.array([[1.0, -2.0, 0.5, 2.0], [0.0, 0.0, 0.0, 0.0], [3.0, -3.0, 1.0, 0.25]])
NORMS = {  # numpy spelling, torch spelling (given torch; a zero row: torch's gradient there is 0)
    "frobenius": (lambda x: np.linalg.norm(x), lambda t: lambda x: x.norm()),
    "rows": (lambda x: np.linalg.norm(x, axis=1).sum(),
             lambda t: lambda x: t.linalg.vector_norm(x, dim=1).sum()),
    "rows keepdims": (lambda x: (np.linalg.norm(x, axis=1, keepdims=True) * x).sum(),
                      lambda t: lambda x: (x.norm(dim=1, keepdim=True) * x).sum()),
    "matrix 1": (lambda x: np.linalg.norm(x, ord=1), lambda t: lambda x: t.linalg.norm(x, ord=1)),
    "matrix inf": (lambda x: np.linalg.norm(x, ord=np.inf),
                   lambda t: lambda x: t.linalg.norm(x, ord=float("inf"))),
    "columns 1": (lambda x: np.linalg.norm(x, ord=1, axis=0).sum(),
                  lambda t: lambda x: t.linalg.vector_norm(x, ord=1, dim=0).sum()),
    "columns inf, ties": (lambda x: np.linalg.norm(x, ord=np.inf, axis=0).sum(),
                          lambda t: lambda x: t.linalg.vector_norm(x, ord=float("inf"), dim=0).sum()),
    "3-norm": (lambda x: np.linalg.norm(x[0], ord=3), lambda t: lambda x: x[0].norm(p=3)),
    "weight decay": (lambda x: 0.5 * np.linalg.norm(x) ** 2, lambda t: lambda x: 0.5 * x.norm() ** 2),
}


def test_matrix_norms_that_need_singular_values_are_still_refused_by_name():
    with pytest.raises(wb.UnsupportedOperationError, match="spectral"):
        wb.grad(lambda x: np.linalg.norm(x, ord=2))(NORM_X)


REORDERINGS = {  # numpy spelling, torch spelling (given torch)
    "flip all": (lambda x: (np.flip(x) * x ** 2).sum(),
                 lambda t: lambda x: (t.flip(x, (0, 1)) * x ** 2).sum()),
    "flip axis": (lambda x: (np.flip(x, 1) * x).sum(), lambda t: lambda x: (x.flip(1) * x).sum()),
    "roll axis": (lambda x: (np.roll(x, 2, axis=1) * x).sum(),
                  lambda t: lambda x: (t.roll(x, 2, 1) * x).sum()),
    "roll flattened": (lambda x: (np.roll(x, -5) * x ** 3).sum(),
                       lambda t: lambda x: (x.roll(-5) * x ** 3).sum()),
    "roll two axes": (lambda x: (np.roll(x, (1, 3), axis=(0, 1)) * x).sum(),
                      lambda t: lambda x: (t.roll(x, (1, 3), (0, 1)) * x).sum()),
    "cumsum axis": (lambda x: (np.cumsum(x, axis=1) ** 2).sum(),
                    lambda t: lambda x: (t.cumsum(x, 1) ** 2).sum()),
    "cumsum flattened": (lambda x: (np.cumsum(x) * np.tanh(x.ravel())).sum(),
                         lambda t: lambda x: (x.reshape(-1).cumsum(0) * t.tanh(x.reshape(-1))).sum()),
    # NORM_X has a row of zeros: the gradient of a product there is the product of the others
    "prod rows, zeros": (lambda x: (np.prod(x + 0.5 * (x > 1), axis=1) ** 2).sum(),
                         lambda t: lambda x: (t.prod(x + 0.5 * (x > 1), 1) ** 2).sum()),
    "prod of everything, odd length": (lambda x: np.prod(x[:, :3] + 1.0),
                                       lambda t: lambda x: t.prod(x[:, :3] + 1.0)),
    "prod keepdims": (lambda x: (x.prod(axis=0, keepdims=True) * x).sum(),
                      lambda t: lambda x: (x.prod(0, keepdim=True) * x).sum()),
}


@pytest.mark.parametrize("name", list(NORMS) + list(REORDERINGS))
def test_norms_flip_roll_cumsum_and_prod_are_array_level_and_match_torch(name):
    torch = require("torch")
    spellings = NORMS.get(name) or REORDERINGS[name]
    numpy_fn, torch_fn = spellings[0], spellings[1](torch)
    expected = torch.func.grad(torch_fn)(torch.tensor(NORM_X)).numpy()
    for fn, x in ((numpy_fn, NORM_X), (torch_fn, torch.tensor(NORM_X))):
        grad = wb.grad(fn)
        np.testing.assert_allclose(np.asarray(grad(x)), expected, rtol=1e-12, atol=1e-15)
        assert the_entry(grad).array_level, grad.__wb_staged__.element_only


COMPOSED = {  # numpy functions the array level writes with its other ops (arrays/compositions.py)
    "hstack vstack column_stack": lambda xp, x: (xp.hstack([x, x]) ** 2).sum()
    + (xp.vstack([x[0], x[1] ** 2]) * 2.0).sum() + xp.column_stack([x[0], xp.sin(x[1])]).sum(),
    "tile repeat": lambda xp, x: (xp.tile(x, (2, 1)) * xp.repeat(x, 2, axis=0)).sum()
    + (xp.repeat(x, 3) ** 2).sum(),
    "split array_split": lambda xp, x: sum((p ** 2).sum() * (k + 1) for k, p in enumerate(
        xp.split(x, 2, axis=1) + xp.array_split(x, 3, axis=1))),
    "diagonal trace vdot": lambda xp, x: xp.trace(x @ x.T, offset=1) + (xp.diagonal(x, 1) ** 3).sum()
    + xp.vdot(x, xp.cos(x)),
    "atleast copy": lambda xp, x: (xp.atleast_2d(x[0]) * xp.copy(x)).sum() + xp.atleast_1d(x[0, 0]).sum(),
}


@pytest.mark.parametrize("name", list(COMPOSED))
def test_composed_numpy_functions_are_array_level_and_match_jax(name):
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    fn = COMPOSED[name]
    expected = np.asarray(jax.grad(lambda x: fn(jax.numpy, x))(NORM_X))
    grad = wb.grad(lambda x: fn(np, x))
    np.testing.assert_allclose(grad(NORM_X), expected, rtol=1e-12, atol=1e-14)
    assert the_entry(grad).array_level, grad.__wb_staged__.element_only
