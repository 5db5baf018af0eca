"""Run every ``benchmarks/bench_*.py`` in turn (each prints its own table)."""

from __future__ import annotations

import importlib
import pkgutil

import benchmarks
from benchmarks.common import pin_to_one_core


def main() -> None:
    pin_to_one_core()
    for module in sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__)):
        if module.startswith("bench_"):
            print(f"\n## {module}\n")
            importlib.import_module(f"benchmarks.{module}").main()


if __name__ == "__main__":
    main()
