"""The transforms' bodies at array level: what ``grad``, ``vjp``, ``jvp``, ``jacrev``,
``jacfwd`` and ``vmap`` add to an array graph.

Each body mirrors its element-level twin in ``workbench.transforms`` (same checks, same error
messages, which it shares), with array nodes instead of arrays of scalar nodes. Each runs inside
an array trace (``traced.active_graph()``): at top level ``Staged`` traces it and compiles the
result; nested, it just adds nodes to the enclosing trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import pytree
from ..tracing import Traced
from . import rules
from .autodiff import jvp, vjp
from .batching import Batch
from .graph import ArrayGraph, NotArrayLevel
from .traced import ArrayTraced, active_graph, result_dtype


def graph() -> ArrayGraph:
    g = active_graph()
    if g is None:
        raise NotArrayLevel("no array trace")
    return g


def _numeric(leaf: Any) -> np.ndarray:
    from ..transforms.staging import is_torch_tensor

    if isinstance(leaf, Traced):
        raise NotArrayLevel("an element-level value")
    if is_torch_tensor(leaf):
        raise NotArrayLevel("a torch tensor")
    return np.asarray(leaf)


def unwrap(leaf: Any) -> Any:
    """The traced value of a torch-tensor-wrapped one (``torch_functions.TracedTensor``)."""
    from ..transforms.staging import is_torch_tensor

    if is_torch_tensor(leaf):
        from .torch_tensor import unwrap

        return unwrap(leaf)
    return leaf


def rewrap(original: Any, traced: ArrayTraced) -> Any:
    """``traced`` as ``original`` was given: a torch tensor for a torch tensor (a graph whose
    inputs were torch tensors hands its differentiated values to the function as tensors)."""
    from ..transforms.staging import is_torch_tensor

    if is_torch_tensor(original) or traced.graph.torch_style:
        from .torch_tensor import as_tensor

        return as_tensor(traced)
    return traced


def as_array(g: ArrayGraph, leaf: Any) -> ArrayTraced:
    """A traced value for ``leaf`` (data becomes a constant node)."""
    leaf = unwrap(leaf)
    if isinstance(leaf, ArrayTraced):
        return leaf
    value = _numeric(leaf)
    if value.dtype.kind not in "fiub":
        raise NotArrayLevel(f"a {type(leaf).__name__}")
    dtype = value.dtype if value.dtype.kind == "f" else np.dtype(np.float64)
    return ArrayTraced(g, g.const(value.astype(np.float64) if value.dtype.kind != "b" else value),
                       dtype)


def fresh_leaf(g: ArrayGraph, leaf: Any, where: str) -> ArrayTraced:
    """A new variable equal to ``leaf``: what this level differentiates with respect to."""
    from ..transforms.staging import check_float_leaf

    leaf = unwrap(leaf)
    check_float_leaf(leaf, where)
    base = as_array(g, leaf)
    return ArrayTraced(g, g.alias(base.node), base.dtype)


def fresh_arguments(g: ArrayGraph, args: tuple, positions: tuple[int, ...]):
    """The element level's ``fresh_arguments`` with array variables; torch arguments are handed
    to the function as torch tensors (``torch_tensor``)."""
    from ..transforms.grad import fresh_arguments as fresh_at_any_level

    return fresh_at_any_level(g, args, positions, fresh_leaf, rewrap)


def _unflatten_per_arg(per_arg, nodes: list[int], g: ArrayGraph) -> list:
    it = iter(nodes)
    return [pytree.unflatten(tree, [ArrayTraced(g, next(it), leaf.dtype) for leaf in fresh])
            for tree, fresh in per_arg]


def _wrt(per_arg) -> list[int]:
    return [leaf.node for _, fresh in per_arg for leaf in fresh]


# ----- grad -----
def gradient_body(func: Callable, argnums, has_aux: bool):
    """(gradient, value, aux), as ``transforms.grad._gradient_body``."""
    from ..transforms.grad import check_scalar_output, normalize_argnums, split_aux

    def body(args: tuple, kwargs: dict):
        g = graph()
        positions = normalize_argnums(argnums, len(args), "grad")
        new_args, per_arg = fresh_arguments(g, args, positions)
        output, aux = split_aux(func(*new_args, **kwargs), has_aux, "grad")
        check_scalar_output(output, "grad")
        out = as_array(g, output)
        grads = vjp(g, [out.node], [g.const(1.0)], _wrt(per_arg))
        trees = _unflatten_per_arg(per_arg, grads, g)
        gradient = trees[0] if isinstance(argnums, int) else tuple(trees)
        return gradient, out, aux

    return body


# ----- jacobians -----
def output_leaves(g: ArrayGraph, output: Any, transform: str) -> tuple[list[ArrayTraced], Any]:
    from ..transforms.linearize import check_output_leaves

    leaves, tree = pytree.flatten(output)
    check_output_leaves(leaves, output, transform)
    return [as_array(g, leaf) for leaf in leaves], tree


def jacobian_body(func: Callable, argnums, has_aux: bool, mode: str):
    from ..transforms.grad import normalize_argnums, split_aux

    name = "jacrev" if mode == "rev" else "jacfwd"

    def body(args: tuple, kwargs: dict):
        g = graph()
        positions = normalize_argnums(argnums, len(args), name)
        new_args, per_arg = fresh_arguments(g, args, positions)
        output, aux = split_aux(func(*new_args, **kwargs), has_aux, name)
        outs, out_tree = output_leaves(g, output, name)
        ins = [leaf for _, fresh in per_arg for leaf in fresh]
        blocks: dict[tuple[int, int], int] = {}
        if mode == "rev":  # one reverse pass, batched over the output's unit cotangents
            for k, out in enumerate(outs):
                rows = _batched_over_basis(g, out.shape, lambda ct, out=out: vjp(
                    g, [out.node], [ct], [i.node for i in ins]))
                for j, leaf in enumerate(ins):
                    blocks[k, j] = rules.reshape(g, rows[j], out.shape + leaf.shape)
        else:  # one forward pass, batched over the input's unit tangents
            for j, leaf in enumerate(ins):
                cols = _batched_over_basis(g, leaf.shape, lambda t, leaf=leaf: jvp(
                    g, [o.node for o in outs], [leaf.node], [t]))
                for k, out in enumerate(outs):
                    moved = rules.transpose(g, cols[k], tuple(range(1, out.ndim + 1)) + (0,))
                    blocks[k, j] = rules.reshape(g, moved, out.shape + leaf.shape)
        result = []
        for k, out in enumerate(outs):
            per_argument = []
            j = 0
            for tree, fresh in per_arg:
                leaves = []
                for leaf in fresh:
                    leaves.append(ArrayTraced(g, blocks[k, j], result_dtype(out, leaf)))
                    j += 1
                per_argument.append(pytree.unflatten(tree, leaves))
            result.append(per_argument[0] if isinstance(argnums, int) else tuple(per_argument))
        jac = pytree.unflatten(out_tree, result)
        return (jac, aux) if has_aux else jac

    return body


def _batched_over_basis(g: ArrayGraph, shape: tuple[int, ...], linear) -> list[int]:
    """``linear(e)`` for every unit array ``e`` of ``shape``, stacked on a leading axis: one
    pass of ``linear`` (a VJP or JVP) batched by ``batching`` over the identity."""
    n = int(np.prod(shape))
    if n == 0:
        results = linear(g.const(np.zeros(shape)))
        return [g.const(np.zeros((0,) + g.shape(r))) for r in results]
    basis = g.const(np.eye(n).reshape((n,) + tuple(shape)))
    batch = Batch(g, {})
    unit = batch.placeholder(basis)
    return batch.emit(linear(unit))


# ----- vjp / jvp -----
def vjp_forward_body(func: Callable, has_aux: bool):
    from ..transforms.grad import split_aux

    def body(args: tuple, kwargs: dict):
        g = graph()
        output, aux = split_aux(func(*args), has_aux, "vjp")
        outs, out_tree = output_leaves(g, output, "vjp")
        return pytree.unflatten(out_tree, outs), aux

    return body


def vjp_in_graph(func: Callable, primals: tuple, has_aux: bool):
    """vjp inside an array trace: the output and a vjp_fn that adds reverse nodes."""
    from ..transforms.grad import split_aux
    from ..transforms.linearize import check_cotangents

    g = graph()
    new_args, per_arg = fresh_arguments(g, primals, tuple(range(len(primals))))
    output, aux = split_aux(func(*new_args), has_aux, "vjp")
    outs, out_tree = output_leaves(g, output, "vjp")

    def vjp_fn(cotangents):
        ct_leaves = check_cotangents(outs, out_tree, cotangents)
        cts = [rules.broadcast_to(g, as_array(g, ct).node, out.shape)
               for out, ct in zip(outs, ct_leaves)]
        grads = vjp(g, [o.node for o in outs], cts, _wrt(per_arg))
        return tuple(_unflatten_per_arg(per_arg, grads, g))

    result = pytree.unflatten(out_tree, outs)
    return (result, vjp_fn, aux) if has_aux else (result, vjp_fn)


def vjp_backward_body(func: Callable, has_aux: bool):
    def body(args: tuple, kwargs: dict):
        *prim, cotangents = args
        _, vjp_fn, *_ = vjp_in_graph(func, tuple(prim), has_aux)
        return vjp_fn(cotangents)

    return body


def jvp_body(func: Callable, has_aux: bool):
    from ..transforms.grad import split_aux

    def body(args: tuple, kwargs: dict):
        prim, tang = args
        g = graph()
        new_args, per_arg = fresh_arguments(g, prim, tuple(range(len(prim))))
        output, aux = split_aux(func(*new_args), has_aux, "jvp")
        outs, out_tree = output_leaves(g, output, "jvp")
        tangents = [as_array(g, t).node for t in pytree.flatten(tang)[0]]
        tangents = [rules.broadcast_to(g, t, g.shape(w)) for t, w in zip(tangents, _wrt(per_arg))]
        tangent_out = jvp(g, [o.node for o in outs], _wrt(per_arg), tangents)
        result = (pytree.unflatten(out_tree, outs),
                  pytree.unflatten(out_tree, [ArrayTraced(g, t, o.dtype)
                                              for t, o in zip(tangent_out, outs)]))
        return result + (aux,) if has_aux else result

    return body


# ----- vmap -----
def _mapped_leaf(g: ArrayGraph, leaf: Any) -> ArrayTraced:
    """A mapped argument as a traced value: integer data (class labels) keeps its integer
    values, so each example can index with its own label."""
    from ..transforms.staging import is_torch_tensor

    if not isinstance(leaf, ArrayTraced):
        if is_torch_tensor(leaf):  # float tensors arrive traced: this one holds integers
            from ..tracing import torch_to_numpy

            value = torch_to_numpy(leaf)
        else:
            value = _numeric(leaf)
        if value.dtype.kind in "iu":
            return ArrayTraced(g, g.const(value))
    x = as_array(g, leaf)
    if x.dtype.kind not in "fiu":
        raise NotArrayLevel(f"mapping over {x.dtype} data")
    return x


def _batched_guard(g: ArrayGraph, batch: Batch, node: int, expected: bool) -> None:
    """A guard recorded while tracing one example, made to hold for the whole batch.

    Guards that do not depend on the example stay as they are. Control flow on mapped values
    is refused (the element level runs each example on its own). A check (``g.require``: a
    label in range...) must hold for every example: it is tested on the batch's values now
    (raising its error if one example fails) and kept as a guard of the compiled version."""
    if node not in batch.batched:
        g.guards.append((node, expected))
        return
    error = g.checks.get(node)
    if error is None or not expected:
        raise NotArrayLevel("control flow on mapped values")
    every = rules.reduce_extreme(g, "amin", batch.batched[node], (0,), False)
    g.require(every, error)


def vmap_body(func: Callable, in_dims: Any, out_dims: Any):
    """vmap by batching rules (see ``batching``)."""
    from ..transforms.captured import global_rng_state
    from ..transforms.vmap import (
        _batch_size,
        _check_output,
        _leaf_dims,
        _out_dims_per_leaf,
        _output_axis,
        _unbatched_refused,
    )

    def body(args: tuple, kwargs: dict):
        g = graph()
        wrapped, tree = pytree.flatten(args)
        leaves = [unwrap(leaf) for leaf in wrapped]
        size, dims = _batch_size(leaves, _leaf_dims(in_dims, pytree.unflatten(tree, leaves)),
                                 args)
        batch = Batch(g, {})
        batch.size = size
        example_leaves = []
        for original, leaf, d in zip(wrapped, leaves, dims):
            if d is None:
                example_leaves.append(original)
                continue
            x = _mapped_leaf(g, leaf)
            perm = (d,) + tuple(i for i in range(x.ndim) if i != d)
            moved = rules.transpose(g, x.node, perm)
            example_leaves.append(rewrap(original, ArrayTraced(g, batch.placeholder(moved),
                                                               x.dtype)))
        n_guards = len(g.guards)
        rng = global_rng_state()
        out = func(*pytree.unflatten(tree, example_leaves), **kwargs)
        if global_rng_state() != rng:
            raise NotArrayLevel("random draws under vmap")
        out_leaves, out_tree = pytree.flatten(out)
        for leaf in out_leaves:
            _check_output(leaf)
        traced_out = [as_array(g, leaf) for leaf in out_leaves]
        new_guards = g.guards[n_guards:]
        # Guards first: a label out of range must be reported as that, before the batched
        # gather it protects is computed (and fails, or wraps a negative label).
        batch.emit([node for node, _ in new_guards])
        del g.guards[n_guards:]
        for node, expected in new_guards:
            _batched_guard(g, batch, node, expected)
        batched = batch.emit([t.node for t in traced_out])
        dims_out = _out_dims_per_leaf(out_dims, out_tree, len(out_leaves))
        results = []
        for k, (t, node, d) in enumerate(zip(traced_out, batched, dims_out)):
            if d is None:
                if t.node in batch.batched:
                    raise _unbatched_refused(k)
                results.append(out_leaves[k])
                continue
            d = _output_axis(d, t.ndim + 1, k)
            perm = tuple(range(1, d + 1)) + (0,) + tuple(range(d + 1, t.ndim + 1))
            results.append(ArrayTraced(g, rules.transpose(g, node, perm), t.dtype))
        return pytree.unflatten(out_tree, results)

    return body
