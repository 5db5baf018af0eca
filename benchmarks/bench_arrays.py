"""Array-level workloads (issue 12): real networks' gradients and per-sample gradients, workbench
against jax.jit, torch.func and hand-written numpy, with the issue's targets checked at the end.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 \\
        /work/main/.venv/bin/python -m benchmarks.bench_arrays

Options: ``--quick`` (fewer rounds and repeats), ``--only mlp784,depth`` (workloads by name:
mlp784, mlp784-labels-vmap, linreg1000, linreg100, mlp64, mlp64-vmap, reference-vmap, sin,
depth), ``--timeout S`` (per memory subprocess). The workloads are in
``benchmarks/array_workloads.py``; float64 on one core. Every contender's gradient is checked
against torch.func's before anything is timed; a workbench refusal or error is reported
("refused: ...") in place of a time.

Measured:
- cached call: the transformed function built once, then called; interleaved medians; ratio to
  jax.jit(jax.grad) (jax.jit(jax.vmap(jax.grad)) for per-sample workloads).
- first call: a fresh function object each time (no per-function cache knows it), transformed
  and called once: workbench traces + compiles, jax.jit compiles. Median of the repeats (a
  workbench first call over 1 s is not repeated).
- first-call memory of workbench: in a fresh subprocess (after a tiny warm-up run of the same
  workload), the peak RSS during the call (``VmHWM`` of ``/proc/self/status``, reset just
  before it through ``/proc/self/clear_refs``) minus the RSS just before it: everything the
  process touched, numpy buffers included. (Not ``getrusage``: see ``_peak_rss``.)
- depth series: workbench's first call on tanh MLPs of 2, 4, 8, 16, 32 layers (width 32, batch
  16), and the exponent p of ``time ~ (array ops)^p`` by least squares on log-log; array ops are
  the numpy ufunc calls of one forward pass (counted by an ndarray subclass). The series stops
  after a refusal or a first call slower than ``--depth-stop`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.array_workloads import (
    NUMPY_LOSSES,
    WORKLOADS,
    Workload,
    assert_same_gradient,
    count_array_ops,
    deep_mlp_workload,
    fresh,
    jax_losses,
    torch_losses,
    tree_map,
)
from benchmarks.common import format_seconds, interleaved_medians, pin_to_one_core, table

CONTENDERS = ("workbench", "jax.jit", "torch.func", "numpy (hand)")
BASELINE = "jax.jit"
DEPTHS = (2, 4, 8, 16, 32)
REPEAT_BELOW = 1.0  # seconds: a slower workbench first call is measured once
PER_SAMPLE_DIMS = (None, 0, 0)
ROOT = Path(__file__).resolve().parents[1]


# ----- contenders -----


@dataclass
class Contender:
    """How one library computes a workload's gradient: ``make()`` builds a new transformed
    function (from a fresh copy of the loss), ``run(fn)`` calls it on this library's inputs."""

    make: Callable[[], Callable]
    args: tuple
    is_jax: bool = False

    def run(self, fn: Callable) -> Any:
        out = fn(*self.args)
        if self.is_jax:  # wait for JAX's asynchronous dispatch
            import jax

            out = jax.block_until_ready(out)
        return out

    def first_call(self) -> Any:
        return self.run(self.make())


def _workbench(workload: Workload, args: tuple) -> Contender:
    import workbench as wb

    loss = NUMPY_LOSSES[workload.loss]
    if workload.per_sample:
        return Contender(lambda: wb.vmap(wb.grad(fresh(loss)), in_dims=PER_SAMPLE_DIMS), args)
    return Contender(lambda: wb.grad(fresh(loss)), args)


def _jax_jit(workload: Workload, args: tuple) -> Contender:
    import jax
    import jax.numpy as jnp

    loss = jax_losses()[workload.loss]
    jax_args = tree_map(jnp.asarray, args)
    if workload.per_sample:
        return Contender(lambda: jax.jit(jax.vmap(jax.grad(fresh(loss)), in_axes=PER_SAMPLE_DIMS)),
                         jax_args, is_jax=True)
    return Contender(lambda: jax.jit(jax.grad(fresh(loss))), jax_args, is_jax=True)


