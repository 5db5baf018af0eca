"""Budgets that keep workbench from hanging a kernel: change them on ``wb.config``.

>>> import workbench as wb
>>> wb.config.max_nodes >= 1000
True
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Config:
    """Size and time budgets (all sizes count scalar operations or SymPy ``count_ops``), and
    how tracebacks are shown."""

    #: Hard budget: a trace (forward plus derivative nodes) larger than this raises
    #: ``BudgetExceededError`` with advice (use ``wb.tape``, or a smaller problem). Measured here:
    #: about 20 µs and 4 KB (peak) per node to trace, differentiate and compile, so the default
    #: stops a runaway trace at about 10 s and 2 GB.
    max_nodes: int = 500_000
    #: Array-level traces: the bytes of all intermediate values kept while tracing (the
    #: element budget above then counts array operations, not scalars).
    max_trace_bytes: int = 4_000_000_000
    #: Trace transforms of array arguments with one graph node per array operation (False:
    #: always element by element, the slower path that also handles everything else).
    array_level: bool = True
    #: Above this many operations, derivatives are not simplified (one line says so).
    simplify_max_ops: int = 400
    #: Wall-clock budget of one simplification; past it the unsimplified result is kept.
    simplify_seconds: float = 2.0
    #: Above this many operations, expressions are not pretty-printed as one formula.
    pretty_max_ops: int = 2_000
    #: Tracebacks of workbench's errors show only the user's frames and the one that raised
    #: (as JAX does); True shows every internal frame (or set WORKBENCH_TRACEBACK=full).
    show_internal_frames: bool = False


config = Config()
