"""The examples of the reference text (torch.func.grad's documentation), two ways.

* Verbatim torch form: the example text is run twice, once as written (torch.func) and once with
  only ``from torch.func import ...`` replaced by ``from workbench import ...``; both runs start
  from the same random seed, their asserts must hold, and their results must agree.
* numpy form: the same examples written with numpy and workbench, checked against closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import workbench as wb

# ----- the reference's examples, as written there -----
EXAMPLE_SIN = """
from torch.func import grad
x = torch.randn([])
cos_x = grad(lambda x: torch.sin(x))(x)
assert torch.allclose(cos_x, x.cos())
"""

EXAMPLE_SECOND_ORDER = """
from torch.func import grad
x = torch.randn([])
neg_sin_x = grad(grad(lambda x: torch.sin(x)))(x)
assert torch.allclose(neg_sin_x, -x.sin())
"""

EXAMPLE_PER_SAMPLE = """
from torch.func import grad, vmap
batch_size, feature_size = 3, 5

def model(weights, feature_vec):
    # Very simple linear model with activation
    assert feature_vec.dim() == 1
    return feature_vec.dot(weights).relu()

def compute_loss(weights, example, target):
    y = model(weights, example)
    return ((y - target) ** 2).mean()  # MSELoss

weights = torch.randn(feature_size, requires_grad=True)
examples = torch.randn(batch_size, feature_size)
targets = torch.randn(batch_size)
inputs = (weights, examples, targets)
grad_weight_per_example = vmap(grad(compute_loss), in_dims=(None, 0, 0))(*inputs)
"""

EXAMPLE_HAS_AUX = """
from torch.func import grad
def my_loss_func(y, y_pred):
    loss_per_sample = (0.5 * y_pred - y) ** 2
    loss = loss_per_sample.mean()
    return loss, (y_pred, loss_per_sample)

fn = grad(my_loss_func, argnums=(0, 1), has_aux=True)
y_true = torch.rand(4)
y_preds = torch.rand(4, requires_grad=True)
out = fn(y_true, y_preds)
"""

EXAMPLE_NO_GRAD = """
from torch.func import grad
x = torch.randn([])

def f(x):
    with torch.no_grad():
        c = x ** 2
    return x - c

case_1 = grad(f)(x)

with torch.no_grad():
    case_2 = grad(f)(x)