def _torch_func(workload: Workload, args: tuple) -> Contender:
    import torch
    import torch.func as tf

    loss = torch_losses()[workload.loss]
    torch_args = tree_map(lambda a: torch.from_numpy(a) if isinstance(a, np.ndarray)
                          else torch.tensor(a, dtype=torch.float64), args)
    if workload.per_sample:
        return Contender(lambda: tf.vmap(tf.grad(fresh(loss)), in_dims=PER_SAMPLE_DIMS), torch_args)
    return Contender(lambda: tf.grad(fresh(loss)), torch_args)


def _hand(workload: Workload, args: tuple) -> Contender:
    return Contender(lambda: workload.hand_grad, args)


BUILDERS = {"workbench": _workbench, "jax.jit": _jax_jit, "torch.func": _torch_func,
            "numpy (hand)": _hand}


def build_contenders(workload: Workload, sizes: dict[str, int],
                     names: tuple[str, ...] = CONTENDERS) -> dict[str, Contender]:
    """The contenders ``names`` on the workload's inputs at ``sizes`` (random, seed 0)."""
    args = workload.make_args(np.random.default_rng(0), **sizes)
    return {name: BUILDERS[name](workload, args) for name in names}


def try_first_call(contender: Contender) -> tuple[float | None, Any, Callable | None, str]:
    """Time one first call: (seconds, output, transformed function, "") or (None, None, None,
    why) when the library refuses or fails. Never raises."""
    try:
        start = time.perf_counter()
        fn = contender.make()
        out = contender.run(fn)
        return time.perf_counter() - start, out, fn, ""
    except Exception as error:  # a refusal (BudgetExceededError) or a failure: report, go on
        from workbench.errors import WorkbenchError

        kind = "refused" if isinstance(error, WorkbenchError) else f"error ({type(error).__name__})"
        return None, None, None, f"{kind}: {' '.join(str(error).split())}"


def timed_first_call(contender: Contender) -> tuple[float, Any, Callable]:
    """Build and call once, timing both (for the contenders that must not fail)."""
    start = time.perf_counter()
    fn = contender.make()
    out = contender.run(fn)
    return time.perf_counter() - start, out, fn


def checked_workbench_call(contender: Contender, expected: Any) -> tuple[float | None,
                                                                         Callable | None, str]:
    """Workbench's first call, timed, then its gradient checked on the first and on a second
    (cached) call: (seconds, transformed function, "") or (None, None, why not). Never raises."""
    seconds, out, fn, note = try_first_call(contender)
    if note:
        return None, None, note
    try:
        assert_same_gradient("workbench first call", out, expected)
        assert_same_gradient("workbench cached call", contender.run(fn), expected)
    except AssertionError as error:  # never time a wrong answer; say so loudly
        return None, None, "WRONG gradient: " + " ".join(str(error).split())[:300]
    except Exception as error:  # the cached call failed where the first one worked
        return None, None, f"error on the second call ({type(error).__name__}): {error}"
    return seconds, fn, ""


# ----- one workload -----


@dataclass
class Measured:
    """One workload's results (seconds; ``notes[name]`` says why a number is missing)."""

    cached: dict[str, float] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    peak_rss: int | None = None  # bytes, workbench's first call, from the subprocess
    memory_note: str = ""


def gradients(workload: Workload, sizes: dict[str, int]) -> dict[str, Any]:
    """Every contender's gradient at ``sizes`` (workbench's may be an error text): for tests."""
    outputs = {}
    for name, contender in build_contenders(workload, sizes).items():
        if name == "workbench":
            _, out, _, note = try_first_call(contender)
            outputs[name] = out if not note else note
        else:
            outputs[name] = contender.first_call()
    return outputs


