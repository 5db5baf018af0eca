"""Generated numpy code for an array graph: one statement per op.

The function takes the graph's inputs (float64 arrays) in order and returns the outputs, or
None where a guard recorded while tracing does not hold (the caller then traces again).
Constants that are not scalars are passed in through the function's namespace.

>>> import numpy as np
>>> from workbench.arrays.graph import ArrayGraph
>>> g = ArrayGraph()
>>> x = g.input(np.array([1.0, 2.0]), "x")
>>> y = g.apply("mul", x, g.apply("sin", x))
>>> program = generate(g, [x], [y])
>>> print(program.source.strip())
def array_program(x):
    v1 = _np.sin(x)
    v2 = (x * v1)
    return (v2,)
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .graph import ARRAY_RUNTIME, ArrayGraph, code_of, literal


@dataclass
class ArrayProgram:
    source: str
    function: Callable
    n_statements: int


def _parameter_names(g: ArrayGraph, inputs: Sequence[int]) -> dict[int, str]:
    names: dict[int, str] = {}
    used: set[str] = set()
    for k, node in enumerate(inputs):
        label = re.sub(r"\W", "_", str(g.labels.get(node, f"a{k}")))
        if not label or label[0].isdigit() or keyword.iskeyword(label) or label.startswith("_") \
                or re.fullmatch(r"v\d+", label) or label in used:
            label = f"a{k}"
        used.add(label)
        names[node] = label
    return names


def generate(g: ArrayGraph, inputs: Sequence[int], outputs: Sequence[int],
             guards: Sequence[tuple[int, bool]] = ()) -> ArrayProgram:
    """Compile the nodes ``outputs`` (and ``guards``) need into a Python function."""
    names = _parameter_names(g, inputs)
    namespace = dict(ARRAY_RUNTIME)
    guard_at: dict[int, bool] = {}
    for node, expected in guards:
        guard_at.setdefault(node, expected)
    needed = g.ancestors(list(outputs) + list(guard_at))
    lines = [f"def array_program({', '.join(names[i] for i in inputs)}):"]
    statements = 0
    for node in needed:
        op = g.op[node]
        if node in names:
            continue
        if op == "input":
            raise ValueError(f"input node {node} is not a parameter of the program")
        if op == "const":
            text = literal(g.values[node])
            if text is None:
                names[node] = f"_k{node}"
                namespace[f"_k{node}"] = g.values[node]
            else:
                names[node] = text
            continue
        if op in ("alias", "stop_gradient"):  # the same value under another name
            names[node] = names[g.args[node][0]]
            continue
        expression = code_of(op, [names[a] for a in g.args[node]], g.params[node])
        names[node] = f"v{node}"
        lines.append(f"    v{node} = {expression}")
        statements += 1
        if node in guard_at:
            test = f"v{node}" if guard_at[node] else f"not v{node}"
            lines.append(f"    if not ({test}):")
            lines.append("        return None")
    # An output that is an input (or a constant) is copied: the caller owns what it gets.
    parameters = {names[i] for i in inputs}
    returned = ", ".join(f"_np.array({names[o]})" if names[o] in parameters or
                         g.op[o] == "const" else names[o] for o in outputs)
    lines.append(f"    return ({returned},)" if outputs else "    return ()")
    source = "\n".join(lines) + "\n"
    exec(compile(source, "<workbench array program>", "exec"), namespace)  # our own printers
    return ArrayProgram(source, namespace["array_program"], statements)
