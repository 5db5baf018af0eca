"""``vmap`` with torch.func's semantics, evaluated as ONE vectorised numpy call over the batch.

At top level, ``vmap(f)`` traces ``f`` on a single example (the batched arguments' first slice),
compiles the traced program with the ``batch`` backend -- every scalar of a batched argument
becomes a vector over the batch -- and evaluates it once for the whole batch. So
``vmap(grad(loss), in_dims=(None, 0, 0))`` is the compiled gradient run as numpy code over all
examples, not a Python loop.

Control flow that depends on per-example values is still right: the compiled program returns a
mask of the examples whose guards hold; the others are traced again from their own first example
and evaluated with that version, group by group (with a one-time warning that says why).

Inside another transform's trace (``grad`` of a function that calls ``vmap``, nested ``vmap``),
``vmap`` maps over the examples and stacks the traced results: the enclosing transform compiles
the whole thing.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import pytree
from ..array_api import ARRAY_FUNCTIONS
from ..arrays.graph import NotArrayLevel
from ..arrays.staging import wants_arrays
from ..arrays.traced import ArrayTraced, active_graph
from ..arrays.transforms import vmap_body as array_vmap_body
from ..errors import InputTypeError, OutputTypeError, ShapeError, WorkbenchError
from ..symbolic.batchgen import batch_program
from ..tracing import STATE, Traced, as_ids
from .captured import fingerprint, restore_global_rng, saved_global_rng
from .grad import as_output, user_facing
from .staging import (
    MISS,
    Entry,
    Staged,
    _leaf_kind,
    _static_key,
    _to_numpy,
    _unverifiable_in,
    is_torch_tensor,
    torch_refusal_explained,
)
from .versions import VersionCache

_warned: set[int] = set()


class VmapError(InputTypeError, ValueError):
    """``in_dims`` / ``out_dims`` do not fit the arguments or outputs. Both a TypeError and a
    ValueError: torch.func raises ValueError for these, workbench's earlier versions TypeError."""


class VmapRandomnessError(WorkbenchError, ValueError):
    """The vmapped function draws random numbers and ``randomness='error'`` (the default)."""


def _check_dims_spec(dims: Any, name: str) -> None:
    described = "inputs" if name == "in_dims" else "outputs"
    if isinstance(dims, (set, frozenset, str, bytes, float)) or not (
            dims is None or isinstance(dims, (int, tuple, list, dict))):
        raise VmapError(f"vmap: {name} must be an int, None, or a (nested) tuple of ints and None "
                        f"matching the structure of the {described}, "
                        f"got {type(dims).__name__} ({dims!r:.60})")
    if name == "in_dims" and isinstance(dims, list):  # torch.func refuses it too
        raise VmapError(f"vmap: in_dims must be an int, None or a tuple with one entry per "
                        f"positional argument, got a list ({dims!r:.60}); write "
                        f"in_dims={tuple(dims)!r}")
    leaves, _ = pytree.flatten(dims)
    for d in leaves:
        if d is not None and (isinstance(d, bool) or not isinstance(d, int)):
            raise VmapError(f"vmap: {name} must be made of ints and None, got {d!r} "
                            f"({type(d).__name__}) in {name}={dims!r}")


def _leaf_dims(in_dims: Any, args: tuple) -> list[int | None]:
    """One batch dimension (or None) per leaf of ``args``, from an ``in_dims`` prefix tree."""
    if isinstance(in_dims, int) or in_dims is None:
        return [in_dims] * len(pytree.flatten(args)[0])
    if len(in_dims) != len(args):
        raise VmapError(
            f"vmap: in_dims={in_dims!r} is not compatible with the structure of the inputs: it "
            f"has {len(in_dims)} entr{'y' if len(in_dims) == 1 else 'ies'}, but the function was "
            f"called with {len(args)} positional argument(s); give an int or None for all, or a "
            "tuple with one entry per positional argument")
    dims: list[int | None] = []
    for k, (spec, arg) in enumerate(zip(in_dims, args)):
        _prefix_dims(spec, pytree.flatten(arg)[1], dims, f"in_dims[{k}]", "that argument")
    return dims