def measure(workload: Workload, rounds: int, repeats: int, timeout: float) -> Measured:
    result = Measured()
    for contender in build_contenders(workload, workload.tiny, ("workbench", "jax.jit")).values():
        try_first_call(contender)  # warm-up: lazy imports and first-use costs are not first calls

    contenders = build_contenders(workload, workload.sizes)
    reference = contenders["torch.func"]
    reference_fn = reference.make()
    expected = reference.run(reference_fn)
    functions = {"torch.func": reference_fn, "numpy (hand)": workload.hand_grad}
    assert_same_gradient("numpy (hand)", contenders["numpy (hand)"].first_call(), expected)

    seconds, out, functions["jax.jit"] = timed_first_call(contenders["jax.jit"])
    assert_same_gradient("jax.jit", out, expected)
    first_samples = {"jax.jit": [seconds]}
    seconds, fn, note = checked_workbench_call(contenders["workbench"], expected)
    if note:
        result.notes["workbench"] = note
    else:
        functions["workbench"] = fn
        first_samples["workbench"] = [seconds]

    for _ in range(repeats - 1):  # more first calls, interleaved; fresh functions each time
        first_samples["jax.jit"].append(timed_first_call(contenders["jax.jit"])[0])
        if "workbench" in first_samples and max(first_samples["workbench"]) < REPEAT_BELOW:
            seconds = try_first_call(contenders["workbench"])[0]
            if seconds is not None:
                first_samples["workbench"].append(seconds)
    result.first = {name: statistics.median(s) for name, s in first_samples.items()}

    calls = {name: (lambda c=contenders[name], fn=functions[name]: c.run(fn))
             for name in CONTENDERS if name in functions}
    result.cached = interleaved_medians(calls, rounds=rounds)

    if "workbench" in functions:
        del functions, calls, fn
        gc.collect()
        result.peak_rss, result.memory_note = memory_in_subprocess(workload.name, timeout)
    return result


# ----- first-call memory, in a subprocess -----


def _current_rss() -> int:
    """Resident set size now, in bytes (Linux); 0 where /proc is missing."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _reset_peak_rss() -> None:
    """Make the kernel's peak-RSS mark (VmHWM) start again from the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def _peak_rss() -> int:
    """Peak RSS in bytes: VmHWM of /proc/self/status. (``getrusage``'s ``ru_maxrss`` is no use
    in a child: Linux carries the parent's peak across fork and exec, so a child of a 500 MB
    parent starts with a 500 MB peak.)"""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def memory_worker(name: str, tiny: bool = False) -> dict[str, Any]:
    """Run in a fresh process: workbench's first call on workload ``name``, its time and the
    peak RSS above the RSS just before it (after a warm-up at the tiny size)."""
    workload = WORKLOADS[name]
    try_first_call(build_contenders(workload, workload.tiny, ("workbench",))["workbench"])
    contender = build_contenders(workload, workload.tiny if tiny else workload.sizes,
                                 ("workbench",))["workbench"]
    gc.collect()
    _reset_peak_rss()
    before = _current_rss()
    seconds, _, _, note = try_first_call(contender)
    return {"seconds": seconds, "peak_rss_delta": max(_peak_rss() - before, 0), "note": note}


def memory_in_subprocess(name: str, timeout: float, tiny: bool = False) -> tuple[int | None, str]:
    """(peak RSS delta in bytes, "") from ``memory_worker`` in a subprocess, or (None, why)."""
    command = [sys.executable, "-m", "benchmarks.bench_arrays", "--memory-worker", name]
    if tiny:
        command.append("--tiny")
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timeout > {timeout:g} s"
    if done.returncode != 0:
        return None, f"subprocess failed ({done.returncode}): {done.stderr.strip()[-200:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["note"]:
        return None, report["note"]
    return report["peak_rss_delta"], ""


# ----- the depth series -----


