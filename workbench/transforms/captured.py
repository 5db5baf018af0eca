"""Fingerprints of the state a function captures: closure cells, defaults and referenced globals.

A compiled result bakes in every constant the function read while it was traced, so the cache key
must change whenever that state changes -- an array captured by a closure and mutated in place,
a global rebound to a new value. :func:`fingerprint` walks that state (depth- and size-limited)
and returns a hashable summary: values for numbers and strings, a content digest for arrays,
the attributes the code reads from user modules and classes (``settings.w``, ``Config.scale``),
identities for library modules and opaque objects.

>>> import numpy as np
>>> w = np.array([1.0, 2.0])
>>> f = lambda x: x * w
>>> before = fingerprint(f)
>>> w[0] = 5.0
>>> fingerprint(f) == before
False
"""

from __future__ import annotations

import hashlib
import sys
import types
from typing import Any

import numpy as np

_MISSING = object()
_MAX_DEPTH = 4
_MAX_ITEMS = 4096
_SMALL_ARRAY_BYTES = 512  # below this, the bytes themselves are the key (no hash collision)
_OPAQUE = (types.ModuleType, types.BuiltinFunctionType, type, np.ufunc)  # hold no mutable state
_SCALARS = (bool, int, float, complex, str, bytes, type(None))

_global_names: dict[types.CodeType, tuple[str, ...]] = {}

# Modules and classes of these packages hold no user state worth a cache key (np.pi, torch.float64).
_LIBRARY_ROOTS = frozenset({"numpy", "math", "cmath", "torch", "jax", "jaxlib", "sympy", "scipy",
                            "workbench", "builtins", "functools", "itertools", "operator",
                            "collections", "typing", "random", "statistics"})
_library_namespaces: set = set()  # seen library modules/classes (a set lookup on the hot path)


def _names_of(code: types.CodeType) -> tuple[str, ...]:
    """Global names a code object (and the code nested in it) may read."""
    names = _global_names.get(code)
    if names is None:
        found = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found.update(_names_of(const))
        names = _global_names[code] = tuple(sorted(found))
    return names


def fingerprint(func: Any) -> tuple:
    """A hashable summary of everything ``func`` captures (see the module docstring)."""
    wrapped = getattr(func, "__wb_wrapped__", None)
    if wrapped is not None:
        # A transform made by workbench (grad(f), ...): what it captures is what ``f`` captures;
        # the transform object itself (argnums, has_aux...) is one per request, so its identity
        # tells the options apart.
        return ("transform", id(func), fingerprint(wrapped))
    if type(func) is types.FunctionType and func.__closure__ is None and \
            func.__defaults__ is None and func.__kwdefaults__ is None:
        # The common case on the cached-call path (a plain function or lambda), kept thin.
        module_globals = func.__globals__
        referenced = []
        names = _names_of(func.__code__)
        for name in names:
            value = module_globals.get(name, _MISSING)
            if value is _MISSING:
                continue
            if not isinstance(value, _OPAQUE):
                referenced.append((name, _fp(value, _MAX_DEPTH - 1, set())))
            elif isinstance(value, (types.ModuleType, type)):
                namespace = _namespace(value, names, _MAX_DEPTH - 1, set())
                if namespace is not None:
                    referenced.append((name, namespace))
        return ("fn", id(func.__code__), (), tuple(referenced), None, None)
    return _fp(func, _MAX_DEPTH, set())


def _array_key(array: np.ndarray) -> tuple:
    if array.dtype == object:
        return ("object-array", id(array))
    contiguous = np.ascontiguousarray(array)
    if contiguous.nbytes <= _SMALL_ARRAY_BYTES:
        data: Any = contiguous.tobytes()
    else:
        data = hashlib.blake2b(memoryview(contiguous).cast("B"), digest_size=16).digest()
    return ("array", array.shape, array.dtype.str, data)


def _fp(value: Any, depth: int, seen: set[int]) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is np.ndarray:
        return _array_key(value)
    if isinstance(value, np.generic):
        return ("np", value.dtype.str, value.item())
    if isinstance(value, _OPAQUE):
        return ("id", id(value))
    if depth <= 0 or id(value) in seen:
        return ("id", id(value))
    seen.add(id(value))
    try:
        return _fp_container(value, kind, depth - 1, seen)
    finally:
        seen.discard(id(value))


