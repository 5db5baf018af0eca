"""The numeric tape's gradient time against HIPS autograd and torch eager (and wb.grad for scale).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 .venv/bin/python -m benchmarks.bench_tape

Cases (float64 everywhere): ``grad(sin)`` at a scalar; the reference's per-sample linear-model
loss for one example (5 features, relu); ``my_loss_func`` of the reference (argnums=(0, 1) on
4-vectors; aux is dropped for autograd, which has no has_aux); an MLP 10 -> 64 -> 64 -> 1 with
tanh, batch 32, squared loss, gradient w.r.t. all six parameter arrays (a dict pytree).

Each call is a full gradient evaluation: the tape, autograd and torch eager record and walk back
every time; ``wb.grad`` is the cached compiled gradient, shown for scale only. Contenders are
interleaved round by round; medians; ratios to autograd ("1.50x" = 1.5 times autograd's time).
The issue's aim: the tape within 2x of autograd.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import interleaved_medians, pin_to_one_core, ratio_row, table

CONTENDERS = ["wb.tape", "autograd", "torch eager", "wb.grad (compiled)"]


def _libraries():
    import autograd
    import autograd.numpy as anp
    import torch

    import workbench as wb

    torch.set_default_dtype(torch.float64)
    return wb, autograd, anp, torch


def _torch_grad(torch, fn, *args):
    """Eager reverse mode: fresh leaves, forward, torch.autograd.grad."""

    def run():
        leaves = [a.detach().requires_grad_() for a in args]
        return torch.autograd.grad(fn(*leaves), leaves)

    return run


def sin_case():
    wb, autograd, anp, torch = _libraries()
    x = 0.3
    tx = torch.tensor(x)
    tape_grad, ag_grad, wb_grad = wb.tape.grad(np.sin), autograd.grad(anp.sin), wb.grad(np.sin)
    return {
        "wb.tape": lambda: tape_grad(x),
        "autograd": lambda: ag_grad(x),
        "torch eager": _torch_grad(torch, torch.sin, tx),
        "wb.grad (compiled)": lambda: wb_grad(x),
    }


def per_sample_case():
    wb, autograd, anp, torch = _libraries()
    rng = np.random.default_rng(0)
    w, example, target = rng.standard_normal(5), rng.standard_normal(5), 0.4

    def loss_np(weights, feature_vec, target):
        return ((wb.relu(np.dot(feature_vec, weights)) - target) ** 2).mean()

    def loss_ag(weights, feature_vec, target):
        return ((anp.maximum(anp.dot(feature_vec, weights), 0.0) - target) ** 2).mean()

    def loss_torch(weights):
        return ((torch.from_numpy(example).dot(weights).relu() - target) ** 2).mean()

    tape_grad, ag_grad, wb_grad = wb.tape.grad(loss_np), autograd.grad(loss_ag), wb.grad(loss_np)
    return {
        "wb.tape": lambda: tape_grad(w, example, target),
        "autograd": lambda: ag_grad(w, example, target),
        "torch eager": _torch_grad(torch, loss_torch, torch.from_numpy(w)),
        "wb.grad (compiled)": lambda: wb_grad(w, example, target),
    }


def my_loss_case():
    wb, autograd, anp, torch = _libraries()
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.random(4), rng.random(4)

    def my_loss_func(y, y_pred):
        loss_per_sample = (0.5 * y_pred - y) ** 2
        return loss_per_sample.mean(), (y_pred, loss_per_sample)

    def loss_ag(pair):
        y, y_pred = pair
        return anp.mean((0.5 * y_pred - y) ** 2)

    tape_grad = wb.tape.grad(my_loss_func, argnums=(0, 1), has_aux=True)
    wb_grad = wb.grad(my_loss_func, argnums=(0, 1), has_aux=True)
    ag_grad = autograd.grad(loss_ag)
    return {
        "wb.tape": lambda: tape_grad(y_true, y_pred),
        "autograd": lambda: ag_grad((y_true, y_pred)),
        "torch eager": _torch_grad(torch, lambda y, p: my_loss_func(y, p)[0],
                                   torch.from_numpy(y_true), torch.from_numpy(y_pred)),
        "wb.grad (compiled)": lambda: wb_grad(y_true, y_pred),
    }


def mlp_case(width: int = 64, batch: int = 32, features: int = 10):
    wb, autograd, anp, torch = _libraries()
    rng = np.random.default_rng(2)
    shapes = {"w1": (features, width), "b1": (width,), "w2": (width, width), "b2": (width,),
              "w3": (width, 1), "b3": (1,)}
    params = {k: rng.standard_normal(s) / np.sqrt(s[0]) for k, s in shapes.items()}
    x, y = rng.standard_normal((batch, features)), rng.standard_normal((batch, 1))

    def loss(p, x, y, tanh=np.tanh, mean=np.mean):
        h = tanh(x @ p["w1"] + p["b1"])
        h = tanh(h @ p["w2"] + p["b2"])
        return mean((h @ p["w3"] + p["b3"] - y) ** 2)

    tape_grad = wb.tape.grad(loss)
    ag_grad = autograd.grad(lambda p, x, y: loss(p, x, y, anp.tanh, anp.mean))
    keys = list(shapes)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def loss_torch(*leaves):
        return loss(dict(zip(keys, leaves)), tx, ty, torch.tanh, torch.mean)

    contenders = {
        "wb.tape": lambda: tape_grad(params, x, y),
        "autograd": lambda: ag_grad(params, x, y),
        "torch eager": _torch_grad(torch, loss_torch, *[torch.from_numpy(params[k]) for k in keys]),
    }
    return contenders


CASES = {
    "grad(sin), scalar": sin_case,
    "per-sample loss, 1 example": per_sample_case,
    "my_loss_func, has_aux": my_loss_case,
    "MLP 10-64-64-1 tanh, batch 32": mlp_case,
}


def main() -> None:
    pin_to_one_core()
    rows = []
    for name, make in CASES.items():
        contenders = make()
        times = interleaved_medians(contenders)
        row = ratio_row(name, times, "autograd")
        rows.append(row + [""] * (len(CONTENDERS) + 1 - len(row)))
    print(table(rows, ["case"] + CONTENDERS))
    print("\n(ratios to autograd; wb.grad (compiled) is the cached symbolic gradient, for scale. "
          "It is left out of the MLP row: tracing that MLP's scalar graph took 54 s for the first "
          "call and 0.18 s per cached call when measured once, off this table)")


if __name__ == "__main__":
    main()