def fit_exponent(sizes: list[float], seconds: list[float]) -> float | None:
    """p in ``seconds ~ c * sizes^p`` by least squares on logs (None below two points)."""
    if len(sizes) < 2:
        return None
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def depth_series(repeats: int, stop_after: float) -> tuple[list[list[str]], float | None, str]:
    """Rows of the depth table, the exponent of workbench's first call in array ops, and a line
    saying which points it was fitted on (and the exponent in layers, for comparison)."""
    warm = deep_mlp_workload(2)
    for contender in build_contenders(warm, warm.tiny, ("workbench", "jax.jit")).values():
        try_first_call(contender)
    rows, depths_used, ops_used, times_used, stopped = [], [], [], [], ""
    for depth in DEPTHS:
        workload = deep_mlp_workload(depth)
        contenders = build_contenders(workload, workload.sizes,
                                      ("workbench", "jax.jit", "torch.func"))
        ops = count_array_ops(NUMPY_LOSSES["deep_mlp"],
                              *workload.make_args(np.random.default_rng(0), **workload.sizes))
        jax_time = statistics.median(timed_first_call(contenders["jax.jit"])[0]
                                     for _ in range(max(1, min(repeats, 3))))
        if stopped:
            rows.append([str(depth), str(ops), f"not tried ({stopped})", format_seconds(jax_time)])
            continue
        seconds, _, note = checked_workbench_call(contenders["workbench"],
                                                  contenders["torch.func"].first_call())
        if not note:
            samples = [seconds]
            while len(samples) < repeats and max(samples) < REPEAT_BELOW:
                samples.append(timed_first_call(contenders["workbench"])[0])
            seconds = statistics.median(samples)
            depths_used.append(depth)
            ops_used.append(ops)
            times_used.append(seconds)
            if seconds > stop_after:
                stopped = f"depth {depth} took {format_seconds(seconds)}"
        else:
            stopped = f"depth {depth} {note.split(':')[0]}"
        rows.append([str(depth), str(ops), format_seconds(seconds) if not note else _short(note),
                     format_seconds(jax_time)])
    exponent = fit_exponent(ops_used, times_used)
    if exponent is None:
        return rows, None, f"{len(ops_used)} point(s): too few to fit"
    in_layers = fit_exponent(depths_used, times_used)
    return rows, exponent, (f"{len(ops_used)} points, {ops_used[0]}–{ops_used[-1]} ops; against "
                            f"layers {depths_used[0]}–{depths_used[-1]}: p = {in_layers:.2f}")


# ----- reporting -----


def _short(note: str, width: int = 60) -> str:
    return note if len(note) <= width else note[:width - 1] + "…"


def _cell(measured: Measured, name: str) -> str:
    if name not in measured.cached:
        return _short(measured.notes.get(name, "—"))
    t, base = measured.cached[name], measured.cached[BASELINE]
    return f"{format_seconds(t)} ({t / base:.2f}x)"


def _megabytes(n: int | None) -> str:
    return "—" if n is None else f"{n / 2 ** 20:.1f} MB"


def cached_table(results: dict[str, Measured]) -> str:
    rows = [[WORKLOADS[name].title] + [_cell(m, c) for c in CONTENDERS] for name, m in results.items()]
    return table(rows, ["workload"] + [f"{c} cached" for c in CONTENDERS])


def first_call_table(results: dict[str, Measured]) -> str:
    rows = []
    for name, m in results.items():
        wb_first, jax_first = m.first.get("workbench"), m.first["jax.jit"]
        rows.append([WORKLOADS[name].title,
                     format_seconds(wb_first) if wb_first else _short(m.notes["workbench"]),
                     format_seconds(jax_first),
                     f"{wb_first / jax_first:.2f}x" if wb_first else "—",
                     _megabytes(m.peak_rss) if m.peak_rss is not None else _short(m.memory_note or "—")])
    return table(rows, ["workload", "workbench first", "jax.jit first", "workbench / jax.jit",
                        "workbench peak RSS Δ"])


