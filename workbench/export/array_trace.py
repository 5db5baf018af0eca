"""The array-level trace :mod:`workbench.export.array_numpy` prints: a gradient, its inputs and
the structure of its arguments and results.

Arguments may be pytrees (dicts, tuples and lists, as ``torch.func.grad`` takes them): each float
leaf is an input of the exported function, read from the argument the caller passes (``p["0.weight"]``),
and the gradient comes back in the differentiated arguments' structure. Integer arrays (class
labels, index arrays) are inputs too, not constants baked into the module: they are traced as
input nodes of the graph (``staging.trace_arrays(integers_as_inputs=True)``), whose values the
trace refuses to turn into Python numbers, so the module is valid for any labels where its
checks (a branch on their values, a label range) hold. A function that needs their values as
numbers is traced again with them fixed at their example values, and the docstring says so.

>>> import numpy as np
>>> def loss(p, X, y):
...     return ((X @ p["w"] + p["b"] - y) ** 2).mean()
>>> trace = trace_gradient(loss, ({"w": np.ones(3), "b": 0.0}, np.ones((4, 3)), np.zeros(4)), 0)
>>> [(p.name, p.access) for p in trace.params]
[('p_w', "p['w']"), ('p_b', "p['b']"), ('X', 'X'), ('y', 'y')]
>>> trace.arguments, trace.gradient_trees[0][0][0]
(['p', 'X', 'y'], 'dict')
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import pytree
from ..arrays.graph import ArrayGraph, NotArrayLevel
from ..arrays.staging import ArrayEntry, dynamic_integers, out_of_memory, trace_arrays, wants_arrays
from ..arrays.transforms import gradient_body
from ..errors import BudgetExceededError
from ..transforms.staging import _leaf_kind
from .program import identifier


@dataclass
class Param:
    """One input of the exported function: a float leaf, or integer data (labels, indices)."""

    name: str  # the local name in the exported code
    access: str  # how it is read from the function's arguments: ``p['0.weight']``
    node: int
    integer: bool = False


@dataclass
class ArrayTrace:
    """An array-level trace of a function's gradient (and value) at example arguments."""

    name: str
    graph: ArrayGraph
    arguments: list[str]  # the exported functions' parameters (the function's, in order)
    params: list[Param]  # the inputs read from them
    static: list[str]  # names of the arguments fixed at their example values
    wrt: list[int]  # indices into ``arguments`` of the differentiated ones
    gradient_trees: list[tuple[Any, list[int]]]  # per differentiated argument: its structure, nodes
    value: int
    guards: list[tuple[int, bool]] = field(default_factory=list)
    several: bool = False  # argnums was a tuple: the gradient is a tuple

    @property
    def float_params(self) -> list[Param]:
        return [p for p in self.params if not p.integer]


def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _numeric(leaf: Any) -> Any:
    return leaf.detach().cpu().numpy() if _is_torch(leaf) else leaf


def _access(base: str, path: tuple) -> str:
    return base + "".join(f"[{key!r}]" for key in path)


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """The key path of each leaf of a pytree structure, in flatten's order (None: unprintable)."""
    tag = tree[0]
    if tree is pytree.LEAF or tag == "*":
        return [prefix]
    if tag == "None":
        return []
    if tag in ("tuple", "list"):
        return [p for k, t in enumerate(tree[1]) for p in _paths(t, prefix + (k,))]
    if tag == "dict" and len(tree) == 3 and all(isinstance(k, (str, int)) for k in tree[1]):
        return [p for k, t in zip(tree[1], tree[2]) for p in _paths(t, prefix + (k,))]
    raise NotArrayLevel(f"a {tag} argument")  # namedtuples, OrderedDicts: the element export


def _trace(body: Callable, numeric: list, leaves: list, tree, labels: list[str],
           integers_as_inputs: bool) -> ArrayEntry:
    """``staging.trace_arrays``, every result traced (the module computes all of them)."""
    from .. import arrays  # noqa: F401 - registers the torch handlers with the tracer

    entry = trace_arrays(body, numeric, leaves, tree, labels, integers_as_inputs)
    if any(spec.shape is None for spec in entry.out_specs):
        raise NotArrayLevel("a result that is not traced")
    return entry


