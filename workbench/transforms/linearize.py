"""``vjp``, ``jvp``, ``jacrev``, ``jacfwd`` and ``hessian``, with torch.func's semantics.

All of them are bodies over the same traced graph as ``grad``: reverse mode (``vjp_nodes``) for
``vjp`` and ``jacrev``, forward mode (``jvp_nodes``) for ``jvp`` and ``jacfwd``. At top level
each is compiled and cached by :class:`Staged`; inside another transform they add nodes to its
trace, so they compose freely (``jacfwd(jacrev(f))``, ``vmap(jacrev(f))``...).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import pytree
from ..arrays.traced import active_graph
from ..arrays.transforms import jacobian_body as array_jacobian_body
from ..arrays.transforms import jvp_body as array_jvp_body
from ..arrays.transforms import vjp_backward_body as array_vjp_backward_body
from ..arrays.transforms import vjp_forward_body as array_vjp_forward_body
from ..arrays.transforms import vjp_in_graph as array_vjp_in_graph
from ..errors import InputTypeError, OutputTypeError, ShapeError, api_boundary
from ..graph import Graph
from ..symbolic.differentiate import jvp_nodes, vjp_nodes
from ..tracing import STATE, Traced, as_ids
from .grad import (
    as_output,
    check_argnums_type,
    current_graph,
    fresh_arguments,
    make_transform,
    normalize_argnums,
    split_aux,
)
from .staging import Staged, _to_numpy, check_float_leaf, is_torch_tensor

# ----- helpers -----


def check_output_leaves(leaves: list, output: Any, transform: str) -> None:
    """torch.func's checks on a transformed function's outputs (either tracing level)."""
    if not leaves:  # torch.func: "Expected f to be a function that has non-empty output"
        raise OutputTypeError(f"{transform}: expected f to be a function that has non-empty "
                              f"output, but it returned {output!r:.60}; return an array, or a "
                              "tuple/list/dict with at least one array")
    for leaf in leaves:
        if hasattr(leaf, "__wb_apply__"):
            if leaf.dtype == np.bool_:
                raise OutputTypeError(f"{transform}: f returned a boolean array; its outputs must "
                                      "be floats")
        elif not (isinstance(leaf, (float, int, np.ndarray, np.generic)) or is_torch_tensor(leaf)):
            raise OutputTypeError(f"{transform}: f returned a {type(leaf).__name__} among its "
                                  "outputs; outputs must be arrays, numbers, or pytrees of them")


def _output_leaves(graph: Graph, output: Any, transform: str) -> tuple[list[Traced], Any]:
    """The output's leaves as traced arrays (constants become nodes), and its structure."""
    leaves, tree = pytree.flatten(output)
    check_output_leaves(leaves, output, transform)
    return [leaf if isinstance(leaf, Traced) else as_output(graph, leaf) for leaf in leaves], tree


def _nodes(arrays: list[Traced]) -> list[int]:
    return [i for a in arrays for i in a.ids.ravel().tolist()]


def _jacobian_tree(graph: Graph, out_leaves: list[Traced], out_tree, per_arg, argnums,
                   entry: Callable[[int, int], int]) -> Any:
    """Package ``entry(output element, input element)`` nodes as torch.func does: the output's
    structure, each leaf holding (per differentiated argument) the input's structure, each of
    those an array of shape ``output.shape + input.shape``."""
    out_offsets = np.cumsum([0] + [o.ids.size for o in out_leaves])
    in_leaves = [leaf for _, fresh in per_arg for leaf in fresh]
    in_offsets = np.cumsum([0] + [leaf.ids.size for leaf in in_leaves])
    result_leaves = []
    for k, out in enumerate(out_leaves):
        per_argument = []
        leaf_index = 0
        for tree, fresh in per_arg:
            blocks = []
            for leaf in fresh:
                rows = range(out_offsets[k], out_offsets[k + 1])
                cols = range(in_offsets[leaf_index], in_offsets[leaf_index + 1])
                ids = np.array([[entry(r, c) for c in cols] for r in rows], dtype=np.intp)
                blocks.append(Traced(graph, ids.reshape(out.shape + leaf.shape),
                                     np.result_type(out.dtype, leaf.dtype)))
                leaf_index += 1
            per_argument.append(pytree.unflatten(tree, blocks))
        result_leaves.append(per_argument[0] if isinstance(argnums, int) else tuple(per_argument))
    return pytree.unflatten(out_tree, result_leaves)


