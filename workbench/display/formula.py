"""Node arrays of a capture as SymPy formulas, within the size budgets, with a size meter.

A formula is built as one SymPy expression only when its *tree* (the size before CSE) is within
``wb.config.pretty_max_ops``, and simplified only within ``wb.config.simplify_max_ops`` (and
``simplify_seconds``). Larger results are shown as CSE'd assignments (``t_0 = ...``), and past
``pretty_max_ops`` operations even after CSE, not at all; each case says so in one line.

Beside the simplified form, a formula keeps a *textbook* form (``.textbook``): the sum of simple
terms a student would write, where simplification nests fractions (see
:func:`~workbench.symbolic.simplify.textbook_form`); the views show both when they differ.

>>> import numpy as np
>>> from workbench.display.capture import capture
>>> c = capture(lambda x: np.sin(x) ** 3, (0.5,))
>>> f = build_formula(c, c.derivatives[0])
>>> f.expr, f.size.ops
(3*sin(x)**2*cos(x), 5)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from ..config import config
from ..symbolic.simplify import simplify, textbook_form
from ..symbolic.to_sympy import cse_assignments, operation_count, symbol_for, to_sympy, tree_sizes
from .capture import Capture
from .printing import latex as to_latex
from .printing import text as to_text


@dataclass
class Size:
    """How big a traced result is: as a formula (tree, before CSE) and as a program (after)."""

    tree: int  # nodes of the expression tree(s): shared subexpressions counted at every use
    ops: int  # distinct operations after common-subexpression elimination

    def __str__(self) -> str:
        return f"{_big(self.tree)} tree nodes before CSE, {self.ops:,} operations after"


def _big(n: int) -> str:
    return f"{n:,}" if n < 10**12 else f"~1e{len(str(n)) - 1}"


@dataclass
class Formula:
    """SymPy form of some nodes: one expression (or array), or assignments, or nothing."""

    expr: Any  # sympy Expr, or sympy.Array in the nodes' shape; None when too large
    raw: Any  # before simplification (None when too large)
    size: Size
    assignments: list[tuple[sympy.Symbol, Any]] = field(default_factory=list)
    cse_exprs: list[Any] = field(default_factory=list)  # final expressions of the CSE form
    notes: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)  # how each element was simplified
    #: the textbook form (same shape as ``expr``): ``expr`` itself where none is offered
    textbook: Any = None

    @property
    def has_textbook(self) -> bool:
        """True when a textbook form different from the simplified one is shown beside it."""
        return self.expr is not None and self.textbook is not None and self.textbook != self.expr

    def latex(self) -> str:
        if self.expr is not None:
            if self.has_textbook:
                return f"{to_latex(self.expr)} = {to_latex(self.textbook)}"
            return to_latex(self.expr)
        if self.assignments or self.cse_exprs:
            lines = [rf"{to_latex(s)} &= {to_latex(e)}" for s, e in self.assignments]
            results = self.cse_exprs[0] if len(self.cse_exprs) == 1 else sympy.Array(self.cse_exprs)
            lines.append(rf"\text{{result}} &= {to_latex(results)}")
            return r"\begin{aligned}" + r" \\ ".join(lines) + r"\end{aligned}"
        return rf"\text{{({self.size.ops:,} operations: too large to display)}}"

    def text(self) -> str:
        if self.expr is not None:
            if self.has_textbook:
                return f"{to_text(self.expr)} = {to_text(self.textbook)}"
            return to_text(self.expr)
        if self.assignments or self.cse_exprs:
            lines = [f"{to_text(s)} = {to_text(e)}" for s, e in self.assignments]
            lines.append("result = " + ", ".join(to_text(e) for e in self.cse_exprs))
            return "\n".join(lines)
        return f"({self.size.ops:,} operations: too large to display)"

    def shown(self) -> list[Any]:
        """Every SymPy expression the views print (for the conventions they rely on)."""
        return [e for e in (self.expr, self.textbook, *self.cse_exprs,
                            *(e for _, e in self.assignments)) if e is not None]


def user_renaming(cap: Capture) -> dict[Any, Any]:
    """Our real symbol -> the user's own symbol, for a function given as a SymPy expression
    (formulas are built and simplified with real symbols, then shown in the user's)."""
    table = {}
    for p in cap.params:
        mine = symbol_for(p.name, None)
        theirs = cap.user_symbols.get(p.name)
        if p.nodes is not None and p.is_scalar and theirs is not None and theirs != mine:
            table[mine] = theirs
    return table


def in_user_symbols(cap: Capture, expr: Any) -> Any:
    """``expr`` with the user's own symbols (see :func:`user_renaming`)."""
    table = user_renaming(cap)
    if not table or not isinstance(expr, sympy.Basic):
        return expr
    return expr.xreplace(table)


def symbols_of(cap: Capture) -> dict[int, sympy.Symbol]:
    """input node -> its symbol (``x`` for a scalar parameter, ``x_0``... for array elements)."""
    return {node: symbol_for(name, index) for node, (name, index) in cap.input_nodes().items()}


def parameter_symbols(cap: Capture) -> dict[str, Any]:
    """parameter name -> its symbol, or a sympy.Array of symbols for an array parameter."""
    table: dict[str, Any] = {}
    for p in cap.params:
        if p.nodes is None:
            continue
        if p.is_scalar:
            table[p.name] = in_user_symbols(cap, symbol_for(p.name, None))
        else:
            table[p.name] = sympy.Array([symbol_for(p.name, i) for i in np.ndindex(p.shape)],
                                        p.shape)
    return table


def build_formula(cap: Capture, nodes: np.ndarray, simplify_it: bool = True) -> Formula:
    """The formula of ``nodes`` (any shape), within the budgets (see the module docstring)."""
    nodes = np.asarray(nodes, dtype=np.intp)
    flat = [int(n) for n in nodes.ravel()]
    sizes = tree_sizes(cap.graph, flat)
    size = Size(sum(sizes[n] for n in flat), operation_count(cap.graph, flat))
    symbols = symbols_of(cap)
    if size.tree > config.pretty_max_ops:
        if size.ops > config.pretty_max_ops:
            return Formula(None, None, size, notes=[
                f"not simplified or printed: {size.ops:,} operations after CSE is above "
                f"wb.config.pretty_max_ops={config.pretty_max_ops:,}; use wb.export for code"])
        assignments, exprs = cse_assignments(cap.graph, flat, symbols)
        assignments = [(name, in_user_symbols(cap, e)) for name, e in assignments]
        exprs = [in_user_symbols(cap, e) for e in exprs]
        return Formula(None, None, size, assignments, exprs, notes=[
            f"shown as shared subexpressions, not simplified: the formula would have "
            f"{_big(size.tree)} terms (above wb.config.pretty_max_ops={config.pretty_max_ops:,})"])
    raw = to_sympy(cap.graph, flat, symbols)
    notes: list[str] = []
    methods: list[str] = []
    if simplify_it and size.tree > config.simplify_max_ops:
        notes.append(f"not simplified: {size.tree:,} terms is above "
                     f"wb.config.simplify_max_ops={config.simplify_max_ops:,}")
        simplify_it = False
    done = raw
    start = time.perf_counter()  # simplification and textbook forms share one time budget
    if simplify_it:
        done = []
        for i, e in enumerate(raw):
            left = config.simplify_seconds - (time.perf_counter() - start)
            if left <= 0:
                notes.append(f"simplification stopped after {config.simplify_seconds} s "
                             f"(wb.config.simplify_seconds): {i} of {len(raw)} entries simplified")
                done.extend(raw[i:])
                break
            result = simplify(e, seconds=left)
            done.append(result.expr)
            methods.append(result.method)
            if result.note and result.note not in notes:
                notes.append(result.note)
    textbook = _textbook_forms(done, start) if simplify_it else list(done)

    def shaped(entries):
        entries = [in_user_symbols(cap, e) for e in entries]
        return entries[0] if nodes.shape == () else sympy.Array(entries, nodes.shape)

    return Formula(shaped(done), shaped(raw), size, notes=notes, methods=methods,
                   textbook=shaped(textbook))


def _textbook_forms(simplified: list[Any], start: float) -> list[Any]:
    """Each entry's textbook form (the entry itself where none is offered), within what is left
    of ``wb.config.simplify_seconds``."""
    forms = []
    for e in simplified:
        left = config.simplify_seconds - (time.perf_counter() - start)
        form = textbook_form(e, seconds=left) if left > 0 else None
        forms.append(e if form is None else form)
    return forms


def guard_conditions(cap: Capture) -> list[Any]:
    """The conditions (SymPy relationals) under which the traced branch is the one taken."""
    if not cap.guards:
        return []
    nodes = [n for n, _ in cap.guards]
    if sum(tree_sizes(cap.graph, nodes).values()) > config.pretty_max_ops:
        return []
    exprs = to_sympy(cap.graph, nodes, symbols_of(cap))
    conditions = []
    for e, (_, expected) in zip(exprs, cap.guards):
        c = in_user_symbols(cap, e if expected else sympy.Not(e))
        if c is not sympy.true and c not in conditions:
            conditions.append(c)
    return conditions