def trace_gradient(func: Callable, example_args: Sequence[Any], argnums: int | tuple[int, ...],
                   why: list[str] | None = None) -> ArrayTrace | None:
    """Trace ``func``'s gradient at array level at ``example_args`` (None: it cannot be, and
    ``why`` gets the reason where the trace failed)."""
    from ..display.capture import function_name as display_name
    from ..display.capture import parameter_names
    from ..transforms.captured import restore_global_rng, saved_global_rng
    from ..transforms.grad import normalize_argnums

    if isinstance(func, str) or not callable(func) or not example_args:
        return None  # texts and defaults are scalar programs, printed element by element
    taken: set[str] = {"dtype"}  # the torch module's local for the computation's dtype
    names = []
    for n in parameter_names(func, len(example_args)):
        names.append(identifier(n, taken))
        taken.add(names[-1])
    args = [np.asarray(a, dtype=np.float64) if _number_sequence(a) else a for a in example_args]
    leaves, tree = pytree.flatten((tuple(args), {}))
    per_arg = [pytree.flatten(a) for a in args]
    try:
        paths = [_paths(t) for _, t in per_arg]
        positions = normalize_argnums(argnums, len(args), "export")
    except (NotArrayLevel, Exception) as error:
        return _refused(why, str(error))
    labels = [_access(n, p) for n, ps in zip(names, paths) for p in ps]  # p['0.weight']
    # float inputs as staging.trace_arrays decides them, so the input nodes line up with them
    floats = [_leaf_kind(leaf) == "f" for leaf in leaves]
    numeric = [_numeric(leaf) for leaf in leaves]
    if not wants_arrays(numeric):
        return _refused(why, "no argument holds a float array: it exports functions of arrays")
    for j in _leaf_range(per_arg, positions):
        if not floats[j]:
            return _refused(why, f"{labels[j]} is of type {type(leaves[j]).__name__}, not a "
                                 "float or a float array")
    several = isinstance(argnums, tuple)
    gradient = gradient_body(func, argnums, has_aux=False)

    def body(a: tuple, kwargs: dict) -> list:
        grads, value, _ = gradient(a, kwargs)
        return [*(grads if several else (grads,)), value]

    def run(integers: frozenset[int]) -> ArrayEntry:
        saved = saved_global_rng()
        try:
            return _trace(body, numeric, leaves, tree, labels, integers)
        finally:  # every trace draws what the function draws, from the same state
            restore_global_rng(saved)

    try:
        integers = frozenset(j for j, leaf in enumerate(leaves) if dynamic_integers(leaf))
        entry, integers = _with_integer_inputs(run, integers)
    except BudgetExceededError:
        raise
    except MemoryError:
        raise out_of_memory("while tracing for export") from None
    except (NotArrayLevel, Exception) as error:  # the element export traces it (or words
        return _refused(why, f"{type(error).__name__}: {error}")  # the error)
    return _array_trace(display_name(func), names, per_arg, labels, floats, entry, integers,
                        positions, several, taken)


def _with_integer_inputs(run: Callable, integers: frozenset[int]) -> tuple[ArrayEntry, frozenset]:
    """A trace with as many integer leaves as inputs as the function allows: all of them, else
    all but one (the one it turns into Python numbers, tried in turn), else none."""
    candidates = [integers] + [integers - {j} for j in sorted(integers)]
    if len(integers) > 1:
        candidates.append(frozenset())
    for k, chosen in enumerate(candidates):
        try:
            return run(chosen), chosen
        except (BudgetExceededError, MemoryError):
            raise
        except (NotArrayLevel, Exception):  # it needs these integers' values as numbers
            if k == len(candidates) - 1:
                raise
    raise AssertionError("unreachable")


def _refused(why: list[str] | None, reason: str) -> None:
    """None (no array-level trace), with the reason in ``why``."""
    if why is not None:
        why.append(reason)


def _number_sequence(value: Any) -> bool:
    """A list or tuple of plain numbers: one float array, as before pytrees."""
    return isinstance(value, (list, tuple)) and bool(value) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in pytree.flatten(value)[0]
    ) and np.asarray(value).dtype.kind == "f"


def _leaf_range(per_arg: list, positions: Sequence[int]) -> list[int]:
    starts = np.cumsum([0] + [len(ls) for ls, _ in per_arg])
    return [j for k in positions for j in range(starts[k], starts[k + 1])]


def _array_trace(name: str, names: list[str], per_arg: list, labels: list[str], floats: list[bool],
                 entry: ArrayEntry, integers: frozenset[int], positions: Sequence[int],
                 several: bool, taken: set[str]) -> ArrayTrace:
    params, arguments, static = [], [], []
    j = 0
    nodes = iter(entry.inputs)  # in leaf order: float leaves, and integer arrays if inputs
    for k, (leaves, _tree) in enumerate(per_arg):
        used = False
        for _leaf in leaves:
            label, is_float = labels[j], floats[j]
            j += 1
            if not is_float and j - 1 not in integers:
                continue
            node = next(nodes)
            local = names[k]
            if label != local:  # a leaf of a container: p['0.weight'] is read into p_0_weight
                local = identifier(re.sub(r"\W+", "_", label).strip("_"), taken)
                taken.add(local)
            params.append(Param(local, label, node, integer=not is_float))
            used = True
        (arguments if used else static).append(names[k])
    outputs = iter(entry.outputs)
    trees = [(per_arg[k][1], [next(outputs) for _ in per_arg[k][0]]) for k in positions]
    return ArrayTrace(name, entry.graph, arguments, params, static,
                      [arguments.index(names[k]) for k in positions], trees, entry.outputs[-1],
                      list(entry.guards), several)
