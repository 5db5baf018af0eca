"""Speed of exported gradient code, and readability of wb.derivative on the textbook corpus.

Table 1: evaluating the exported numpy module against SymPy's ``lambdify`` of the same traced
derivative (``cse=True``) and against hand-written numpy, on the reference examples
(torch.func.grad's documentation, numpy form), the Rosenbrock gradient (n = 100) and a
width-16 MLP. Table 2: the exported C (called through
ctypes) against the exported numpy module. Table 3: how often ``wb.derivative`` and plain
``sympy.simplify(sympy.diff(f))`` are no longer than the textbook answer (``count_ops``).

Run: ``taskset -c 0 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python -m
benchmarks.bench_export`` (or ``python -m benchmarks`` for every benchmark).
"""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sympy

import workbench as wb
from benchmarks.common import format_seconds, interleaved_medians, pin_to_one_core, table
from workbench.display.capture import capture
from workbench.display.formula import symbols_of
from workbench.symbolic.to_sympy import to_sympy

# ----- the functions: (name, f, example args, argnums, hand-written gradient) -----
# The reference examples (torch.func.grad's documentation), in numpy form.


def grad_sin(x):  # grad(grad(sin)): exporting a gradient of a gradient
    return wb.grad(np.sin)(x)


def compute_loss(weights, example, target):  # the per-sample example's loss
    y = wb.relu(example.dot(weights))
    return ((y - target) ** 2).mean()


def g_compute_loss(weights, example, target):
    z = example.dot(weights)
    return 2.0 * (max(z, 0.0) - target) * (z > 0.0) * example


def my_loss_func(y, y_pred):  # the has_aux example's loss
    return ((0.5 * y_pred - y) ** 2).mean()


def g_my_loss_func(y, y_pred):
    r = (0.5 * y_pred - y) * (2.0 / y.size)
    return -r, 0.5 * r


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def g_rosenbrock(x):
    g = np.zeros_like(x)
    d = x[1:] - x[:-1] ** 2
    g[:-1] = -400.0 * x[:-1] * d - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * d
    return g


def mlp(w1, w2, x):
    h = np.tanh(w1 @ x)
    return np.sum((w2 @ h - 1.0) ** 2)


def g_mlp(w1, w2, x):
    h = np.tanh(w1 @ x)
    r = 2.0 * (w2 @ h - 1.0)
    gw2 = np.outer(r, h)
    gh = w2.T @ r * (1.0 - h * h)
    return np.outer(gh, x), gw2


RNG = np.random.default_rng(0)
CASES: list[tuple[str, Callable, tuple, int | tuple[int, ...], Callable]] = [
    ("reference: grad(sin)", np.sin, (0.7,), 0, np.cos),
    ("reference: grad(grad(sin))", grad_sin, (0.7,), 0, lambda x: -np.sin(x)),
    ("reference: per-sample loss, 5 features", compute_loss,
     (RNG.normal(size=5), RNG.normal(size=5), 0.3), 0, g_compute_loss),
    ("reference: has_aux loss, n=5", my_loss_func, (RNG.normal(size=5), RNG.normal(size=5)),
     (0, 1), g_my_loss_func),
    ("Rosenbrock n=100", rosenbrock, (RNG.uniform(-1, 1, size=100),), 0, g_rosenbrock),
    ("MLP width 16", mlp, (RNG.normal(size=(16, 16)) / 4, RNG.normal(size=(1, 16)) / 4,
                           RNG.normal(size=16)), (0, 1), g_mlp),
]


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lambdified(f, args, argnums) -> Callable:
    """SymPy's lambdify (cse=True) of the same traced derivative, taking the same arguments."""
    cap = capture(f, args, argnums=argnums, order=1)
    symbols = symbols_of(cap)
    flat_symbols = [symbols[int(n)] for p in cap.params for n in np.ravel(p.nodes)]
    nodes = [int(n) for d in cap.derivatives for n in d.ravel()]
    exprs = to_sympy(cap.graph, nodes, symbols)
    fn = sympy.lambdify(flat_symbols, exprs, "numpy", cse=True)
    shapes = [d.shape for d in cap.derivatives]

    def call(*values):
        flat = fn(*(v for a in values for v in np.ravel(a)))
        out, k = [], 0
        for shape in shapes:
            size = int(np.prod(shape)) if shape else 1
            out.append(np.array(flat[k:k + size]).reshape(shape))
            k += size
        return out

    return call


