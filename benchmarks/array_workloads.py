"""The workloads of ``bench_arrays`` (issue 12): each loss written once per library, a
hand-written numpy gradient, and its inputs at benchmark size and at a tiny size for tests.

The numpy losses are plain numpy (``np.*`` and ``@``): workbench traces them as they are. The
JAX and torch losses are the same mathematics written the way those libraries' users write them
(``jax.nn.logsumexp``, ``torch.relu``). Every gradient is with respect to the first argument
(a dict of parameters, or an array). Per-sample workloads are ``vmap(grad(loss), in_dims=(None,
0, 0))``: the loss is written for one example.

>>> import numpy as np
>>> w = WORKLOADS["linreg100"]
>>> args = w.make_args(np.random.default_rng(0), **w.tiny)
>>> [a.shape for a in args]
[(3,), (6, 3), (6,)]
>>> np.allclose(w.hand_grad(*args), 2 / 6 * args[1].T @ (args[1] @ args[0] - args[2]))
True
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# ----- the losses, in numpy (traced by workbench) -----


def mlp784_loss(params, x, y_onehot):
    """Softmax cross-entropy of a relu MLP (log-sum-exp made stable by the row maximum)."""
    h = np.maximum(x @ params["W1"] + params["b1"], 0.0)
    z = h @ params["W2"] + params["b2"]
    m = z.max(axis=1, keepdims=True)
    log_norm = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    return -((z - log_norm) * y_onehot).sum(axis=1).mean()


def mlp784_label_loss(params, x, label):
    """The same MLP's softmax cross-entropy for one example and its integer class label."""
    h = np.maximum(x @ params["W1"] + params["b1"], 0.0)
    z = h @ params["W2"] + params["b2"]
    m = z.max()
    return -(z[label] - m - np.log(np.exp(z - m).sum()))


def linreg_loss(w, X, y):
    """Mean squared error of a linear model."""
    return ((X @ w - y) ** 2).mean()


def mlp_tanh_loss(params, x, y):
    """Mean squared error of a two-hidden-layer tanh MLP (also written for one example)."""
    h = np.tanh(x @ params["W1"] + params["b1"])
    h = np.tanh(h @ params["W2"] + params["b2"])
    return ((h @ params["W3"] + params["b3"] - y) ** 2).mean()


def reference_loss(weights, example, target):
    """The reference text's ``compute_loss``: relu of a dot product, squared error."""
    return ((np.maximum(example @ weights, 0.0) - target) ** 2).mean()


def sin_loss(x):
    return np.sin(x)


def deep_mlp_loss(layers, x, y):
    """``len(layers)`` tanh layers, then the mean squared error (the depth series)."""
    h = x
    for W, b in layers:
        h = np.tanh(h @ W + b)
    return ((h - y) ** 2).mean()


NUMPY_LOSSES = {"mlp784": mlp784_loss, "mlp784_label": mlp784_label_loss, "linreg": linreg_loss,
                "mlp_tanh": mlp_tanh_loss, "reference": reference_loss, "sin": sin_loss,
                "deep_mlp": deep_mlp_loss}


