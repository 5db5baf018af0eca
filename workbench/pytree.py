"""Pytrees: nested tuples, lists, dicts and namedtuples of leaves, as torch.func and JAX use them.

``flatten`` returns the leaves in a fixed order and a hashable description of the structure;
``unflatten`` rebuilds the same structure around new leaves. Dicts keep their insertion order
(torch's convention). ``None`` is an empty subtree, not a leaf.

>>> leaves, tree = flatten({"w": [1.0, 2.0], "b": (3.0,)})
>>> leaves
[1.0, 2.0, 3.0]
>>> unflatten(tree, [10.0, 20.0, 30.0])
{'w': [10.0, 20.0], 'b': (30.0,)}
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from typing import Any

LEAF = ("*",)
NONE = ("None",)

TreeDef = tuple

# Set by ``workbench.tracing``: turns a numpy object array of traced scalars into a traced array.
OBJECT_ARRAY_HOOK: Any = None


def flatten(tree: Any) -> tuple[list[Any], TreeDef]:
    """The leaves of ``tree`` (depth first, left to right) and its structure."""
    leaves: list[Any] = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree: Any, leaves: list[Any]) -> TreeDef:
    kind = type(tree)
    if kind is tuple or kind is list:
        return (kind.__name__, tuple(_flatten(t, leaves) for t in tree))
    if kind is dict:
        keys = tuple(tree)
        return ("dict", keys, tuple(_flatten(tree[k], leaves) for k in keys))
    if kind is OrderedDict or kind is defaultdict:  # torch's pytrees keep these types too
        keys = tuple(tree)
        rebuild = ("defaultdict", tree.default_factory) if kind is defaultdict else ("OrderedDict",)
        return ("dict", keys, tuple(_flatten(tree[k], leaves) for k in keys), rebuild)
    if tree is None:
        return NONE
    if isinstance(tree, tuple) and hasattr(kind, "_fields"):  # namedtuple
        return ("namedtuple", kind, tuple(_flatten(t, leaves) for t in tree))
    if OBJECT_ARRAY_HOOK is not None and getattr(getattr(tree, "dtype", None), "kind", "") == "O":
        tree = OBJECT_ARRAY_HOOK(tree)  # np.array([x, y]) of traced values: a traced array
    leaves.append(tree)
    return LEAF


def unflatten(treedef: TreeDef, leaves: list[Any]) -> Any:
    """Rebuild the structure ``treedef`` with ``leaves`` in flatten's order."""
    iterator = iter(leaves)
    return _unflatten(treedef, iterator)


def _unflatten(treedef: TreeDef, leaves) -> Any:
    tag = treedef[0]
    if treedef is LEAF or tag == "*":
        return next(leaves)
    if tag == "None":
        return None
    if tag == "tuple":
        return tuple(_unflatten(t, leaves) for t in treedef[1])
    if tag == "list":
        return [_unflatten(t, leaves) for t in treedef[1]]
    if tag == "dict":
        items = {k: _unflatten(t, leaves) for k, t in zip(treedef[1], treedef[2])}
        if len(treedef) == 3:
            return items
        if treedef[3][0] == "defaultdict":
            return defaultdict(treedef[3][1], items)
        return OrderedDict(items)
    if tag == "namedtuple":
        return treedef[1](*(_unflatten(t, leaves) for t in treedef[2]))
    raise ValueError(f"unknown tree structure {tag!r}")


def tree_map(fn, tree: Any) -> Any:
    """``tree`` with ``fn`` applied to every leaf."""
    leaves, treedef = flatten(tree)
    return unflatten(treedef, [fn(leaf) for leaf in leaves])


def describe(treedef: TreeDef) -> str:
    """A short picture of a structure for error messages: ``*`` a leaf, ``(*, [*, *])``...

    >>> describe(flatten((1.0, [2.0, {"a": 3.0}], None))[1])
    "(*, [*, {'a': *}], None)"
    """
    tag = treedef[0]
    if tag == "*":
        return "*"
    if tag == "None":
        return "None"
    if tag == "dict":
        return "{" + ", ".join(f"{k!r}: {describe(t)}" for k, t in zip(treedef[1], treedef[2])) + "}"
    children = treedef[2] if tag == "namedtuple" else treedef[1]
    inner = ", ".join(describe(t) for t in children)
    if tag == "list":
        return f"[{inner}]"
    if tag == "namedtuple":
        return f"{treedef[1].__name__}({inner})"
    return f"({inner}{',' if len(children) == 1 else ''})"


def num_leaves(treedef: TreeDef) -> int:
    tag = treedef[0]
    if tag == "*":
        return 1
    if tag == "None":
        return 0
    children = treedef[2] if tag in ("dict", "namedtuple") else treedef[1]
    return sum(num_leaves(c) for c in children)
