"""Shared timing helpers: interleaved contenders, medians, ratio tables.

These machines have 2 shared cores: pin to one (``taskset -c 0``, thread env vars, see the
Makefile's ``bench`` target), interleave the contenders round by round so drift hits all of
them alike, and quote medians.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Sequence

SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


def pin_to_one_core() -> None:
    """Best effort: run this process on core 0 with single-threaded BLAS/XLA."""
    for key, value in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(key, value)
    try:
        os.sched_setaffinity(0, {0})
    except (AttributeError, OSError):
        pass
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def calls_per_batch(fn: Callable[[], object], target_seconds: float = 0.02) -> int:
    """How many calls make one timed batch of about ``target_seconds``."""
    fn()
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start > target_seconds or n >= 1 << 20:
            return n
        n *= 2


def interleaved_medians(contenders: dict[str, Callable[[], object]], rounds: int = 15,
                        target_seconds: float = 0.02) -> dict[str, float]:
    """Median seconds per call of each contender, timed round-robin."""
    sizes = {name: calls_per_batch(fn, target_seconds) for name, fn in contenders.items()}
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in contenders.items():
                n = sizes[name]
                start = time.perf_counter()
                for _ in range(n):
                    fn()
                samples[name].append((time.perf_counter() - start) / n)
    finally:
        gc.enable()
    return {name: statistics.median(s) for name, s in samples.items()}


def first_call_seconds(make_and_call: Callable[[], object], repeats: int = 5) -> float:
    """Median time of a first call (``make_and_call`` must build a fresh, uncached function)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        make_and_call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def format_seconds(s: float) -> str:
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.2f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A plain-text (Markdown) table."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells[1:]]
    return "\n".join(lines)


def ratio_row(name: str, times: dict[str, float], baseline: str) -> list[str]:
    """``name``, then each contender's time and its ratio to ``baseline``."""
    base = times[baseline]
    return [name] + [f"{format_seconds(t)} ({t / base:.2f}x)" for t in times.values()]