def jax_losses() -> dict[str, Callable]:
    """The same losses in JAX (importing JAX and switching it to float64)."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def mlp784(params, x, y_onehot):
        h = jax.nn.relu(x @ params["W1"] + params["b1"])
        z = h @ params["W2"] + params["b2"]
        return -((z - jax.nn.logsumexp(z, axis=1, keepdims=True)) * y_onehot).sum(axis=1).mean()

    def mlp784_label(params, x, label):
        h = jax.nn.relu(x @ params["W1"] + params["b1"])
        return -jax.nn.log_softmax(h @ params["W2"] + params["b2"])[label]

    def linreg(w, X, y):
        return ((X @ w - y) ** 2).mean()

    def mlp_tanh(params, x, y):
        h = jnp.tanh(x @ params["W1"] + params["b1"])
        h = jnp.tanh(h @ params["W2"] + params["b2"])
        return ((h @ params["W3"] + params["b3"] - y) ** 2).mean()

    def reference(weights, example, target):
        return ((jax.nn.relu(example @ weights) - target) ** 2).mean()

    def sin(x):
        return jnp.sin(x)

    def deep_mlp(layers, x, y):
        h = x
        for W, b in layers:
            h = jnp.tanh(h @ W + b)
        return ((h - y) ** 2).mean()

    return {"mlp784": mlp784, "mlp784_label": mlp784_label, "linreg": linreg, "mlp_tanh": mlp_tanh,
            "reference": reference, "sin": sin, "deep_mlp": deep_mlp}


def torch_losses() -> dict[str, Callable]:
    """The same losses in torch (the reference's ``compute_loss`` verbatim)."""
    import torch

    def mlp784(params, x, y_onehot):
        h = torch.relu(x @ params["W1"] + params["b1"])
        z = h @ params["W2"] + params["b2"]
        return -((z - torch.logsumexp(z, dim=1, keepdim=True)) * y_onehot).sum(dim=1).mean()

    def mlp784_label(params, x, label):  # as torch.func's per-sample-gradients tutorial
        h = torch.relu(x @ params["W1"] + params["b1"])
        z = h @ params["W2"] + params["b2"]
        return torch.nn.functional.cross_entropy(z[None], label[None])

    def linreg(w, X, y):
        return ((X @ w - y) ** 2).mean()

    def mlp_tanh(params, x, y):
        h = torch.tanh(x @ params["W1"] + params["b1"])
        h = torch.tanh(h @ params["W2"] + params["b2"])
        return ((h @ params["W3"] + params["b3"] - y) ** 2).mean()

    def reference(weights, example, target):
        return ((example.dot(weights).relu() - target) ** 2).mean()

    def sin(x):
        return torch.sin(x)

    def deep_mlp(layers, x, y):
        h = x
        for W, b in layers:
            h = torch.tanh(h @ W + b)
        return ((h - y) ** 2).mean()

    return {"mlp784": mlp784, "mlp784_label": mlp784_label, "linreg": linreg, "mlp_tanh": mlp_tanh,
            "reference": reference, "sin": sin, "deep_mlp": deep_mlp}


# ----- hand-written gradients (closed forms, derived by hand) -----


def mlp784_grad(params, x, y_onehot):
    """d loss / d params: the softmax's gradient is (softmax - one-hot) / batch."""
    a = x @ params["W1"] + params["b1"]
    h = np.maximum(a, 0.0)
    z = h @ params["W2"] + params["b2"]
    s = np.exp(z - z.max(axis=1, keepdims=True))
    dz = (s / s.sum(axis=1, keepdims=True) - y_onehot) / x.shape[0]
    da = (dz @ params["W2"].T) * (a > 0)
    return {"W1": x.T @ da, "b1": da.sum(axis=0), "W2": h.T @ dz, "b2": dz.sum(axis=0)}


def mlp784_label_per_sample_grad(params, x, labels):
    """One gradient per example: d z = softmax(z) - one-hot(label), then outer products."""
    a = x @ params["W1"] + params["b1"]
    h = np.maximum(a, 0.0)
    z = h @ params["W2"] + params["b2"]
    s = np.exp(z - z.max(axis=1, keepdims=True))
    dz = s / s.sum(axis=1, keepdims=True)
    dz[np.arange(len(labels)), labels] -= 1.0
    da = (dz @ params["W2"].T) * (a > 0)
    outer = "bi,bj->bij"
    return {"W1": np.einsum(outer, x, da), "b1": da, "W2": np.einsum(outer, h, dz), "b2": dz}


def linreg_grad(w, X, y):
    return (2.0 / X.shape[0]) * (X.T @ (X @ w - y))


def _mlp_tanh_backward(params, x, y, scale):
    """Per-example adjoints of the tanh MLP: (h1, dz1, h2, dz2, dout) with a batch axis."""
    h1 = np.tanh(x @ params["W1"] + params["b1"])
    h2 = np.tanh(h1 @ params["W2"] + params["b2"])
    dout = scale * (h2 @ params["W3"] + params["b3"] - y)
    dz2 = (dout @ params["W3"].T) * (1.0 - h2 ** 2)
    dz1 = (dz2 @ params["W2"].T) * (1.0 - h1 ** 2)
    return h1, dz1, h2, dz2, dout


def mlp_tanh_grad(params, x, y):
    """d mean((out - y)^2) / d params over the whole batch."""
    h1, dz1, h2, dz2, dout = _mlp_tanh_backward(params, x, y, 2.0 / y.size)
    return {"W1": x.T @ dz1, "b1": dz1.sum(axis=0), "W2": h1.T @ dz2, "b2": dz2.sum(axis=0),
            "W3": h2.T @ dout, "b3": dout.sum(axis=0)}


def mlp_tanh_per_sample_grad(params, x, y):
    """One gradient per example (rows of x, y): outer products instead of sums over the batch."""
    h1, dz1, h2, dz2, dout = _mlp_tanh_backward(params, x, y, 2.0 / y.shape[1])
    outer = "bi,bj->bij"
    return {"W1": np.einsum(outer, x, dz1), "b1": dz1, "W2": np.einsum(outer, h1, dz2), "b2": dz2,
            "W3": np.einsum(outer, h2, dout), "b3": dout}


def reference_per_sample_grad(weights, examples, targets):
    """d (relu(x_i . w) - t_i)^2 / d w = 2 (relu(z_i) - t_i) [z_i > 0] x_i for every row i."""
    z = examples @ weights
    return (2.0 * (np.maximum(z, 0.0) - targets) * (z > 0))[:, None] * examples


def sin_grad(x):
    return np.cos(x)


def deep_mlp_grad(layers, x, y):
    hs = [x]
    for W, b in layers:
        hs.append(np.tanh(hs[-1] @ W + b))
    dh = 2.0 / y.size * (hs[-1] - y)
    grads = []
    for (W, _), h_in, h_out in zip(reversed(layers), reversed(hs[:-1]), reversed(hs[1:])):
        dz = dh * (1.0 - h_out ** 2)
        grads.append((h_in.T @ dz, dz.sum(axis=0)))
        dh = dz @ W.T
    return tuple(reversed(grads))


# ----- inputs -----


def _dense(rng, n_in, n_out):
    """A layer's weights scaled by 1/sqrt(fan-in), so activations stay O(1) at any width."""
    return rng.standard_normal((n_in, n_out)) / np.sqrt(n_in), 0.1 * rng.standard_normal(n_out)


def mlp784_args(rng, batch, n_in, hidden, classes):
    (W1, b1), (W2, b2) = _dense(rng, n_in, hidden), _dense(rng, hidden, classes)
    x = rng.standard_normal((batch, n_in))
    y = np.eye(classes)[rng.integers(0, classes, batch)]
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, x, y


def mlp784_label_args(rng, batch, n_in, hidden, classes):
    params, x, y_onehot = mlp784_args(rng, batch, n_in, hidden, classes)
    return params, x, y_onehot.argmax(axis=1)  # int64 class labels


def linreg_args(rng, n, d):
    return rng.standard_normal(d) / np.sqrt(d), rng.standard_normal((n, d)), rng.standard_normal(n)


def mlp_tanh_args(rng, batch, n_in, hidden):
    (W1, b1), (W2, b2), (W3, b3) = (_dense(rng, n_in, hidden), _dense(rng, hidden, hidden),
                                    _dense(rng, hidden, 1))
    params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3}
    return params, rng.standard_normal((batch, n_in)), rng.standard_normal((batch, 1))


