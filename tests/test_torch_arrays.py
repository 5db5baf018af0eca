"""torch tensors at array level: wb.grad and wb.vmap(wb.grad) of torch code against torch.func run
live, in float64 and float32, and the compiled version is array-level (one node per array op).

Each function is written once in torch style and run by both libraries. Every case is called twice:
the first answer comes from the values computed while tracing, the second from the generated
numpy program. What the array level does not implement (torch.max(x, dim)...) must reach the
element level, never give an answer of its own.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import compiled_versions, require

import workbench as wb

torch = require("torch")
tfunc = require("torch.func")
F = torch.nn.functional

RNG = np.random.default_rng(7)


def rand(*shape, low=-1.0, high=1.0):
    return torch.from_numpy(RNG.uniform(low, high, size=shape))


X = rand(3, 4)
POS = rand(3, 4, low=0.2, high=2.0)
W = rand(5, 4)
B = rand(5)
C34_64 = rand(3, 4)
C12_64 = rand(12)
X3 = rand(2, 3, 4)
SQUARE = rand(3, 3)
TIES = torch.tensor([[0.5, 0.9, 0.9, -0.2], [0.3, 0.3, 0.3, 0.3], [1.0, -1.0, 0.0, 1.0]],
                    dtype=torch.float64)
TARGETS = torch.tensor([2, 0, 3])
REGRESSION_64 = rand(3, 5)
CONV_X, CONV_W, CONV_B = rand(2, 3, 9), rand(4, 3, 3), rand(4)
ARANGE = torch.arange(24.0, dtype=torch.float64).reshape(4, 3, 2)

def catalogue(dtype=torch.float64) -> dict:
    """name -> (function, args, argnums), every function returning a scalar; the constants the
    functions capture have ``dtype`` (torch refuses to multiply matrices of different dtypes)."""
    C34, C12, REGRESSION = (c.to(dtype) for c in (C34_64, C12_64, REGRESSION_64))  # noqa: N806
    return {
        "elementwise functions": (lambda x: torch.sin(x).sum() + torch.exp(x).mean() + torch.tanh(x).sum()
                                  + torch.relu(x).sum() + torch.sigmoid(3 * x).sum(), (X,), 0),
        "elementwise methods": (lambda x: x.cos().sum() + x.abs().mul(x).sum() + x.pow(3).sum()
                                + x.square().mean() + x.neg().exp().sum() + x.relu().sum(), (X,), 0),
        "sqrt log rsqrt": (lambda x: (x.sqrt() + torch.log(x) + torch.rsqrt(x)).sum(), (POS,), 0),
        "add alpha div": (lambda x, y: x.add(y, alpha=2).sum() + torch.div(x, y + 3).sum(),
                          (X, POS), (0, 1)),
        "matmul @": (lambda x, w: (x @ w.T).tanh().sum() + torch.matmul(x, w.T).sum(), (X, W), (0, 1)),
        "mm mv constant left": (lambda x: torch.mm(x, x.t()).sum() + torch.mv(x, C12[:4]).sum()
                                + (C34.T @ x).sum(), (X,), 0),
        "sum dim keepdim": (lambda x: (x.sum(dim=1, keepdim=True) * x).sum() + torch.sum(x, 0).pow(2).sum()
                            + x.sum(1).sin().sum() + x.sum((0, 1)), (X,), 0),
        "mean dim": (lambda x: (x.mean(1) ** 2).sum() + torch.mean(x, dim=0, keepdim=True).exp().sum()
                     + x.mean(), (X,), 0),
        "amax amin": (lambda x: torch.amax(x, 1).sum() + x.amax(dim=0, keepdim=True).pow(2).sum()
                      + torch.amin(x, dim=(0, 1)), (X,), 0),
        "amax ties": (lambda x: torch.amax(x, 1).sum() + (x * x.amax()).sum(), (TIES,), 0),
        "max min whole and pairwise": (lambda x: x.max() + torch.min(x) * 2
                                       + torch.max(x, torch.zeros_like(x)).sum(), (TIES,), 0),
        "logsumexp": (lambda x: torch.logsumexp(x, 1).sum() + x.logsumexp(dim=0, keepdim=True).pow(2).sum(),
                      (X,), 0),
        "softmax log_softmax": (lambda x: (torch.softmax(x, 1) * C34).sum() + F.softmax(x, dim=0)[0].sum()
                                + (F.log_softmax(x, dim=1) * C34).sum() + x.log_softmax(-1)[:, 1].sum(),
                                (X,), 0),
        "where": (lambda x: torch.where(x > 0, x ** 2, -x).sum() + x.where(x < 0.3, 0.5 * x).sum(), (X,), 0),
        "clamp": (lambda x: torch.clamp(x, -0.5, 0.5).sum() + x.clamp(min=0.1).pow(2).sum()
                  + x.clip(max=0.2).sum(), (X,), 0),
        "var std (unbiased by default)": (lambda x: x.var() + x.std(dim=1).sum()
                                          + torch.var(x, 0, unbiased=False).sum()
                                          + x.var(dim=1, correction=0).sum() + torch.std(x), (X,), 0),
        "reshape view flatten": (lambda x: (x.reshape(4, 3) @ x).sum() + (x.view(-1) * C12).sum()
                                 + (x.flatten() * C12).pow(2).sum() + x.view(2, 6).sin().sum(), (X,), 0),
        "permute transpose t": (lambda x: (x.permute(1, 0) @ x).sum() + (x.transpose(0, 1) * C34.T).sum()
                                + (x.t() @ C34).pow(2).sum(), (X,), 0),
        "transpose of a square matrix": (lambda x: (x.transpose(0, 1)[0] * C34[0, :3]).sum()
                                         + (x.transpose(1, 0) @ C34).pow(2).sum(), (SQUARE,), 0),
        "3-d transpose permute": (lambda x: (x.transpose(0, 2) * ARANGE.to(dtype)).sum()
                                  + x.permute(2, 0, 1).sin()[1].sum() + x.sum(dim=(0, 2)).pow(2).sum(),
                                  (X3,), 0),
        "unsqueeze squeeze": (lambda x: (x.unsqueeze(0) * x.unsqueeze(1)).sum()
                              + x.unsqueeze(2).squeeze(2).pow(2).sum() + x.squeeze(0).sin().sum()
                              + torch.unsqueeze(x, -1).sum(), (X,), 0),
        "cat stack": (lambda x: (torch.cat([x, x ** 2, C34], dim=1).sin()).sum()
                      + (torch.stack([x, x.sin()], 0) * 2).pow(2).sum() + torch.cat((x, x), 0).mean(),
                      (X,), 0),
        "indexing": (lambda x: x[0].sum() + x[:, 1:3].pow(2).sum() + x[torch.tensor([0, 2])].sin().sum()
                     + x[[0, 2], [1, 3]].sum() + x[-1, ::2].exp().sum(), (X,), 0),
        "F.linear relu tanh": (lambda x, w, b: torch.tanh(F.relu(F.linear(x, w, b))).sum()
                               + F.linear(x, w).sum(), (X, W, B), (0, 1, 2)),
        "mse_loss": (lambda x, w, b: F.mse_loss(F.linear(x, w, b), REGRESSION)
                     + F.mse_loss(x, C34, reduction="sum"), (X, W, B), (0, 1, 2)),
        "cross_entropy": (lambda x, w: F.cross_entropy(x, TARGETS)
                          + F.cross_entropy(F.linear(x, w), torch.tensor([4, 1, 0]), reduction="sum"),
                          (X, W), (0, 1)),
        "cross_entropy of one sample": (lambda x: F.cross_entropy(x[0], torch.tensor(1)), (X,), 0),
        "conv1d": (lambda x, w, b: F.conv1d(x, w, b).tanh().sum()
                   + F.conv1d(x, w, stride=2, padding=2, dilation=2).pow(2).sum()
                   + F.conv1d(x[0], w, b, padding="same").sin().sum(),
                   (CONV_X, CONV_W, CONV_B), (0, 1, 2)),
        "conv1d of the input": (lambda x: F.conv1d(x, CONV_W.to(x.dtype), padding=1).relu().sum(),
                                (CONV_X,), 0),
        "cross_entropy probabilities": (lambda x: F.cross_entropy(x, torch.softmax(C34, 1))
                                        + F.cross_entropy(x[1], C34[0].exp(), reduction="sum")
                                        + F.cross_entropy(x, C34.abs(), reduction="none")[1],
                                        (X,), 0),
    }


CATALOGUE = catalogue()


def as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def check_close(ours, theirs, dtype):
    for o, t in zip(as_tuple(ours), as_tuple(theirs), strict=True):
        assert isinstance(o, torch.Tensor) and o.dtype == dtype, (type(o), getattr(o, "dtype", None))
        tol = 1e-10 if dtype == torch.float64 else 2e-5
        torch.testing.assert_close(o, t.to(dtype), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(CATALOGUE))
def test_grad_matches_torch_func_at_array_level(name, dtype):
    f, args, argnums = catalogue(dtype)[name]
    args = tuple(a.to(dtype) for a in args)
    # float32: torch computes in float32; we compute in float64 and round once, so compare
    # with the float64 gradient of torch (rounded), which is the more exact of the two.
    expected = tfunc.grad(catalogue()[name][0], argnums=argnums)(*(a.double() for a in args))
    tfunc.grad(f, argnums=argnums)(*args)  # the program is valid torch in this dtype
    grad = wb.grad(f, argnums=argnums)
    for _ in range(2):  # traced values, then the compiled program
        check_close(grad(*args), expected, dtype)
    found = compiled_versions(grad)
    assert found and all(e.array_level for e in found), name


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", [n for n, (_, args, argnums) in CATALOGUE.items() if argnums == 0])
def test_vmap_grad_matches_torch_func_at_array_level(name, dtype):
    f, (x,), _ = catalogue(dtype)[name]
    xs = torch.stack([x, x * 0.5 + 0.25, x * 1.5]).to(dtype)
    expected = tfunc.vmap(tfunc.grad(catalogue()[name][0]))(xs.double())
    per_sample = wb.vmap(wb.grad(f))
    for _ in range(2):
        check_close(per_sample(xs), expected, dtype)
    found = compiled_versions(per_sample)
    assert found and all(e.array_level for e in found), name


def test_per_sample_gradients_of_a_linear_model_with_targets_mapped():
    def loss(w, b, x, y):
        return F.mse_loss(F.linear(x, w, b), y)

    xs, ys = rand(6, 4), rand(6, 5)
    expected = tfunc.vmap(tfunc.grad(loss, argnums=(0, 1)), in_dims=(None, None, 0, 0))(W, B, xs, ys)
    ours = wb.vmap(wb.grad(loss, argnums=(0, 1)), in_dims=(None, None, 0, 0))
    for _ in range(2):
        check_close(ours(W, B, xs, ys), expected, torch.float64)
    assert all(e.array_level for e in compiled_versions(ours))


@pytest.mark.parametrize("program", [
    lambda x: x.max(1).values.sum(),  # (values, indices): not traced at array level
    lambda x: torch.max(x, dim=0)[0].sum(),
    lambda x: x.argmax(),
])
def test_max_with_dim_is_left_to_the_element_level(program):
    # The element level refuses these with a clear error; the array level must not answer.
    with pytest.raises(wb.UnsupportedOperationError):
        wb.grad(program)(X)


def test_unpacking_max_dim_never_gives_the_values_array():
    def f(x):
        values, indices = x.max(1)  # a 2-row tensor: unpacking values would also "work"
        return values.sum()

    with pytest.raises(wb.UnsupportedOperationError):
        wb.grad(f)(X[:2])


def test_numpy_inputs_keep_numpy_meanings():
    x = X.numpy()
    grad = wb.grad(lambda x: x.var() + x.std(1).sum())
    n = x.size
    expected = 2 * (x - x.mean()) / n  # numpy's ddof=0, not torch's
    rows = x - x.mean(1, keepdims=True)
    expected = expected + rows / (x.shape[1] * x.std(1, keepdims=True))
    np.testing.assert_allclose(grad(x), expected, rtol=1e-10)
    assert all(e.array_level for e in compiled_versions(grad))


@pytest.mark.parametrize("other", [torch.tensor(2.0, dtype=torch.float64),
                                   torch.full((4,), 2.0, dtype=torch.float64),
                                   torch.tensor(2.0, dtype=torch.float32)], ids=str)
def test_mixed_float_dtypes_follow_torch_promotion(other):
    # a 0-d float64 tensor does not widen a float32 matrix in torch (numpy would); a float64
    # vector does. The values of x * other tell the dtype torch gives.
    x = X.float()

    def f(x):
        return (x * other, torch.sub(other, x), x.exp() * other)

    expected = f(x)
    ours = wb.vmap(f)(x)  # a function with array outputs: their dtype is the traced one
    for o, e in zip(ours, expected, strict=True):
        assert o.dtype == e.dtype
        torch.testing.assert_close(o, e)


@pytest.mark.parametrize("name", [n for n, (_, args, argnums) in CATALOGUE.items() if argnums == 0])
def test_hessian_matches_torch_func_at_array_level(name):
    f, (x,), _ = CATALOGUE[name]
    hessian = wb.hessian(f)
    expected = tfunc.hessian(f)(x)
    for _ in range(2):
        torch.testing.assert_close(hessian(x), expected, rtol=1e-9, atol=1e-9)
    assert all(e.array_level for e in compiled_versions(hessian))


# ----- torch modules through torch.func.functional_call -----
def mlp(dtype):
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 6),
                                torch.nn.ReLU(), torch.nn.Linear(6, 3))
    return model.to(dtype)


def params_of(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def classification_loss(model):
    criterion = torch.nn.CrossEntropyLoss()

    def loss(params, x, y):
        return criterion(tfunc.functional_call(model, params, (x,)), y)

    return loss


def regression_loss(model):
    criterion = torch.nn.MSELoss()

    def loss(params, x, t):
        return criterion(tfunc.functional_call(model, params, (x,)), t)

    return loss


XB = rand(7, 4)
YB = torch.tensor([0, 2, 1, 1, 0, 2, 2])
TB = rand(7, 3)


def check_dicts(ours, theirs, dtype):
    assert set(ours) == set(theirs)
    for k in theirs:
        check_close(ours[k], theirs[k], dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("make_loss", [classification_loss, regression_loss])
def test_functional_call_mlp_grad_matches_torch_func(make_loss, dtype):
    model = mlp(dtype)
    params = params_of(model)
    target = YB if make_loss is classification_loss else TB.to(dtype)
    # the expected gradient: torch.func on a float64 copy (we compute in float64, round once)
    model64 = mlp(torch.float64)
    expected = tfunc.grad(make_loss(model64))(params_of(model64), XB, target.double()
                                                if target.is_floating_point() else target)
    grad = wb.grad(make_loss(model))
    for _ in range(2):
        check_dicts(grad(params, XB.to(dtype), target), expected, dtype)
    assert all(e.array_level for e in compiled_versions(grad))
    # and torch itself in this dtype agrees (loosely in float32)
    theirs = tfunc.grad(make_loss(model))(params, XB.to(dtype), target)
    for k in theirs:
        torch.testing.assert_close(grad(params, XB.to(dtype), target)[k], theirs[k])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("make_loss", [classification_loss, regression_loss])
def test_functional_call_per_sample_gradients_match_torch_func(make_loss, dtype):
    model, model64 = mlp(dtype), mlp(torch.float64)
    params = params_of(model)
    # mapped targets are traced values: class probabilities (one-hot), not indices
    target = (F.one_hot(YB, 3) if make_loss is classification_loss else TB).to(dtype)

    def per_sample(loss):
        def one(params, x, t):  # one sample as a batch of one, as in torch.func's tutorial
            return loss(params, x.unsqueeze(0), t.unsqueeze(0))
        return one

    dims = (None, 0, 0)
    expected = tfunc.vmap(tfunc.grad(per_sample(make_loss(model64))), in_dims=dims)(
        params_of(model64), XB, target.double())
    ours = wb.vmap(wb.grad(per_sample(make_loss(model))), in_dims=dims)
    for _ in range(2):
        check_dicts(ours(params, XB.to(dtype), target), expected, dtype)
    assert all(e.array_level for e in compiled_versions(ours))


def test_functional_call_per_sample_gradients_are_array_level_with_float_targets():
    model = mlp(torch.float64)
    params = params_of(model)
    loss = regression_loss(model)
    ours = wb.vmap(wb.grad(loss), in_dims=(None, 0, 0))
    expected = tfunc.vmap(tfunc.grad(loss), in_dims=(None, 0, 0))(params, XB, TB)
    check_dicts(ours(params, XB, TB), expected, torch.float64)
    assert all(e.array_level for e in compiled_versions(ours))


def test_functional_call_of_one_linear_layer_and_its_input():
    layer = torch.nn.Linear(4, 3).double()
    params = params_of(layer)

    def loss(params, x):
        return torch.nn.functional.mse_loss(tfunc.functional_call(layer, params, (x,)), TB[:5])

    x = XB[:5]
    expected = tfunc.grad(loss, argnums=(0, 1))(params, x)
    grad = wb.grad(loss, argnums=(0, 1))
    ours = grad(params, x)
    check_dicts(ours[0], expected[0], torch.float64)
    check_close(ours[1], expected[1], torch.float64)
    assert all(e.array_level for e in compiled_versions(grad))


class Scaled(torch.nn.Module):
    """A linear layer whose output is multiplied by a buffer."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3).double()
        self.register_buffer("scale", torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))

    def forward(self, x):
        return self.linear(x) * self.scale