"""


def run_both(torch, text: str, seed: int = 0) -> tuple[dict, dict]:
    """Run ``text`` with torch.func and with workbench (only the import changed)."""
    ours = text.replace("from torch.func import", "from workbench import")
    assert ours.count("from workbench import") == 1 and ours.replace(
        "from workbench import", "from torch.func import") == text
    spaces = []
    for source in (text, ours):
        torch.manual_seed(seed)
        namespace = {"torch": torch}
        exec(compile(source, "<reference example>", "exec"), namespace)  # fixed text, not user input
        spaces.append(namespace)
    return spaces[0], spaces[1]


def assert_same(torch, got, want):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(torch, g, w)
        return
    assert isinstance(got, torch.Tensor)
    assert got.shape == want.shape and got.dtype == want.dtype
    torch.testing.assert_close(got, want.detach())


@pytest.fixture(params=["float64", "float32"])
def torch_dtype(request, torch):
    torch.set_default_dtype(getattr(torch, request.param))
    yield torch


# ----- verbatim torch form -----
def test_verbatim_sin(torch_dtype):
    torch = torch_dtype
    theirs, ours = run_both(torch, EXAMPLE_SIN)
    assert_same(torch, ours["cos_x"], theirs["cos_x"])


def test_verbatim_second_order(torch_dtype):
    torch = torch_dtype
    theirs, ours = run_both(torch, EXAMPLE_SECOND_ORDER)
    assert_same(torch, ours["neg_sin_x"], theirs["neg_sin_x"])


def test_verbatim_has_aux_and_argnums(torch_dtype):
    torch = torch_dtype
    theirs, ours = run_both(torch, EXAMPLE_HAS_AUX)
    # output is ((grads w.r.t y_true, grads w.r.t y_preds), (y_pred, loss_per_sample))
    (g_true, g_pred), (y_pred, per_sample) = ours["out"]
    assert_same(torch, ours["out"], theirs["out"])
    y, yp = theirs["y_true"], theirs["y_preds"].detach()
    torch.testing.assert_close(g_true, -2 * (0.5 * yp - y) / 4)
    torch.testing.assert_close(g_pred, (0.5 * yp - y) / 4)


def test_verbatim_no_grad_note(torch):
    theirs, ours = run_both(torch, EXAMPLE_NO_GRAD)
    assert_same(torch, ours["case_1"], theirs["case_1"])
    assert_same(torch, ours["case_2"], theirs["case_2"])
    assert float(ours["case_1"]) == 1.0 and float(ours["case_2"]) == 1.0


def test_verbatim_per_sample_gradients(torch_dtype):
    torch = torch_dtype
    theirs, ours = run_both(torch, EXAMPLE_PER_SAMPLE)
    got, want = ours["grad_weight_per_example"], theirs["grad_weight_per_example"]
    assert got.shape == (3, 5)
    assert_same(torch, got, want)


# ----- numpy form -----
def test_numpy_sin():
    from workbench import grad

    x = np.random.default_rng(0).standard_normal()
    cos_x = grad(lambda x: np.sin(x))(x)
    assert np.allclose(cos_x, np.cos(x))


def test_numpy_second_order():
    from workbench import grad

    x = np.random.default_rng(1).standard_normal()
    neg_sin_x = grad(grad(lambda x: np.sin(x)))(x)
    assert np.allclose(neg_sin_x, -np.sin(x))


def _per_sample_problem():
    rng = np.random.default_rng(2)
    batch_size, feature_size = 3, 5
    weights = rng.standard_normal(feature_size)
    examples = rng.standard_normal((batch_size, feature_size))
    targets = rng.standard_normal(batch_size)

    def model(weights, feature_vec):
        assert feature_vec.ndim == 1
        return wb.relu(np.dot(feature_vec, weights))

    def compute_loss(weights, example, target):
        y = model(weights, example)
        return ((y - target) ** 2).mean()

    z = examples @ weights  # closed form: 2 (relu(z) - t) relu'(z) x
    expected = (2 * (np.maximum(z, 0) - targets) * (z > 0))[:, None] * examples
    return compute_loss, (weights, examples, targets), expected


def test_numpy_per_sample_gradients_by_loop():
    compute_loss, (weights, examples, targets), expected = _per_sample_problem()
    g = wb.grad(compute_loss)
    per_example = np.stack([g(weights, e, t) for e, t in zip(examples, targets)])
    np.testing.assert_allclose(per_example, expected, rtol=1e-12)


def test_numpy_per_sample_gradients_with_vmap():
    compute_loss, inputs, expected = _per_sample_problem()
    got = wb.vmap(wb.grad(compute_loss), in_dims=(None, 0, 0))(*inputs)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_numpy_has_aux_and_argnums():
    from workbench import grad

    def my_loss_func(y, y_pred):
        loss_per_sample = (0.5 * y_pred - y) ** 2
        loss = loss_per_sample.mean()
        return loss, (y_pred, loss_per_sample)

    fn = grad(my_loss_func, argnums=(0, 1), has_aux=True)
    rng = np.random.default_rng(3)
    y_true, y_preds = rng.random(4), rng.random(4)
    (g_true, g_pred), (y_pred, per_sample) = fn(y_true, y_preds)
    residual = 0.5 * y_preds - y_true
    np.testing.assert_allclose(g_true, -2 * residual / 4)
    np.testing.assert_allclose(g_pred, residual / 4)
    np.testing.assert_array_equal(y_pred, y_preds)
    np.testing.assert_allclose(per_sample, residual ** 2)


def test_numpy_no_grad_note():
    from workbench import grad

    def f(x):
        with wb.no_grad():
            c = x ** 2
        return x - c

    x = 0.7
    assert float(grad(f)(x)) == 1.0          # case 1: the inner no_grad is respected
    with wb.no_grad():
        assert float(grad(f)(x)) == 1.0      # case 2: the outer one is not
        assert math.isclose(float(grad(np.sin)(x)), math.cos(x))
