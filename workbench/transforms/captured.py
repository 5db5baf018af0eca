"""Fingerprints of the state a function reads, and the rule that keeps cached results fresh.

A compiled version bakes in every constant the function read while it was traced (and the
branches that state chose), so a cached version may be reused only while that state is the
same. The rule:

1. **The cache key sees the state.** :func:`fingerprint` walks everything the function can
   reach -- closure cells, defaults, the globals its code names, and from there objects at any
   depth: instance attributes, the class attributes its code (and the methods it reaches) name,
   user modules, containers (lists, dicts, sets), torch modules and tensors. Arrays and tensors
   count by content (a digest; ``tensor._version`` would miss ``p.data`` updates), numbers and
   strings by value. When reached code uses ``getattr`` or ``vars``, every attribute of the
   user modules and classes met is in the key. Object arguments of the call are fingerprinted
   the same way (``staging``).
2. **Otherwise the function is re-traced on every call**, with a one-time
   :class:`RetracingWarning` that says why, when workbench cannot check what it reads: code
   that looks names up dynamically (``globals()``, ``eval``, ``exec``), more reachable state
   than the walk's budget, a function that draws random numbers (numpy's, Python's or torch's
   global generator, or a generator object it reaches: each call then draws fresh numbers, as
   running the function does), or one that changes state it reads while it runs (an iterator
   it advances, a list it appends to). Under ``vmap``, random draws follow torch.func's
   ``randomness`` argument ('error' by default).
3. What no Python walk can see -- files, the clock, CUDA generators, the module-level state of
   the standard library and of installed packages (``torch.set_default_dtype``, ``os.environ``),
   objects of C extensions that expose no attributes and no buffer -- is outside the rule: such
   objects count by identity. (Instances of library classes, like a ``torch.nn.Linear``, are
   walked like any other object.)

>>> import numpy as np
>>> w = np.array([1.0, 2.0])
>>> f = lambda x: x * w
>>> before = fingerprint(f)
>>> w[0] = 5.0
>>> fingerprint(f) == before
False
"""

from __future__ import annotations

import array
import collections
import ctypes
import hashlib
import random
import sys
import types
import weakref
from pathlib import Path
from typing import Any

import numpy as np

_MISSING = object()
_MISSING_KEY = ("missing",)
_BUDGET = 50_000  # objects one fingerprint may visit; past it the function is re-traced per call
_SMALL_ARRAY_BYTES = 512  # below this, the bytes themselves are the key (no hash collision)
_SCALARS = (bool, int, float, complex, str, bytes, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)
# Hold no state a traced function could read.
_OPAQUE = (np.ufunc, np.dtype, types.CodeType, range, slice, type(Ellipsis),
           type(NotImplemented))
_BUILTIN_METHODS = (types.BuiltinFunctionType, types.MethodWrapperType)

# Modules and classes of these packages hold no user state worth a cache key (np.pi, torch.float64).
_LIBRARY_ROOTS = frozenset({"numpy", "math", "cmath", "torch", "jax", "jaxlib", "sympy", "scipy",
                            "workbench", "builtins", "functools", "itertools", "operator",
                            "collections", "typing", "random", "statistics", "abc", "enum",
                            "dataclasses", "types"})
_library_namespaces: set = set()  # seen library modules/classes (a set lookup on the hot path)
_user_namespaces: set = set()

# Names whose use means the code reaches state by a computed name.
# (``locals()`` is not one: inside a function it holds only the function's own variables; pytest
# rewrites every ``assert`` to call it.)
_UNSEEABLE_CALLS = frozenset({"globals", "eval", "exec", "__import__", "import_module"})
_DYNAMIC_ATTRIBUTES = frozenset({"getattr", "vars", "__dict__", "__getattribute__",
                                 "attrgetter"})
_FRESH_ENTROPY = frozenset({"default_rng", "SeedSequence", "urandom", "randbits", "token_bytes",
                            "uuid4", "seed_from_entropy"})
