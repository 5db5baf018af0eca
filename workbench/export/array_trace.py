"""The array-level trace :mod:`workbench.export.array_numpy` prints: a gradient, its inputs and
the structure of its arguments and results.

Arguments may be pytrees (dicts, tuples and lists, as ``torch.func.grad`` takes them): each float
leaf is an input of the exported function, read from the argument the caller passes (``p["0.weight"]``),
and the gradient comes back in the differentiated arguments' structure. Integer and bool arrays
(class labels, index arrays) are inputs too, not constants baked into the module: they are traced
as input nodes of the graph wherever the function uses their data, and a second trace at other
values of theirs checks that nothing else the trace computed depends on them (constants computed
from labels while tracing, a branch on their values). Where that check fails they are fixed at
their example values, as other non-float arguments are, and the docstring says so.

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
from ..arrays.staging import ArrayEntry, OutSpec, out_of_memory, wants_arrays
from ..arrays.traced import ArrayTraced, array_tracing
from ..arrays.transforms import gradient_body
from ..errors import BudgetExceededError
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


def _kind(leaf: Any) -> str:
    """'f': a float input; 'i': integer or bool data (an input where the check allows); 's':
    anything else, fixed at its example value."""
    if isinstance(leaf, bool):
        return "s"
    if isinstance(leaf, (float, np.floating)):
        return "f"
    if _is_torch(leaf):
        kind = "f" if leaf.is_floating_point() else "i"
        return kind if kind == "f" or leaf.dim() else "s"
    if isinstance(leaf, np.ndarray) and leaf.dtype.kind in "fiub":
        kind = "f" if leaf.dtype.kind == "f" else "i"
        return kind if kind == "f" or leaf.ndim else "s"
    return "s"


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


class _DataGraph(ArrayGraph):
    """An array graph in which the data of integer arguments is an input node wherever the
    traced function makes a constant of it (``x[np.arange(n), y]``), so that nothing computed
    from it is folded into a constant."""

    def __init__(self, data: Sequence[tuple[np.ndarray, str]]) -> None:
        super().__init__()
        self.data = [(np.asarray(v), label) for v, label in data]
        self.data_nodes: dict[str, int] = {}  # label -> its input node

    def const(self, value: Any) -> int:
        array = np.asarray(value)
        if array.ndim and array.dtype.kind in "iub":
            for data, label in self.data:
                if data.shape == array.shape and (data.dtype.kind == "b") == \
                        (array.dtype.kind == "b") and np.array_equal(data, array):
                    node = self.data_nodes.get(label)
                    if node is None:
                        stored = data if data.dtype.kind == "b" else data.astype(np.int64)
                        node = self._push("input", (), (label,), stored)
                        self.labels[node] = label
                        self.data_nodes[label] = node
                    return node
        return super().const(value)


def _trace(body: Callable, numeric: list, leaves: list, kinds: list[str], tree, labels: list[str],
           data: list[tuple[np.ndarray, str]]) -> tuple[ArrayEntry, _DataGraph]:
    """``staging.trace_arrays`` over a :class:`_DataGraph` (the integer leaves' data as inputs)."""
    from .. import arrays  # noqa: F401 - registers the torch handlers with the tracer

    g = _DataGraph(data)
    g.torch_style = any(_is_torch(leaf) for leaf in leaves)
    inputs: list[int] = []
    with array_tracing(g):
        handed = []
        for value, leaf, kind, label in zip(numeric, leaves, kinds, labels):
            if kind != "f":
                handed.append(leaf)
                continue
            array = np.asarray(value)
            node = g.input(array, label)
            inputs.append(node)
            traced = ArrayTraced(g, node, array.dtype)
            if _is_torch(leaf):
                from ..arrays.torch_tensor import as_tensor

                handed.append(as_tensor(traced))
            else:
                handed.append(traced)
        args, kwargs = pytree.unflatten(tree, handed)
        out = body(args, kwargs)
    outputs, specs = [], []
    out_leaves, out_tree = pytree.flatten(out)
    for leaf in out_leaves:
        if _is_torch(leaf):
            from ..arrays.torch_tensor import unwrap

            leaf = unwrap(leaf)
        if not isinstance(leaf, ArrayTraced):
            raise NotArrayLevel("a result that is not traced")
        outputs.append(leaf.node)
        specs.append(OutSpec(leaf.shape, leaf.dtype))
    return ArrayEntry(g, inputs, outputs, list(g.guards), out_tree, specs), g


def _alternatives(data: np.ndarray) -> list[np.ndarray]:
    """Other values for integer data, most likely valid first (a class label stays a class seen):
    each value moved to the next distinct value present, the data rolled, then shifted by one."""
    if data.dtype.kind == "b":
        return [~data]
    values = np.unique(data)
    out = []
    if len(values) > 1:
        out.append(values[(np.searchsorted(values, data) + 1) % len(values)].astype(data.dtype))
        rolled = np.roll(data.ravel(), 1).reshape(data.shape)
        if not np.array_equal(rolled, data):
            out.append(rolled)
    out += [data + 1, data - 1]
    return out


def _same_program(a: ArrayGraph, b: ArrayGraph, ea: ArrayEntry, eb: ArrayEntry) -> bool:
    """The two traces are one program: the same ops on the same nodes, equal constants."""
    if len(a) != len(b) or a.op != b.op or a.args != b.args or a.params != b.params or \
            ea.outputs != eb.outputs or ea.guards != eb.guards:
        return False
    for node, op in enumerate(a.op):
        if op == "const":
            va, vb = np.asarray(a.values[node]), np.asarray(b.values[node])
            if va.dtype != vb.dtype or va.shape != vb.shape or va.tobytes() != vb.tobytes():
                return False
    return True


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
    kinds = [_kind(leaf) for leaf in leaves]
    numeric = [_numeric(leaf) for leaf in leaves]
    if not wants_arrays(numeric):
        return _refused(why, "no argument holds a float array: it exports functions of arrays")
    for j in _leaf_range(per_arg, positions):
        if kinds[j] != "f":
            return _refused(why, f"{labels[j]} is of type {type(leaves[j]).__name__}, not a "
                                 "float or a float array")
    several = isinstance(argnums, tuple)
    gradient = gradient_body(func, argnums, has_aux=False)

    def body(a: tuple, kwargs: dict) -> list:
        grads, value, _ = gradient(a, kwargs)
        return [*(grads if several else (grads,)), value]

    def run(data: dict[int, np.ndarray]) -> tuple[ArrayEntry, _DataGraph]:
        """A trace with these values of integer leaves, which are input nodes of the graph."""
        handed = list(leaves)
        for j, value in data.items():
            handed[j] = _like(leaves[j], value)
        saved = saved_global_rng()
        try:
            return _trace(body, numeric, handed, kinds, tree, labels,
                          [(value, labels[j]) for j, value in data.items()])
        finally:  # every trace draws what the function draws, from the same state
            restore_global_rng(saved)

    examples = {j: np.asarray(numeric[j]) for j, k in enumerate(kinds) if k == "i"}
    try:
        entry, g = run(examples)
        kept = _inputs_kept(run, entry, g, examples, labels)
        if kept != list(examples):  # the others are fixed at their example values
            entry, g = run({j: examples[j] for j in kept})
    except BudgetExceededError:
        raise
    except MemoryError:
        raise out_of_memory("while tracing for export") from None
    except (NotArrayLevel, Exception) as error:  # the element export traces it (or words
        return _refused(why, f"{type(error).__name__}: {error}")  # the error)
    return _array_trace(display_name(func), names, per_arg, labels, kinds, entry, g, positions,
                        several, taken)


def _refused(why: list[str] | None, reason: str) -> None:
    """None (no array-level trace), with the reason in ``why``."""
    if why is not None:
        why.append(reason)


def _like(leaf: Any, value: np.ndarray) -> Any:
    """``value`` as the kind of object ``leaf`` is (a torch tensor for a tensor)."""
    if _is_torch(leaf):
        import torch

        return torch.as_tensor(value).to(leaf.dtype)
    return value.astype(leaf.dtype)


def _number_sequence(value: Any) -> bool:
    """A list or tuple of plain numbers: one float array, as before pytrees."""
    return isinstance(value, (list, tuple)) and bool(value) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in pytree.flatten(value)[0]
    ) and np.asarray(value).dtype.kind == "f"


