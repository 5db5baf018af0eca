"""Per-sample gradients and Hessians: workbench against torch.func, jax.jit and hand-written numpy.

    taskset -c 0 .venv/bin/python -m benchmarks.bench_vmap

Per-sample gradients of the reference text's linear model (relu of a dot product, squared
error), float64 everywhere, at (batch, features) = (1000, 5), (100000, 5), (1000, 100),
(100000, 100); Hessian of Rosenbrock at n = 2, 10, 100, first call (trace + compile) and cached
call. Contenders are interleaved round by round; medians; ratios to hand-written numpy.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import (
    first_call_seconds,
    format_seconds,
    interleaved_medians,
    pin_to_one_core,
    table,
)

SIZES = [(1000, 5), (100000, 5), (1000, 100), (100000, 100)]


def per_sample_contenders(batch: int, features: int) -> dict:
    import jax
    import jax.numpy as jnp
    import torch
    from torch.func import grad as tgrad
    from torch.func import vmap as tvmap

    import workbench as wb

    rng = np.random.default_rng(0)
    w = rng.standard_normal(features)
    x = rng.standard_normal((batch, features))
    t = rng.standard_normal(batch)

    def loss_np(w, example, target):  # the reference's model: relu of a dot product
        return ((wb.relu(example @ w) - target) ** 2).mean()

    def loss_torch(w, example, target):
        return ((example.dot(w).relu() - target) ** 2).mean()

    def loss_jax(w, example, target):
        return ((jax.nn.relu(example @ w) - target) ** 2).mean()

    def hand(w, x, t):
        z = x @ w
        return (2.0 * (np.maximum(z, 0.0) - t) * (z > 0))[:, None] * x

    ours = wb.vmap(wb.grad(loss_np), in_dims=(None, 0, 0))
    theirs = tvmap(tgrad(loss_torch), in_dims=(None, 0, 0))
    jitted = jax.jit(jax.vmap(jax.grad(loss_jax), in_axes=(None, 0, 0)))
    tw, tx, tt = (torch.from_numpy(a) for a in (w, x, t))
    jw, jx, jt = (jnp.asarray(a) for a in (w, x, t))
    expected = hand(w, x, t)
    np.testing.assert_allclose(ours(w, x, t), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(theirs(tw, tx, tt).numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(jitted(jw, jx, jt)), expected, rtol=1e-8, atol=1e-10)
    return {
        "numpy (hand)": lambda: hand(w, x, t),
        "workbench": lambda: ours(w, x, t),
        "torch.func": lambda: theirs(tw, tx, tt),
        "jax.jit": lambda: jitted(jw, jx, jt).block_until_ready(),
    }


def rosenbrock_contenders(n: int) -> tuple[dict, dict]:
    import jax
    import jax.numpy as jnp
    import torch

    import workbench as wb

    rng = np.random.default_rng(1)
    x = rng.standard_normal(n)

    def rosen(v):
        return (100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2).sum()

    def rosen_jax(v):
        return jnp.sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2)

    def closed_form(v):
        h = np.zeros((v.size, v.size))
        i = np.arange(v.size - 1)
        h[i, i] += 1200 * v[:-1] ** 2 - 400 * v[1:] + 2
        h[i + 1, i + 1] += 200
        h[i, i + 1] = h[i + 1, i] = -400 * v[:-1]
        return h

    ours = wb.hessian(rosen)
    theirs = torch.func.hessian(rosen)
    jitted = jax.jit(jax.hessian(rosen_jax))
    tx, jx = torch.from_numpy(x), jnp.asarray(x)
    expected = closed_form(x)
    np.testing.assert_allclose(ours(x), expected, rtol=1e-10)
    np.testing.assert_allclose(theirs(tx).numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(jitted(jx)), expected, rtol=1e-8)
    cached = {
        "closed form": lambda: closed_form(x),
        "workbench": lambda: ours(x),
        "torch.func": lambda: theirs(tx),
        "jax.jit": lambda: jitted(jx).block_until_ready(),
    }
    first = {
        "workbench": lambda: wb.hessian(lambda v: rosen(v))(x),
        "torch.func": lambda: torch.func.hessian(lambda v: rosen(v))(tx),
        "jax.jit": lambda: jax.jit(jax.hessian(lambda v: rosen_jax(v)))(jx).block_until_ready(),
    }
    return cached, first


def main() -> None:
    pin_to_one_core()
    import jax

    jax.config.update("jax_enable_x64", True)
    rows = []
    for batch, features in SIZES:
        times = interleaved_medians(per_sample_contenders(batch, features), rounds=9,
                                    target_seconds=0.05)
        base = times["numpy (hand)"]
        rows.append([f"({batch}, {features})"] +
                    [f"{format_seconds(t)} ({t / base:.2f}x)" for t in times.values()])
    print("Per-sample gradients, vmap(grad(loss)), cached call; ratio to hand-written numpy\n")
    print(table(rows, ["(batch, features)", "numpy (hand)", "workbench", "torch.func", "jax.jit"]))

    rows = []
    for n in (2, 10, 100):
        cached, first = rosenbrock_contenders(n)
        times = interleaved_medians(cached, rounds=9)
        base = times["closed form"]
        firsts = {name: first_call_seconds(fn, repeats=3) for name, fn in first.items()}
        rows.append([str(n)] + [f"{format_seconds(t)} ({t / base:.2f}x)" for t in times.values()]
                    + [format_seconds(t) for t in firsts.values()])
    print("\nHessian of Rosenbrock: cached call (ratio to the closed form), then first call\n")
    print(table(rows, ["n", "closed form", "workbench", "torch.func", "jax.jit",
                       "1st: workbench", "1st: torch.func", "1st: jax.jit"]))


if __name__ == "__main__":
    main()