# Methods that run without their name in the caller's code (operators, calls, torch's forward).
_IMPLICIT = frozenset({"forward", "__call__", "__getitem__", "__getattr__", "__iter__",
                       "__next__", "__len__", "__contains__", "__bool__", "__float__", "__int__",
                       "__index__", "__array__", "__array_ufunc__", "__array_function__",
                       "__torch_function__", "__add__", "__radd__", "__sub__", "__rsub__",
                       "__mul__", "__rmul__", "__truediv__", "__rtruediv__", "__matmul__",
                       "__rmatmul__", "__pow__", "__rpow__", "__neg__", "__pos__", "__abs__",
                       "__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__", "__enter__",
                       "__exit__", "__get__"})


class RetracingWarning(UserWarning):
    """A function is re-traced on every call, because caching it could give stale results."""


class Unverifiable:
    """The fingerprint of a function whose state workbench cannot check: equal to nothing, so
    no cached version ever matches it. ``reason`` says what the function does."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Unverifiable({self.reason!r})"


class _CannotSee(Exception):
    pass


class _CodeInfo:
    __slots__ = ("names", "unseeable", "dynamic", "entropy", "walk_only")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        found = _UNSEEABLE_CALLS.intersection(names)
        self.unseeable = sorted(found)[0] if found else None
        self.dynamic = not _DYNAMIC_ATTRIBUTES.isdisjoint(names)
        entropy = _FRESH_ENTROPY.intersection(names)
        self.entropy = sorted(entropy)[0] if entropy else None
        self.walk_only = bool(self.unseeable or self.entropy)  # not for the fast path


_code_infos: dict[types.CodeType, _CodeInfo] = {}


def _bounded(memo: dict | set) -> None:
    """Memos keyed by code objects, types and namespaces hold them alive: classes or functions
    made in a loop must not grow them without end (a cleared memo is only recomputed)."""
    if len(memo) >= _MEMO_SIZE:
        memo.clear()


_MEMO_SIZE = 4096


def _code_info(code: types.CodeType) -> _CodeInfo:
    """The names a code object (and the code nested in it) may read, and what they imply."""
    info = _code_infos.get(code)
    if info is None:
        _bounded(_code_infos)
        info = _code_infos[code] = _CodeInfo(tuple(sorted(_names_in(code))))
    return info


def _names_in(code: types.CodeType) -> set[str]:
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found.update(_names_in(const))
    return found


def fingerprint(func: Any) -> tuple | Unverifiable:
    """A hashable summary of all the state ``func`` can read (see the module docstring), or an
    :class:`Unverifiable` (equal to nothing) when that state cannot be checked."""
    wrapped = getattr(func, "__wb_wrapped__", None)
    if wrapped is not None:
        # A transform made by workbench (grad(f), ...): what it reads is what ``f`` reads; the
        # transform object itself (argnums, has_aux...) is one per request, so its identity
        # tells the options apart.
        inner = fingerprint(wrapped)
        return inner if type(inner) is Unverifiable else ("transform", id(func), inner)
    if type(func) is types.FunctionType and func.__defaults__ is None and \
            func.__kwdefaults__ is None:
        plain = _plain_function(func)
        if plain is not None:
            return plain
    return fingerprint_value(func)


def _plain_function(func: types.FunctionType) -> tuple | None:
    """The common case on the cached-call path -- a function that reads only library modules,
    builtins, numbers and arrays -- kept thin. None when it reads anything else (the full walk)."""
    info = _code_info(func.__code__)
    if info.walk_only:
        return None
    cells = func.__closure__
    closure: Any = [] if cells else ()
    for cell in cells or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell (a variable assigned later)
            return None
        kind = type(value)
        if kind in _SCALAR_TYPES:
            closure.append(value)
        elif kind is np.ndarray and value.dtype != object:
            closure.append(_array_key(value))
        elif (kind is types.ModuleType or isinstance(value, type)) and \
                (value in _library_namespaces or is_library_namespace(value)):
            closure.append(("lib", id(value)))  # ``import numpy as np`` inside a function
        else:
            return None
    module_globals = func.__globals__
    referenced = []
    for name in info.names:
        value = module_globals.get(name, _MISSING)
        if value is _MISSING:
            continue
        kind = type(value)
        if kind in _SCALAR_TYPES:
            referenced.append((name, value))
        elif kind is np.ndarray and value.dtype != object:
            referenced.append((name, _array_key(value)))
        elif kind is types.ModuleType or isinstance(value, type):
            if value not in _library_namespaces and not is_library_namespace(value):
                return None
        elif isinstance(value, _BUILTIN_METHODS):
            if _bound_to(value) is not None:  # d.get, lst.__getitem__: read d, lst
                return None
        elif not isinstance(value, _OPAQUE):
            return None
    return ("fn", id(func.__code__), tuple(closure) if cells else (), tuple(referenced))


def fingerprint_value(value: Any) -> tuple | Unverifiable:
    """The fingerprint of any object (a function, an object argument, a module...)."""
    walk = _Walk()
    try:
        key = walk.value(value)
        return (key, walk.namespaces_key())
    except _CannotSee as reason:
        return Unverifiable(str(reason))


def _array_key(array: np.ndarray, owner: Any = None) -> tuple:
    """An array by content: its bytes when small, else a digest of them (``_digest``)."""
    if array.dtype == object:
        raise _CannotSee("an object array (its elements cannot be checked cheaply)")
    contiguous = np.ascontiguousarray(array)
    if contiguous.nbytes <= _SMALL_ARRAY_BYTES:
        data: Any = contiguous.tobytes()
    else:
        data = _digest(contiguous, array if owner is None else owner)
    return ("array", array.shape, array.dtype.str, data)


# id(owner) -> (bytes of its last digest, that digest). Comparing the bytes with this exact copy
# costs a memcpy and a memcmp, about 25x less than hashing them again: a module's parameters or
# a captured dataset are read on every cached call. The comparison is exact, so a reused id or
# an in-place update (``p.data.add_``, which no version counter sees) only costs a fresh digest.
_snapshots: dict[int, tuple[bytes, bytes]] = {}
_snapshot_total = [0]  # bytes held by _snapshots
_SNAPSHOT_BUDGET = 128 * 2**20  # past it the memo is emptied: big data is hashed each time


def _digest(contiguous: np.ndarray, owner: Any) -> bytes:
    data = contiguous.tobytes()
    known = _snapshots.get(id(owner))
    if known is not None and known[0] == data:
        return known[1]
    digest = hashlib.blake2b(data, digest_size=16).digest()
    if len(data) <= _SNAPSHOT_BUDGET:
        if _snapshot_total[0] + len(data) > _SNAPSHOT_BUDGET:
            _snapshots.clear()
            _snapshot_total[0] = 0
        previous = _snapshots.get(id(owner))
        _snapshots[id(owner)] = (data, digest)
        _snapshot_total[0] += len(data) - (len(previous[0]) if previous is not None else 0)
    return digest


def _tensor_key(tensor: Any) -> tuple:
    """A torch tensor by content: ``tensor._version`` misses ``p.data`` updates, a digest not."""
    owner, tensor = tensor, tensor.detach()
    if tensor.device.type == "meta":
        return ("meta-tensor", tuple(tensor.shape), str(tensor.dtype))
    tensor = tensor.cpu()
    if tensor.is_sparse:
        tensor = tensor.to_dense()
    try:
        data = tensor.numpy()
    except TypeError:  # bfloat16 and other dtypes numpy lacks: float64 holds them exactly
        data = tensor.double().numpy()
    return ("tensor", str(tensor.dtype), _array_key(data, owner))


_categories: dict[type, str] = {}


def _categorize(kind: type) -> str:
    """How the walk reads objects of this type (decided once per type)."""
    torch = sys.modules.get("torch")
    np_random = sys.modules.get("numpy.random")
    rng_types: tuple = (random.Random,)
    if np_random is not None:
        rng_types += (np_random.Generator, np_random.BitGenerator, np_random.RandomState)
    if torch is not None:
        rng_types += (torch.Generator,)
    checks = [((tuple, list, collections.deque), "sequence"), (dict, "dict"),
              ((set, frozenset), "set"), (np.ndarray, "ndarray"), (weakref.ref, "weakref"),
              (types.FunctionType, "function"), (types.MethodType, "method"),
              ((staticmethod, classmethod), "wrapper"), (property, "property"),
              (rng_types, "rng"), ((bytearray, memoryview, array.array), "buffer")]
    category = "object"
    for types_, name in checks:
        if issubclass(kind, types_):
            category = name
            break
    else:
        if getattr(kind, "__wb_fingerprint__", None) is not None:
            category = "hook"
        elif torch is not None and issubclass(kind, torch.Tensor):
            category = "tensor"
        elif kind.__module__ == "functools" and kind.__name__ == "partial":
            category = "partial"
        elif hasattr(kind, "__next__") and "__dict__" not in dir(kind) and \
                not _slot_names_of(kind):
            category = "iterator"  # a generator, itertools.count...: state out of sight
    _bounded(_categories)
    _categories[kind] = category
    return category


_library_roots: dict[str, bool] = {}


def is_library_module(name: str) -> bool:
    """Whether the module ``name`` is library code rather than the user's: one of the numeric
    libraries, or any module of the standard library or of site-packages (pytest's assertion
    helpers, ``sys``, ``inspect``...). Their functions and namespaces hold no user state, and
    walking them would reach everything (``sys.modules``)."""
    root = name.partition(".")[0]
    known = _library_roots.get(root)
    if known is None:
        known = _library_roots[root] = root in _LIBRARY_ROOTS or _installed(root)
    return known


def _installed(root: str) -> bool:
    if root in sys.stdlib_module_names or root in sys.builtin_module_names:
        return True
    module = sys.modules.get(root)
    path = getattr(module, "__file__", None)
    if module is None or not isinstance(path, str):
        return False
    return any(part in ("site-packages", "dist-packages") for part in Path(path).parts)


def _namespace_origin(value: Any) -> str:
    name = value.__name__ if isinstance(value, types.ModuleType) else \
        getattr(value, "__module__", None)
    return (name or "") if isinstance(name, str) else ""


def is_library_namespace(value: Any) -> bool:
    """Modules and classes of numpy, torch, workbench...: no user state to fingerprint."""
    if value in _library_namespaces:
        return True
    if value in _user_namespaces:
        return False
    library = is_library_module(_namespace_origin(value)) or value is object
    seen = _library_namespaces if library else _user_namespaces
    _bounded(seen)
    seen.add(value)
    return library


def _rng_state(value: Any) -> Any:
    """The state of a random generator object, or _MISSING if ``value`` is none."""
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        if isinstance(value, (np_random.Generator, np_random.BitGenerator)):
            bits = value.bit_generator if isinstance(value, np_random.Generator) else value
            return bits.state
        if isinstance(value, np_random.RandomState):
            return value.get_state(legacy=False)
    if isinstance(value, random.Random):
        return value.getstate()
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Generator):
        return value.get_state()
    return _MISSING


class _Walk:
    """One fingerprint's walk: objects seen, the budget left, and the user namespaces (modules,
    classes) met on the way, whose attributes are read at the end, filtered by every name the
    reached code mentions."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.left = _BUDGET
        self.names: set[str] = set()  # every name the reached code mentions
        self.dynamic = False  # some reached code uses getattr/__dict__: namespaces unfiltered
        self.namespaces: dict[int, tuple[Any, set[str]]] = {}

    def value(self, value: Any) -> Any:
        kind = type(value)
        if kind in _SCALAR_TYPES:
            return value
        self.left -= 1
        if self.left < 0:
            raise _CannotSee(f"it reaches more than {_BUDGET} objects")
        if kind is np.ndarray:
            return _array_key(value)
        if isinstance(value, _BUILTIN_METHODS):
            bound = _bound_to(value)
            if bound is None:  # len, math.sin...
                return ("id", id(value))
            return ("bound", getattr(value, "__name__", ""), self.value(bound))
        if isinstance(value, np.generic):
            return ("np", value.dtype.str, value.item())
        if kind is types.ModuleType or isinstance(value, type):
            return self.namespace(value)
        if isinstance(value, _OPAQUE):
            return ("id", id(value))
        if id(value) in self.seen:  # a cycle, or an object met before: its state is in the key
            return ("seen", id(value))
        self.seen.add(id(value))
        return self.container(value, kind)

    def container(self, value: Any, kind: type) -> Any:
        category = _categories.get(kind) or _categorize(kind)
        if category == "object":
            attributes = getattr(value, "__dict__", None)
            slots = _slot_values(value, kind)
            if isinstance(attributes, dict) or slots:
                # Attributes the instance does not hold are read from its class.
                return ("obj", id(value), self.namespace(kind), self.value(attributes),
                        self.value(slots))
            return ("id", id(value))
        if category == "sequence":  # subclasses too: namedtuples hold mutable arrays
            return (kind.__name__,) + tuple([self.value(v) for v in value])
        if category == "dict":  # defaultdict, OrderedDict...: their items are the state
            return ("dict",) + tuple([(k, self.value(v)) for k, v in value.items()])
        if category == "function":
            return self.function(value)
        if category == "set":
            return ("set", frozenset([self.value(v) for v in value]))
        if category == "method":
            return ("method", self.value(value.__func__), self.value(value.__self__))
        if category == "wrapper":  # staticmethod, classmethod
            return (kind.__name__, self.value(value.__func__))
        if category == "property":
            return ("property", self.value(value.fget), self.value(value.fset))
        if category == "hook":
            return ("wb", self.hooked(kind.__wb_fingerprint__(value)))
        if category == "tensor":
            return _tensor_key(value)
        if category == "ndarray":  # np.matrix, masked arrays, memmaps: data, and attributes
            return ("ndarray", kind.__name__, _array_key(value.view(np.ndarray), value),
                    self.value(getattr(value, "__dict__", None)))
        if category == "weakref":
            return ("weakref", self.value(value()))
        if category == "iterator":
            raise _CannotSee(f"it reads a {kind.__name__} (an iterator or generator), whose "
                             "position workbench cannot see")
        if category == "rng":
            return ("rng", id(value), self.value(_rng_state(value)))
        if category == "buffer":
            return ("buffer", kind.__name__, _array_key(np.frombuffer(value, dtype=np.uint8), value))
        # functools.partial
        return ("partial", self.value(value.func), self.value(value.args),
                self.value(value.keywords))

    def hooked(self, result: Any) -> Any:
        """A ``__wb_fingerprint__`` result (a transform's): unverifiable if what it wraps is."""
        if isinstance(result, tuple):
            for item in result:
                if type(item) is Unverifiable:
                    raise _CannotSee(item.reason)
        return result

    def function(self, func: types.FunctionType) -> tuple:
        wrapped = getattr(func, "__wb_wrapped__", None)
        if wrapped is not None:  # a workbench transform: the function it wraps
            return ("transform", id(func), self.value(wrapped))
        module = func.__module__ if isinstance(func.__module__, str) else ""
        if is_library_module(module):  # np.linalg.norm, wb.relu, pytest's helpers...
            return ("id", id(func))
        info = _code_info(func.__code__)
        where = getattr(func, "__qualname__", "the function")
        if info.unseeable:
            raise _CannotSee(f"{where} calls {info.unseeable}(), which reads state by a computed "
                             "name")
        if info.entropy:
            raise _CannotSee(f"{where} uses {info.entropy}, which draws fresh random numbers on "
                             "every call")
        self.dynamic = self.dynamic or info.dynamic
        self.names.update(info.names)
        closure = []
        for cell in func.__closure__ or ():
            try:
                closure.append(self.value(cell.cell_contents))
            except ValueError:  # an empty cell (a variable assigned later)
                closure.append(_MISSING_KEY)
        module_globals = func.__globals__
        referenced = []
        for name in info.names:
            value = module_globals.get(name, _MISSING)
            if value is not _MISSING:
                referenced.append((name, self.value(value)))
        return ("fn", id(func.__code__), tuple(closure), tuple(referenced),
                self.value(func.__defaults__), self.value(func.__kwdefaults__))

    def namespace(self, value: Any) -> tuple:
        """A module or class: its attributes are read at the end (``namespaces_key``)."""
        if is_library_namespace(value):
            return ("lib", id(value))
        self.namespaces.setdefault(id(value), (value, set()))
        return ("namespace", id(value))

    def namespaces_key(self) -> tuple:
        """The attributes of the user namespaces met, that the reached code may read: those it
        names (all of them when it uses getattr), until no new name or namespace turns up."""
        found: list[tuple] = []
        changed = True
        while changed:
            changed = False
            for key, (space, done) in list(self.namespaces.items()):
                dicts = _namespace_dicts(space)
                present = set().union(*[d.keys() for d in dicts]) - done
                if self.dynamic:
                    wanted = {n for n in present if isinstance(n, str) and
                              (not n.startswith("__") or n in _IMPLICIT)}
                else:
                    wanted = present & (self.names | _IMPLICIT)
                for name in sorted(wanted):
                    done.add(name)
                    changed = True
                    found.append((key, name, tuple([self.value(d[name]) for d in dicts
                                                    if name in d])))
        return tuple(found)