def c_function(f, args, argnums, folder: Path) -> Callable | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    code = wb.export(f, *args, argnums=argnums, target="c", path=folder / f"{f.__name__}.c")
    lib_path = folder / f"lib{f.__name__}.so"
    subprocess.run([cc, "-std=c99", "-O2", "-shared", "-fPIC", "-o", str(lib_path),
                    str(folder / f"{f.__name__}.c"), "-lm"], check=True)
    fn = getattr(ctypes.CDLL(str(lib_path)), code.functions[0])
    fn.restype = ctypes.c_int
    positions = argnums if isinstance(argnums, tuple) else (argnums,)
    outs = [np.zeros(np.shape(args[k])) for k in positions]
    c_args: list = []
    for a in args:
        if np.ndim(a) == 0:
            c_args.append(ctypes.c_double(float(a)))
        else:
            buf = np.ascontiguousarray(a, dtype=np.float64)
            c_args.append(buf.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
            outs.append(buf)  # keep alive
    c_args += [o.ctypes.data_as(ctypes.POINTER(ctypes.c_double)) for o in outs[:len(positions)]]

    def call():
        fn(*c_args)
        return outs

    return call


def speed_tables() -> tuple[str, str]:
    rows_np, rows_c = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, f, args, argnums, hand in CASES:
            path = folder / f"export_{f.__name__}.py"
            wb.export(f, *args, argnums=argnums, path=path)
            exported = getattr(load(path), f"grad_{f.__name__}")
            lam = lambdified(f, args, argnums)
            expected = wb.grad(f, argnums=argnums)(*args)
            got = exported(*args)
            several = isinstance(argnums, tuple)
            for a, b in zip(expected if several else [expected], got if several else [got]):
                np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-9, atol=1e-12)
            times = interleaved_medians({
                "exported numpy": lambda e=exported, a=args: e(*a),
                "lambdify(cse=True)": lambda g=lam, a=args: g(*a),
                "hand-written numpy": lambda h=hand, a=args: h(*a),
            }, rounds=9)
            base = times["exported numpy"]
            rows_np.append([name] + [format_seconds(t) for t in times.values()]
                           + [f"{times['lambdify(cse=True)'] / base:.2f}x",
                              f"{times['hand-written numpy'] / base:.2f}x"])
            c_call = c_function(f, args, argnums, folder)
            if c_call is not None:
                times_c = interleaved_medians({
                    "exported numpy": lambda e=exported, a=args: e(*a),
                    "exported C (ctypes)": c_call}, rounds=9)
                rows_c.append([name, format_seconds(times_c["exported numpy"]),
                               format_seconds(times_c["exported C (ctypes)"]),
                               f"{times_c['exported numpy'] / times_c['exported C (ctypes)']:.1f}x"])
    t1 = table(rows_np, ["gradient of", "exported numpy", "lambdify(cse=True)",
                         "hand-written numpy", "lambdify / exported", "hand / exported"])
    t2 = table(rows_c, ["gradient of", "exported numpy", "exported C (ctypes)",
                        "C speed-up"])
    return t1, t2


def readability_table() -> str:
    """Share of the textbook corpus no longer than the textbook answer (count_ops)."""
    from tests.corpus.textbook_derivatives import CORPUS
    from workbench.exprparse import parse

    x = sympy.Symbol("x", real=True)
    ours = plain = 0
    start = time.perf_counter()
    for f_text, d_text in CORPUS:
        expression = parse(f_text)
        textbook = sympy.count_ops(parse(d_text).sympy({"x": x}))
        if sympy.count_ops(wb.derivative(expression.function()).expr) <= textbook:
            ours += 1
        if sympy.count_ops(sympy.simplify(sympy.diff(expression.sympy({"x": x}), x))) <= textbook:
            plain += 1
    n = len(CORPUS)
    return table([["wb.derivative", f"{ours}/{n}", f"{100 * ours / n:.1f} %"],
                  ["sympy.simplify(sympy.diff(f))", f"{plain}/{n}", f"{100 * plain / n:.1f} %"]],
                 ["textbook corpus", "no longer than textbook", "share"]) + \
        f"\n({time.perf_counter() - start:.1f} s for both columns)"


def main() -> None:
    pin_to_one_core()
    t1, t2 = speed_tables()
    print("### Exported numpy gradient vs lambdify and hand-written numpy (median per call)\n")
    print(t1)
    print("\n### Exported C (through ctypes) vs the exported numpy module\n")
    print(t2)
    print("\n### Readable derivatives: textbook corpus (SymPy count_ops)\n")
    print(readability_table())


if __name__ == "__main__":
    main()
