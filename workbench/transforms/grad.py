"""``grad`` and ``grad_and_value``, with torch.func's semantics.

The body traces ``func`` on fresh aliases of the differentiated arguments and builds the
gradient by symbolic reverse mode (``symbolic.differentiate``). At top level the result is
compiled and cached by :class:`~workbench.transforms.staging.Staged`; inside another transform
the gradient nodes simply join the outer trace, which is how ``grad(grad(f))`` works.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import pytree
from ..arrays.traced import ArrayTraced, active_graph
from ..arrays.transforms import gradient_body as array_gradient_body
from ..errors import (
    ArgnumsError,
    ArgnumsTypeError,
    HasAuxError,
    InputTypeError,
    NonScalarOutputError,
    OutputTypeError,
    error_for_user,
)
from ..graph import Graph
from ..symbolic.differentiate import vjp_nodes
from ..tracing import STATE, Traced, as_ids, grad_enabled, read_only, stop_gradient, torch_to_numpy
from .staging import Staged, check_float_leaf, is_torch_tensor


def check_argnums_type(argnums: Any) -> None:
    """argnums must be an int or a non-empty tuple of ints (checked when the transform is made)."""
    if isinstance(argnums, bool) or not isinstance(argnums, (int, tuple)):
        raise ArgnumsTypeError(
            f"argnums must be an int or a tuple of ints, got {type(argnums).__name__} "
            f"({argnums!r}); for several arguments write argnums=(0, 1)")
    if isinstance(argnums, tuple):
        if not argnums:
            raise ArgnumsError("argnums must be non-empty: name at least one argument to "
                               "differentiate, e.g. argnums=0")
        for a in argnums:
            if isinstance(a, bool) or not isinstance(a, int):
                raise ArgnumsTypeError(f"every element of argnums must be an int, got "
                                       f"{type(a).__name__} ({a!r}) in {argnums!r}")


def normalize_argnums(argnums: int | tuple[int, ...], n_args: int, transform: str) -> tuple[int, ...]:
    """Positions of the differentiated arguments, after range, sign and duplicate checks."""
    items = argnums if isinstance(argnums, tuple) else (argnums,)
    positions = []
    for a in items:
        if not -n_args <= a < n_args:
            raise ArgnumsError(
                f"{transform}: argnums={argnums!r} refers to argument {a}, but the function was "
                f"called with only {n_args} positional argument{'s' if n_args != 1 else ''}; "
                "argnums counts positional arguments only (keyword arguments cannot be "
                "differentiated)")
        positions.append(a % n_args)
    if len(set(positions)) != len(positions):
        raise ArgnumsError(f"{transform}: argnums elements must be unique, got {argnums!r}")
    return tuple(positions)


def current_graph() -> Graph:
    return STATE.graphs[-1]


def fresh_leaf(graph: Graph, leaf: Any, where: str) -> Traced:
    """A new variable equal to ``leaf``: what this level of differentiation is with respect to."""
    check_float_leaf(leaf, where)
    if isinstance(leaf, Traced):
        ids, dtype = leaf.ids, leaf.dtype
    else:
        value = torch_to_numpy(leaf) if is_torch_tensor(leaf) else leaf
        ids = as_ids(graph, value)
        dtype = np.asarray(value).dtype if np.asarray(value).dtype.kind == "f" else np.float64
    alias = graph.alias
    fresh = np.array([alias(i, where) for i in ids.ravel().tolist()],
                     dtype=np.intp).reshape(ids.shape)
    return read_only(Traced(graph, fresh, dtype))  # x[0] = ... inside f is refused, as by torch


def fresh_arguments(graph: Any, args: tuple, positions: tuple[int, ...], make_leaf=fresh_leaf,
                    handed=None):
    """Replace each differentiated argument by fresh variables; return them per argument.

    ``make_leaf(graph, leaf, where)`` makes one variable (element level by default; the array
    level passes its own), ``handed(leaf, fresh)`` what the function receives for it (the
    variable itself by default)."""
    new_args = list(args)
    per_arg = []
    for pos in positions:
        leaves, tree = pytree.flatten(args[pos])
        fresh = [make_leaf(graph, leaf, f"argument {pos}" if len(leaves) == 1 else
                           f"leaf {j} of argument {pos}") for j, leaf in enumerate(leaves)]
        given = fresh if handed is None else [handed(leaf, f) for leaf, f in zip(leaves, fresh)]
        new_args[pos] = pytree.unflatten(tree, given)
        per_arg.append((tree, fresh))
    return new_args, per_arg


def split_aux(output: Any, has_aux: bool, transform: str):
    if not has_aux:
        return output, None
    if not isinstance(output, tuple) or len(output) != 2:  # a list is refused, as by torch.func
        raise HasAuxError(
            f"{transform}(f, has_aux=True): f must return a tuple (output, aux), but it returned "
            f"{_describe(output)}; return `loss, aux` (aux may be any pytree), or drop has_aux")
    return output[0], output[1]


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    if hasattr(value, "__wb_apply__"):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__name__}"


def check_scalar_output(output: Any, transform: str) -> None:
    """torch.func's checks on what a differentiated function returned, with a hint at what to
    use instead (for traced values of either level, and plain numbers)."""
    if isinstance(output, (tuple, list, dict)):
        raise OutputTypeError(
            f"{transform}(f)(*args): f returned {_describe(output)}, but it must return a single "
            "scalar; if the other items are auxiliary outputs, use has_aux=True and return "
            "(loss, aux)")
    if hasattr(output, "__wb_apply__"):  # a traced value (element or array level)
        if output.dtype == np.bool_:
            raise OutputTypeError(f"{transform}(f)(*args): f returned a boolean; it must return a "
                                  "float scalar")
        if output.ndim != 0:
            raise NonScalarOutputError(
                f"{transform}(f)(*args): expected f to return a scalar (0-d array), got an array "
                f"of shape {output.shape}. Reduce it (output.sum(), output.mean()), index it "
                "(output[0], output.reshape(())), or use wb.vjp / wb.jacrev for the derivative of "
                "every element")
        return
    value = torch_to_numpy(output) if is_torch_tensor(output) else output
    if np.ndim(value) != 0:
        raise NonScalarOutputError(
            f"{transform}(f)(*args): expected f to return a scalar (0-d array), got an array of "
            f"shape {np.shape(value)}; reduce it with .sum() or .mean(), or use wb.jacrev")
    try:
        float(value)
    except (TypeError, ValueError):
        raise OutputTypeError(f"{transform}(f)(*args): f returned {_describe(output)}; it must "
                              "return a float scalar") from None


def scalar_output_node(graph: Graph, output: Any, transform: str) -> int:
    """The node of a scalar output (after :func:`check_scalar_output`)."""
    check_scalar_output(output, transform)
    if isinstance(output, Traced):
        return int(output.ids)
    value = torch_to_numpy(output) if is_torch_tensor(output) else output
    return graph.const(float(value))


def gradient_trees(graph: Graph, per_arg, grads: list[int]):
    """Package gradient nodes in the structure of the differentiated arguments."""
    it = iter(grads)
    trees = []
    for tree, fresh in per_arg:
        leaves = []
        for leaf in fresh:
            ids = np.array([next(it) for _ in range(leaf.ids.size)], dtype=np.intp)
            leaves.append(Traced(graph, ids.reshape(leaf.ids.shape), leaf.dtype))
        trees.append(pytree.unflatten(tree, leaves))
    return trees


def as_output(graph: Graph, value: Any, dtype=None) -> Any:
    """A traced value for an output (constants become nodes so the program computes them)."""
    if isinstance(value, Traced):
        return value
    array = np.asarray(value)
    return Traced(graph, as_ids(graph, array), dtype or (array.dtype if array.dtype.kind == "f"
                                                        else np.float64))


def respecting_outer_no_grad(body: Callable[[tuple, dict], Any]) -> Callable[[tuple, dict], Any]:
    """A nested transform called under no_grad still works inside, but its result is a constant
    to the enclosing levels (torch.func's rule)."""

    @functools.wraps(body)
    def run(args: tuple, kwargs: dict) -> Any:
        if not (STATE.graphs or active_graph() is not None) or grad_enabled():
            return body(args, kwargs)
        saved = STATE.grad_enabled  # False under wb.no_grad; True when only torch's is off
        STATE.grad_enabled = True
        try:
            import sys

            torch = sys.modules.get("torch")
            if torch is not None:
                with torch.enable_grad():
                    out = body(args, kwargs)
            else:
                out = body(args, kwargs)
        finally:
            STATE.grad_enabled = saved
        return pytree.tree_map(_detached, out)

    return run


def _detached(value: Any) -> Any:
    if isinstance(value, Traced):
        return stop_gradient(value)
    if isinstance(value, ArrayTraced):
        return value.detach()
    return value


def _gradient_body(func: Callable, argnums, has_aux: bool):
    """The body both ``grad`` and ``grad_and_value`` trace: returns (gradient, value, aux)."""

    def body(args: tuple, kwargs: dict):
        graph = current_graph()
        positions = normalize_argnums(argnums, len(args), "grad")
        new_args, per_arg = fresh_arguments(graph, args, positions)
        output, aux = split_aux(func(*new_args, **kwargs), has_aux, "grad")
        out_node = scalar_output_node(graph, output, "grad")
        wrt = [i for _, fresh in per_arg for leaf in fresh for i in leaf.ids.ravel().tolist()]
        grads = vjp_nodes(graph, [out_node], [graph.const(1.0)], wrt)
        trees = gradient_trees(graph, per_arg, grads)
        gradient = trees[0] if isinstance(argnums, int) else tuple(trees)
        return gradient, as_output(graph, output), aux

    return body


def make_transform(func: Callable, body, name: str, options: tuple = (),
                   array_body=None) -> Callable:
    """The user-facing function of a transform: a :class:`Staged` body behind ``func``'s name.

    The same request (transform, function, options) returns the same function, with its cache of
    compiled versions: ``[wb.grad(f)(x) for x in xs]`` traces ``f`` once, not once per point.
    The most recent requests are remembered (a bounded number, so nothing grows without end).
    """
    if not callable(func):  # fail where the transform is made, not at its first call
        raise InputTypeError(f"{name}: the function to transform must be callable, got "
                             f"{type(func).__name__} ({func!r:.60}); pass the function itself, "
                             f"e.g. wb.{name}(f), not wb.{name}(f(x))")
    try:
        return _remembered(func, name, options, body, array_body)
    except TypeError:  # options that cannot be hashed: nothing to remember the request by
        return _new_transform(func, body, name, array_body)


def _new_transform(func: Callable, body, name: str, array_body=None) -> Callable:
    staged = Staged(func, respecting_outer_no_grad(body), name,
                    respecting_outer_no_grad(array_body) if array_body is not None else None)
    return user_facing(func, staged, "__wb_staged__")


_REMEMBERED: dict[tuple, Callable] = {}
_REMEMBER_AT_MOST = 256


_REMEMBERED_LOCK = threading.Lock()  # threads making transforms at once share the table


def _remembered(func: Callable, name: str, options: tuple, body, array_body=None) -> Callable:
    # By identity: two callables that compare equal may still hold different state. The id
    # stays valid while the entry lives (its Staged holds ``func``).
    key = (name, id(func), options)
    with _REMEMBERED_LOCK:
        made = _REMEMBERED.pop(key, None)  # re-inserted below: the dict's order is recency
        if made is None:
            made = _new_transform(func, body, name, array_body)
            if len(_REMEMBERED) >= _REMEMBER_AT_MOST:
                del _REMEMBERED[next(iter(_REMEMBERED))]
        _REMEMBERED[key] = made
    return made


def user_facing(func: Callable, implementation: Callable[[tuple, dict], Any],
                attribute: str) -> Callable:
    """A function with ``func``'s name and docstring that calls ``implementation(args, kwargs)``;
    the implementation stays reachable as ``attribute`` (its cache, for tests and tools)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return implementation(args, kwargs)
        except Exception as error:  # the user's traceback ends in their code, not in ours
            for_user = error_for_user(error)
            if for_user is None:
                raise
            raise for_user  # noqa: B904 - its cause and context are set by error_for_user

    wrapper.__wb_wrapped__ = func  # type: ignore[attr-defined]
    setattr(wrapper, attribute, implementation)
    return wrapper


def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0,
                   has_aux: bool = False) -> Callable:
    """Like :func:`grad`, but returns ``(gradient, value)`` (``(gradient, (value, aux))`` with aux).

    >>> import workbench as wb
    >>> g, v = wb.grad_and_value(lambda x: x ** 3)(2.0)
    >>> float(g), float(v)
    (12.0, 8.0)
    """
    check_argnums_type(argnums)

    def packed(inner):
        def body(args: tuple, kwargs: dict):
            gradient, value, aux = inner(args, kwargs)
            return (gradient, (value, aux)) if has_aux else (gradient, value)

        return body

    return make_transform(func, packed(_gradient_body(func, argnums, has_aux)), "grad_and_value",
                          (argnums, has_aux), packed(array_gradient_body(func, argnums, has_aux)))


def grad(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """The gradient of ``func`` with respect to the arguments ``argnums`` (torch.func.grad).

    ``func`` must return a scalar (with ``has_aux=True``: a pair ``(scalar, aux)``, and the
    result is ``(gradient, aux)``). ``argnums`` is an int (negative counts from the end) or a
    tuple of ints, which returns a tuple of gradients; each differentiated argument may be a
    pytree of floats/arrays and its gradient has the same structure. Nests to any order.

    >>> import workbench as wb, numpy as np
    >>> float(wb.grad(np.sin)(0.0))
    1.0
    >>> float(wb.grad(wb.grad(lambda x: x ** 3))(2.0))
    12.0
    """
    check_argnums_type(argnums)

    def packed(inner):
        def body(args: tuple, kwargs: dict):
            gradient, _, aux = inner(args, kwargs)
            return (gradient, aux) if has_aux else gradient

        return body

    return make_transform(func, packed(_gradient_body(func, argnums, has_aux)), "grad",
                          (argnums, has_aux), packed(array_gradient_body(func, argnums, has_aux)))
