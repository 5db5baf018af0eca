"""Straight-line Python code from a slice of the graph: one assignment per node.

The graph is already CSE'd (hash-consing), so printing it node by node *is* the CSE'd program.
Two backends share one generator:

* ``scalar`` -- Python floats and ``math`` (fastest for single points: a cached ``grad(sin)(x)``
  is one ``math.cos`` call);
* ``numpy`` -- every variable may be a numpy array (the fallback where ``math`` raises on log(0),
  1/0 or overflow and numpy gives IEEE inf/nan instead);
* ``batch`` -- numpy, every input element a vector over a batch (``vmap``); instead of returning
  ``None`` when a guard fails, it returns a per-example mask of where all guards hold, first.

Variable names are reused once a value is dead, so a batched evaluation holds only the arrays it
still needs. Generation is iterative (no recursion), and long n-ary sums are split into chunks,
so a program of 10^5 operations compiles like any other.

>>> from workbench.graph import Graph
>>> g = Graph(); x = g.input(1.0, ("x", 0))
>>> y = g.apply("sin", g.apply("mul", x, x))
>>> print(generate(g, [x], [y], [], "scalar").source)
def _wb_program(a0):
    v0 = a0
    v0 = (v0 * v0)
    v0 = _m.sin(v0)
    return (v0, )
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..graph import Graph, ancestors
from ..ops import OPS, RUNTIME, Printer, format_float, render

_RENAMES = frozenset({"alias", "stop_gradient"})  # identities at run time
_CHUNK = 48  # terms per line of a long sum (keeps the parser's nesting shallow)


@dataclass
class Program:
    """Generated source and the function compiled from it."""

    source: str
    function: Any
    n_assignments: int


def _literal(value) -> str:
    return format_float(value)


def generate(graph: Graph, inputs: Sequence[int | Sequence[int]],
             outputs: Sequence[int | Sequence[int]], guards: Sequence[tuple[int, bool]],
             backend: str, name: str = "_wb_program",
             overrides: Mapping[int, tuple[Printer, tuple[int, ...]]] | None = None,
             unpack_from: Mapping[int, str] | None = None) -> Program:
    """Compile the nodes that ``outputs`` and ``guards`` need into ``name(a0, a1, ...)``.

    ``inputs[k]`` is the input node of argument ``a<k>`` (an int: the argument is one number) or
    a list of nodes (the argument is a flat sequence, unpacked in order). ``outputs`` likewise:
    an int returns one value, a list returns a list. The function returns a tuple with one entry
    per output, or ``None`` as soon as a guard fails.

    ``overrides`` prints some nodes differently: ``node -> (printer, nodes it reads)``. A node id
    past the end of the graph is a *virtual* node that exists only in the program (vectorised
    pieces of the ``batch`` backend use this). ``unpack_from[k]`` is the expression argument
    ``k``'s elements are unpacked from (default ``a<k>``).
    """
    op_of, args_of, params_of, values = graph.op, graph.args, graph.params, graph.values
    overrides = overrides or {}
    if overrides:
        args_of = _ArgsWithOverrides(args_of, overrides)
    flat_outputs = [n for group in outputs for n in _as_list(group)]
    roots = flat_outputs + [n for n, _ in guards]
    needed = ancestors(args_of, roots)
    needed_set = set(needed)

    # Renames (alias, stop_gradient) are identities at run time: use their argument's value.
    source_of: dict[int, int] = {}
    for node in needed:
        if node not in overrides and op_of[node] in _RENAMES:
            arg = args_of[node][0]
            source_of[node] = source_of.get(arg, arg)

    def resolve(node: int) -> int:
        return source_of.get(node, node)

    # The last node that reads each value, so its variable name can be reused afterwards.
    dies_at: dict[int, list[int]] = {}
    last_use: dict[int, int] = {}
    for node in needed:
        if node not in overrides and op_of[node] in (*_RENAMES, "const", "input"):
            continue
        for a in args_of[node]:
            last_use[resolve(a)] = node
    for value_node, user in last_use.items():
        dies_at.setdefault(user, []).append(value_node)
    pinned = {resolve(n) for n in roots}  # outputs and guards stay alive to the end

    guard_after: dict[int, list[bool]] = {}
    for node, expected in guards:
        guard_after.setdefault(resolve(node), []).append(expected)

    lines: list[str] = []
    expr: dict[int, str] = {}  # node -> variable name or literal
    free: list[str] = []
    free_set: set[str] = set()  # membership of ``free`` in O(1): the list can hold thousands
    counter = [0]

    def new_name() -> str:
        if free:
            free_set.discard(free[-1])
            return free.pop()
        counter[0] += 1
        return f"v{counter[0] - 1}"

    arg_names = []
    for k, group in enumerate(inputs):
        arg_names.append(f"a{k}")
        if isinstance(group, int):
            if group in needed_set:
                expr[group] = new_name()
                lines.append(f"{expr[group]} = a{k}")
            continue
        if not any(n in needed_set for n in group):
            continue
        names = []
        for n in group:
            if n in needed_set:
                expr[n] = new_name()
                names.append(expr[n])
            else:
                names.append("_")
        source = (unpack_from or {}).get(k, f"a{k}")
        lines.append(f"{', '.join(names)}{',' if len(names) == 1 else ''} = {source}")

    printer_key = "py" if backend == "scalar" else "np"
    if backend == "batch":  # guards become a per-example mask, returned first
        lines.append("_ok = True")
    n_assign = 0
    for node in needed:
        override = overrides.get(node)
        op = op_of[node] if override is None else "override"
        if op == "const":
            expr[node] = _literal(values[node])
            continue
        if op == "input":
            expr.setdefault(node, _literal(values[node]))  # an input no argument provides
            continue
        if op in _RENAMES:
            continue
        arg_exprs = [expr[resolve(a)] for a in args_of[node]]
        chunked = op == "add" and len(arg_exprs) > _CHUNK
        if chunked:  # the target is written before all arguments are read: no reuse
            target = new_name()
        for dead in dies_at.get(node, ()):
            if dead not in pinned:
                var = expr.get(dead, "")
                if var.startswith("v") and var not in free_set:
                    free.append(var)
                    free_set.add(var)
        if chunked:
            lines.append(f"{target} = {' + '.join(arg_exprs[:_CHUNK])}")
            for start in range(_CHUNK, len(arg_exprs), _CHUNK):
                lines.append(f"{target} = {target} + {' + '.join(arg_exprs[start:start + _CHUNK])}")
        else:
            printer = override[0] if override else getattr(OPS[op], printer_key)
            code = render(printer, arg_exprs, () if override else params_of[node])
            target = new_name()
            lines.append(f"{target} = {code}")
        expr[node] = target
        n_assign += 1
        for expected in guard_after.get(node, ()):
            lines.append(_guard_line(target, expected, backend))

    for node, expected in guards:  # guards on inputs themselves
        if resolve(node) not in overrides and op_of[resolve(node)] in ("input", "const"):
            lines.append(_guard_line(expr[resolve(node)], expected, backend))

    returns = []
    constants: dict[str, Any] = {}
    for j, group in enumerate(outputs):
        if isinstance(group, int):
            returns.append(expr[resolve(group)])
            continue
        items = [expr[resolve(n)] for n in group]
        variable = [i for i, n in enumerate(group) if op_of[resolve(n)] != "const"]
        if backend != "batch" and len(group) > 16 and len(variable) * 2 < len(group):
            # A mostly constant output (a sparse Jacobian or Hessian): fill a copy of the
            # constant array, then write only the computed entries.
            template = [values[resolve(n)] if op_of[resolve(n)] == "const" else 0.0 for n in group]
            constants[f"_K{j}"] = np.array(template, dtype=np.float64)
            constants[f"_I{j}"] = np.array(variable, dtype=np.intp)
            lines.append(f"_r{j} = _K{j}.copy()")
            if variable:
                lines.append(f"_r{j}[_I{j}] = [" + ", ".join(items[i] for i in variable) + "]")
            returns.append(f"_r{j}")
        else:
            returns.append("[" + ", ".join(items) + "]")
    if backend == "batch":
        returns.insert(0, "_ok")
    lines.append("return (" + "".join(r + ", " for r in returns) + ")")
    source = f"def {name}({', '.join(arg_names)}):\n" + "\n".join("    " + ln for ln in lines)
    namespace = dict(RUNTIME)
    namespace.update(constants)
    exec(compile(source, f"<workbench {name}>", "exec"), namespace)  # our own generated code
    return Program(source, namespace[name], n_assign)


class _ArgsWithOverrides:
    """``graph.args`` as seen through ``overrides`` (which may add virtual nodes past the end)."""

    def __init__(self, args: list, overrides: Mapping[int, tuple[Printer, tuple[int, ...]]]):
        self.args, self.overrides = args, overrides

    def __getitem__(self, node: int) -> tuple[int, ...]:
        override = self.overrides.get(node)
        return override[1] if override is not None else self.args[node]


def _as_list(group) -> list[int]:
    return [group] if isinstance(group, int) else list(group)


def _guard_line(name: str, expected: bool, backend: str) -> str:
    if backend == "batch":
        return f"_ok = _ok & {'' if expected else '~'}{name}"
    if backend == "scalar":
        return f"if {'not ' if expected else ''}{name}: return None"
    return f"if {'not _np.all' if expected else '_np.any'}({name}): return None"