# ----- jacrev / jacfwd / hessian -----


def _jacobian_body(func: Callable, argnums, has_aux: bool, mode: str):
    name = "jacrev" if mode == "rev" else "jacfwd"

    def body(args: tuple, kwargs: dict):
        graph = current_graph()
        positions = normalize_argnums(argnums, len(args), name)
        new_args, per_arg = fresh_arguments(graph, args, positions)
        output, aux = split_aux(func(*new_args, **kwargs), has_aux, name)
        out_leaves, out_tree = _output_leaves(graph, output, name)
        outs = _nodes(out_leaves)
        wrt = _nodes([leaf for _, fresh in per_arg for leaf in fresh])
        one = graph.const(1.0)
        if mode == "rev":  # one reverse pass per output element: a row of the Jacobian
            rows = [vjp_nodes(graph, [o], [one], wrt) for o in outs]
            table = rows
        else:  # one forward pass per input element: a column
            cols = [jvp_nodes(graph, outs, [w], [one]) for w in wrt]
            table = [[cols[c][r] for c in range(len(wrt))] for r in range(len(outs))]
        jac = _jacobian_tree(graph, out_leaves, out_tree, per_arg, argnums,
                             lambda r, c: table[r][c])
        return (jac, aux) if has_aux else jac

    return body


def jacrev(func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False,
           chunk_size: int | None = None) -> Callable:
    """The Jacobian of ``func`` by reverse mode (torch.func.jacrev): one row per output element.

    The result has shape ``output.shape + input.shape`` (a tuple over ``argnums`` when it is a
    tuple; pytrees of outputs and inputs nest the same way as in torch.func).

    >>> import workbench as wb, numpy as np
    >>> wb.jacrev(lambda x: x ** 2)(np.array([1.0, 2.0])).tolist()
    [[2.0, 0.0], [0.0, 4.0]]
    """
    check_argnums_type(argnums)
    return make_transform(func, _jacobian_body(func, argnums, has_aux, "rev"), "jacrev",
                          (argnums, has_aux), array_jacobian_body(func, argnums, has_aux, "rev"))


def jacfwd(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *,
           randomness: str = "error") -> Callable:
    """The Jacobian of ``func`` by forward mode (torch.func.jacfwd): one column per input element.

    >>> import workbench as wb, numpy as np
    >>> wb.jacfwd(lambda x: np.sin(x).sum())(np.array([0.0, 0.0])).tolist()
    [1.0, 1.0]
    """
    check_argnums_type(argnums)
    return make_transform(func, _jacobian_body(func, argnums, has_aux, "fwd"), "jacfwd",
                          (argnums, has_aux), array_jacobian_body(func, argnums, has_aux, "fwd"))


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """The Hessian of scalar ``func``: ``jacfwd(jacrev(func, argnums), argnums)``, as torch.func.

    >>> import workbench as wb, numpy as np
    >>> wb.hessian(lambda x: (x ** 3).sum())(np.array([1.0, 2.0])).tolist()
    [[6.0, 0.0], [0.0, 12.0]]
    """
    return jacfwd(jacrev(func, argnums), argnums)


# ----- vjp / jvp -----

# One cached Staged per (function, options), so repeated vjp(f, x) calls reuse compiled code.
_staged_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


_staged_lock = threading.Lock()  # threads calling vjp/jvp at once share the table


def _staged_for(func: Callable, key: tuple, make_body: Callable[[], Callable],
                array_body: Callable | None = None) -> Staged:
    with _staged_lock:
        try:
            per_func = _staged_cache.setdefault(func, {})
        except TypeError:  # not weak-referenceable (a builtin): no cache across calls
            return Staged(func, make_body(), key[0], array_body)
        staged = per_func.get(key)
        if staged is None:
            staged = per_func[key] = Staged(func, make_body(), key[0], array_body)
        return staged