def reference_args(rng, batch, features):
    return (rng.standard_normal(features), rng.standard_normal((batch, features)),
            rng.standard_normal(batch))


def sin_args(rng):
    return (0.3,)


def deep_mlp_args(rng, depth, width, batch):
    layers = tuple(_dense(rng, width, width) for _ in range(depth))
    return layers, rng.standard_normal((batch, width)), rng.standard_normal((batch, width))


# ----- the workloads -----


@dataclass(frozen=True)
class Workload:
    """One benchmark: a loss (by key into the loss tables), its gradient by hand, its inputs."""

    name: str  # selection key on the command line
    title: str
    loss: str  # key of NUMPY_LOSSES / jax_losses() / torch_losses()
    hand_grad: Callable
    make_args: Callable  # make_args(rng, **sizes) -> numpy arguments (a tuple)
    sizes: dict[str, int] = field(default_factory=dict)
    tiny: dict[str, int] = field(default_factory=dict)
    per_sample: bool = False  # vmap(grad(loss), in_dims=(None, 0, 0))


WORKLOADS = {w.name: w for w in [
    Workload("mlp784", "MLP 784-128-10 relu + softmax CE, batch 64", "mlp784", mlp784_grad,
             mlp784_args, dict(batch=64, n_in=784, hidden=128, classes=10),
             dict(batch=4, n_in=7, hidden=5, classes=3)),
    Workload("mlp784-labels-vmap", "per-sample grads, MLP 784-128-10, int labels, batch 64",
             "mlp784_label", mlp784_label_per_sample_grad, mlp784_label_args,
             dict(batch=64, n_in=784, hidden=128, classes=10),
             dict(batch=4, n_in=7, hidden=5, classes=3), per_sample=True),
    Workload("linreg1000", "linear regression MSE, X 1000×1000", "linreg", linreg_grad,
             linreg_args, dict(n=1000, d=1000), dict(n=6, d=4)),
    Workload("linreg100", "linear regression MSE, X 1000×100", "linreg", linreg_grad,
             linreg_args, dict(n=1000, d=100), dict(n=6, d=3)),
    Workload("mlp64", "MLP 10-64-64-1 tanh MSE, batch 32", "mlp_tanh", mlp_tanh_grad,
             mlp_tanh_args, dict(batch=32, n_in=10, hidden=64), dict(batch=5, n_in=3, hidden=4)),
    Workload("mlp64-vmap", "per-sample grads, MLP 10-64-64-1, batch 256", "mlp_tanh",
             mlp_tanh_per_sample_grad, mlp_tanh_args, dict(batch=256, n_in=10, hidden=64),
             dict(batch=5, n_in=3, hidden=4), per_sample=True),
    Workload("reference-vmap", "per-sample grads, reference model (1000, 5)", "reference",
             reference_per_sample_grad, reference_args, dict(batch=1000, features=5),
             dict(batch=7, features=5), per_sample=True),
    Workload("sin", "grad(sin) at a Python float", "sin", sin_grad, sin_args),
]}


