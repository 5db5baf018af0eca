"""A transform body traced at array level at top level, and its compiled version.

``Staged`` (``workbench.transforms.staging``) owns the cache and the decision; this module traces
one body on :class:`ArrayTraced` inputs and compiles what its outputs and guards need into one
numpy function (``codegen``). Float inputs are computed in float64 and each output is rounded
once to its traced dtype, as on the element path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import pytree
from .codegen import ArrayProgram, generate
from .graph import ArrayGraph
from .traced import ArrayTraced, array_tracing


def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _float_leaf(leaf: Any) -> bool:
    if isinstance(leaf, float):
        return True
    dtype = getattr(leaf, "dtype", None)
    return isinstance(dtype, np.dtype) and dtype.kind == "f"


def _as_tensor(x: ArrayTraced) -> Any:
    """A torch input as a torch.Tensor wrapper (``torch_functions.TracedTensor``)."""
    from .torch_tensor import as_tensor

    return as_tensor(x)


def _unwrap(x: Any) -> Any:
    """The traced value inside a torch.Tensor wrapper; anything else as it is."""
    if not _is_torch(x):
        return x
    from .torch_tensor import unwrap

    return unwrap(x)


def _float_tensor(leaf: Any) -> bool:
    return _is_torch(leaf) and leaf.is_floating_point() and leaf.dim() > 0


def wants_arrays(leaves: list, only: bool = False) -> bool:
    """Trace at array level: numpy or torch arguments with at least one float array (scalar
    programs keep the element path's thin scalar code). ``only``: no element body to fall back
    to, so try always."""
    from ..config import config

    if not config.array_level:
        return False
    return only or any((_float_leaf(leaf) and np.ndim(leaf) > 0) or _float_tensor(leaf)
                       for leaf in leaves)


@dataclass
class OutSpec:
    """How one output leaf comes back: computed by the program, or a plain object."""

    shape: tuple[int, ...] | None  # None: a static object, returned as it is
    dtype: Any = None
    static: Any = None


@dataclass
class ArrayEntry:
    """One compiled array-level version: valid where its guards hold."""

    graph: ArrayGraph
    inputs: list[int]
    outputs: list[int]
    guards: list[tuple[int, bool]]
    out_tree: Any
    out_specs: list[OutSpec]
    _program: ArrayProgram | None = field(default=None, repr=False)
    draws_random: bool = False
    used: bool = False
    array_level = True
    _function: Callable = field(default=None, repr=False)  # type: ignore[assignment]
    _single: OutSpec | None = field(default=None, repr=False)
    # Positions among the inputs that take integer arrays (see ``dynamic_integers``).
    integer_inputs: tuple[int, ...] = ()

    @property
    def program(self) -> ArrayProgram:
        """The compiled numpy program: generated at the second call (the first call's answer
        is the traced values, computed by the same numpy expressions)."""
        if self._program is None:
            self._program = generate(self.graph, self.inputs, self.outputs, self.guards)
            # IEEE results without warnings, as the element level gives (the decorator form
            # of errstate costs half of the with-statement's).
            self._function = np.errstate(all="ignore")(self._program.function)
        return self._program

    def __post_init__(self) -> None:
        single = self.out_tree == pytree.LEAF and len(self.out_specs) == 1 and \
            self.out_specs[0].shape  # a non-scalar array
        self._single = self.out_specs[0] if single else None

    def run(self, values: list) -> tuple | None:
        """The outputs at these float inputs, or None where a guard fails."""
        if self._function is None:
            self.program  # noqa: B018 - compiles it
        if self.integer_inputs:
            values = [np.asarray(v, dtype=np.int64 if k in self.integer_inputs else np.float64)
                      for k, v in enumerate(values)]
        else:
            values = [np.asarray(v, dtype=np.float64) for v in values]
        try:
            return self._function(*values)
        except IndexError:  # an integer input out of range: tracing again words the error
            return None
        except MemoryError:
            raise out_of_memory("running the compiled program") from None

    def forget_values(self) -> None:
        """Drop the values kept from tracing (all but constants, which the program embeds): a
        cached version must not hold its inputs and every intermediate array alive."""
        values, ops = self.graph.values, self.graph.op
        for node, op in enumerate(ops):
            if op != "const":
                values[node] = None

    def traced_result(self) -> tuple:
        """The outputs as computed while tracing (copies: a value may be an input's array)."""
        return tuple(np.array(self.graph.values[o]) for o in self.outputs)

    def assemble(self, result: tuple, use_torch: bool) -> Any:
        if self._single is not None and not use_torch:  # one array out: no pytree rebuild
            value = result[0]
            spec = self._single
            if type(value) is np.ndarray and value.shape == spec.shape and value.dtype == \
                    spec.dtype and value.flags.owndata and value.flags.writeable:
                return value
        leaves = []
        handed_over: set[int] = set()  # one array computed for two outputs is copied once
        computed = iter(result)
        for spec in self.out_specs:
            if spec.shape is None:
                leaves.append(spec.static)
                continue
            value = np.asarray(next(computed))
            if value.shape != spec.shape:
                value = np.broadcast_to(value, spec.shape)
            if not spec.shape:
                array = value.astype(spec.dtype)[()]
            else:  # a fresh array of the program's is handed over; views and inputs are copied
                fresh = value.flags.owndata and value.flags.writeable and \
                    id(value) not in handed_over
                array = value.astype(spec.dtype, copy=not fresh)
                handed_over.add(id(value))
            if use_torch:  # the fresh array above is handed over; a 0-d value is wrapped
                torch = sys.modules["torch"]
                array = torch.from_numpy(array if spec.shape else np.array(array))
            leaves.append(array)
        return pytree.unflatten(self.out_tree, leaves)


def out_of_memory(doing: str) -> Exception:
    from ..errors import BudgetExceededError

    return BudgetExceededError(
        f"workbench ran out of memory {doing}: the arrays of this program (its inputs, "
        "intermediate values and gradients) do not fit; use smaller arrays (a batch at a time, "
        "or wb.vmap with chunk_size), or the numeric tape (wb.tape), which keeps fewer arrays")


def dynamic_integers(leaf: Any) -> bool:
    """An integer array (numpy or torch, at least one axis) that a cached array-level program
    takes as an input at every call, so new class labels do not trace again. (Python ints and
    0-d integers stay static: they are sizes, axes and counts more often than data.)"""
    if type(leaf) is np.ndarray:
        return leaf.dtype.kind in "iu" and leaf.ndim > 0
    return _is_torch(leaf) and leaf.dim() > 0 and not leaf.is_floating_point() and \
        not leaf.is_complex() and leaf.dtype != sys.modules["torch"].bool


def trace_arrays(body: Callable, numeric: list, leaves: list, tree, labels: list[str],
                 integers_as_inputs: bool | frozenset[int] = False) -> ArrayEntry:
    """Trace ``body`` with array-level inputs for the float leaves, and compile it.
    ``integers_as_inputs``: integer arrays are inputs too (``dynamic_integers``; or only the
    leaves at these positions), not data baked into the program; traced values refuse to
    become Python numbers, so the program is valid for any values of them where its guards
    hold."""
    from ..transforms.captured import global_rng_state
    from ..transforms.staging import _leaf_kind

    g = ArrayGraph()
    g.torch_style = any(_is_torch(leaf) for leaf in leaves)  # torch's meaning of x.var()...
    inputs: list[int] = []
    integer_inputs: list[int] = []
    random_state = global_rng_state()
    with array_tracing(g):
        traced_leaves = []
        for k, (value, leaf) in enumerate(zip(numeric, leaves)):
            if (k in integers_as_inputs if isinstance(integers_as_inputs, frozenset)
                    else integers_as_inputs) and dynamic_integers(leaf):
                integer_inputs.append(len(inputs))
                node = g.integer_input(np.asarray(value), labels[k])
                inputs.append(node)
                traced_leaves.append(ArrayTraced(g, node, np.asarray(value).dtype))
            elif _leaf_kind(leaf) == "f":
                array = np.asarray(value)
                node = g.input(array, labels[k])
                inputs.append(node)
                traced = ArrayTraced(g, node, array.dtype if array.dtype.kind == "f"
                                     else np.float64)
                traced_leaves.append(_as_tensor(traced) if _is_torch(leaf) else traced)
            else:
                traced_leaves.append(leaf)
        args, kwargs = pytree.unflatten(tree, traced_leaves)
        out = body(args, kwargs)
    out_leaves, out_tree = pytree.flatten(out)
    outputs: list[int] = []
    specs = []
    for leaf in out_leaves:
        leaf = _unwrap(leaf)
        if isinstance(leaf, ArrayTraced):
            outputs.append(leaf.node)
            specs.append(OutSpec(leaf.shape, leaf.dtype))
        else:
            specs.append(OutSpec(None, static=leaf))
    draws_random = global_rng_state() != random_state
    return ArrayEntry(g, inputs, outputs, list(g.guards), out_tree, specs,
                      draws_random=draws_random, integer_inputs=tuple(integer_inputs))