def _prefix_dims(spec: Any, treedef, out: list, where: str, what: str) -> None:
    """Expand a dims entry over a pytree (an int or None covers a whole subtree). As in
    torch.func, a container in the spec must be of the same kind as the one it describes."""
    if spec is None or isinstance(spec, int):
        out.extend([spec] * pytree.num_leaves(treedef))
        return
    tag = treedef[0]
    children = treedef[2] if tag == "namedtuple" else treedef[1] if tag in ("tuple", "list") \
        else None
    same_kind = (isinstance(spec, tuple) and tag in ("tuple", "namedtuple")) or \
        (type(spec) is list and tag == "list")
    if same_kind and children is not None and len(spec) == len(children):
        for i, (s, sub) in enumerate(zip(spec, children)):
            _prefix_dims(s, sub, out, f"{where}[{i}]", what)
        return
    if tag == "dict" and isinstance(spec, dict) and set(spec) == set(treedef[1]):
        for key, sub in zip(treedef[1], treedef[2]):
            _prefix_dims(spec[key], sub, out, f"{where}[{key!r}]", what)
        return
    raise VmapError(f"vmap: {where}={spec!r} is not compatible with the structure of {what} "
                    f"there ({pytree.describe(treedef)}, * a leaf); give an int or None, or the same "
                    "structure (tuple for tuple, list for list, dict for dict) with an int or None per leaf")


def _leaf_names(args: tuple) -> list[str]:
    """'argument 0', or 'argument 1 (leaf 2)' inside a pytree: how errors name a leaf."""
    names = []
    for i, arg in enumerate(args):
        n = len(pytree.flatten(arg)[0])
        names.extend([f"argument {i}"] if n == 1 else [f"argument {i} (leaf {j})" for j in range(n)])
    return names


def _batch_size(leaves: list, dims: list[int | None],
                args: tuple) -> tuple[int, list[int | None]]:
    sizes = {}
    normalized: list[int | None] = []
    for k, (leaf, d) in enumerate(zip(leaves, dims)):
        if d is None:
            normalized.append(None)
            continue
        shape = leaf.shape if isinstance(leaf, (Traced, ArrayTraced)) else np.shape(_to_numpy(leaf))
        if not (isinstance(leaf, (Traced, ArrayTraced, np.ndarray)) or is_torch_tensor(leaf)):
            raise VmapError(f"vmap: got in_dim={d} for {_leaf_names(args)[k]}, a "
                            f"{type(leaf).__name__}; only "
                            "arrays can be mapped over: use None for it in in_dims")
        if not -len(shape) <= d < len(shape):
            raise VmapError(f"vmap: in_dim={d} is out of range for {_leaf_names(args)[k]} of shape "
                            f"{tuple(shape)} ({len(shape)} dimensions)")
        d = d % len(shape)
        normalized.append(d)
        sizes[k] = shape[d]
    if not sizes:
        raise VmapError("vmap: at least one argument must be mapped over; every in_dim is None")
    if len(set(sizes.values())) > 1:
        names = _leaf_names(args)  # only when there is an error to report
        detail = ", ".join(f"{names[k]} has {n}" for k, n in sizes.items())
        raise ShapeError(f"vmap: the mapped dimensions must all have the same size, but {detail}; "
                         "map over equally long axes, or use None in in_dims for an argument that "
                         "is shared by all examples")
    return next(iter(sizes.values())), normalized


def _take(leaf, d: int | None, index):
    if d is None:
        return leaf
    if isinstance(leaf, Traced):
        return leaf[(slice(None),) * d + (index,)]
    return np.take(_to_numpy(leaf), index, axis=d)


def _out_dims_per_leaf(out_dims: Any, out_tree, n_leaves: int) -> list[int | None]:
    """One output dimension (or None) per output leaf, from an ``out_dims`` prefix tree."""
    dims: list[int | None] = []
    _prefix_dims(out_dims, out_tree, dims, "out_dims", "the function's outputs")
    return dims