def test_buffers_and_parameters_left_out_are_captured_state_never_stale():
    model = Scaled()
    only_weight = {"linear.weight": model.linear.weight.detach().clone()}

    def loss(params, x):
        return tfunc.functional_call(model, params, (x,)).pow(2).mean()

    grad = wb.grad(loss)
    for _ in range(3):
        expected = tfunc.grad(loss)(only_weight, XB)
        check_dicts(grad(only_weight, XB), expected, torch.float64)
        with torch.no_grad():  # in-place updates of the state the function reads
            model.scale.mul_(2.0)
            model.linear.bias.add_(0.5)
    assert all(e.array_level for e in compiled_versions(grad))


def cnn(dtype):
    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv1d(4, 3, 3, stride=2), torch.nn.Tanh(),
                                torch.nn.Flatten(), torch.nn.Linear(12, 3))
    return model.to(dtype)


CNN_X = rand(5, 2, 10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_functional_call_1d_cnn_grad_and_per_sample_grads_match_torch_func(dtype):
    model, model64 = cnn(dtype), cnn(torch.float64)
    params = params_of(model)
    onehot = F.one_hot(YB[:5], 3).to(dtype)

    def make(model):
        criterion = torch.nn.CrossEntropyLoss()

        def loss(params, x, t):
            return criterion(tfunc.functional_call(model, params, (x,)), t)

        def one(params, x, t):
            return loss(params, x.unsqueeze(0), t.unsqueeze(0))

        return loss, one

    loss, one = make(model)
    loss64, one64 = make(model64)
    grad = wb.grad(loss)
    per_sample = wb.vmap(wb.grad(one), in_dims=(None, 0, 0))
    expected = tfunc.grad(loss64)(params_of(model64), CNN_X, onehot.double())
    expected_ps = tfunc.vmap(tfunc.grad(one64), in_dims=(None, 0, 0))(
        params_of(model64), CNN_X, onehot.double())
    for _ in range(2):
        check_dicts(grad(params, CNN_X.to(dtype), onehot), expected, dtype)
        check_dicts(per_sample(params, CNN_X.to(dtype), onehot), expected_ps, dtype)
    assert all(e.array_level for e in compiled_versions(grad) + compiled_versions(per_sample))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_outputs_computed_by_one_node_are_separate_arrays(kind):
    # d/da and d/db of sin(a + b) are one node: a cached call must not hand one array out twice
    # (an in-place update of one gradient would change the other)
    x = np.full(3, 0.5)
    if kind == "torch":
        x = torch.from_numpy(x)
    sin = torch.sin if kind == "torch" else np.sin
    grad = wb.grad(lambda p: sin(p["a"] + p["b"]).sum())
    for _ in range(3):
        g = grad({"a": x, "b": x})
        g["a"] += 1.0
        np.testing.assert_allclose(np.asarray(g["b"]), np.cos(1.0))


def test_module_the_array_level_refuses_gets_a_clear_error_not_torchs_type_error():
    # BatchNorm is not traced at array level; the element level's values are not tensors, which
    # torch's parameter swap refuses: the error must say so and name what is supported.
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)).double().eval()
    params = params_of(model)

    def loss(params, x):
        return tfunc.functional_call(model, params, (x,)).sum()

    for transform, x in ((wb.grad(loss), XB[:5]),
                         (wb.vmap(wb.grad(loss), in_dims=(None, 0)), XB[:5, None])):
        with pytest.raises(wb.UnsupportedOperationError, match=r"batch_norm.*nn\.Linear"):
            transform(params, x)