def check_cotangents(out_leaves: list, out_tree, cotangents) -> list:
    ct_leaves, ct_tree = pytree.flatten(cotangents)
    if ct_tree != out_tree:
        raise ShapeError("vjp_fn: the cotangents must have the same structure as f's output "
                         f"({len(out_leaves)} array(s)); got a different structure")
    for out, ct in zip(out_leaves, ct_leaves):
        shape = ct.shape if hasattr(ct, "__wb_apply__") else np.shape(_numpy(ct))
        if tuple(shape) != out.shape:
            raise ShapeError(f"vjp_fn: a cotangent has shape {tuple(shape)}, but the matching "
                             f"output has shape {out.shape}; they must be equal")
    return ct_leaves


def _numpy(x):
    return _to_numpy(x)


def _vjp_in_graph(graph: Graph, func: Callable, primals: tuple, has_aux: bool):
    """vjp inside a trace: the output as traced values, and a vjp_fn that adds reverse nodes."""
    new_args, per_arg = fresh_arguments(graph, primals, tuple(range(len(primals))))
    output, aux = split_aux(func(*new_args), has_aux, "vjp")
    out_leaves, out_tree = _output_leaves(graph, output, "vjp")
    wrt = _nodes([leaf for _, fresh in per_arg for leaf in fresh])

    def vjp_fn(cotangents):
        ct_leaves = check_cotangents(out_leaves, out_tree, cotangents)
        cts = []
        for out, ct in zip(out_leaves, ct_leaves):
            ids = as_ids(graph, _numpy(ct))
            cts.extend(np.broadcast_to(ids, out.shape).ravel().tolist())
        grads = vjp_nodes(graph, _nodes(out_leaves), cts, wrt)
        return tuple(_unpack(graph, per_arg, grads))

    result = pytree.unflatten(out_tree, out_leaves)
    return (result, vjp_fn, aux) if has_aux else (result, vjp_fn)


def _check_callable(func: Any, transform: str) -> None:
    if not callable(func):
        raise InputTypeError(f"{transform}: the function must be callable, got "
                             f"{type(func).__name__} ({func!r:.60}); pass the function itself as "
                             f"the first argument, e.g. wb.{transform}(f, ...)")


def _check_primals(primals: tuple, transform: str) -> None:
    """At least one primal, every leaf a float (torch.func: floating-point tensors only)."""
    leaves, _ = pytree.flatten(primals)
    if not leaves:
        raise InputTypeError(f"{transform}: expected primals to contain at least one array; "
                             f"pass the point to differentiate at, e.g. {transform}(f, "
                             f"{'x' if transform == 'vjp' else '(x,), (v,)'})")
    for k, leaf in enumerate(leaves):
        check_float_leaf(leaf, f"{transform}: primal {k}" if len(leaves) > 1
                         else f"{transform}: the primal")


def _unpack(graph: Graph, per_arg, nodes: list[int]) -> list:
    it = iter(nodes)
    trees = []
    for tree, fresh in per_arg:
        leaves = [Traced(graph, np.array([next(it) for _ in range(leaf.ids.size)], dtype=np.intp)
                         .reshape(leaf.shape), leaf.dtype) for leaf in fresh]
        trees.append(pytree.unflatten(tree, leaves))
    return trees


