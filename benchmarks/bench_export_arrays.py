"""Speed of the exported numpy gradient of array functions against hand-written numpy (issue 12).

``wb.export(f, *arrays)`` prints the array-level program: one numpy statement per array
operation. This measures the exported module's ``grad_<name>`` call against the hand-written
numpy gradient of ``benchmarks.array_workloads`` (and, for context, ``wb.grad``'s cached call of
the same function), interleaved medians on one core; every exported gradient is first checked
against the hand-written one. Before issue 12 the exported code was scalar Python, 1.2-7x
hand-written numpy on small problems and out of reach (minutes, gigabytes) at these sizes.

Run: ``taskset -c 0 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python -m
benchmarks.bench_export_arrays``.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import workbench as wb
from benchmarks.array_workloads import WORKLOADS, linreg_loss, mlp784_loss, mlp_tanh_loss
from benchmarks.common import format_seconds, interleaved_medians, pin_to_one_core, table


# The workloads' losses with the parameters as positional arrays (what an exported module takes).
def linreg(w, X, y):
    return linreg_loss(w, X, y)


def mlp_tanh(W1, b1, W2, b2, W3, b3, x, y):
    return mlp_tanh_loss({"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3}, x, y)


def mlp784(W1, b1, W2, b2, x, y_onehot):
    return mlp784_loss({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, x, y_onehot)


# (workload key, positional loss, names of the parameters in the workload's dict or None)
CASES: list[tuple[str, Callable, tuple[str, ...] | None]] = [
    ("linreg100", linreg, None),
    ("mlp64", mlp_tanh, ("W1", "b1", "W2", "b2", "W3", "b3")),
    ("mlp784", mlp784, ("W1", "b1", "W2", "b2")),
]


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _function_lines(source: str, name: str) -> int:
    node = next(n for n in ast.walk(ast.parse(source))
                if isinstance(n, ast.FunctionDef) and n.name == name)
    return node.end_lineno - node.lineno + 1


def measure(tiny: bool = False, rounds: int = 15) -> list[list[str]]:
    """One table row per workload (``tiny``: the workloads' test sizes, a few rounds)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for key, loss, names in CASES:
            w = WORKLOADS[key]
            args = w.make_args(np.random.default_rng(0), **(w.tiny if tiny else w.sizes))
            flat = args if names is None else tuple(args[0][n] for n in names) + tuple(args[1:])
            argnums = tuple(range(len(names))) if names else 0
            start = time.perf_counter()
            code = wb.export(loss, *flat, argnums=argnums, path=Path(tmp) / f"{key}.py")
            export_seconds = time.perf_counter() - start
            exported = getattr(_load(Path(tmp) / f"{key}.py"), f"grad_{loss.__name__}")
            hand = w.hand_grad(*args)
            expected = [hand] if names is None else [hand[n] for n in names]
            got = exported(*flat)
            for g, e in zip([got] if names is None else got, expected):
                np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-12)
            grad = wb.grad(loss, argnums=argnums)
            times = interleaved_medians({
                "exported": lambda e=exported, a=flat: e(*a),
                "hand": lambda h=w.hand_grad, a=args: h(*a),
                "wb.grad": lambda g=grad, a=flat: g(*a),
            }, rounds=3 if tiny else rounds, target_seconds=0.002 if tiny else 0.02)
            lines = _function_lines(code.source, f"grad_{loss.__name__}")
            rows.append([w.title, format_seconds(times["exported"]), format_seconds(times["hand"]),
                         f"{times['exported'] / times['hand']:.2f}x",
                         format_seconds(times["wb.grad"]),
                         f"{len(code.source.splitlines())} ({lines})",
                         f"{export_seconds:.2f} s"])
    return rows


def main() -> None:
    pin_to_one_core()
    print("### Exported numpy gradient of array functions vs hand-written numpy "
          "(median per call)\n")
    print(table(measure(tiny="--tiny" in sys.argv),
                ["gradient of", "exported module", "hand-written numpy", "exported / hand",
                 "wb.grad cached", "module lines (grad function)", "wb.export time"]))


if __name__ == "__main__":
    main()
