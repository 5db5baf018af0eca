"""vmap, jacrev, jacfwd, hessian, vjp and jvp: behaviour, errors, and torch.func run live as oracle."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import workbench as wb
from tests.conftest import require

rng = np.random.default_rng(1234)


# ----- the cross-check catalogue: (name, function written in torch-compatible style, input shapes) -----
def _rosenbrock(x):
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


def _mlp(w1, w2, x):
    return (w2 @ (w1 @ x).tanh()).sum()


VECTOR_FUNCTIONS = [
    ("sin", lambda x: x.sin(), [(3,)]),
    ("exp*x", lambda x: x.exp() * x, [(4,)]),
    ("square-sum", lambda x: (x ** 2).sum(), [(5,)]),
    ("mean-cube", lambda x: (x ** 3).mean(), [(2, 3)]),
    ("softmax-like", lambda x: x.exp() / x.exp().sum(), [(4,)]),
    ("outer-ish", lambda x: x * x.sum(), [(3,)]),
    ("matvec", lambda x: x @ x.T, [(2, 3)]),
    ("tanh-chain", lambda x: (x.tanh() * x.cos()).sum(), [(6,)]),
    ("rosenbrock", _rosenbrock, [(5,)]),
    ("sigmoid", lambda x: x.sigmoid(), [(4,)]),
    ("log-sum-sq", lambda x: (x * x + 1.0).log().sum(), [(3,)]),
    ("reshape", lambda x: x.reshape(2, 3).sum(0), [(6,)]),
    ("slice", lambda x: x[1:] * x[:-1], [(5,)]),
    ("two-args", lambda x, y: (x * y.sin()).sum(), [(3,), (3,)]),
    ("broadcast", lambda x, y: x[:, None] * y[None, :], [(2,), (3,)]),
    ("dot", lambda x, y: x.dot(y), [(4,), (4,)]),
    ("mlp", _mlp, [(3, 2), (1, 3), (2,)]),
    ("relu-mean", lambda x: x.relu().mean(), [(5,)]),
    ("abs-sum", lambda x: x.abs().sum() * x, [(3,)]),
    ("pow", lambda x: (x * x + 0.5) ** 1.5, [(3,)]),
    ("sqrt", lambda x: (x * x + 1.0).sqrt().sum(), [(4,)]),
    ("atan2", lambda x, y: (x.atan2(y)).sum(), [(3,), (3,)]),
    ("2d-out", lambda x: x[:, None] * x[None, :], [(3,)]),
    ("matmul", lambda a, b: a @ b, [(2, 3), (3, 2)]),
]


def _inputs(shapes):
    return [rng.standard_normal(s) for s in shapes]


def _torch_args(torch, arrays):
    return [torch.from_numpy(a.copy()) for a in arrays]


def _assert_tree_close(ours, ref, torch):
    if isinstance(ref, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(ref)
        for o, r in zip(ours, ref):
            _assert_tree_close(o, r, torch)
        return
    assert isinstance(ours, torch.Tensor), f"expected a torch tensor, got {type(ours)}"
    assert tuple(ours.shape) == tuple(ref.shape)
    np.testing.assert_allclose(ours.numpy(), ref.detach().numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name,fn,shapes", VECTOR_FUNCTIONS, ids=[c[0] for c in VECTOR_FUNCTIONS])
@pytest.mark.parametrize("transform", ["jacrev", "jacfwd"])
def test_jacobians_match_torch(torch, name, fn, shapes, transform):
    args = _torch_args(torch, _inputs(shapes))
    argnums = tuple(range(len(args))) if len(args) > 1 else 0
    ours = getattr(wb, transform)(fn, argnums=argnums)(*args)
    ref = getattr(torch.func, transform)(fn, argnums=argnums)(*args)
    _assert_tree_close(ours, ref, torch)


SCALAR_FUNCTIONS = [c for c in VECTOR_FUNCTIONS if c[0] in (
    "square-sum", "mean-cube", "tanh-chain", "rosenbrock", "log-sum-sq", "two-args", "dot", "mlp",
    "sqrt", "atan2")]


@pytest.mark.parametrize("name,fn,shapes", SCALAR_FUNCTIONS, ids=[c[0] for c in SCALAR_FUNCTIONS])
def test_hessian_matches_torch(torch, name, fn, shapes):
    args = _torch_args(torch, _inputs(shapes))
    argnums = tuple(range(len(args))) if len(args) > 1 else 0
    _assert_tree_close(wb.hessian(fn, argnums=argnums)(*args),
                       torch.func.hessian(fn, argnums=argnums)(*args), torch)


@pytest.mark.parametrize("name,fn,shapes", VECTOR_FUNCTIONS, ids=[c[0] for c in VECTOR_FUNCTIONS])
def test_vjp_and_jvp_match_torch(torch, name, fn, shapes):
    args = _torch_args(torch, _inputs(shapes))
    out, vjp_fn = wb.vjp(fn, *args)
    ref_out, ref_vjp_fn = torch.func.vjp(fn, *args)
    _assert_tree_close(out, ref_out, torch)
    cotangent = torch.from_numpy(rng.standard_normal(tuple(ref_out.shape)))
    _assert_tree_close(vjp_fn(cotangent), ref_vjp_fn(cotangent), torch)
    tangents = tuple(torch.from_numpy(rng.standard_normal(tuple(a.shape))) for a in args)
    _assert_tree_close(wb.jvp(fn, tuple(args), tangents),
                       torch.func.jvp(fn, tuple(args), tangents), torch)


@pytest.mark.parametrize("name,fn,shapes", VECTOR_FUNCTIONS, ids=[c[0] for c in VECTOR_FUNCTIONS])
def test_vmap_matches_torch(torch, name, fn, shapes):
    batch = 4
    args = _torch_args(torch, [rng.standard_normal((batch,) + s) for s in shapes])
    _assert_tree_close(wb.vmap(fn)(*args), torch.func.vmap(fn)(*args), torch)


# ----- the reference text's per-sample gradients -----
def _model(weights, feature_vec):
    assert feature_vec.dim() == 1
    return feature_vec.dot(weights).relu()


def _compute_loss(weights, example, target):
    y = _model(weights, example)
    return ((y - target) ** 2).mean()


@pytest.mark.parametrize("batch,features", [(3, 5), (64, 5), (16, 20)])
def test_per_sample_gradients_match_torch(torch, batch, features):
    weights = torch.randn(features, requires_grad=True)
    examples = torch.randn(batch, features)
    targets = torch.randn(batch)
    ref = torch.func.vmap(torch.func.grad(_compute_loss), in_dims=(None, 0, 0))(
        weights, examples, targets)
    ours = wb.vmap(wb.grad(_compute_loss), in_dims=(None, 0, 0))(weights, examples, targets)
    _assert_tree_close(ours, ref, torch)


def test_per_sample_gradients_are_one_vectorised_evaluation():
    """The batch is evaluated by one compiled program: traced once, whatever the batch size."""
    def loss(w, x, t):
        return ((np.maximum(x @ w, 0.0) - t) ** 2).mean()

    per_sample = wb.vmap(wb.grad(loss), in_dims=(None, 0, 0))
    w = rng.standard_normal(5)
    x, t = rng.standard_normal((1000, 5)), rng.standard_normal(1000)
    result = per_sample(w, x, t)
    z = x @ w
    expected = (2 * (np.maximum(z, 0) - t) * (z > 0))[:, None] * x  # the closed form
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12)
    batched = per_sample.__wb_batched__
    caches = [batched.cache, batched.array_staged.cache]
    versions = [e for cache in caches for entries in cache.values() for e in entries]
    assert len(versions) == 1  # one trace, one program, for all 1000 examples


def test_has_aux_and_argnums_example_under_vmap(torch):
    def my_loss_func(y, y_pred):
        loss_per_sample = (0.5 * y_pred - y) ** 2
        return loss_per_sample.mean(), (y_pred, loss_per_sample)

    y_true, y_preds = torch.rand(3, 4), torch.rand(3, 4)
    ours = wb.vmap(wb.grad(my_loss_func, argnums=(0, 1), has_aux=True))(y_true, y_preds)
    ref = torch.func.vmap(torch.func.grad(my_loss_func, argnums=(0, 1), has_aux=True))(
        y_true, y_preds)
    _assert_tree_close(ours, ref, torch)


# ----- vmap behaviour -----
def test_in_dims_forms(torch):
    x = rng.standard_normal((3, 4))
    y = rng.standard_normal((4, 3))
    fn = lambda a, b: a * b  # noqa: E731
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for in_dims in [(0, 1), (-2, -1), [0, 1]]:
        ours = wb.vmap(fn, in_dims=tuple(in_dims) if isinstance(in_dims, list) else in_dims)(x, y)
        ref = torch.func.vmap(fn, in_dims=tuple(in_dims))(tx, ty)
        np.testing.assert_allclose(ours, ref.numpy())
    ours = wb.vmap(fn, in_dims=(0, None))(x, y[:, 0])
    np.testing.assert_allclose(ours, x * y[:, 0])


def test_in_dims_pytree_and_out_dims(torch):
    params = {"w": rng.standard_normal((5, 2)), "b": rng.standard_normal(2)}
    xs = rng.standard_normal((5, 2))
    fn = lambda p, x: (p["w"] * x + p["b"], x.sum())  # noqa: E731
    ours = wb.vmap(fn, in_dims=({"w": 0, "b": None}, 0), out_dims=(1, 0))(params, xs)
    tparams = {k: torch.from_numpy(v) for k, v in params.items()}
    ref = torch.func.vmap(fn, in_dims=({"w": 0, "b": None}, 0), out_dims=(1, 0))(
        tparams, torch.from_numpy(xs))
    for o, r in zip(ours, ref):
        np.testing.assert_allclose(o, r.numpy())


def test_nested_vmap_and_compositions():
    a = rng.standard_normal((3, 4, 2))
    np.testing.assert_allclose(wb.vmap(wb.vmap(lambda v: (v ** 2).sum()))(a), (a ** 2).sum(-1))
    # grad of a function that calls vmap
    g = wb.grad(lambda m: wb.vmap(lambda v: np.sin(v).sum())(m).sum())(a)
    np.testing.assert_allclose(g, np.cos(a))
    # vmap(jacrev), jacfwd(jacrev) == hessian
    xs = rng.standard_normal((4, 3))
    jac = wb.vmap(wb.jacrev(lambda v: v * v.sum()))(xs)
    for x, j in zip(xs, jac):
        np.testing.assert_allclose(j, np.diag(np.full(3, x.sum())) + x[:, None])
    f = lambda v: (v ** 3).sum() + v[0] * v[1]  # noqa: E731
    x = rng.standard_normal(3)
    np.testing.assert_allclose(wb.jacfwd(wb.jacrev(f))(x), wb.hessian(f)(x))
    # hessian of a function that uses vmap
    h = wb.hessian(lambda v: wb.vmap(lambda s: s ** 3)(v).sum())(x)
    np.testing.assert_allclose(h, np.diag(6 * x))


def test_vmap_keyword_arguments_are_not_mapped():
    xs = rng.standard_normal((4, 3))
    out = wb.vmap(lambda x, scale=1.0: x.sum() * scale)(xs, scale=2.0)
    np.testing.assert_allclose(out, 2.0 * xs.sum(1))


def test_vmap_data_dependent_control_flow_is_right_and_warns():
    def branchy(x):
        if x.sum() > 0:
            return (x ** 2).sum()
        return x.sum()

    xs = rng.standard_normal((20, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = wb.vmap(wb.grad(branchy))(xs)
    expected = np.array([2 * x if x.sum() > 0 else np.ones(3) for x in xs])
    np.testing.assert_allclose(result, expected)
    assert any("different branches" in str(w.message) for w in caught)


def test_vmap_batched_integer_labels_are_mapped_one_by_one():
    xs = rng.standard_normal((4, 3))
    labels = np.array([0, 2, 1, 0])
    out = wb.vmap(lambda x, i: x[i] * 2.0)(xs, labels)
    np.testing.assert_allclose(out, 2 * xs[np.arange(4), labels])


def test_vmap_chunk_size_gives_the_same_result():
    xs = rng.standard_normal((10, 3))
    fn = lambda x: np.tanh(x) * x.sum()  # noqa: E731
    np.testing.assert_allclose(wb.vmap(fn, chunk_size=3)(xs), wb.vmap(fn)(xs))


@pytest.mark.parametrize("call,message", [
    (lambda: wb.vmap(lambda a, b: a + b)(np.ones((3, 2)), np.ones((4, 2))),
     "argument 0 has 3, argument 1 has 4"),
    (lambda: wb.vmap(lambda a: a, in_dims=None)(np.ones(3)), "at least one"),
    (lambda: wb.vmap(lambda a: a, in_dims=2)(np.ones(3)), "out of range"),
    (lambda: wb.vmap(lambda a, b: a, in_dims=(0,))(np.ones(3), np.ones(3)), "positional"),
    (lambda: wb.vmap(lambda a, n: a * n, in_dims=(0, 0))(np.ones(3), 2), "only arrays"),
    (lambda: wb.vmap(lambda a: a, in_dims=0.5)(np.ones(3)), "ints and None"),
])
def test_vmap_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_jacobian_shapes_and_pytrees():
    x = rng.standard_normal((2, 3))
    assert wb.jacrev(lambda a: a.sum(0))(x).shape == (3, 2, 3)
    jac = wb.jacrev(lambda p: p["a"] * p["b"].sum())({"a": np.ones(2), "b": np.ones(3)})
    assert set(jac) == {"a", "b"} and jac["a"].shape == (2, 2) and jac["b"].shape == (2, 3)
    both = wb.jacfwd(lambda a, b: a * b, argnums=(0, 1))(np.ones(2), np.full(2, 3.0))
    np.testing.assert_allclose(both[0], 3 * np.eye(2))
    np.testing.assert_allclose(both[1], np.eye(2))


def test_jacrev_has_aux():
    jac, aux = wb.jacrev(lambda x: (np.sin(x), x.sum()), has_aux=True)(np.zeros(2))
    np.testing.assert_allclose(jac, np.eye(2))
    assert float(aux) == 0.0


def test_vjp_errors_and_has_aux():
    out, vjp_fn, aux = wb.vjp(lambda x: (x ** 2, "note"), np.ones(2), has_aux=True)
    assert aux == "note"
    np.testing.assert_allclose(vjp_fn(np.ones(2))[0], [2.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        vjp_fn(np.ones(3))
    with pytest.raises(TypeError, match="tuples"):
        wb.jvp(np.sin, np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="shape"):
        wb.jvp(np.sin, (np.ones(2),), (np.ones(3),))


def test_rosenbrock_hessian_matches_closed_form():
    def rosen(x):
        return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()

    x = rng.standard_normal(6)
    n = x.size
    expected = np.zeros((n, n))
    for i in range(n - 1):
        expected[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        expected[i + 1, i + 1] += 200
        expected[i, i + 1] = expected[i + 1, i] = -400 * x[i]
    np.testing.assert_allclose(wb.hessian(rosen)(x), expected, rtol=1e-12)


def test_jax_agrees_on_hessian():
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    f = lambda x: (jax.numpy.sin(x) * x ** 2).sum()  # noqa: E731
    ours = wb.hessian(lambda x: (np.sin(x) * x ** 2).sum())(np.array([0.3, -1.2, 2.0]))
    np.testing.assert_allclose(ours, np.asarray(jax.hessian(f)(np.array([0.3, -1.2, 2.0]))),
                               rtol=1e-12)


def _versions(transformed) -> int:
    """How many times a transform's function was traced (distinct compiled versions)."""
    return len({id(e) for versions in transformed.__wb_staged__.cache.values() for e in versions})


def test_repeated_transform_requests_share_one_compiled_version():
    def f(x):
        return np.sin(x) * x

    xs = np.linspace(0.1, 1.0, 25)
    values = [float(wb.grad(f)(float(x))) for x in xs]
    np.testing.assert_allclose(values, np.sin(xs) + xs * np.cos(xs))
    assert _versions(wb.grad(f)) == 1
    assert wb.grad(f) is wb.grad(f, argnums=0)
    assert wb.grad(f) is not wb.grad(f, argnums=(0,))
    wb.hessian(f)(0.5)
    wb.hessian(f)(0.7)
    assert _versions(wb.hessian(f)) == 1


def test_vmap_broadcasts_outputs_that_do_not_depend_on_the_example(torch):
    ours = wb.vmap(lambda x: (np.ones(2), x.sum() * 0.0 + 1.0))(np.ones((3, 2)))
    ref = torch.func.vmap(lambda x: (torch.ones(2), x.sum() * 0.0 + 1.0))(torch.ones((3, 2)))
    for o, r in zip(ours, ref):
        np.testing.assert_allclose(o, r.numpy())
    with pytest.raises(TypeError, match="returned a str"):
        wb.vmap(lambda x: "label")(np.ones((3, 2)))