@api_boundary
def vjp(func: Callable, *primals: Any, has_aux: bool = False):
    """``(output, vjp_fn)`` (torch.func.vjp): ``vjp_fn(cotangents)`` returns a tuple with one
    gradient per primal, of ``sum(cotangents * output)``.

    >>> import workbench as wb, numpy as np
    >>> out, vjp_fn = wb.vjp(np.sin, np.array([0.0, 1.0]))
    >>> [round(v, 4) for v in vjp_fn(np.array([1.0, 2.0]))[0].tolist()]
    [1.0, 1.0806]
    """
    _check_callable(func, "vjp")
    _check_primals(primals, "vjp")
    if active_graph() is not None:
        return array_vjp_in_graph(func, primals, has_aux)
    if STATE.graphs:
        return _vjp_in_graph(current_graph(), func, primals, has_aux)

    def forward_body():
        def body(args, kwargs):
            graph = current_graph()
            output, aux = split_aux(func(*args), has_aux, "vjp")
            out_leaves, out_tree = _output_leaves(graph, output, "vjp")
            return pytree.unflatten(out_tree, out_leaves), aux

        return body

    def backward_body():
        def body(args, kwargs):
            *prim, cotangents = args
            _, vjp_fn, *_ = _vjp_in_graph(current_graph(), func, tuple(prim), has_aux)
            return vjp_fn(cotangents)

        return body

    output, aux = _staged_for(func, ("vjp", has_aux), forward_body,
                              array_vjp_forward_body(func, has_aux))((primals), {})
    backward = _staged_for(func, ("vjp_fn", has_aux), backward_body,
                           array_vjp_backward_body(func, has_aux))

    @api_boundary
    def vjp_fn(cotangents):
        return backward(tuple(primals) + (cotangents,), {})

    return (output, vjp_fn, aux) if has_aux else (output, vjp_fn)


@api_boundary
def jvp(func: Callable, primals: tuple, tangents: tuple, *, strict: bool = False,
        has_aux: bool = False):
    """``(output, jvp_out)`` (torch.func.jvp): the derivative of ``func`` at ``primals`` along
    ``tangents``, by forward mode. ``primals`` and ``tangents`` are tuples of the same structure.

    >>> import workbench as wb, numpy as np
    >>> out, tangent = wb.jvp(np.sin, (np.array([0.0]),), (np.array([2.0]),))
    >>> tangent.tolist()
    [2.0]
    """
    _check_callable(func, "jvp")
    for name, value in (("primals", primals), ("tangents", tangents)):
        if not isinstance(value, tuple):
            raise InputTypeError(
                f"jvp(func, primals, tangents): primals and tangents must be tuples, but {name} "
                f"is a {type(value).__name__}; it should be valid to call func(*primals): write "
                "jvp(f, (x,), (v,)) for one argument")
    p_leaves, p_tree = pytree.flatten(primals)
    t_leaves, t_tree = pytree.flatten(tangents)
    if p_tree != t_tree:
        raise ShapeError(f"jvp: expected primals and tangents to have the same structure, but "
                         f"primals are {pytree.describe(p_tree)} and tangents "
                         f"{pytree.describe(t_tree)} (* an array); give one tangent per primal, "
                         "in the same containers")
    _check_primals(primals, "jvp")
    for t in t_leaves:
        check_float_leaf(t, "jvp: a tangent")
    for p, t in zip(p_leaves, t_leaves):
        ps = p.shape if isinstance(p, Traced) else np.shape(_numpy(p))
        ts = t.shape if isinstance(t, Traced) else np.shape(_numpy(t))
        if tuple(ps) != tuple(ts):
            raise ShapeError(f"jvp: a tangent has shape {tuple(ts)} but its primal has shape "
                             f"{tuple(ps)}; they must be equal")

    def make_body():
        def body(args, kwargs):
            prim, tang = args
            graph = current_graph()
            new_args, per_arg = fresh_arguments(graph, prim, tuple(range(len(prim))))
            output, aux = split_aux(func(*new_args), has_aux, "jvp")
            out_leaves, out_tree = _output_leaves(graph, output, "jvp")
            wrt = _nodes([leaf for _, fresh in per_arg for leaf in fresh])
            tangent_nodes = []
            for leaf in pytree.flatten(tang)[0]:
                tangent_nodes.extend(as_ids(graph, _numpy(leaf)).ravel().tolist())
            outs = jvp_nodes(graph, _nodes(out_leaves), wrt, tangent_nodes)
            it = iter(outs)
            tangent_out = [Traced(graph, np.array([next(it) for _ in range(o.ids.size)],
                                                  dtype=np.intp).reshape(o.shape), o.dtype)
                           for o in out_leaves]
            result = (pytree.unflatten(out_tree, out_leaves),
                      pytree.unflatten(out_tree, tangent_out))
            return result + (aux,) if has_aux else result

        return body

    return _staged_for(func, ("jvp", has_aux), make_body,
                       array_jvp_body(func, has_aux))((primals, tangents), {})