def targets(results: dict[str, Measured], exponent: float | None, depth_run: bool) -> str:
    """The issue's targets, one line each: PASS, FAIL (with why) or not run."""
    rows = []

    def line(label: str, workload: str, check: Callable[[Measured], tuple[str, bool]]) -> None:
        if workload not in results:
            rows.append([label, "not run", "—"])
            return
        m = results[workload]
        try:
            shown, ok = check(m)
        except KeyError:  # workbench has no number: refused, failed or wrong
            shown, ok = _short(m.notes.get("workbench", m.memory_note or "no number"), 70), False
        rows.append([label, shown, "PASS" if ok else "FAIL"])

    def ratio(a: str, b: str, limit: float, strict: bool = False):
        def check(m: Measured) -> tuple[str, bool]:
            r = m.cached[a] / m.cached[b]
            return f"{r:.2f}x", r < limit if strict else r <= limit
        return check

    def first_vs_jax(m: Measured) -> tuple[str, bool]:
        r = m.first["workbench"] / m.first["jax.jit"]
        return f"{format_seconds(m.first['workbench'])} vs {format_seconds(m.first['jax.jit'])} " \
               f"({r:.2f}x)", r <= 1.0

    def memory(m: Measured) -> tuple[str, bool]:
        if m.peak_rss is None:
            raise KeyError("memory")
        return _megabytes(m.peak_rss), m.peak_rss < 200 * 2 ** 20

    line("MLP-784: first call ≤ jax.jit first call", "mlp784", first_vs_jax)
    line("MLP-784: cached ≤ 1.5× jax.jit", "mlp784", ratio("workbench", "jax.jit", 1.5))
    line("MLP-784: cached < torch.func", "mlp784", ratio("workbench", "torch.func", 1.0, strict=True))
    line("MLP-784: first-call memory < 200 MB (peak RSS Δ)", "mlp784", memory)
    line("linreg 1000×1000: cached ≤ 1.5× jax.jit", "linreg1000", ratio("workbench", "jax.jit", 1.5))
    line("MLP 10-64-64-1: cached ≤ 1.5× jax.jit", "mlp64", ratio("workbench", "jax.jit", 1.5))
    line("vmap(grad) MLP batch 256: cached ≤ 1.5× jax.jit", "mlp64-vmap",
         ratio("workbench", "jax.jit", 1.5))
    line("per-sample reference (1000, 5): ≤ 2× hand numpy", "reference-vmap",
         ratio("workbench", "numpy (hand)", 2.0))
    line("cached grad(sin) < 0.5× jax.jit", "sin", ratio("workbench", "jax.jit", 0.5, strict=True))
    if depth_run:
        shown = "—" if exponent is None else f"{exponent:.2f}"
        rows.append(["first call linear in array ops: exponent (issue 6 used ≤ 1.2)", shown,
                     "FAIL" if exponent is None or exponent > 1.2 else "PASS"])
    else:
        rows.append(["first call linear in array ops: exponent", "not run", "—"])
    return table(rows, ["target (issue 12)", "measured", ""])


# ----- the run -----


def run(only: set[str] | None, quick: bool, timeout: float, depth_stop: float) -> None:
    rounds, repeats = (5, 2) if quick else (15, 5)
    selected = [name for name in WORKLOADS if only is None or name in only]
    results: dict[str, Measured] = {}
    for name in selected:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        results[name] = measure(WORKLOADS[name], rounds, repeats, timeout)
    if results:
        print("### Cached call (median per call; ratio to jax.jit)\n")
        print(cached_table(results), "\n")
        print("### First call: a fresh function, transformed and called once (median); "
              "workbench's first-call peak RSS above the RSS before it (subprocess)\n")
        print(first_call_table(results), "\n")
        notes = [f"- {WORKLOADS[n].title}: workbench {m.notes['workbench']}"
                 for n, m in results.items() if "workbench" in m.notes]
        if notes:
            print("Workbench notes:\n" + "\n".join(notes) + "\n")

    exponent, depth_run = None, only is None or "depth" in only
    if depth_run:
        print("measuring depth series ...", file=sys.stderr, flush=True)
        rows, exponent, span = depth_series(repeats, depth_stop)
        print("### First call against depth (tanh MLP, width 32, batch 16)\n")
        print(table(rows, ["layers", "array ops (forward)", "workbench first", "jax.jit first"]))
        shown = "—" if exponent is None else f"{exponent:.2f}"
        print(f"\nworkbench first call ~ (array ops)^p: p = {shown} (least squares on log-log, "
              f"{span})\n")

    print("### Targets (issue 12)\n")
    print(targets(results, exponent, depth_run))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and repeats")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated workloads: {', '.join(WORKLOADS)}, depth")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds for each first-call memory subprocess (default 300)")
    parser.add_argument("--depth-stop", type=float, default=5.0,
                        help="stop the depth series after a first call slower than this (s)")
    parser.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args([] if argv is None and __name__ != "__main__" else argv)
    if args.memory_worker:  # the parent pinned threads through the environment; not torch here
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, {0})
        print(json.dumps(memory_worker(args.memory_worker, args.tiny)))
        return
    pin_to_one_core()
    only = set(args.only.split(",")) if args.only else None
    unknown = (only or set()) - set(WORKLOADS) - {"depth"}
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}; choose from "
                     f"{', '.join(WORKLOADS)}, depth")
    run(only, args.quick, args.timeout, args.depth_stop)


if __name__ == "__main__":
    main()
