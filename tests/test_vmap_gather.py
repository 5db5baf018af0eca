"""vmap over integer labels at array level: per-sample gradients of a gather by each example's own
label (torch.func's per-sample-gradients tutorial), checked against torch.func.vmap(grad) run live
with int64 labels, and the batching rule of ``index``/``index_add`` against a numpy loop over the
examples. Every case asserts that the array level compiled it (no element-level fallback).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import compiled_versions, require

import workbench as wb
from workbench.arrays import rules
from workbench.arrays.batching import Batch
from workbench.arrays.graph import ArrayGraph
from workbench.errors import IndexOutOfRangeError

torch = require("torch")
tfunc = require("torch.func")
F = torch.nn.functional

RNG = np.random.default_rng(11)


def array_level_only(transformed) -> None:
    versions = compiled_versions(transformed)
    assert versions and all(v.array_level for v in versions)
    batched = getattr(transformed, "__wb_batched__", None)
    staged = batched.array_staged if batched is not None else transformed.__wb_staged__
    assert not staged.element_only


def assert_trees_close(got, expected, rtol=1e-10, atol=1e-12):
    if isinstance(expected, dict):
        assert set(got) == set(expected)
        for k in expected:
            assert_trees_close(got[k], expected[k], rtol, atol)
        return
    if isinstance(expected, (tuple, list)):
        for a, b in zip(got, expected, strict=True):
            assert_trees_close(a, b, rtol, atol)
        return
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, torch.Tensor) and got.dtype == expected.dtype
        got, expected = got.numpy(), expected.numpy()
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


# ----- the batching rule itself, against a loop over the examples -----
S = ("s", None, None, None)
# (template, x's per-example shape, index arrays' per-example shapes)
TEMPLATES = [
    ((("a", 0),), (5,), [()]),
    ((("a", 0),), (5, 3), [(4,)]),
    ((("a", 0), ("a", 1)), (5, 3), [(4,), (4,)]),
    ((S, ("a", 0)), (4, 5), [(2, 3)]),
    ((("a", 0), S), (5, 4), [(3,)]),
    ((("i", 1), S, ("a", 0)), (3, 4, 5), [(2,)]),  # separated: numpy puts the index dims first
    ((S, ("i", 0), ("a", 0)), (4, 3, 5), [(2,)]),
    ((("a", 0), ("n",), ("a", 1)), (5, 6), [(2,), (3, 2)]),
    ((S, ("a", 0), ("e",), ("a", 1)), (3, 5, 6), [(2,), (2,)]),
    ((("e",), ("a", 0)), (2, 3, 5), [(4,)]),
    ((("n",), ("a", 0), ("s", 1, None, None)), (5, 4), [(2, 2)]),
    ((("a", 0), ("s", 0, 3, 2), ("a", 1)), (5, 4, 6), [(3,), (1,)]),
]


def _index_case(template, x_shape, array_shapes, x_batched, batched_arrays, op, n=3):
    g = ArrayGraph()
    batch = Batch(g, {})
    size_of = x_shape
    arrays_b = [RNG.integers(-size_of[0], size_of[0], size=(n,) + s) for s in array_shapes]
    arrays_b = _fit_to_dims(template, x_shape, arrays_b)
    arrays = []
    for a, batched in zip(arrays_b, batched_arrays):
        if batched:
            arrays.append(batch.placeholder(g.const(a)))
        else:
            arrays.append(g.const(a[0]))
    per_example = [a if b else np.broadcast_to(a[:1], a.shape) for a, b in
                   zip(arrays_b, batched_arrays)]
    if op == "index":
        xb = RNG.normal(size=(n,) + x_shape)
        if x_batched:
            x = batch.placeholder(g.input(xb, "x"))
        else:
            xb = np.broadcast_to(xb[:1], xb.shape)
            x = g.input(xb[0], "x")
        node = rules.index(g, x, template, arrays)
        expected = np.stack([xb[k][_numpy_index(template, [a[k] for a in per_example])]
                             for k in range(n)])
    else:
        out_shape = np.shape(np.empty(x_shape)[_numpy_index(template, [a[0] for a in arrays_b])])
        ctb = RNG.normal(size=(n,) + out_shape)
        if x_batched:
            ct = batch.placeholder(g.input(ctb, "ct"))
        else:
            ctb = np.broadcast_to(ctb[:1], ctb.shape)
            ct = g.input(ctb[0], "ct")
        node = rules.index_add(g, ct, template, arrays, x_shape)
        expected = np.zeros((n,) + x_shape)
        for k in range(n):
            np.add.at(expected[k], _numpy_index(template, [a[k] for a in per_example]), ctb[k])
    if not (x_batched or any(batched_arrays)):
        return None, None
    (out,) = batch.emit([node])
    return g.values[out], expected


def _fit_to_dims(template, x_shape, arrays):
    """Integer arrays valid for the dims they index (negative ones included: numpy wraps)."""
    consumed = sum(item[0] in "sia" for item in template)
    dim, out = 0, list(arrays)
    for item in template:
        if item[0] == "e":
            dim += len(x_shape) - consumed
        elif item[0] == "a":
            n = x_shape[dim]
            out[item[1]] = RNG.integers(-n, n, size=arrays[item[1]].shape)
            dim += 1
        elif item[0] in "si":
            dim += 1
    return out


def _numpy_index(template, arrays):
    parts = []
    for item in template:
        tag = item[0]
        if tag == "s":
            parts.append(slice(*item[1:]))
        elif tag == "i":
            parts.append(item[1])
        elif tag == "a":
            parts.append(arrays[item[1]])
        else:
            parts.append({"n": None, "e": Ellipsis}[tag])
    return tuple(parts)


@pytest.mark.parametrize("op", ["index", "index_add"])
@pytest.mark.parametrize("case", TEMPLATES, ids=lambda c: repr(c[0]))
def test_index_batching_rule_matches_a_loop(case, op):
    template, x_shape, array_shapes = case
    for x_batched in (True, False):
        for batched_arrays in itertools.product((True, False), repeat=len(array_shapes)):
            got, expected = _index_case(template, x_shape, array_shapes, x_batched,
                                        batched_arrays, op)
            if got is None:
                continue
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-14,
                                       err_msg=f"x batched {x_batched}, arrays {batched_arrays}")


# ----- torch: per-sample gradients with class labels -----
def _mlp(dtype):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                               torch.nn.Linear(8, 3)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_per_sample_gradients_of_an_mlp_with_cross_entropy(dtype):
    model = _mlp(dtype)
    params = {k: v.detach() for k, v in model.named_parameters()}
    x = torch.from_numpy(RNG.normal(size=(6, 4))).to(dtype)
    y = torch.tensor([0, 2, 1, 1, 0, 2])
    loss_fn = torch.nn.CrossEntropyLoss()

    def loss(p, x, y):
        return loss_fn(tfunc.functional_call(model, p, (x[None],)), y[None])

    expected = tfunc.vmap(tfunc.grad(loss), in_dims=(None, 0, 0))(params, x, y)
    per_sample = wb.vmap(wb.grad(loss), in_dims=(None, 0, 0))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=1e-6)
    for _ in range(2):  # the traced values, then the compiled program
        assert_trees_close(per_sample(params, x, y), expected, **tol)
    array_level_only(per_sample)
    other = torch.tensor([2, 2, 0, 1, 1, 0])  # other labels: a new version, still right
    assert_trees_close(per_sample(params, x, other),
                       tfunc.vmap(tfunc.grad(loss), in_dims=(None, 0, 0))(params, x, other), **tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_per_sample_gradients_of_a_1d_cnn(dtype):
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv1d(2, 3, kernel_size=3, padding=1), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(3 * 7, 4)).to(dtype)
    params = {k: v.detach() for k, v in model.named_parameters()}
    x = torch.from_numpy(RNG.normal(size=(5, 2, 7))).to(dtype)
    y = torch.tensor([3, 0, 1, 3, 2])

    def loss(p, x, y):
        return F.cross_entropy(tfunc.functional_call(model, p, (x[None],)), y[None])

    expected = tfunc.vmap(tfunc.grad(loss), in_dims=(None, 0, 0))(params, x, y)
    per_sample = wb.vmap(wb.grad(loss), in_dims=(None, 0, 0))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-5, atol=1e-6)
    for _ in range(2):
        assert_trees_close(per_sample(params, x, y), expected, **tol)
    array_level_only(per_sample)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_labels_equal_to_ignore_index_are_left_out_as_torch_does(reduction):
    x = torch.from_numpy(RNG.normal(size=(4, 3, 5)))
    y = torch.tensor([[0, -100, 4], [-100, -100, -100], [1, 2, 3], [2, 2, -100]])

    def loss(x, y):
        return F.cross_entropy(x, y, reduction=reduction).sum()

    expected = tfunc.vmap(tfunc.grad(loss))(x, y)
    per_row = wb.vmap(wb.grad(loss))
    assert_trees_close(per_row(x, y), expected)
    array_level_only(per_row)
    values = wb.vmap(loss)(x, y)  # the loss itself: nan where every sample is left out (mean)
    assert_trees_close(values, tfunc.vmap(loss)(x, y))


@pytest.mark.parametrize("bad", [3, -1, -2, 7])
def test_a_label_out_of_range_is_an_error_never_a_number(bad):
    model = _mlp(torch.float64)
    params = {k: v.detach() for k, v in model.named_parameters()}
    x = torch.from_numpy(RNG.normal(size=(4, 4)))

    def loss(p, x, y):
        return F.cross_entropy(tfunc.functional_call(model, p, (x[None],)), y[None])

    labels = torch.tensor([0, 1, bad, 2])
    with pytest.raises((IndexError, RuntimeError)):  # torch's own verdict
        tfunc.vmap(tfunc.grad(loss), in_dims=(None, 0, 0))(params, x, labels)
    per_sample = wb.vmap(wb.grad(loss), in_dims=(None, 0, 0))
    with pytest.raises(IndexOutOfRangeError, match="out of bounds for 3 classes"):
        per_sample(params, x, labels)
    per_sample(params, x, torch.tensor([0, 1, 2, 2]))  # good labels, then a bad one again
    with pytest.raises(IndexOutOfRangeError):
        per_sample(params, x, labels)
    with pytest.raises(IndexOutOfRangeError):  # without vmap too
        wb.grad(loss)(params, x[0], torch.tensor(bad))


# ----- numpy: a gather by a mapped label -----
W = RNG.normal(size=(4, 3))
XS = RNG.normal(size=(6, 4))
LABELS = np.array([0, 2, 1, 1, 0, 2])


def np_softmax_ce(w, x, y):
    z = x @ w
    return -(z - np.log(np.exp(z).sum()))[y]


def torch_softmax_ce(w, x, y):
    z = x @ w
    return -(z - torch.log(torch.exp(z).sum())).gather(0, y.reshape(1))[0]


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def test_numpy_softmax_cross_entropy_with_a_mapped_label():
    per_sample = wb.vmap(wb.grad(np_softmax_ce), in_dims=(None, 0, 0))
    expected = tfunc.vmap(tfunc.grad(torch_softmax_ce), in_dims=(None, 0, 0))(
        t(W), t(XS), t(LABELS))
    for _ in range(2):
        assert_trees_close(per_sample(W, XS, LABELS), expected.numpy())
    array_level_only(per_sample)


def test_numpy_rows_gathered_by_arange_and_a_mapped_label_vector():
    def loss(w, x, y):  # x: (n, 4) per example, y: (n,) labels
        z = x @ w
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(y)), y].mean()

    def torch_loss(w, x, y):
        z = x @ w
        logp = z - torch.log(torch.exp(z).sum(dim=1, keepdim=True))
        return -logp.gather(1, y[:, None])[:, 0].mean()

    xs = RNG.normal(size=(5, 3, 4))
    ys = RNG.integers(0, 3, size=(5, 3))
    per_batch = wb.vmap(wb.grad(loss), in_dims=(None, 0, 0))
    expected = tfunc.vmap(tfunc.grad(torch_loss), in_dims=(None, 0, 0))(t(W), t(xs), t(ys))
    assert_trees_close(per_batch(W, xs, ys), expected.numpy())
    array_level_only(per_batch)


def test_take_along_axis_with_a_mapped_index():
    def loss(w, x, y):
        z = np.tanh(x @ w)  # (n, 3)
        return np.take_along_axis(z, y[:, None], axis=1).sum()

    def torch_loss(w, x, y):
        return torch.tanh(x @ w).gather(1, y[:, None]).sum()

    xs = RNG.normal(size=(5, 3, 4))
    ys = RNG.integers(0, 3, size=(5, 3))
    per_batch = wb.vmap(wb.grad(loss), in_dims=(None, 0, 0))
    expected = tfunc.vmap(tfunc.grad(torch_loss), in_dims=(None, 0, 0))(t(W), t(xs), t(ys))
    assert_trees_close(per_batch(W, xs, ys), expected.numpy())
    array_level_only(per_batch)


def test_in_dims_labels_at_0_and_inputs_at_1():
    xs_t = np.ascontiguousarray(XS.T)  # examples along axis 1
    per_sample = wb.vmap(wb.grad(np_softmax_ce), in_dims=(None, 1, 0))
    expected = tfunc.vmap(tfunc.grad(torch_softmax_ce), in_dims=(None, 1, 0))(
        t(W), t(xs_t), t(LABELS))
    assert_trees_close(per_sample(W, xs_t, LABELS), expected.numpy())
    labels_2d = np.stack([LABELS, LABELS[::-1]])  # labels along axis 1 of a (2, 6) array

    def two(w, x, y):
        return np_softmax_ce(w, x, y[0]) + 2.0 * np_softmax_ce(w, x, y[1])

    def torch_two(w, x, y):
        return torch_softmax_ce(w, x, y[0]) + 2.0 * torch_softmax_ce(w, x, y[1])

    per_sample = wb.vmap(wb.grad(two), in_dims=(None, 1, 1))
    expected = tfunc.vmap(tfunc.grad(torch_two), in_dims=(None, 1, 1))(
        t(W), t(xs_t), t(labels_2d))
    assert_trees_close(per_sample(W, xs_t, labels_2d), expected.numpy())
    array_level_only(per_sample)


def test_shared_labels_and_mapped_inputs():
    """Labels not mapped (in_dims None) index the same class in every example."""
    per_sample = wb.vmap(wb.grad(np_softmax_ce), in_dims=(None, 0, None))
    label = np.array(2)
    expected = tfunc.vmap(tfunc.grad(torch_softmax_ce), in_dims=(None, 0, None))(
        t(W), t(XS), t(label))
    assert_trees_close(per_sample(W, XS, label), expected.numpy())
    array_level_only(per_sample)


def test_vmap_of_vmap_with_labels_mapped_twice():
    xs = RNG.normal(size=(3, 4, 4))
    ys = RNG.integers(0, 3, size=(3, 4))
    inner = (None, 0, 0)
    nested = wb.vmap(wb.vmap(wb.grad(np_softmax_ce), in_dims=inner), in_dims=inner)
    expected = tfunc.vmap(tfunc.vmap(tfunc.grad(torch_softmax_ce), in_dims=inner),
                          in_dims=inner)(t(W), t(xs), t(ys))
    for _ in range(2):
        assert_trees_close(nested(W, xs, ys), expected.numpy())
    array_level_only(nested)


def test_vmap_of_vmap_of_cross_entropy_checks_every_label():
    x = torch.from_numpy(RNG.normal(size=(2, 3, 4)))
    y = torch.tensor([[0, 1, 3], [2, 1, 0]])

    def loss(x, y):
        return F.cross_entropy(x[None], y[None])

    nested = wb.vmap(wb.vmap(wb.grad(loss)))
    assert_trees_close(nested(x, y), tfunc.vmap(tfunc.vmap(tfunc.grad(loss)))(x, y))
    array_level_only(nested)
    with pytest.raises(IndexOutOfRangeError):
        nested(x, torch.tensor([[0, 1, 3], [2, 4, 0]]))  # the second row's second label


def test_grad_and_jacrev_of_a_vmapped_gather():
    def per_example(w, x, y):
        return np_softmax_ce(w, x, y)

    def total(w, x, y):
        return wb.vmap(per_example, in_dims=(None, 0, 0))(w, x, y).sum()

    def torch_total(w, x, y):
        return tfunc.vmap(torch_softmax_ce, in_dims=(None, 0, 0))(w, x, y).sum()

    g = wb.grad(total)
    assert_trees_close(g(W, XS, LABELS), tfunc.grad(torch_total)(t(W), t(XS), t(LABELS)).numpy())
    array_level_only(g)
    jac = wb.jacrev(lambda w, x, y: wb.vmap(per_example, in_dims=(None, 0, 0))(w, x, y))
    expected = tfunc.jacrev(lambda w, x, y: tfunc.vmap(torch_softmax_ce, in_dims=(None, 0, 0))(
        w, x, y))(t(W), t(XS), t(LABELS))
    assert_trees_close(jac(W, XS, LABELS), expected.numpy())
    array_level_only(jac)


def test_a_numpy_label_out_of_range_is_numpys_index_error():
    """numpy semantics for numpy code: a negative label wraps (as numpy does, checked above by
    the loop test), one past the end is numpy's IndexError, never a number."""
    per_sample = wb.vmap(wb.grad(np_softmax_ce), in_dims=(None, 0, 0))
    with pytest.raises(IndexError):
        per_sample(W, XS, np.array([0, 2, 3, 1, 0, 2]))