def _leaf_range(per_arg: list, positions: Sequence[int]) -> list[int]:
    starts = np.cumsum([0] + [len(ls) for ls, _ in per_arg])
    return [j for k in positions for j in range(starts[k], starts[k + 1])]


def _inputs_kept(run: Callable, entry: ArrayEntry, g: _DataGraph, examples: dict[int, Any],
                 labels: list[str]) -> list[int]:
    """The integer leaves that stay inputs of the module: those whose data the trace used as it
    is (an input node) where a trace at other values of theirs is the same program (no constant
    computed from them, no branch on them)."""
    kept = []
    for j, data in examples.items():
        if labels[j] not in g.data_nodes:
            continue  # not used as it is (or not at all): fixed
        for other in _alternatives(data):
            try:
                other_entry, other_g = run({**examples, j: other})
            except (NotArrayLevel, Exception):  # out of range for the function: try another
                continue
            if _same_program(g, other_g, entry, other_entry):
                kept.append(j)
            break
    return kept


def _array_trace(name: str, names: list[str], per_arg: list, labels: list[str], kinds: list[str],
                 entry: ArrayEntry, g: _DataGraph, positions: Sequence[int], several: bool,
                 taken: set[str]) -> ArrayTrace:
    params, arguments, static = [], [], []
    j = 0
    float_nodes = iter(entry.inputs)
    for k, (leaves, _tree) in enumerate(per_arg):
        used = False
        for _leaf in leaves:
            kind, label = kinds[j], labels[j]
            j += 1
            if kind == "f":
                node = next(float_nodes)
            elif kind == "i" and label in g.data_nodes:
                node = g.data_nodes[label]
            else:
                continue
            local = names[k]
            if label != local:  # a leaf of a container: p['0.weight'] is read into p_0_weight
                local = identifier(re.sub(r"\W+", "_", label).strip("_"), taken)
                taken.add(local)
            params.append(Param(local, label, node, integer=kind != "f"))
            used = True
        (arguments if used else static).append(names[k])
    outputs = iter(entry.outputs)
    trees = [(per_arg[k][1], [next(outputs) for _ in per_arg[k][0]]) for k in positions]
    return ArrayTrace(name, g, arguments, params, static,
                      [arguments.index(names[k]) for k in positions], trees, entry.outputs[-1],
                      list(entry.guards), several)
