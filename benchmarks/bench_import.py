"""Import time of ``import workbench`` in a fresh interpreter, against numpy, SymPy and friends.

Each library is imported in its own new process (so nothing is cached in ``sys.modules``), the
processes interleaved round by round; the table quotes the median of the in-process import time
and lists the heavy modules ``import workbench`` pulled in (it must not load SymPy, torch, jax or
the Jupyter stack: those are imported only when used). Target (issue 6): under 0.5 s.

Run: ``taskset -c 0 .venv/bin/python -m benchmarks.bench_import``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from benchmarks.common import format_seconds, pin_to_one_core, table

MODULES = ("workbench", "numpy", "sympy", "symengine", "jax", "torch")
HEAVY = ("sympy", "symengine", "torch", "jax", "ipywidgets", "IPython", "matplotlib", "scipy",
         "casadi", "jupyterlab")
TARGET_SECONDS = 0.5
ROUNDS = 7

_PROBE = """
import json, sys, time
start = time.perf_counter()
import {module}
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "loaded": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def import_once(module: str) -> dict:
    """Import ``module`` in a fresh interpreter: its import time and the heavy modules it loaded."""
    done = subprocess.run([sys.executable, "-c", _PROBE.format(module=module, heavy=HEAVY)],
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    pin_to_one_core()
    samples: dict[str, list[float]] = {m: [] for m in MODULES}
    loaded: dict[str, list[str]] = {}
    for _ in range(ROUNDS):  # interleaved: drift on a shared machine hits every module alike
        for module in MODULES:
            try:
                probe = import_once(module)
            except subprocess.CalledProcessError:
                continue  # not installed
            samples[module].append(probe["seconds"])
            loaded[module] = [m for m in probe["loaded"] if m != module]
    ours = statistics.median(samples["workbench"])
    rows = []
    for module, times in samples.items():
        if not times:
            rows.append([module, "not installed", "", ""])
            continue
        median = statistics.median(times)
        rows.append([f"import {module}", format_seconds(median), f"{median / ours:.2g}x",
                     ", ".join(loaded[module]) or "—"])
    print(table(rows, ["statement", f"median of {ROUNDS} fresh processes", "vs workbench",
                       "heavy modules it loaded"]))
    verdict = "ok" if ours < TARGET_SECONDS else "MISSED"
    print(f"\nimport workbench: {format_seconds(ours)} (target < {TARGET_SECONDS} s: {verdict})")


if __name__ == "__main__":
    main()