def _output_axis(d: int, ndim: int, k: int) -> int:
    """Where the batch dimension goes in output leaf ``k`` of ``ndim`` dimensions (batch included)."""
    if not -ndim <= d < ndim:
        raise VmapError(f"vmap: out_dims={d} is out of range for output {k}, which has {ndim} "
                        f"dimension(s) with the batch dimension; use a value in [{-ndim}, {ndim - 1}]")
    return d % ndim


def _unbatched_refused(k: int) -> VmapError:
    return VmapError(f"vmap: output {k} depends on the mapped inputs, so it cannot be returned "
                     "with out_dims None (torch.func refuses it too); give the dimension where the "
                     "batch should go (e.g. 0)")


def vmap(func: Callable, in_dims: Any = 0, out_dims: Any = 0, randomness: str = "error", *,
         chunk_size: int | None = None) -> Callable:
    """Map ``func`` over a batch dimension of its arguments (torch.func.vmap).

    ``in_dims``: an int or None for every argument, or a tuple with one entry per positional
    argument (an int, None, or a pytree of them matching that argument). ``out_dims`` says where
    the batch dimension goes in each output. Keyword arguments are not mapped over.
    ``randomness`` (torch.func's): a function that draws random numbers raises
    :class:`VmapRandomnessError` under ``'error'``; ``'same'`` draws once for the whole batch,
    ``'different'`` once per example; either way every call draws fresh numbers.

    >>> import workbench as wb, numpy as np
    >>> w = np.array([1.0, 2.0]); xs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> wb.vmap(lambda w, x: x.dot(w) ** 2, in_dims=(None, 0))(w, xs).tolist()
    [1.0, 4.0, 9.0]
    """
    _check_dims_spec(in_dims, "in_dims")
    _check_dims_spec(out_dims, "out_dims")
    if not callable(func):
        raise InputTypeError(f"vmap: the function to map must be callable, got "
                             f"{type(func).__name__} ({func!r:.60}); pass the function itself, "
                             "e.g. wb.vmap(f), not wb.vmap(f(x))")
    if randomness not in ("error", "different", "same"):
        raise VmapError(f"vmap: randomness must be 'error', 'different' or 'same', got "
                        f"{randomness!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise VmapError(f"vmap: chunk_size must be a positive int or None, got {chunk_size!r}")
    return user_facing(func, _BatchedFunction(func, in_dims, out_dims, chunk_size, randomness),
                       "__wb_batched__")


class _BatchedFunction:
    """vmap's state: the per-example function, its compiled versions, and how to call them."""

    def __init__(self, func: Callable, in_dims: Any, out_dims: Any, chunk_size: int | None,
                 randomness: str = "error"):
        self.func = func
        self.in_dims = in_dims
        self.out_dims = out_dims
        self.chunk_size = chunk_size
        self.randomness = randomness
        self.staged = Staged(func, self._per_example, "vmap")
        # At array level the whole batch is one trace (batching rules, ``arrays.batching``).
        self.array_body = array_vmap_body(func, in_dims, out_dims)
        self.array_staged = Staged(func, None, "vmap", self.array_body)
        self.cache = VersionCache()  # bounded, least recently used first
        self.lock = threading.Lock()  # guards the version lists (threads share this object)

    def __wb_fingerprint__(self):
        return ("vmap", self.in_dims, self.out_dims, fingerprint(self.func))

    def _per_example(self, args: tuple, kwargs: dict) -> Any:
        """The function on one example; numeric outputs that do not depend on the example
        become graph constants, so they are broadcast over the batch (as torch.func does)."""
        out = self.func(*args, **kwargs)
        graph = STATE.graphs[-1]

        def as_traced(leaf):
            _check_output(leaf)
            return leaf if isinstance(leaf, Traced) else as_output(graph, _to_numpy(leaf))

        return pytree.tree_map(as_traced, out)

    def __call__(self, args: tuple, kwargs: dict) -> Any:
        if active_graph() is not None:
            if self.randomness != "error":
                raise NotArrayLevel("vmap randomness")
            return self.array_body(args, kwargs)
        if not STATE.graphs and self.randomness == "error" and self.array_staged.cache:
            # A call the array level compiled before: no checks beyond the cache key's.
            try:
                found = self.array_staged.from_cache(self.array_staged.signature(args, kwargs))
            except Exception:  # noqa: BLE001 - unusual arguments: the checks below word it
                found = MISS
            if found is not MISS:
                return found
        leaves, tree = pytree.flatten(args)
        size, dims = _batch_size(leaves, _leaf_dims(self.in_dims, args), args)
        array_refusal = None
        if not STATE.graphs and self.randomness == "error" and size > 0 and \
                wants_arrays(leaves + pytree.flatten(kwargs)[0], True):
            try:
                return self.array_staged(args, kwargs)
            except NotArrayLevel:  # the element level maps it (and words any error)
                array_refusal = self.array_staged.last_refusal
        with torch_refusal_explained("vmap", array_refusal):
            if STATE.graphs or any(isinstance(v, Traced) for v in pytree.flatten(kwargs)[0]):
                return self.map_in_trace(args, kwargs, leaves, tree, dims, size)
            if any(d is not None and _leaf_kind(leaf) != "f" for leaf, d in zip(leaves, dims)):
                # Batched integer data (labels, indices) is static per example: map one by one.
                return self.map_by_loop(args, kwargs, leaves, tree, dims, size)
            return self.map_compiled(kwargs, leaves, tree, dims, size)

    # ----- inside a trace: unrolled over the examples -----
    def map_in_trace(self, args, kwargs, leaves, tree, dims, size) -> Any:
        results = []
        for b in range(size):
            example = pytree.unflatten(tree, [_take(leaf, d, b) for leaf, d in zip(leaves, dims)])
            results.append(self.func(*example, **kwargs))
        return self._stack(results, size)

    def map_by_loop(self, args, kwargs, leaves, tree, dims, size) -> Any:
        results = []
        for b in range(size):
            example = pytree.unflatten(tree, [_take(leaf, d, b) for leaf, d in zip(leaves, dims)])
            results.append(self.staged(example, kwargs))
        return self._stack(results, size)

    def _stack(self, results: list, size: int) -> Any:
        flat = [pytree.flatten(r) for r in results]
        out_tree = flat[0][1]
        n = len(flat[0][0])
        out_dims = _out_dims_per_leaf(self.out_dims, out_tree, n)
        stacked = []
        for j in range(n):
            column = [f[0][j] for f in flat]
            _check_output(column[0])
            d = out_dims[j]
            if d is None:  # allowed only where every example gave the same output
                if not all(_same_output(c, column[0]) for c in column):
                    raise _unbatched_refused(j)
                stacked.append(column[0])
                continue
            d = _output_axis(d, np.ndim(column[0]) + 1, j)
            if any(isinstance(c, Traced) for c in column):
                graph = next(c.graph for c in column if isinstance(c, Traced))
                ids = np.stack([as_ids(graph, c) for c in column], axis=d)
                stacked.append(ARRAY_FUNCTIONS[np.stack]([Traced(graph, i) for i in
                                                          np.moveaxis(ids, d, 0)], axis=d))
            else:
                torch = sys.modules.get("torch")
                if torch is not None and isinstance(column[0], torch.Tensor):
                    stacked.append(torch.stack(column, dim=d))
                else:
                    stacked.append(np.stack([np.asarray(c) for c in column], axis=d))
        return pytree.unflatten(out_tree, stacked)

    # ----- top level: one vectorised evaluation -----
    def map_compiled(self, kwargs, leaves, tree, dims, size) -> Any:
        use_torch = any(is_torch_tensor(leaf) for leaf in leaves)
        numeric = [_to_numpy(leaf) for leaf in leaves]
        k_leaves, k_tree = pytree.flatten(kwargs)
        key = self._key(tree, k_tree, numeric, dims, k_leaves)
        columns = self._columns(numeric, dims, size, k_leaves)
        if size == 0:  # no examples: the shapes come from a trace at zeros, nothing is run
            entry = self._trace(numeric, dims, None, tree, kwargs, k_leaves)
            outputs = [np.empty((0, 1 if isinstance(o, int) else len(o))) for o in entry.outputs]
            return self._assemble(entry, outputs, use_torch, columns)
        with self.lock:
            versions = self.cache.setdefault(key, [])
        outputs: list[np.ndarray] | None = None
        pending: np.ndarray | None = None  # None: every example (the common case: no copies)
        version = 0
        traced = False
        chunk = self.chunk_size or size
        first_entry = None
        # Each round either finishes or settles at least the example a new version was traced
        # from, so the loop ends after at most one round per example.
        while True:
            traced_at = None
            with self.lock:  # other threads may add versions meanwhile
                entry = versions[version] if version < len(versions) else None
            if entry is None:
                traced_at = 0 if pending is None else int(pending[0])
                rng = saved_global_rng() if self.randomness == "different" else None
                entry = self._trace(numeric, dims, traced_at, tree, kwargs, k_leaves)
                traced = True
                with self.lock:
                    versions.append(entry)
                    version = len(versions) - 1
                if entry.draws_random:
                    with self.lock:
                        self.cache.pop(key, None)  # never reused: each call draws fresh numbers
                    if self.randomness == "error":
                        raise VmapRandomnessError(
                            "vmap: the function draws random numbers, and randomness='error' "
                            "(the default, as in torch.func.vmap); pass randomness='different' "
                            "for fresh numbers per example, or 'same' for one draw shared by the "
                            "batch, or draw them outside and pass them in as a mapped argument")
                    if self.randomness == "different":  # one trace per example, in order
                        restore_global_rng(rng)
                        return self.map_by_loop(None, kwargs, leaves, tree, dims, size)
                if version:
                    self._warn_once(len(versions))
            if outputs is None:  # (batch, elements) matrices, made when results arrive
                outputs = [None] * len(entry.outputs)
                first_entry = entry
            failed = []
            for part in _chunks(pending, size, chunk):
                ok, values = self._evaluate(entry, columns, part, size)
                _scatter(entry, outputs, values, part, ok, size)
                if ok is not True:
                    failed.append(_indices(part)[~ok])
            if not failed:
                break
            pending = np.concatenate(failed)
            if traced_at is not None and traced_at in pending:
                # A guard that fails where it was traced (it compared a nan...): that example
                # takes the values computed while tracing, and the version is not kept.
                _fill_row(entry, outputs, traced_at)
                pending = pending[pending != traced_at]
                with self.lock:
                    versions[:] = [v for v in versions if v is not entry]
                if not pending.size:
                    break
                continue
            version += 1
        if traced:
            self._forget_if_stale(key, versions, tree, k_tree, numeric, dims, k_leaves)
        return self._assemble(first_entry, outputs, use_torch, columns)

    def _forget_if_stale(self, key, versions, tree, k_tree, numeric, dims, k_leaves) -> None:
        """Drop the versions of this call when reusing them could give a stale result (the
        rule of ``captured``), with a one-time warning."""
        unverifiable = _unverifiable_in(key)
        if unverifiable is not None:
            reason = f"it reads state workbench cannot check: {unverifiable.reason}"
        elif any(entry.draws_random for entry in versions):
            reason = "it draws random numbers inside, so each call must draw fresh numbers"
        elif self._key(tree, k_tree, numeric, dims, k_leaves) != key:
            reason = "it changes state it reads while it runs"
        else:
            return
        with self.lock:
            self.cache.pop(key, None)
        self.staged.warn_retracing(reason, stacklevel=6)

    def _key(self, tree, k_tree, numeric, dims, k_leaves) -> tuple:
        """Per-example shapes and dtypes (not the batch size), static values, captured state."""
        kinds = []
        for v, d in zip(numeric, dims):
            if _leaf_kind(v) != "f":
                kinds.append((d, _static_key(v)))
                continue
            shape = np.shape(v)
            if d is not None:
                shape = shape[:d] + shape[d + 1:]
            kinds.append((d, shape, getattr(v, "dtype", None)))
        k_kinds = tuple((np.shape(v), "f") if _leaf_kind(v) == "f" else _static_key(_to_numpy(v))
                        for v in k_leaves)
        return (tree, k_tree, tuple(kinds), k_kinds, fingerprint(self.func))

    def _trace(self, numeric, dims, index, tree, kwargs, k_leaves) -> Entry:
        """Trace one example (``index``; None: an example of zeros, for an empty batch)."""
        example = [v if d is None else np.take(v, index, axis=d) if index is not None else
                   np.zeros(np.delete(np.shape(v), d), dtype=np.asarray(v).dtype)
                   for v, d in zip(numeric, dims)]
        all_leaves, all_tree = pytree.flatten((pytree.unflatten(tree, example), kwargs))
        numeric_all = [_to_numpy(v) for v in all_leaves]
        return self.staged.trace(numeric_all, all_leaves, all_tree)

    def _columns(self, numeric, dims, size, k_leaves) -> list:
        """The batch program's arguments: a batched leaf as a ``(batch, elements)`` matrix in the
        caller's layout (a view when the batch dimension leads), the rest as flat arrays."""
        columns = []
        for value, d in zip(list(numeric) + [_to_numpy(v) for v in k_leaves],
                            list(dims) + [None] * len(k_leaves)):
            if _leaf_kind(value) != "f":
                continue
            array = np.asarray(value, dtype=np.float64)
            if d is None:
                columns.append((False, array.ravel() if array.ndim else float(array)))
            else:
                moved = array if d == 0 else np.moveaxis(array, d, 0)
                columns.append((True, moved.reshape(size, int(np.prod(moved.shape[1:])))
                                if moved.ndim > 1 else moved))
        return columns

    def _evaluate(self, entry: Entry, columns: list, part: slice | np.ndarray, size: int):
        """Run one compiled version on the examples ``part`` (a slice, or indices): returns
        (mask of the examples whose guards held, values)."""
        program = _batch_program(entry, tuple(batched for batched, _ in columns))
        subset = not (isinstance(part, slice) and part == slice(0, size))
        args = []
        for (batched, value), group in zip(columns, entry.inputs):
            if batched:
                value = value[part] if subset else value
                if isinstance(group, int) and value.ndim == 2:
                    value = value[:, 0]
            args.append(value)
        with np.errstate(all="ignore"):
            ok, *values = program(*args)
        ok = np.asarray(ok, dtype=bool)
        if ok.all():  # O(1) when there are no guards (ok is the constant True)
            return True, values
        return np.broadcast_to(ok, (_length(part, size),)), values

    def _warn_once(self, n_versions: int) -> None:
        if id(self) in _warned:
            return
        _warned.add(id(self))
        warnings.warn(
            f"vmap: the function takes different branches for different examples (data-dependent "
            f"control flow), so it was traced {n_versions} times and each group of examples is "
            "evaluated with its own version; np.where(cond, a, b) instead of `if` keeps it to "
            "one vectorised evaluation", stacklevel=4)

    def _assemble(self, entry: Entry, outputs: list, use_torch: bool, columns: list) -> Any:
        out_dims = _out_dims_per_leaf(self.out_dims, entry.out_tree, len(entry.out_specs))
        leaves = []
        computed = iter(outputs)
        for k, (spec, d, nodes) in enumerate(zip(entry.out_specs, out_dims, entry.outputs)):
            if spec.shape is None:
                raise OutputTypeError(f"vmap: the function returned a {type(spec.static).__name__}"
                                      "; vmapped functions must return arrays (or pytrees of them)")
            matrix = next(computed)  # (batch, elements)
            array = matrix.reshape((matrix.shape[0],) + spec.shape).astype(spec.dtype, copy=False)
            if d is None:
                if _depends_on_batch(entry, nodes, columns):
                    raise _unbatched_refused(k)
                array = array[0]
            else:
                d = _output_axis(d, array.ndim, k)
                if d:
                    array = np.moveaxis(array, 0, d)
            if use_torch:
                torch = sys.modules["torch"]
                array = torch.from_numpy(np.ascontiguousarray(array))
            leaves.append(array)
        return pytree.unflatten(entry.out_tree, leaves)


def _same_output(a, b) -> bool:
    if isinstance(a, Traced) or isinstance(b, Traced):
        return isinstance(a, Traced) and isinstance(b, Traced) and np.array_equal(a.ids, b.ids)
    return np.array_equal(_to_numpy(a), _to_numpy(b), equal_nan=True)


def _depends_on_batch(entry: Entry, nodes: int | list[int], columns: list) -> bool:
    """Whether output ``nodes`` of ``entry`` read any input that is mapped over."""
    batched = {n for (is_batched, _), group in zip(columns, entry.inputs) if is_batched
               for n in ([group] if isinstance(group, int) else group)}
    roots = [nodes] if isinstance(nodes, int) else nodes
    return any(n in batched for n in entry.graph.ancestors(roots))


def _check_output(value) -> None:
    if not (isinstance(value, (Traced, ArrayTraced, np.ndarray, float, int, np.generic)) or
            is_torch_tensor(value)) or isinstance(value, bool):
        raise OutputTypeError(f"vmap: the function returned a {type(value).__name__}; vmapped "
                              "functions must return arrays or numbers (or pytrees of them)")


def _batch_program(entry: Entry, batched: tuple[bool, ...]):
    programs = entry.__dict__.setdefault("_batch_programs", {})
    program = programs.get(batched)
    if program is None:
        program = programs[batched] = batch_program(
            entry.graph, entry.inputs, batched, entry.outputs, entry.guards).function
    return program


def _fill_row(entry: Entry, outputs: list, row: int) -> None:
    """Example ``row``'s outputs from the values ``entry`` computed while it was traced there."""
    for j, value in enumerate(entry.traced_result()):
        outputs[j][row, :] = value


def _chunks(pending: np.ndarray | None, size: int, chunk: int):
    """The parts of the batch to evaluate: slices of the whole batch, or of pending indices."""
    if pending is None:
        for start in range(0, size, chunk):
            yield slice(start, min(start + chunk, size))
    else:
        for start in range(0, pending.size, chunk):
            yield pending[start:start + chunk]


def _indices(part: slice | np.ndarray) -> np.ndarray:
    return np.arange(part.start, part.stop) if isinstance(part, slice) else part


def _length(part: slice | np.ndarray, size: int) -> int:
    return part.stop - part.start if isinstance(part, slice) else part.size


def _scatter(entry: Entry, outputs: list, values: list, part: slice | np.ndarray,
             ok: np.ndarray | bool, size: int) -> None:
    """Write the results of the examples whose guards held (``ok``: a mask, or True for all of
    them) into ``outputs``."""
    all_ok = ok is True
    whole = all_ok and isinstance(part, slice) and part == slice(0, size)
    rows = part if all_ok else _indices(part)[ok]
    for j, (group, value) in enumerate(zip(entry.outputs, values)):
        width = 1 if isinstance(group, int) else len(group)
        if whole and isinstance(value, np.ndarray) and value.shape == (size, width) and \
                outputs[j] is None:
            outputs[j] = value  # a packed result is already the output matrix: no copy
            continue
        if outputs[j] is None:
            outputs[j] = np.empty((size, width))
        out = outputs[j]
        if isinstance(value, list):
            for c, item in enumerate(value):
                out[rows, c] = item if np.ndim(item) == 0 or all_ok else np.asarray(item)[ok]
            continue
        value = np.asarray(value)
        if value.ndim == 0:
            out[rows, :] = value
        elif value.ndim == 1:
            out[rows, 0] = value if all_ok else value[ok]
        else:
            out[rows, :] = value if all_ok else value[ok]