def _namespace_dicts(space: Any) -> list[dict]:
    if isinstance(space, types.ModuleType):
        return [vars(space)]
    return [vars(c) for c in space.__mro__ if not is_library_namespace(c)]


def _slot_values(value: Any, kind: type) -> tuple:
    """The attributes an object keeps in ``__slots__`` (they are not in its ``__dict__``)."""
    return tuple([(name, getattr(value, name, _MISSING_KEY)) for name in _slot_names_of(kind)])


def _slot_names_of(kind: type) -> tuple[str, ...]:
    names = _slot_names.get(kind)
    if names is None:
        found = []
        for cls in kind.__mro__:
            slots = cls.__dict__.get("__slots__", ())
            found.extend(n for n in ((slots,) if isinstance(slots, str) else slots)
                         if n not in ("__dict__", "__weakref__"))
        _bounded(_slot_names)
        names = _slot_names[kind] = tuple(found)
    return names


def _bound_to(method: Any) -> Any:
    """The object a builtin method is bound to (``d`` of ``d.get``), None for plain builtins
    and module functions (``len``, ``math.sin``)."""
    bound = getattr(method, "__self__", None)
    return None if bound is None or type(bound) is types.ModuleType else bound


_slot_names: dict[type, tuple[str, ...]] = {}


