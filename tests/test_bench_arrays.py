"""bench_arrays' workloads at tiny sizes: every contender's gradient agrees with torch.func's
(so the benchmark's hand-written gradients and per-library losses are the same mathematics),
and its helpers measure what they say. No test here looks at a time."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require

from benchmarks.array_workloads import (
    NUMPY_LOSSES,
    WORKLOADS,
    assert_same_gradient,
    count_array_ops,
    deep_mlp_workload,
)
from benchmarks.bench_arrays import CONTENDERS, fit_exponent, gradients, memory_in_subprocess

TINY_WORKLOADS = [*WORKLOADS.values(), deep_mlp_workload(1), deep_mlp_workload(3)]


@pytest.mark.parametrize("workload", TINY_WORKLOADS, ids=lambda w: w.name)
def test_every_contender_agrees_with_torch_func(workload):
    require("torch")
    require("jax")
    outputs = gradients(workload, workload.tiny)
    assert set(outputs) == set(CONTENDERS)
    expected = outputs["torch.func"]
    for name in CONTENDERS:
        assert not isinstance(outputs[name], str), f"{name}: {outputs[name]}"
        assert_same_gradient(name, outputs[name], expected)


def test_the_gradient_check_catches_a_wrong_leaf():
    w = WORKLOADS["mlp784"]
    grad = w.hand_grad(*w.make_args(np.random.default_rng(0), **w.tiny))
    wrong = dict(grad, b2=grad["b2"] * 1.001)
    with pytest.raises(AssertionError, match="leaf 3"):  # sorted keys: W1, W2, b1, b2
        assert_same_gradient("wrong", wrong, grad)


def test_per_sample_hand_gradient_is_the_stack_of_single_example_gradients():
    """The per-sample closed form against the whole-batch one, applied one row at a time."""
    w = WORKLOADS["mlp64-vmap"]
    params, x, y = w.make_args(np.random.default_rng(1), **w.tiny)
    per_sample = w.hand_grad(params, x, y)
    single = WORKLOADS["mlp64"].hand_grad
    for i in range(x.shape[0]):
        assert_same_gradient(f"row {i}", {k: v[i] for k, v in per_sample.items()},
                             single(params, x[i:i + 1], y[i:i + 1]), rtol=1e-12)


def test_count_array_ops_counts_forward_ufunc_calls():
    # per layer: matmul, add, tanh; then subtract, power, sum (add.reduce), divide (mean)
    for depth in (1, 4):
        w = deep_mlp_workload(depth)
        args = w.make_args(np.random.default_rng(0), **w.tiny)
        assert count_array_ops(NUMPY_LOSSES["deep_mlp"], *args) == 3 * depth + 4


def test_fit_exponent_recovers_a_power_law():
    sizes = [10.0, 20.0, 40.0, 80.0]
    assert fit_exponent(sizes, [3e-4 * n ** 1.5 for n in sizes]) == pytest.approx(1.5)
    assert fit_exponent([10.0], [1.0]) is None


def test_memory_worker_reports_a_peak_in_a_subprocess():
    peak, note = memory_in_subprocess("linreg100", timeout=120, tiny=True)
    assert note == ""
    assert isinstance(peak, int) and 0 <= peak < 2 ** 30