def _fp_container(value: Any, kind: type, depth: int, seen: set[int]) -> Any:
    if isinstance(value, (tuple, list)):  # subclasses too: namedtuples hold mutable arrays
        if len(value) > _MAX_ITEMS:
            return ("long", kind.__name__, id(value), len(value))
        return (kind.__name__,) + tuple(_fp(v, depth, seen) for v in value)
    if isinstance(value, dict):  # defaultdict, OrderedDict...: their items are the state
        if len(value) > _MAX_ITEMS:
            return ("long-dict", id(value), len(value))
        return ("dict",) + tuple((k, _fp(v, depth, seen)) for k, v in value.items())
    if kind is types.FunctionType:
        return _fp_function(value, depth, seen)
    if kind is types.MethodType:
        return ("method", _fp(value.__func__, depth, seen), _fp(value.__self__, depth, seen))
    hook = getattr(value, "__wb_fingerprint__", None)
    if hook is not None:
        return ("wb", hook())
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return ("tensor", _array_key(value.detach().cpu().numpy()))
    if kind.__module__ == "functools" and kind.__name__ == "partial":
        return ("partial", _fp(value.func, depth, seen), _fp(value.args, depth, seen),
                _fp(value.keywords, depth, seen))
    attributes = getattr(value, "__dict__", None)
    slots = _slot_values(value, kind)
    if isinstance(attributes, dict) or slots:
        return ("obj", id(value), _fp(attributes, depth, seen), _fp(slots, depth, seen))
    return ("id", id(value))


def _slot_values(value: Any, kind: type) -> tuple:
    """The attributes an object keeps in ``__slots__`` (they are not in its ``__dict__``)."""
    found = []
    for cls in kind.__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__"):
                found.append((name, getattr(value, name, _MISSING_KEY)))
    return tuple(found)


def _namespace(value: Any, names: tuple[str, ...], depth: int, seen: set[int]) -> tuple | None:
    """A user module or class the code reads attributes of (``cfg.scale``, ``Model.w``): the
    attributes it may read, i.e. those named in the code. None for library namespaces."""
    if value in _library_namespaces:
        return None
    is_module = isinstance(value, types.ModuleType)
    origin = (value.__name__ if is_module else getattr(value, "__module__", None)) or ""
    if origin.partition(".")[0] in _LIBRARY_ROOTS:
        _library_namespaces.add(value)
        return None
    spaces = [vars(value)] if is_module else [vars(c) for c in value.__mro__[:-1]]  # not object
    found = []
    for name in names:
        for space in spaces:
            if name in space:
                found.append((name, _fp(space[name], depth, seen)))
                break
    return ("namespace", id(value), tuple(found))


def _captured(value: Any, names: tuple[str, ...], depth: int, seen: set[int]) -> Any:
    if isinstance(value, (types.ModuleType, type)):
        return _namespace(value, names, depth, seen)
    return _fp(value, depth, seen)


def _fp_function(func: types.FunctionType, depth: int, seen: set[int]) -> tuple:
    names = _names_of(func.__code__)
    cells = func.__closure__ or ()
    closure = []
    for cell in cells:
        try:
            closure.append(_captured(cell.cell_contents, names, depth, seen))
        except ValueError:  # an empty cell (a variable assigned later)
            closure.append(_MISSING_KEY)
    module_globals = func.__globals__
    referenced = []
    for name in names:
        value = module_globals.get(name, _MISSING)
        if value is _MISSING:
            continue
        if isinstance(value, _OPAQUE):
            if not isinstance(value, (types.ModuleType, type)):
                continue
            namespace = _namespace(value, names, depth, seen)
            if namespace is not None:
                referenced.append((name, namespace))
            continue
        referenced.append((name, _fp(value, depth, seen)))
    return ("fn", id(func.__code__), tuple(closure), tuple(referenced),
            _fp(func.__defaults__, depth, seen), _fp(func.__kwdefaults__, depth, seen))


_MISSING_KEY = ("missing",)
