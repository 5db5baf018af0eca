"""Trace once, compile, cache, call: the machinery under every top-level transform call.

A transform is a *body*: a function of (args, kwargs) that runs while a graph is being traced and
returns a pytree of traced values and plain objects. :class:`Staged` runs it:

* inside another transform's trace (nested calls), the body just adds nodes to that trace;
* at top level, array arguments become graph inputs, the body is traced once per call signature,
  the nodes its outputs need are compiled to Python (``symbolic.codegen``) and cached.

The cache key holds everything that can change the result: the pytree structure of the
arguments, every array's shape and dtype, the value of every static (non-float) argument (object
arguments by a fingerprint of their state), and a fingerprint of the state the function reads
(``captured``). Float arrays and floats are *inputs* of the compiled code, so new values of them
reuse it, wherever the guards recorded by the trace (``if x > 0``...) still hold; where they do
not, the function is traced again and the new version is cached beside the old one. A version
is not cached at all when caching it could serve a stale result (see ``captured``: the function
draws random numbers, changes state it reads, or reads state workbench cannot check); the
versions that are cached are bounded (``versions``).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .. import pytree
from ..arrays.graph import NotArrayLevel
from ..arrays.staging import (
    ArrayEntry,
    OutSpec,
    dynamic_integers,
    out_of_memory,
    trace_arrays,
    wants_arrays,
)
from ..arrays.traced import active_graph
from ..config import config
from ..errors import (
    BudgetExceededError,
    IndexOutOfRangeError,
    InputTypeError,
    UnsupportedOperationError,
    WorkbenchError,
)
from ..graph import Graph
from ..symbolic.codegen import Program, generate
from ..tracing import STATE, Traced, budget_error, torch_to_numpy, tracing
from .captured import (
    RetracingWarning,
    Unverifiable,
    fingerprint,
    fingerprint_value,
    global_rng_state,
    restore_global_rng,
    saved_global_rng,
)
from .versions import VersionCache

Body = Callable[[tuple, dict], Any]

_PY_FLOAT = ((), "py")  # the signature entry of a Python float argument
MISS = object()  # no cached version applies


def _torch():
    return sys.modules.get("torch")


def is_torch_tensor(x) -> bool:
    torch = _torch()
    return torch is not None and isinstance(x, torch.Tensor)


@dataclass
class Entry:
    """One compiled version of a staged body: valid where its guards hold."""

    graph: Graph
    inputs: list[int | list[int]]
    outputs: list[int | list[int]]
    guards: list[tuple[int, bool]]
    out_tree: pytree.TreeDef
    out_specs: list[OutSpec]
    _scalar: Program | None = field(default=None, repr=False)
    _numpy: Program | None = field(default=None, repr=False)
    draws_random: bool = False  # the trace drew from a global random generator
    used: bool = False  # served since the last eviction sweep (``versions``: CLOCK recency)
    array_level = False

    @property
    def scalar(self) -> Program:
        """The compiled program over Python floats: generated when first called, not when
        traced (the first call's answer is the traced values; a function called once, as
        in exploration, never pays Python's compile)."""
        if self._scalar is None:
            self._scalar = generate(self.graph, self.inputs, self.outputs, self.guards, "scalar")
        return self._scalar

    @property
    def numpy(self) -> Program:
        """The numpy-backend program (batches, and IEEE results where math raises)."""
        if self._numpy is None:
            self._numpy = generate(self.graph, self.inputs, self.outputs, self.guards, "numpy")
        return self._numpy

    def assemble(self, result: tuple, use_torch: bool) -> Any:
        """The user-facing output: arrays (or torch tensors) in the traced output structure."""
        if self._scalar_out is not None and not use_torch:
            return self._scalar_out(result[0])
        return _assemble(self, result, use_torch)

    def __post_init__(self) -> None:
        # A single scalar output (grad of a scalar function): skip the pytree rebuild.
        specs = self.out_specs
        single = self.out_tree == pytree.LEAF and len(specs) == 1 and specs[0].shape == ()
        self._scalar_out = specs[0].dtype.type if single else None

    def traced_result(self) -> tuple:
        """The outputs as computed while tracing (what ``run_scalar`` returns at the traced
        point): the answer there even when a guard cannot be re-checked (a nan compared)."""
        values = self.graph.values
        return tuple(values[o] if isinstance(o, int) else [values[i] for i in o]
                     for o in self.outputs)

    def run_scalar(self, values: list) -> tuple | None:
        try:
            return self.scalar.function(*values)
        except (ValueError, ZeroDivisionError, OverflowError):
            with np.errstate(all="ignore"):
                return self.numpy.function(*[_as_numpy_input(v) for v in values])


def _as_numpy_input(v):
    return np.array(v, dtype=np.float64) if isinstance(v, list) else np.float64(v)


def _leaf_kind(leaf) -> str:
    """'f': a float input of the compiled code; 's': static (part of the cache key)."""
    if isinstance(leaf, float):
        return "f"
    if isinstance(leaf, np.ndarray):
        return "f" if leaf.dtype.kind == "f" else "s"
    if isinstance(leaf, np.floating):
        return "f"
    if is_torch_tensor(leaf):
        return "f" if leaf.is_floating_point() else "s"
    return "s"


def _static_key(leaf) -> Any:
    if isinstance(leaf, np.ndarray):
        return ("array", leaf.shape, leaf.dtype.str, leaf.tobytes())
    if is_torch_tensor(leaf):
        return _static_key(torch_to_numpy(leaf))
    if isinstance(leaf, np.generic):
        return ("np", leaf.dtype.str, leaf.item())
    if type(leaf) in _VALUE_TYPES:
        return (type(leaf), leaf)
    # An object (a model, a config...): the function may read any of its state.
    return ("object", fingerprint_value(leaf))


_VALUE_TYPES = frozenset({bool, int, float, complex, str, bytes, type(None)})


def _to_numpy(leaf):
    if is_torch_tensor(leaf):
        return torch_to_numpy(leaf)
    return leaf


class Staged:
    """A transform body with its compiled-version cache. See the module docstring."""

    def __init__(self, func: Callable, body: Body | None, transform: str,
                 array_body: Body | None = None) -> None:
        self.func = func
        self.body = body  # element level (None: array level only; the caller has a fallback)
        self.array_body = array_body
        self.transform = transform
        # Cache keys whose function the array level could not trace, with the reason (bounded).
        self.element_only: dict = {}
        self.last_refusal: str | None = None  # why the array level refused the last trace
        self.cache = VersionCache()
        self._labels: list[str] | None = None
        self._warned: dict[str, int] = {}  # reasons for not caching: how often they were met
        # Threads share a Staged (a transform is remembered per function): its cache changes
        # under this lock; readers iterate a version list that is replaced, never edited.
        self.lock = threading.Lock()

    def __wb_fingerprint__(self):
        return (self.transform, fingerprint(self.func))

    def __call__(self, args: tuple, kwargs: dict) -> Any:
        if active_graph() is not None:  # inside an array-level trace
            if self.array_body is None:
                raise NotArrayLevel(f"{self.transform} has no array-level body")
            return self.array_body(args, kwargs)
        if STATE.graphs:  # inside another transform's trace: just add nodes to it
            if self.body is None:
                raise NotArrayLevel(f"{self.transform} has no element-level body")
            return self.body(args, kwargs)
        return self.call_top(args, kwargs)

    # ----- top level -----
    def signature(self, args: tuple, kwargs: dict):
        """The cache key of a call, its leaves, their structure, and the compiled code's inputs."""
        if not kwargs and all(type(a) is np.ndarray for a in args):  # the common array call
            leaves, tree = list(args), _plain_tree(len(args))
        else:
            leaves, tree = pytree.flatten((args, kwargs))
        kinds = []
        values = []  # the float inputs as they are (each kind of entry converts them)
        integers = []  # positions in values of integer arrays (inputs at array level only)
        use_torch = False
        for leaf in leaves:
            kind = type(leaf)
            if kind is float:
                kinds.append(_PY_FLOAT)
                values.append(leaf)
                continue
            if kind is np.ndarray and leaf.dtype.kind == "f":  # the common case, kept thin
                kinds.append((leaf.shape, leaf.dtype))
                values.append(leaf)
                continue
            if self.array_body is not None and dynamic_integers(leaf):
                use_torch = use_torch or is_torch_tensor(leaf)
                leaf = _to_numpy(leaf)
                kinds.append(("integers", leaf.shape, leaf.dtype.str))
                integers.append(len(values))
                values.append(leaf)
                continue
            if is_torch_tensor(leaf):
                use_torch = True
                leaf = torch_to_numpy(leaf)
            if _leaf_kind(leaf) == "f":
                kinds.append((np.shape(leaf), getattr(leaf, "dtype", None)))
                values.append(leaf)
            else:
                kinds.append(_static_key(leaf))
        # use_torch: torch inputs trace torch's meaning of x.var()/x.std() (trace.STATE.torch_style)
        key = (tree, tuple(kinds), fingerprint(self.func), use_torch)
        return Signature(key, leaves, tree, values, use_torch, tuple(integers))

    def call_top(self, args: tuple, kwargs: dict) -> Any:
        if not kwargs and all(type(a) is float for a in args):
            # The common scalar case, kept thin: no pytree walk, no conversions.
            versions = self.cache.get((len(args), fingerprint(self.func)))
            if versions:
                values = list(args)
                for entry in versions:
                    result = entry.run_scalar(values)
                    if result is not None:
                        entry.used = True  # recency, for eviction
                        return entry.assemble(result, False)
        key, leaves, tree, values, use_torch, integers = signature = self.signature(args, kwargs)
        found = self.from_cache(signature)
        if found is not MISS:
            return found
        if integers:  # versions traced element by element hold these integers as data
            with_data = signature.with_integer_data()  # (taken before the function runs)
            found = self.from_cache(with_data)
            if found is not MISS:
                return found
        entry = self.trace([_to_numpy(leaf) for leaf in leaves], leaves, tree, key)
        integer_data = bool(integers) and not entry.array_level
        if integer_data:
            key = with_data.key
        reason = self.not_cacheable(key, entry, args, kwargs, integer_data)
        if reason is None:
            with self.lock:
                for cache_key in (key, _float_key(args, kwargs, key)):
                    if cache_key is not None:
                        self.cache.store(cache_key, entry)
        else:
            self.warn_retracing(reason)
        # The values computed while tracing are the program's values at these arguments (the
        # kernels are compiled from the same printers), so the first call compiles nothing.
        try:
            result = entry.assemble(entry.traced_result(), use_torch)
        except MemoryError:
            raise out_of_memory("handing out the first call's result") from None
        if entry.array_level:
            entry.forget_values()
        return result

    def from_cache(self, signature: tuple) -> Any:
        """The result of a cached version whose guards hold at these arguments, else MISS."""
        key, _, _, values, use_torch, integers = signature
        versions = self.cache.get(key)
        if versions:
            scalar_values = None
            if integers and not versions[0].array_level:  # integers are not their inputs
                values = [v for k, v in enumerate(values) if k not in integers]
            for entry in versions:
                if entry.array_level:
                    result = entry.run(values)
                else:
                    if scalar_values is None:
                        scalar_values = [_input_value(v) for v in values]
                    result = entry.run_scalar(scalar_values)
                if result is not None:
                    entry.used = True
                    return entry.assemble(result, use_torch)
        return MISS

    def not_cacheable(self, key: tuple, entry: Entry, args: tuple, kwargs: dict,
                      integer_data: bool = False) -> str | None:
        """Why the version just traced must not be cached (None: it may be). ``integer_data``:
        ``key`` holds the integer arrays' values (an element-level version)."""
        unverifiable = _unverifiable_in(key)
        if unverifiable is not None:
            return f"it reads state workbench cannot check: {unverifiable.reason}"
        if entry.draws_random:
            return ("it draws random numbers inside (from numpy's, Python's or torch's random "
                    "generator), so each call must draw fresh numbers, as running it does")
        now = self.signature(args, kwargs)
        if (now.with_integer_data() if integer_data else now).key != key:
            return ("it changes state it reads while it runs (a random generator object it "
                    "draws from, a counter, a list it appends to...)")
        return None

    def warn_retracing(self, reason: str, stacklevel: int = 5) -> None:
        """Say once per transformed function that it is traced again on every call, and why:
        on the second uncached call for that reason (a function that fills a memo on its first
        call is cached from its second call on)."""
        seen = self._warned.get(reason, 0)
        self._warned[reason] = seen + 1
        if seen != 1:
            return
        name = getattr(self.func, "__qualname__", None) or type(self.func).__name__
        warnings.warn(
            f"wb.{self.transform}({name}): {reason}. workbench therefore traces it again on every "
            "call (a cached result could be stale), which is slow; pass such state (random "
            "values, parameters) as arguments to make it fast", RetracingWarning,
            stacklevel=stacklevel)

    def trace(self, numeric: list, leaves: list, tree, key: Any = None) -> Entry | ArrayEntry:
        """Trace the body at these arguments and compile what its outputs need: at array level
        where it can (see ``workbench.arrays``), else element by element."""
        array_refusal = self.element_only.get(key) if key is not None else None
        if self.array_body is not None and key not in self.element_only and \
                wants_arrays(leaves, self.body is None):
            rng = saved_global_rng()
            try:
                return trace_arrays(self.array_body, numeric, leaves, tree,
                                    self.leaf_labels(tree), integers_as_inputs=True)
            except (BudgetExceededError, IndexOutOfRangeError):  # an error at either level
                raise
            except MemoryError:
                raise out_of_memory("while tracing") from None
            except (NotArrayLevel, Exception) as why:  # the element level handles it, or
                restore_global_rng(rng)  # words the error; it draws what the function draws
                array_refusal = f"{type(why).__name__}: {why}"
                if key is not None:
                    with self.lock:
                        if len(self.element_only) >= 256:
                            self.element_only.clear()
                        self.element_only[key] = array_refusal
        self.last_refusal = array_refusal
        if self.body is None:
            raise NotArrayLevel(f"{self.transform}: not traceable at array level")
        with torch_refusal_explained(self.transform, array_refusal):
            return self.trace_elements(numeric, leaves, tree)

    def trace_elements(self, numeric: list, leaves: list, tree) -> Entry:
        """Trace the body element by element (one scalar node per operation)."""
        labels = self.leaf_labels(tree)
        n_elements = 0
        for k, (value, leaf) in enumerate(zip(numeric, leaves)):
            if _leaf_kind(leaf) == "f":
                shape = np.shape(value)
                n_elements += math.prod(shape)
                if n_elements > config.max_nodes:  # checked from shapes, before any copy
                    raise budget_error(f"{self.transform}: argument {labels[k]!r} of shape "
                                       f"{shape}", math.prod(shape), config.max_nodes)
        graph = Graph()
        inputs: list[int | list[int]] = []
        random_state = global_rng_state()
        with tracing(graph, torch_style=any(is_torch_tensor(leaf) for leaf in leaves)):
            traced_leaves = []
            for k, (value, leaf) in enumerate(zip(numeric, leaves)):
                if _leaf_kind(leaf) == "f":
                    t = Traced.input(graph, value, labels[k])
                    traced_leaves.append(t)
                    ids = t.ids.ravel().tolist()
                    inputs.append(ids[0] if t.ids.ndim == 0 else ids)
                else:
                    traced_leaves.append(leaf)
            args, kwargs = pytree.unflatten(tree, traced_leaves)
            out = self.body(args, kwargs)
        out_leaves, out_tree = pytree.flatten(out)
        outputs: list[int | list[int]] = []
        specs = []
        for leaf in out_leaves:
            if isinstance(leaf, Traced):
                ids = leaf.ids.ravel().tolist()
                outputs.append(ids[0] if leaf.ids.ndim == 0 else ids)
                specs.append(OutSpec(leaf.shape, leaf.dtype))
            else:
                specs.append(OutSpec(None, static=leaf))
        draws_random = global_rng_state() != random_state
        return Entry(graph, inputs, outputs, list(graph.guards), out_tree, specs,
                     draws_random=draws_random)

    def leaf_labels(self, tree) -> list[str]:
        """A readable name per argument leaf: the parameter name, plus the path inside a pytree."""
        names = _parameter_names(self.func)
        labels: list[str] = []
        (args_tree, kwargs_tree) = tree[1]
        for i, sub in enumerate(args_tree[1]):
            base = names[i] if i < len(names) else f"arg{i}"
            _label_tree(sub, base, labels)
        for key, sub in zip(kwargs_tree[1], kwargs_tree[2]):
            _label_tree(sub, str(key), labels)
        return labels


@contextlib.contextmanager
def torch_refusal_explained(transform: str, array_refusal: str | None) -> Iterator[None]:
    """torch's own check that a value is a Tensor (``functional_call``'s parameter swap) failing
    on element-level values becomes an error that says why the array level did not take the
    function (``array_refusal``) and what it supports."""
    try:
        yield
    except TypeError as error:
        if array_refusal is None or isinstance(error, WorkbenchError) or \
                "torch.Tensor" not in str(error) or "torch" not in sys.modules:
            raise
        raise UnsupportedOperationError(
            f"wb.{transform}: torch refused workbench's element-level values (it wants "
            "torch.Tensor instances). torch code that insists on real tensors "
            "(torch.func.functional_call swaps only tensors into a module) runs only at "
            f"workbench's array level, which could not trace this function: {array_refusal}. "
            "Supported there: nn.Linear, nn.Conv1d (groups=1), activations, nn.Flatten, "
            "nn.Sequential, MSELoss and CrossEntropyLoss; write the rest with torch functions "
            "of the parameters") from None


_PLAIN_TREES: dict[int, tuple] = {}


def _plain_tree(n: int) -> tuple:
    """The structure of ``(args, {})`` for ``n`` array arguments (what pytree.flatten gives)."""
    tree = _PLAIN_TREES.get(n)
    if tree is None:
        tree = _PLAIN_TREES[n] = pytree.flatten((tuple(range(n)), {}))[1]
    return tree


def _label_tree(treedef, base: str, out: list[str]) -> None:
    tag = treedef[0]
    if tag == "*":
        out.append(base)
    elif tag in ("tuple", "list"):
        for i, sub in enumerate(treedef[1]):
            _label_tree(sub, f"{base}{i}", out)
    elif tag == "dict":
        for key, sub in zip(treedef[1], treedef[2]):
            _label_tree(sub, f"{key}" if isinstance(key, str) and key.isidentifier() else
                        f"{base}_{key}", out)
    elif tag == "namedtuple":
        for name, sub in zip(treedef[1]._fields, treedef[2]):
            _label_tree(sub, name, out)


def _parameter_names(func) -> list[str]:
    target = getattr(func, "__wb_wrapped__", func)
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _input_value(value):
    """A float, or a flat list of floats, as the compiled code takes them."""
    if isinstance(value, float):
        return value
    array = np.asarray(value)
    if array.ndim == 0:
        return float(array)
    return array.ravel().tolist()


def _unverifiable_in(key: Any) -> Unverifiable | None:
    """The :class:`Unverifiable` fingerprint in a cache key (of the function, or of an object
    argument), if there is one. Only called after a trace: it walks the whole key."""
    if type(key) is Unverifiable:
        return key
    if isinstance(key, (tuple, frozenset)):
        for item in key:
            found = _unverifiable_in(item)
            if found is not None:
                return found
    return None


class Signature(NamedTuple):
    """A call as the cache sees it: its key, leaves and their structure, the compiled code's
    inputs (``values``; at ``integers``, integer arrays that only array-level versions take)."""

    key: tuple
    leaves: list
    tree: Any
    values: list
    use_torch: bool
    integers: tuple[int, ...]

    def with_integer_data(self) -> Signature:
        """The key of element-level versions, which hold the integer arrays as data."""
        data = tuple(_static_key(self.values[k]) for k in self.integers)
        return self._replace(key=self.key + (("integer data",) + data,))


def _float_key(args: tuple, kwargs: dict, key) -> tuple | None:
    """The fast-path key for calls whose arguments are all Python floats (else None)."""
    if kwargs or not all(type(a) is float for a in args):
        return None
    return (len(args), key[2])


def _assemble(entry: Entry, result: tuple, use_torch: bool) -> Any:
    leaves = []
    computed = iter(result)
    for spec in entry.out_specs:
        if spec.shape is None:
            leaves.append(spec.static)
            continue
        value = next(computed)
        if spec.shape == ():
            array = np.asarray(value, dtype=spec.dtype)
            leaves.append(_torch().from_numpy(array.copy()) if use_torch else array[()])
        else:
            array = np.array(value, dtype=spec.dtype).reshape(spec.shape)
            leaves.append(_torch().from_numpy(array) if use_torch else array)
    return pytree.unflatten(entry.out_tree, leaves)


def check_float_leaf(leaf, where: str) -> None:
    """Differentiated leaves must be floats: say what to pass instead."""
    if isinstance(leaf, Traced):
        if leaf.dtype == np.bool_:
            raise InputTypeError(f"{where} is a boolean traced value; only floats can be differentiated")
        return
    if isinstance(leaf, (bool, np.bool_)):
        raise InputTypeError(f"{where} is a bool ({leaf!r}); only floating-point inputs can be "
                             "differentiated")
    if isinstance(leaf, (int, np.integer)):
        raise InputTypeError(f"{where} is an integer ({leaf!r}); only floating-point inputs can be "
                             f"differentiated: pass {float(leaf)!r} instead")
    array = _to_numpy(leaf)
    dtype = getattr(array, "dtype", None)
    if dtype is not None and np.dtype(dtype).kind in "iub":
        raise InputTypeError(f"{where} has integer dtype {dtype}; only floating-point inputs can be "
                             "differentiated: convert it with .astype(float) (numpy) or .float() "
                             "(torch)")
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise InputTypeError(f"{where} has dtype {dtype}; only real floating-point inputs can be "
                             "differentiated (not complex, object or string arrays)")
    if dtype is None and not isinstance(leaf, float):
        raise InputTypeError(f"{where} is a {type(leaf).__name__}, not a float or array; "
                             "differentiate with respect to floats, arrays or pytrees of them")
