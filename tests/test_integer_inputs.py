"""Integer arrays (class labels, indices) are inputs of array-level programs, not data baked in.

A training loop calls the gradient with new labels every step: the compiled version must serve
them without tracing again, and must never serve a result computed for other labels. Expected
values come from torch.func run live, or from the loss written out in numpy by hand.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import compiled_versions, require

import workbench as wb

RNG = np.random.default_rng(20261129)
W = RNG.normal(size=(5, 4))
X = RNG.normal(size=(12, 5))
BATCHES = [RNG.integers(0, 4, size=12) for _ in range(4)]


def softmax_ce(W, X, y):
    Z = X @ W
    Z = Z - Z.max(axis=1, keepdims=True)
    return -(Z - np.log(np.exp(Z).sum(axis=1, keepdims=True)))[np.arange(len(y)), y].mean()


def softmax_ce_grad_by_hand(W, X, y):
    Z = X @ W
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    return X.T @ (P - np.eye(W.shape[1])[y]) / len(y)


def test_new_labels_every_call_are_served_by_one_compiled_version(traces):
    g = wb.grad(softmax_ce)
    for y in BATCHES * 2:
        np.testing.assert_allclose(g(W, X, y), softmax_ce_grad_by_hand(W, X, y), rtol=1e-10)
    assert traces["n"] == 1
    (entry,) = compiled_versions(g)
    assert entry.array_level and entry.integer_inputs == (2,)


def test_labels_used_as_numbers_and_in_control_flow_follow_each_call(traces):
    def f(w, y):
        scale = 2.0 if y[0] == 0 else -1.0  # a branch on a label: a guard of the version
        return scale * np.sum(np.sin(w) * y)  # labels as numbers in the arithmetic

    g = wb.grad(f)
    w = np.linspace(0.1, 0.9, 3)
    for y in (np.array([0, 1, 2]), np.array([0, 5, 1]), np.array([3, 1, 2]), np.array([0, 2, 2])):
        expected = (2.0 if y[0] == 0 else -1.0) * np.cos(w) * y
        np.testing.assert_allclose(g(w, y), expected, rtol=1e-12)
    assert traces["n"] == 2  # one version per branch, each reused


def test_code_that_needs_concrete_labels_is_traced_per_labels_and_never_stale(traces):
    def f(w, y):
        return sum(w[int(k)] ** 2 for k in y.tolist())  # Python ints: the element level

    g = wb.grad(f)
    w = np.array([1.0, 2.0, 3.0])
    for y in (np.array([0, 1]), np.array([2, 2]), np.array([0, 1])):
        expected = np.zeros(3)
        np.add.at(expected, y, 2 * w[y])
        np.testing.assert_allclose(g(w, y), expected)
    assert traces["n"] == 2  # [0, 1] twice: its element-level version is reused
    assert not any(e.array_level for e in compiled_versions(g))


def test_an_integer_array_cannot_be_differentiated():
    with pytest.raises(wb.InputTypeError, match="integer dtype"):
        wb.grad(lambda y, w: np.sum(w * y))(np.array([1, 2]), np.ones(2))


def test_integer_results_keep_their_dtype():
    g = wb.grad(lambda w, y: (np.sum(w * y), y + 1), has_aux=True)
    for y in (np.array([1, 2, 3], dtype=np.int32), np.array([4, 0, 1], dtype=np.int32)):
        grad, aux = g(np.ones(3), y)
        assert aux.dtype == np.int32 and aux.tolist() == (y + 1).tolist()
        np.testing.assert_array_equal(grad, y)
    assert len(compiled_versions(g)) == 1


def test_torch_classifier_with_new_labels_every_step():
    torch = require("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4)).double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    x = torch.tensor(X)

    def loss(p, x, y):
        return torch.nn.functional.cross_entropy(torch.func.functional_call(model, p, (x,)), y)

    g = wb.grad(loss)
    for y in BATCHES:
        labels = torch.tensor(y)
        expected = torch.func.grad(loss)(params, x, labels)
        ours = g(params, x, labels)
        for k in params:
            torch.testing.assert_close(ours[k], expected[k])
    assert len(compiled_versions(g)) == 1
    with pytest.raises(wb.OperationIndexError, match="out of bounds for 4 classes"):
        g(params, x, torch.tensor(np.where(np.arange(12) == 3, 7, BATCHES[0])))
    for k, v in g(params, x, torch.tensor(BATCHES[1])).items():  # the version still serves
        torch.testing.assert_close(v, torch.func.grad(loss)(params, x, torch.tensor(BATCHES[1]))[k])


def test_per_sample_gradients_with_new_labels_every_call():
    torch = require("torch")
    torch.manual_seed(1)
    model = torch.nn.Linear(5, 4).double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    x = torch.tensor(X)

    def one(p, x, y):
        return torch.nn.functional.cross_entropy(
            torch.func.functional_call(model, p, (x.unsqueeze(0),)), y.unsqueeze(0))

    ours = wb.vmap(wb.grad(one), in_dims=(None, 0, 0))
    reference = torch.func.vmap(torch.func.grad(one), in_dims=(None, 0, 0))
    for y in BATCHES:
        labels = torch.tensor(y)
        expected = reference(params, x, labels)
        for k, v in ours(params, x, labels).items():
            torch.testing.assert_close(v, expected[k])
    assert len(compiled_versions(ours)) == 1


def test_a_label_out_of_range_on_a_cached_version_gets_the_traced_error():
    g = wb.grad(softmax_ce)
    g(W, X, BATCHES[0])
    bad = BATCHES[0].copy()
    bad[5] = 9
    with pytest.raises(IndexError, match="9"):
        g(W, X, bad)
    np.testing.assert_allclose(g(W, X, BATCHES[1]), softmax_ce_grad_by_hand(W, X, BATCHES[1]),
                               rtol=1e-10)


def test_a_function_that_changes_its_integer_argument_is_not_served_stale():
    def f(w, y):
        total = np.sum(w[y] ** 2)
        y[0] = (y[0] + 1) % 3  # changes the labels it read (element level: writes into arrays)
        return total

    g = wb.grad(f)
    w = np.array([1.0, 2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", wb.RetracingWarning)  # said once: it is traced each call
        for labels in ([0, 2], [1, 2], [0, 2], [1, 2], [2, 2]):
            y = np.array(labels)
            expected = np.zeros(3)
            np.add.at(expected, y, 2 * w[y])
            np.testing.assert_allclose(g(w, y), expected)
