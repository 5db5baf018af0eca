"""Speed of the exported torch gradient of an array program against torch.func.grad.

``wb.export(loss, params, x, y, target="torch")`` prints the array-level program as torch
statements (a dict of parameters in, a dict of gradients out). This measures the exported
module's ``grad_<name>`` against ``torch.func.grad`` of the same torch function, both on torch
tensors, interleaved medians on one core; the exported gradient is first checked against
torch's. Workload: the MLP 784-128-10 (relu, softmax cross-entropy) of
``benchmarks.array_workloads``, batch 64, float64, as ``torch_losses()["mlp784"]``.

Run: ``taskset -c 0 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python -m
benchmarks.bench_export_torch``.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np

import workbench as wb
from benchmarks.array_workloads import WORKLOADS, torch_losses
from benchmarks.common import format_seconds, interleaved_medians, pin_to_one_core, table


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(tiny: bool = False) -> list[list[str]]:
    import torch

    w = WORKLOADS["mlp784"]
    params, x, y = w.make_args(np.random.default_rng(0), **(w.tiny if tiny else w.sizes))
    params = {k: torch.tensor(v) for k, v in params.items()}
    x, y = torch.tensor(x), torch.tensor(y)
    loss = torch_losses()["mlp784"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlp784.py"
        wb.export(loss, params, x, y, target="torch", path=path)
        exported = getattr(_load(path), f"grad_{loss.__name__}")
        reference = torch.func.grad(loss)
        got, expected = exported(params, x, y), reference(params, x, y)
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], rtol=1e-9, atol=1e-12)
        times = interleaved_medians({
            "exported": lambda: exported(params, x, y),
            "torch.func.grad": lambda: reference(params, x, y),
        }, rounds=3 if tiny else 15, target_seconds=0.002 if tiny else 0.02)
    return [[w.title, format_seconds(times["exported"]), format_seconds(times["torch.func.grad"]),
             f"{times['exported'] / times['torch.func.grad']:.2f}x"]]


def main() -> None:
    pin_to_one_core()
    print("### Exported torch gradient vs torch.func.grad (median per call)\n")
    print(table(measure(tiny="--tiny" in sys.argv),
                ["gradient of", "exported torch module", "torch.func.grad", "exported / torch"]))


if __name__ == "__main__":
    main()
