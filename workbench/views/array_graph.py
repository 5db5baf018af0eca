"""The graph document of a function of arrays, traced at array level (one node per array op).

``wb.graph`` tries this first when an argument is a float array: the function runs once on
``ArrayTraced`` inputs (``workbench.arrays``), so a layer ``x @ W + b`` is three nodes whatever
the sizes, each with its shape. Where the array level does not apply (it raises
``NotArrayLevel``, or the output is not a traced float array) :func:`array_document` returns
None and the caller draws the element graph instead.

For a scalar output a reverse pass over the array graph gives every node's adjoint (an array of
the node's shape) and the backward steps, one per array op: the op's VJP rule
(``workbench.arrays.autodiff``), evaluated at the traced values. Values and adjoints with more
than :data:`MAX_VALUE_ELEMENTS` elements are left out (null) and summarised in text
(``value_summary``, ``adjoint_summary``), which keeps documents small.

>>> import numpy as np
>>> x, W = np.ones((4, 3)), np.full((3, 2), 0.5)
>>> doc = array_document(lambda x, W: np.sum(np.tanh(x @ W)), (x, W), "f").doc
>>> [(n["label"], n["shape"]) for n in doc["nodes"]]
[('x', [4, 3]), ('W', [3, 2]), ('x @ W', [4, 2]), ('tanh', [4, 2]), ('sum', [])]
>>> doc["title"]
'f(x, W) = sum(tanh(x @ W))'
>>> [len(step["contributions"]) for step in doc["backward"]]     # sum, tanh, @, W, x
[1, 1, 2, 0, 0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import pytree
from ..arrays.autodiff import arg_cotangents
from ..arrays.graph import ArrayGraph, NotArrayLevel
from ..arrays.traced import ArrayTraced, array_tracing
from ..config import config
from ..display.capture import parameter_names
from ..errors import BudgetExceededError
from ..tape.view import tensor_json
from ..transforms.captured import restore_global_rng, saved_global_rng
from ..transforms.staging import _label_tree, is_torch_tensor
from .array_text import DOT, Text, op_text
from .graph_schema import SCHEMA_NAME, SCHEMA_VERSION

#: Values and adjoints up to this many elements are in the document; bigger ones are summarised.
MAX_VALUE_ELEMENTS = 100
#: Formulas longer than this are left out ("": the graph itself is the formula).
EXPRESSION_MAX_CHARS = 80
#: Labels longer than this are cut (the expression and the tooltip have the rest).
LABEL_MAX_CHARS = 40


def wants_array_graph(args: Sequence[Any]) -> bool:
    """Draw at array level: the array level is on and some argument is a float array."""
    if not config.array_level:
        return False
    for arg in args:  # pytrees too: an MLP's parameters come as a tuple or a dict
        for leaf in map(_plain, pytree.flatten(arg)[0]):
            if isinstance(leaf, np.ndarray) and leaf.ndim > 0 and leaf.dtype.kind == "f":
                return True
    return False


@dataclass
class ArrayDrawing:
    """An array-level graph document, and the full arrays its summaries stand for."""

    doc: dict[str, Any]
    values: dict[int, Any]  # node id -> its value (every kept node)
    adjoints: dict[int, Any]  # node id -> d output / d node (nodes a gradient reaches)


def array_document(func: Callable, args: Sequence[Any], name: str,
                   max_nodes: int = 2000) -> ArrayDrawing | None:
    """The graph document of ``func`` at ``args`` with one node per array op (and its full
    arrays), or None where the array level cannot trace ``func`` (then the element graph is
    the one to draw)."""
    from .graph_view import nearest_ancestors  # the same cut as the element graph's

    traced = _trace(func, args)
    if traced is None:
        return None
    g, out, names = traced
    everything = g.ancestors([out])
    truncated = len(everything) > max_nodes
    kept = nearest_ancestors(g, [out], max_nodes) if truncated else everything  # type: ignore[arg-type]
    adjoints: dict[int, Any] = {}
    steps: list[tuple[int, Any, list]] = []
    if g.shape(out) == () and g.dtype(out).kind == "f":
        try:
            adjoints, steps = reverse_steps(g, out, everything)
        except (BudgetExceededError, NotArrayLevel):  # no room for the derivative nodes
            adjoints, steps = {}, []
    data = _data_names(func, args, names)
    labels, expressions = _texts(g, kept, data)
    kept_set = set(kept)
    nodes = []
    for n in kept:
        node: dict[str, Any] = {"id": n, "op": g.op[n], "label": labels[n],
                                "expression": expressions[n], "shape": list(g.shape(n))}
        _put(node, "value", g.values[n])
        _put(node, "adjoint", adjoints.get(n))
        nodes.append(node)
    edges = [{"source": a, "target": n, "argnum": i}
             for n in kept for i, a in enumerate(g.args[n]) if a in kept_set]
    head = f"{name}({', '.join(names)})"
    if g.shape(out) == ():
        head += f" = {expressions[out]}" if expressions[out] else ""
    else:
        head += f": an array output of shape {g.shape(out)}"
    if truncated:
        head += f" (showing the {len(kept):,} array ops nearest the output, of {len(everything):,})"
    doc: dict[str, Any] = {
        "schema": SCHEMA_NAME, "version": SCHEMA_VERSION, "title": head, "level": "arrays",
        "nodes": nodes, "edges": edges, "inputs": [n for n in kept if g.op[n] == "input"],
        "outputs": [out], "truncated": truncated}
    if steps:
        doc["backward"] = [_step_json(node, adjoint, pushed, kept_set)
                           for node, adjoint, pushed in steps if node in kept_set]
    return ArrayDrawing(doc, {n: g.values[n] for n in kept},
                        {n: adjoints[n] for n in kept if n in adjoints})


# ----- tracing -----
def _plain(value: Any) -> Any:
    return value.detach().cpu().numpy() if is_torch_tensor(value) else value


def _float_input(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (float, np.floating)):
        return True
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _trace(func: Callable, args: Sequence[Any]) -> tuple[ArrayGraph, int, list[str]] | None:
    names = parameter_names(func, len(args))
    g = ArrayGraph()
    rng = saved_global_rng()
    try:
        with array_tracing(g):
            traced_args = []
            for name, arg in zip(names, args):
                leaves, tree = pytree.flatten(arg)
                labels: list[str] = []
                _label_tree(tree, name, labels)  # params0, params1... as in generated code
                traced = []
                for label, value in zip(labels, map(_plain, leaves)):
                    if _float_input(value):
                        array = np.asarray(value)
                        traced.append(ArrayTraced(g, g.input(array, label), array.dtype))
                    else:
                        traced.append(value)
                traced_args.append(pytree.unflatten(tree, traced))
            out = func(*traced_args)
    except BudgetExceededError:
        raise
    except (NotArrayLevel, Exception):  # the element tracer handles it, or words the error
        restore_global_rng(rng)  # and draws what the function draws
        return None
    if not isinstance(out, ArrayTraced) or out.dtype.kind != "f" or out.graph is not g:
        restore_global_rng(rng)
        return None
    return g, out.node, names


# ----- the reverse pass, step by step -----
def reverse_steps(g: ArrayGraph, output: int, nodes: Sequence[int]
                  ) -> tuple[dict[int, Any], list[tuple[int, Any, list]]]:
    """Adjoints (node -> array) of ``nodes`` (the output's ancestors, in id order) and the steps:
    ``(node, adjoint, [(to, argnum, contribution, running total), ...])`` in processing order.

    Each node's cotangent is built with the array op's VJP rule as new graph nodes (so the graph
    grows), which is how its value is known; constants and non-float nodes get none.
    """
    pending: dict[int, list[int]] = {output: [g.const(1.0)]}
    adjoints: dict[int, Any] = {}
    steps: list[tuple[int, Any, list]] = []
    running: dict[int, Any] = {}
    for node in reversed(nodes):
        terms = pending.get(node)
        if terms is None or g.op[node] == "const" or g.dtype(node).kind != "f":
            continue
        ct = g.add(*terms)
        adjoints[node] = g.values[ct]
        pushed: list[tuple[int, int, Any, Any]] = []
        steps.append((node, adjoints[node], pushed))
        if g.op[node] == "input":
            continue
        for argnum, (arg, c) in enumerate(zip(g.args[node], arg_cotangents(g, node, ct))):
            if c is None or g.op[arg] == "const" or g.dtype(arg).kind != "f":
                continue
            pending.setdefault(arg, []).append(c)
            value = g.values[c]
            total = running[arg] = value if arg not in running else running[arg] + value
            pushed.append((arg, argnum, value, total))
    return adjoints, steps


# ----- JSON -----
def summary(value: Any) -> str:
    """A few numbers that describe a big array.

    >>> summary(np.array([[1.0, -2.0], [3.0, 6.0]]))
    'mean 2, min -2, max 6'
    >>> summary(np.array([True, False, True]))
    '2 of 3 true'
    """
    array = np.asarray(value)
    if array.size == 0:
        return "empty"
    if array.dtype == np.bool_:
        return f"{int(array.sum()):,} of {array.size:,} true"
    array = array.astype(np.float64)
    with np.errstate(all="ignore"):
        return f"mean {array.mean():.4g}, min {array.min():.4g}, max {array.max():.4g}"


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """``target[key]``: the value as JSON when small; else null plus ``key_summary``."""
    if value is None or np.size(value) <= MAX_VALUE_ELEMENTS:
        target[key] = tensor_json(value)
    else:
        target[key] = None
        target[f"{key}_summary"] = summary(value)


def _step_json(node: int, adjoint: Any, pushed: list, kept: set[int]) -> dict[str, Any]:
    step: dict[str, Any] = {"node": node}
    _put(step, "adjoint", adjoint)
    contributions = []
    for to, argnum, value, total in pushed:
        if to in kept:
            c: dict[str, Any] = {"to": to, "argnum": argnum}
            _put(c, "value", value)
            _put(c, "total", total)
            contributions.append(c)
    step["contributions"] = contributions
    return step


# ----- labels and expressions -----
def _data_names(func: Callable, args: Sequence[Any], names: list[str]) -> list[tuple[str, Any]]:
    """The non-float array arguments (labels, indices) by name: constants equal to one of them
    are labelled with its name."""
    return [(label, np.asarray(a)) for label, a in zip(names, map(_plain, args))
            if isinstance(a, np.ndarray) and not _float_input(a) and a.size > 1]


def _const_text(value: Any, data: list[tuple[str, Any]]) -> Text:
    array = np.asarray(value)
    if array.ndim == 0:
        if array.dtype == np.bool_:
            return Text(str(bool(array)))
        number = float(array)
        return Text(f"{number:.6g}", 30 if number < 0 else 100)
    for label, d in data:
        if d.shape == array.shape and np.array_equal(d, array):
            return Text(label)
    if array.ndim == 1 and array.dtype.kind in "iu" and np.array_equal(array, np.arange(array.size)):
        return Text(f"arange({array.size})")
    if array.size <= 4:
        return Text(str(array.tolist()))
    return Text("array " + "×".join(str(n) for n in array.shape))


def _texts(g: ArrayGraph, kept: list[int], data: list[tuple[str, Any]]
           ) -> tuple[dict[int, str], dict[int, str]]:
    """Labels (leaves named, intermediate operands as ``·``) and formulas ("" when too long)."""
    kept_set = set(kept)
    leaf: dict[int, Text] = {}
    formula: dict[int, Text | None] = {}

    def leaf_text(n: int) -> Text | None:
        if g.op[n] == "input":
            return Text(g.labels.get(n) or str(g.params[n][0]))
        if g.op[n] == "const":
            return _const_text(g.values[n], data)
        return None

    labels: dict[int, str] = {}
    for n in kept:
        own = leaf_text(n)
        if own is not None:
            leaf[n] = own
            formula[n] = own
            labels[n] = own.text
            continue
        args = g.args[n]
        operands = [leaf.get(a) or leaf_text(a) or DOT for a in args]
        ndim = len(g.shape(args[0])) if args else None
        label = op_text(g.op[n], operands, g.params[n], ndim).text
        labels[n] = label if len(label) <= LABEL_MAX_CHARS else label[:LABEL_MAX_CHARS - 1] + "…"
        parts = [formula.get(a) if a in kept_set else None for a in args]
        if any(p is None for p in parts):
            formula[n] = None
            continue
        text = op_text(g.op[n], parts, g.params[n], ndim)  # type: ignore[arg-type]
        formula[n] = text if len(text.text) <= EXPRESSION_MAX_CHARS else None
    expressions = {n: (formula[n].text if formula.get(n) is not None else "")  # type: ignore[union-attr]
                   for n in kept}
    return labels, expressions