def test_torch_gather_with_mapped_indices_and_its_range_check():
    def loss(w, x, y):
        return torch.tanh(x @ w).gather(1, y[:, None]).sum()

    xs = t(RNG.normal(size=(5, 3, 4)))
    ys = torch.from_numpy(RNG.integers(0, 3, size=(5, 3)))
    per_batch = wb.vmap(wb.grad(loss), in_dims=(None, 0, 0))
    expected = tfunc.vmap(tfunc.grad(loss), in_dims=(None, 0, 0))(t(W), xs, ys)
    assert_trees_close(per_batch(t(W), xs, ys), expected)
    array_level_only(per_batch)
    bad = ys.clone()
    bad[3, 1] = -1  # numpy would wrap it; torch refuses
    with pytest.raises(RuntimeError):
        tfunc.vmap(tfunc.grad(loss), in_dims=(None, 0, 0))(t(W), xs, bad)
    with pytest.raises(IndexOutOfRangeError, match="out of bounds"):
        per_batch(t(W), xs, bad)


def test_cross_entropy_of_one_sample_with_a_0d_label_and_ignore_index_in_range():
    x = torch.from_numpy(RNG.normal(size=(4, 5)))

    def one(x, y):  # (C,) logits and a 0-d label
        return F.cross_entropy(x, y)

    y = torch.tensor([1, 4, -100, 0])
    assert_trees_close(wb.vmap(wb.grad(one))(x, y), tfunc.vmap(tfunc.grad(one))(x, y))
    assert_trees_close(wb.vmap(one)(x, y), tfunc.vmap(one)(x, y))  # nan for the ignored one

    def ignoring_2(x, y):
        return F.cross_entropy(x[None], y[None], ignore_index=2)

    y = torch.tensor([1, 2, 2, 0])
    per_sample = wb.vmap(wb.grad(ignoring_2))
    assert_trees_close(per_sample(x, y), tfunc.vmap(tfunc.grad(ignoring_2))(x, y))
    array_level_only(per_sample)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_concrete_labels_with_ignored_samples_without_vmap(reduction):
    x = torch.from_numpy(RNG.normal(size=(4, 5)))
    for y in (torch.tensor([1, 4, -100, 0]), torch.tensor([-100] * 4)):
        def loss(x, y=y):
            return F.cross_entropy(x, y, reduction=reduction).sum()

        grad = wb.grad(loss)
        assert_trees_close(grad(x), tfunc.grad(loss)(x))
        array_level_only(grad)
        assert_trees_close(wb.grad_and_value(loss)(x)[1], loss(x))  # nan if all are left out


def test_an_integer_and_an_array_separated_by_a_slice_under_vmap():
    """x[0, :, idx]: numpy counts the 0 as an advanced index, so the two are separated and
    their dim goes first (main's rule looked at the arrays alone: a silently transposed result,
    of the same shape here)."""
    xs = RNG.normal(size=(5, 3, 4, 6))
    idx = np.array([0, 2])

    def f(x):
        return np.sin(x[0, :, idx])

    mapped = wb.vmap(f)
    expected = np.stack([f(x) for x in xs])
    for _ in range(2):
        np.testing.assert_allclose(mapped(xs), expected, rtol=1e-15)
    array_level_only(mapped)
    grads = wb.vmap(wb.grad(lambda x: f(x).sum()))(xs)
    expected = np.zeros_like(xs)
    expected[:, 0][..., idx] = np.cos(xs[:, 0][..., idx])
    np.testing.assert_allclose(grads, expected, rtol=1e-15)