def global_rng_state() -> tuple:
    """The state of the global random generators a function may draw from without naming a
    generator object (``np.random.*``, ``random.*``, ``torch.*``): compared before and after a
    trace to find functions that draw random numbers.

    >>> before = global_rng_state()
    >>> _ = random.random()
    >>> global_rng_state() == before
    False
    """
    states: list[Any] = [random.getstate()]
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        states.append(_numpy_global_state(np_random))
    torch = sys.modules.get("torch")
    if torch is not None:
        states.append(torch.random.get_rng_state().numpy().tobytes())
    return tuple(states)


_MT19937_BYTES = 624 * 4 + 4  # numpy's mt19937_state: uint32 key[624], int pos
_numpy_last: list[Any] = [None, b"", 0, 0.0]  # bit generator, its bytes, has_gauss, gauss


def _numpy_global_state(np_random: Any) -> tuple:
    """numpy's legacy global state, cheaply: ``np.random.get_state()`` costs ~30 µs, reading
    the Mersenne Twister's memory (its public ``ctypes`` address) under 1 µs. The legacy
    gaussian cache lives outside it, so the full state is read again whenever the last full
    read had a cached gaussian (drawing it changes nothing else) or the memory changed."""
    get_bit_generator = getattr(np_random, "get_bit_generator", None)
    bits = get_bit_generator() if get_bit_generator is not None else None
    if bits is None or type(bits).__name__ != "MT19937":
        return fingerprint_value(np_random.get_state(legacy=False))
    raw = ctypes.string_at(bits.ctypes.state_address, _MT19937_BYTES)
    last_bits, last_raw, has_gauss, gauss = _numpy_last
    if last_bits is bits and last_raw == raw and not has_gauss:
        return (raw, 0, 0.0)  # no cached gaussian could have been drawn: nothing else moved
    state = np_random.get_state(legacy=False)
    _numpy_last[:] = [bits, raw, state["has_gauss"], state["gauss"]]
    return (raw, state["has_gauss"], state["gauss"] if state["has_gauss"] else 0.0)


def saved_global_rng() -> list[tuple[Any, Any]]:
    """The global random generators' states with the function that puts each back (vmap's
    ``randomness='different'`` replays the draws of its probing trace)."""
    saved: list[tuple[Any, Any]] = [(random.setstate, random.getstate())]
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        saved.append((np_random.set_state, np_random.get_state(legacy=False)))
    torch = sys.modules.get("torch")
    if torch is not None:
        saved.append((torch.random.set_rng_state, torch.random.get_rng_state()))
    return saved


def restore_global_rng(saved: list[tuple[Any, Any]]) -> None:
    for put_back, state in saved:
        put_back(state)