def deep_mlp_workload(depth: int, width: int = 32, batch: int = 16) -> Workload:
    """The depth series: ``depth`` tanh layers of ``width``, batch ``batch``."""
    return Workload(f"depth{depth}", f"tanh MLP, {depth} layers of {width}, batch {batch}",
                    "deep_mlp", deep_mlp_grad, deep_mlp_args,
                    dict(depth=depth, width=width, batch=batch), dict(depth=depth, width=3, batch=2))


# ----- helpers shared by the benchmark and its test -----


def fresh(func: types.FunctionType) -> types.FunctionType:
    """A new function object with the same code, so no transform's per-function cache knows it."""
    return types.FunctionType(func.__code__, func.__globals__, func.__name__, func.__defaults__,
                              func.__closure__)


def tree_map(fn: Callable, tree: Any) -> Any:
    """``fn`` applied to every leaf of nested dicts, tuples and lists."""
    if isinstance(tree, dict):
        return {k: tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, tuple | list):
        return type(tree)(tree_map(fn, v) for v in tree)
    return fn(tree)


def leaves(tree: Any) -> list[Any]:
    """The leaves in a fixed order (dicts by sorted key: JAX returns dicts key-sorted)."""
    if isinstance(tree, dict):
        return [leaf for k in sorted(tree) for leaf in leaves(tree[k])]
    if isinstance(tree, tuple | list):
        return [leaf for v in tree for leaf in leaves(v)]
    return [tree]


def assert_same_gradient(name: str, got: Any, expected: Any, rtol: float = 1e-7,
                         atol: float = 1e-10) -> None:
    """Raise AssertionError unless ``got`` has ``expected``'s leaves (any library's arrays)."""
    got_leaves, expected_leaves = leaves(got), leaves(expected)
    assert len(got_leaves) == len(expected_leaves), f"{name}: {len(got_leaves)} leaves, " \
        f"expected {len(expected_leaves)}"
    for i, (g, e) in enumerate(zip(got_leaves, expected_leaves)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=rtol, atol=atol,
                                   err_msg=f"{name}: gradient leaf {i} differs from torch.func's")


class _CountingArray(np.ndarray):
    """An ndarray that counts the ufunc calls (``@``, ``+``, ``np.tanh``, reductions) made on it."""

    calls = 0

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _CountingArray.calls += 1
        inputs = tuple(np.asarray(i) if isinstance(i, _CountingArray) else i for i in inputs)
        out = kwargs.get("out")
        if out:
            kwargs["out"] = tuple(np.asarray(o) for o in out)  # views: results land in ``out``
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out:
            return out[0] if len(out) == 1 else out
        return np.asarray(result).view(_CountingArray)


def count_array_ops(func: Callable, *args) -> int:
    """How many numpy array operations (ufunc calls) one forward call of ``func`` makes.

    >>> count_array_ops(lambda w, x: np.tanh(x @ w + 1.0), np.ones((3, 2)), np.ones((4, 3)))
    3
    """
    _CountingArray.calls = 0
    func(*tree_map(lambda a: np.asarray(a).view(_CountingArray), args))
    return _CountingArray.calls
