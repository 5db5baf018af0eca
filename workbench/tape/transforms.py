"""``wb.tape.grad``, ``wb.tape.grad_and_value`` and ``wb.tape.record``: wb.grad's semantics on the tape.

Each call runs ``func`` once on tape values, then walks the tape backwards. Gradients come back
in the structure of the differentiated arguments (pytrees), as numpy values, or torch tensors
when the argument was one.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import pytree
from ..errors import HasAuxError, InputTypeError, NonScalarOutputError, OutputTypeError
from ..modes import enable_grad, is_grad_enabled
from ..transforms.grad import check_argnums_type, normalize_argnums
from .core import Tape, TapeArray, raw
from .torch_tensor import is_tape_tensor, unwrap, wrap


def _torch_tensor_type():
    torch = sys.modules.get("torch")
    return torch.Tensor if torch is not None else ()


def _input_value(leaf: Any, where: str) -> Any:
    """A differentiable float value for ``leaf``, or an InputTypeError saying what to pass."""
    if isinstance(leaf, TapeArray):  # nested: a value of an outer tape
        return leaf
    if is_tape_tensor(leaf):  # nested, in torch code: the outer tape's value inside
        return unwrap(leaf)
    if isinstance(leaf, _torch_tensor_type()):
        if not leaf.is_floating_point():
            raise InputTypeError(f"{where} is an integer torch tensor; only floating-point "
                                 "inputs can be differentiated: convert it with .double()")
        return leaf.detach().cpu().numpy()
    if isinstance(leaf, (bool, np.bool_)) or isinstance(leaf, (int, np.integer)):
        raise InputTypeError(f"{where} is {type(leaf).__name__} {leaf!r}; only floating-point "
                             f"inputs can be differentiated: pass {float(leaf)!r} instead")
    if isinstance(leaf, float):
        return np.float64(leaf)
    if isinstance(leaf, (np.ndarray, np.floating)):
        if leaf.dtype.kind != "f":
            raise InputTypeError(f"{where} has dtype {leaf.dtype}; only floating-point inputs "
                                 "can be differentiated: convert it with .astype(float)")
        return leaf
    raise InputTypeError(f"{where} is a {type(leaf).__name__}, not a float or array; "
                         "differentiate with respect to floats, arrays or pytrees of them")


def _scalar_output(output: Any, transform: str) -> Any:
    """The output, checked to be a float scalar (torch.func's rules and messages)."""
    if isinstance(output, (tuple, list, dict)):
        raise OutputTypeError(
            f"{transform}(f)(*args): f returned a {type(output).__name__}, but it must return a "
            "single scalar; for auxiliary outputs use has_aux=True and return (loss, aux)")
    output = unwrap(output)
    if isinstance(output, _torch_tensor_type()):
        output = output.detach().cpu().numpy()
    shape = np.shape(raw(output))
    if shape != ():
        raise NonScalarOutputError(
            f"{transform}(f)(*args): expected f to return a scalar (0-d array), got an array of "
            f"shape {shape}. Reduce it (out.sum(), out.mean()) or index it (out[0])")
    kind = np.asarray(raw(output)).dtype.kind
    if kind not in "fiu":
        raise OutputTypeError(f"{transform}(f)(*args): f returned a value of dtype kind {kind!r}; "
                              "it must return a float scalar")
    return output


def _split_aux(out: Any, has_aux: bool, transform: str) -> tuple[Any, Any]:
    if not has_aux:
        return out, None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise HasAuxError(f"{transform}(f, has_aux=True): f must return a pair (output, aux), "
                          f"but it returned a {type(out).__name__}; return `loss, aux`, or drop "
                          "has_aux")
    return out[0], out[1]


@contextlib.contextmanager
def _grad_on():
    """Gradients on for the run: a no_grad around the call must not change it (torch.func's rule)."""
    torch = sys.modules.get("torch")
    with enable_grad(), (torch.enable_grad() if torch is not None else contextlib.nullcontext()):
        yield


def run(func: Callable, args: tuple, kwargs: dict, argnums: Any, has_aux: bool,
        transform: str, names: list[str]) -> Tape:
    """Record ``func`` on a fresh tape and run the backward pass; results land on the tape.

    numpy warnings are off during the run: the inf/nan they announce are torch's results too.
    """
    positions = normalize_argnums(argnums, len(args), transform)
    with np.errstate(all="ignore"):
        if is_grad_enabled():
            return _run(func, args, kwargs, positions, isinstance(argnums, int), has_aux,
                        transform, names)
        with _grad_on():  # inside an outer no_grad: the results are constants to outer tapes
            tape = _run(func, args, kwargs, positions, isinstance(argnums, int), has_aux,
                        transform, names)
    tape.gradient, tape.value, tape.aux = (pytree.tree_map(_constant, t) for t in
                                           (tape.gradient, tape.value, tape.aux))
    return tape


def _constant(x: Any) -> Any:
    """``x`` cut off every tape: its plain value (a torch tensor for a tape tensor)."""
    if is_tape_tensor(x):
        return sys.modules["torch"].from_numpy(np.array(raw(x.box)))
    return raw(x)


def _run(func: Callable, args: tuple, kwargs: dict, positions: tuple[int, ...], single: bool,
         has_aux: bool, transform: str, names: list[str]) -> Tape:
    tape = Tape()
    new_args = list(args)
    per_arg = []
    for pos in positions:
        leaves, tree = pytree.flatten(args[pos])
        labels = leaf_labels(tree, names[pos] if pos < len(names) else f"arg{pos}")
        boxes = [tape.input(_input_value(leaf, f"argument {pos}" if len(leaves) == 1
                                         else f"leaf {j} ({labels[j]}) of argument {pos}"),
                            labels[j])
                 for j, leaf in enumerate(leaves)]
        # torch leaves enter as tensors: torch code (functional_call) accepts only tensors
        new_args[pos] = pytree.unflatten(tree, [wrap(b) if _is_tensor(leaf) else b
                                                for leaf, b in zip(leaves, boxes)])
        per_arg.append((tree, leaves, boxes))
        tape.torch_style |= any(_is_tensor(leaf) for leaf in leaves)
    output, aux = _split_aux(func(*new_args, **kwargs), has_aux, transform)
    output = _scalar_output(output, transform)
    if isinstance(output, TapeArray) and output.tape is tape:
        adjoints = tape.backward(output)
    else:  # the output does not depend on the differentiated arguments
        adjoints, tape.finished = [None] * len(tape), True
    trees = [pytree.unflatten(tree, [_gradient_leaf(adjoints[b.entry], leaf, b)
                                     for leaf, b in zip(leaves, boxes)])
             for tree, leaves, boxes in per_arg]
    tape.gradient = trees[0] if single else tuple(trees)
    tape.value = _unbox(tape, output)
    tape.aux = pytree.tree_map(functools.partial(_unbox, tape), aux) if has_aux else None
    return tape


def _is_tensor(leaf: Any) -> bool:
    return isinstance(leaf, _torch_tensor_type())


def _unbox(tape: Tape, x: Any) -> Any:
    """A value of this tape as its plain value (which is an outer tape's value when nested);
    a tape tensor's value stays a tensor (of the outer tape when nested)."""
    if is_tape_tensor(x):
        inner = _unbox(tape, x.box)
        if isinstance(inner, TapeArray):
            return wrap(inner)
        return sys.modules["torch"].from_numpy(np.array(inner)) if isinstance(inner, np.ndarray) \
            else inner
    if isinstance(x, TapeArray) and x.tape is tape:
        x = x.value
    return x


def _gradient_leaf(adjoint: Any, leaf: Any, box: TapeArray) -> Any:
    if isinstance(adjoint, TapeArray):  # nested: the gradient is recorded on an outer tape
        return wrap(adjoint) if _is_tensor(leaf) else adjoint
    value = raw(box.value)
    dtype = value.dtype if value.dtype.kind == "f" else np.float64
    array = np.zeros(value.shape, dtype) if adjoint is None else np.asarray(adjoint, dtype)
    if isinstance(leaf, _torch_tensor_type()):
        return sys.modules["torch"].from_numpy(np.array(array))
    return array[()] if array.ndim == 0 else array


def leaf_labels(treedef: Any, base: str) -> list[str]:
    """A readable path per leaf of a pytree: ``p['w']``, ``p[0]``, ``p.bias``.

    >>> from workbench import pytree
    >>> leaf_labels(pytree.flatten({"w": [1.0, 2.0], "b": 3.0})[1], "p")
    ["p['w'][0]", "p['w'][1]", "p['b']"]
    """
    tag = treedef[0]
    if tag == "*":
        return [base]
    if tag == "None":
        return []
    if tag == "dict":
        parts = [(f"{base}[{k!r}]", sub) for k, sub in zip(treedef[1], treedef[2])]
    elif tag == "namedtuple":
        parts = [(f"{base}.{k}", sub) for k, sub in zip(treedef[1]._fields, treedef[2])]
    else:
        parts = [(f"{base}[{i}]", sub) for i, sub in enumerate(treedef[1])]
    return [label for path, sub in parts for label in leaf_labels(sub, path)]


def _parameter_names(func: Callable) -> list[str]:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def grad(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """The gradient of scalar ``func`` by the numeric tape, with ``wb.grad``'s semantics.

    ``argnums`` is an int (negative counts from the end) or a tuple of ints (then a tuple of
    gradients is returned); each differentiated argument may be a pytree of floats/arrays.
    With ``has_aux=True``, ``func`` returns ``(output, aux)`` and the result is
    ``(gradient, aux)``. Nesting works: the backward pass is itself recorded on the outer tape,
    so ``grad(grad(f))`` gives second derivatives.

    >>> import workbench as wb, numpy as np
    >>> float(wb.tape.grad(np.sin)(0.0))
    1.0
    >>> float(wb.tape.grad(wb.tape.grad(lambda x: x ** 3))(2.0))
    12.0
    """
    check_argnums_type(argnums)
    names = _parameter_names(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tape = run(func, args, kwargs, argnums, has_aux, "wb.tape.grad", names)
        return (tape.gradient, tape.aux) if has_aux else tape.gradient

    return wrapper


def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0,
                   has_aux: bool = False) -> Callable:
    """Like :func:`grad`, returning ``(gradient, value)`` (``(gradient, (value, aux))`` with aux).

    >>> import workbench as wb
    >>> g, v = wb.tape.grad_and_value(lambda x: x ** 3)(2.0)
    >>> float(g), float(v)
    (12.0, 8.0)
    """
    check_argnums_type(argnums)
    names = _parameter_names(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tape = run(func, args, kwargs, argnums, has_aux, "wb.tape.grad_and_value", names)
        return (tape.gradient, (tape.value, tape.aux)) if has_aux else (tape.gradient, tape.value)

    return wrapper


def record(func: Callable, *args: Any, argnums: int | tuple[int, ...] = 0,
           has_aux: bool = False, **kwargs: Any) -> Tape:
    """Run ``func(*args, **kwargs)`` on a tape and differentiate it; return the :class:`Tape`.

    The tape lists every op with its forward value and adjoint (``print(tape)``, or display it
    in Jupyter); ``tape.gradient``, ``tape.value`` and ``tape.aux`` hold the results and
    ``tape.to_json()`` the graph.

    >>> import workbench as wb
    >>> tape = wb.tape.record(lambda x, y: x * y + y, 2.0, 3.0, argnums=(0, 1))
    >>> [float(g) for g in tape.gradient], [e.op for e in tape.entries]
    ([3.0, 3.0], ['input', 'input', 'mul', 'add'])
    """
    check_argnums_type(argnums)
    return run(func, args, kwargs, argnums, has_aux, "wb.tape.record", _parameter_names(func))
