"""A training loop's gradient step: a new batch (inputs and integer class labels) on every call.

The cached-call workloads of ``bench_arrays`` call with the same arguments; a training loop
does not. Here every call takes the next of 32 pre-made batches, so a contender that keys its
compiled code on the labels' values would trace again each step. MLP 784-128-10, relu, softmax
cross-entropy, batch 64, float32 (what torch users train in) and float64:

- workbench on the numpy loss (``z[np.arange(n), y]``) and on the torch module through
  ``torch.func.functional_call`` (the module's parameters are fingerprinted on every call);
- jax.jit(jax.grad) of the same numpy-style loss, torch.func.grad of the functional_call loss,
  and the backward pass written by hand in numpy.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 \\
        /work/main/.venv/bin/python -m benchmarks.bench_training_step [--quick]

Interleaved medians per call, ratios to jax.jit. Every contender's gradient is checked against
torch.func's at the first batch before anything is timed.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from .common import interleaved_medians, pin_to_one_core, ratio_row, table

BATCH, N_BATCHES = 64, 32


def numpy_loss(params, x, y):
    w1, b1, w2, b2 = params
    z = np.maximum(x @ w1 + b1, 0.0) @ w2 + b2
    z = z - z.max(axis=1, keepdims=True)
    return -(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[np.arange(len(y)), y].mean()


def hand_grad(params, x, y):
    w1, b1, w2, b2 = params
    h_in = x @ w1 + b1
    h = np.maximum(h_in, 0.0)
    z = h @ w2 + b2
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    dz = p / len(y)
    dh = (dz @ w2.T) * (h_in > 0)
    return x.T @ dh, dh.sum(axis=0), h.T @ dz, dz.sum(axis=0)


def contenders(dtype: str):
    import jax
    import jax.numpy as jnp
    import torch

    import workbench as wb

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    np_dtype = np.dtype(dtype)
    params = tuple(a.astype(np_dtype) for a in (rng.normal(size=(784, 128)) * 0.05, np.zeros(128),
                                                rng.normal(size=(128, 10)) * 0.1, np.zeros(10)))
    batches = [(rng.normal(size=(BATCH, 784)).astype(np_dtype), rng.integers(0, 10, BATCH))
               for _ in range(N_BATCHES)]

    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    model = model.to(getattr(torch, dtype))
    t_params = {"0.weight": torch.tensor(params[0].T.copy()), "0.bias": torch.tensor(params[1]),
                "2.weight": torch.tensor(params[2].T.copy()), "2.bias": torch.tensor(params[3])}
    t_batches = [(torch.tensor(x), torch.tensor(y)) for x, y in batches]

    def torch_loss(p, x, y):
        return torch.nn.functional.cross_entropy(torch.func.functional_call(model, p, (x,)), y)

    def jax_loss(params, x, y):
        w1, b1, w2, b2 = params
        z = jnp.maximum(x @ w1 + b1, 0.0) @ w2 + b2
        return -jnp.mean(jax.nn.log_softmax(z, axis=1)[jnp.arange(y.shape[0]), y])

    j_params = tuple(jnp.asarray(a) for a in params)
    j_batches = [(jnp.asarray(x), jnp.asarray(y)) for x, y in batches]
    wb_numpy, wb_torch = wb.grad(numpy_loss), wb.grad(torch_loss)
    jax_grad, torch_grad = jax.jit(jax.grad(jax_loss)), torch.func.grad(torch_loss)

    def stepper(fn, args_of):
        counter = itertools.count()
        return lambda: fn(*args_of(next(counter) % N_BATCHES))

    runs = {
        "workbench numpy": stepper(wb_numpy, lambda k: (params, *batches[k])),
        "workbench torch module": stepper(wb_torch, lambda k: (t_params, *t_batches[k])),
        "jax.jit": stepper(lambda *a: jax.block_until_ready(jax_grad(*a)),
                           lambda k: (j_params, *j_batches[k])),
        "torch.func": stepper(torch_grad, lambda k: (t_params, *t_batches[k])),
        "hand numpy": stepper(hand_grad, lambda k: (params, *batches[k])),
    }
    reference = torch_grad(t_params, *t_batches[0])
    expected = [reference["0.weight"].T, reference["0.bias"], reference["2.weight"].T,
                reference["2.bias"]]
    tol = 1e-4 if dtype == "float32" else 1e-10
    for got in (wb_numpy(params, *batches[0]), jax_grad(j_params, *j_batches[0]),
                hand_grad(params, *batches[0])):
        for g, e in zip(got, expected):
            np.testing.assert_allclose(np.asarray(g), e.numpy(), rtol=tol, atol=tol)
    got = wb_torch(t_params, *t_batches[0])
    for k in t_params:
        np.testing.assert_allclose(got[k].numpy(), reference[k].numpy(), rtol=tol, atol=tol)
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args(argv)
    pin_to_one_core()
    rows, names = [], []
    for dtype in ("float32", "float64"):
        times = interleaved_medians(contenders(dtype), rounds=5 if args.quick else 15)
        names = list(times)
        rows.append(ratio_row(dtype, times, "jax.jit"))
    print(table(rows, ["dtype"] + names))


if __name__ == "__main__":
    main()
