"""Trace a user function once and collect what display and export need.

This is the one place the display and export features meet the core: a fresh
:class:`~workbench.graph.Graph`, inputs built by :meth:`Traced.input` (labelled with the
function's own parameter names), the function run under :func:`tracing`, gradient nodes from
:func:`~workbench.symbolic.differentiate.vjp_nodes` (and again over those for each higher
order), and the guards Python control flow recorded.

The function may also be a text (read by the whitelisting parser :mod:`workbench.exprparse`,
never ``eval``) or a SymPy expression (walked with a whitelist of SymPy classes): both become
a function of their variables first (:func:`as_function`).

>>> import numpy as np
>>> c = capture(lambda x, y: np.sin(x) * y, (0.5, 2.0), argnums=0)
>>> [p.name for p in c.params], c.wrt
(['x', 'y'], (0,))
>>> round(c.graph.value(int(c.derivatives[0])), 6)    # y cos(x) at (0.5, 2)
1.755165
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import (
    ArgnumsError,
    ArgnumsTypeError,
    BudgetExceededError,
    InputTypeError,
    NonScalarOutputError,
    OutputTypeError,
)
from ..graph import Graph
from ..symbolic.differentiate import vjp_nodes
from ..tracing import Traced, as_ids, tracing
from ..transforms.grad import check_argnums_type, normalize_argnums
from ..transforms.staging import is_torch_tensor

#: Example values used when a function is given with no example arguments (away from 0 and 1,
#: distinct from each other so no comparison ties): control flow is taken at these points.
DEFAULT_EXAMPLES = (0.5, 0.625, 0.75, 0.875, 1.125, 1.25, 1.375, 1.5)
#: Most entries a derivative of order 3 or more may have (n**order for n array elements).
MAX_HIGHER_ORDER_ENTRIES = 10_000


@dataclass
class Param:
    """One parameter of the traced function."""

    name: str
    shape: tuple[int, ...] | None  # None: a static (non-float) argument, not a graph input
    nodes: np.ndarray | None  # input node ids, in the parameter's shape
    value: Any

    @property
    def is_scalar(self) -> bool:
        return self.shape == ()


@dataclass
class Capture:
    """A traced function: its graph, parameters, output nodes, guards and derivative nodes."""

    func: Callable
    name: str
    graph: Graph
    params: list[Param]
    output: np.ndarray  # output node ids (shape () for a scalar output)
    guards: list[tuple[int, bool]]
    wrt: tuple[int, ...] = ()
    order: int = 0
    #: order 1: one node array per differentiated parameter (that parameter's shape);
    #: order k >= 2: one array of shape param.shape * k (for k = 2, the Hessian).
    derivatives: list[np.ndarray] = field(default_factory=list)
    #: parameter name -> the user's own SymPy symbol, when the function was a SymPy expression
    #: (formulas are shown in the user's symbols, with their assumptions).
    user_symbols: dict[str, Any] = field(default_factory=dict)

    def input_nodes(self) -> dict[int, tuple[str, tuple[int, ...] | None]]:
        """node -> (parameter name, element index or None for a scalar parameter)."""
        table = {}
        for p in self.params:
            if p.nodes is None:
                continue
            if p.is_scalar:
                table[int(p.nodes)] = (p.name, None)
            else:
                for index in np.ndindex(p.shape):
                    table[int(p.nodes[index])] = (p.name, index)
        return table


def _is_sympy(value: Any) -> bool:
    sympy = sys.modules.get("sympy")  # never imported here for an ordinary function
    return sympy is not None and isinstance(value, sympy.Basic)


def as_function(func: Any, variables: Sequence[Any] | None = None,
                transform: str = "derivative") -> tuple[Callable, dict[str, Any]]:
    """``func`` as a Python function, and the user's SymPy symbols by parameter name.

    A text goes through the whitelisting parser (its variables in order of first appearance,
    as on the command line); a SymPy expression is walked with a whitelist of SymPy classes
    (its free symbols sorted by name). ``variables`` (names or symbols) fixes the parameter
    order of either. Both are named ``f``.

    >>> f, _ = as_function("y * sin(x)")
    >>> f.__name__, list(inspect.signature(f).parameters)
    ('f', ['y', 'x'])
    """
    from ..exprparse import from_sympy, parse

    names = None if variables is None else tuple(str(v) for v in variables)
    if isinstance(func, str):
        expression = parse(func)
        user_symbols: dict[str, Any] = {}
    elif _is_sympy(func):
        expression = from_sympy(func, names)
        user_symbols = {s.name: s for s in func.free_symbols}
    else:
        if variables is not None:
            raise InputTypeError(f"{transform}: variables= names the parameters of a text or "
                                 "SymPy expression; a Python function has its own")
        return func, {}
    if not expression.variables and not names:
        raise InputTypeError(f"{transform}: the expression {expression.text!r} has no variables "
                             "to trace or differentiate; write one, e.g. 'x**2 + 1'")
    fn = expression.function(names)
    fn.__name__ = fn.__qualname__ = "f"
    return fn, user_symbols


def function_name(func: Callable) -> str:
    name = getattr(func, "__name__", None) or type(func).__name__
    return "f" if name == "<lambda>" else name


def parameter_names(func: Callable, n_args: int | None) -> list[str]:
    """The names of ``func``'s positional parameters (``x0, x1, ...`` where it has none)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # builtins, ufuncs
        sig = None
    names: list[str] = []
    if sig is not None:
        for p in sig.parameters.values():
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                if n_args is None and p.default is not p.empty:
                    break
                names.append(p.name)
            elif p.kind == p.VAR_POSITIONAL:
                count = (n_args or 0) - len(names)
                names.extend(f"{p.name}{i}" for i in range(max(count, 0)))
                break
    if n_args is None:
        if not names:
            nin = getattr(func, "nin", None)  # numpy ufuncs
            if nin is None:
                raise InputTypeError(
                    f"cannot tell the parameters of {function_name(func)!r}; pass example "
                    "arguments, e.g. wb.derivative(f, 0.5)")
            names = ["x", "y", "z"][:nin] if nin <= 3 else [f"x{i}" for i in range(nin)]
        return names
    names = names[:n_args]
    names.extend(f"x{i}" for i in range(len(names), n_args))
    return names


def _plain(value: Any) -> Any:
    """torch tensors as numpy arrays (their values and shapes are what the trace needs)."""
    if is_torch_tensor(value):
        return value.detach().cpu().numpy()
    return value


def _is_float_like(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return True
    array = np.asarray(value) if isinstance(value, (np.ndarray, np.generic, list, tuple)) else None
    return array is not None and array.dtype.kind == "f"


def check_order(order: Any, transform: str, allow_zero: bool = False) -> int:
    """``order`` as an int, or a clear error naming it (a positive integer: 1, 2, 3, ...)."""
    wanted = "a non-negative integer (0, 1, 2, ...)" if allow_zero else \
        "a positive integer (1, 2, 3, ...)"
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
        raise ArgnumsTypeError(f"{transform}: order must be {wanted}, got {order!r} of type "
                               f"{type(order).__name__}")
    if order < (0 if allow_zero else 1):
        raise ArgnumsError(f"{transform}: order must be {wanted}, got order={order}")
    return int(order)


def capture(func: Any, args: Sequence[Any] = (), argnums: int | tuple[int, ...] = 0,
            order: int = 1, transform: str = "derivative",
            variables: Sequence[Any] | None = None) -> Capture:
    """Trace ``func`` at ``args`` and differentiate it ``order`` times w.r.t. ``argnums``.

    ``func`` is a function, a text or a SymPy expression (see :func:`as_function`). With no
    ``args``, every positional parameter without a default is a scalar, traced at
    :data:`DEFAULT_EXAMPLES` (so control flow is taken at those points). Float scalars and
    float arrays are symbolic inputs; other arguments (ints, strings...) are passed unchanged.
    ``order=0`` only traces.
    """
    func, user_symbols = as_function(func, variables, transform)
    if not callable(func):
        raise InputTypeError(f"{transform}: expected a function, a text such as 'x**2 * sin(x)' "
                             f"or a SymPy expression, got {type(func).__name__}")
    order = check_order(order, transform, allow_zero=True)
    args = tuple(args)
    names = parameter_names(func, len(args) if args else None)
    if not args:
        args = tuple(DEFAULT_EXAMPLES[i % len(DEFAULT_EXAMPLES)] for i in range(len(names)))
    graph = Graph()
    params: list[Param] = []
    traced_args = []
    with tracing(graph):
        for name, value in zip(names, map(_plain, args)):
            if _is_float_like(value):
                array = np.asarray(value, dtype=np.float64)
                traced = Traced.input(graph, array, name)
                params.append(Param(name, array.shape, traced.ids, array))
                traced_args.append(traced)
            else:
                params.append(Param(name, None, None, value))
                traced_args.append(value)
        output = func(*traced_args)
    out_ids = _output_ids(graph, output, transform, need_scalar=order > 0)
    result = Capture(func, function_name(func), graph, params, out_ids, list(graph.guards),
                     user_symbols=user_symbols)
    if order == 0:
        return result
    check_argnums_type(argnums)
    positions = normalize_argnums(argnums, len(params), transform)
    for pos in positions:
        if params[pos].nodes is None:
            raise InputTypeError(
                f"{transform}: argument {pos} ({params[pos].name}) is a "
                f"{type(params[pos].value).__name__}, which cannot be differentiated; pass a "
                "float or a float array")
    if order >= 2 and len(positions) != 1:
        raise ArgnumsError(f"{transform}: order={order} takes one argument to differentiate "
                           f"(argnums an int), got argnums={argnums!r}")
    if order >= 3 and params[positions[0]].nodes.size ** order > MAX_HIGHER_ORDER_ENTRIES:
        raise BudgetExceededError(
            f"{transform}: order={order} of a parameter with {params[positions[0]].nodes.size} "
            f"elements has {params[positions[0]].nodes.size ** order:,} entries, above "
            f"{MAX_HIGHER_ORDER_ENTRIES:,}; differentiate fewer elements or a lower order")
    result.wrt, result.order = positions, order
    out = int(out_ids)
    wrt = [int(n) for pos in positions for n in params[pos].nodes.ravel()]
    first = vjp_nodes(graph, [out], [graph.const(1.0)], wrt)
    it = iter(first)
    grads = [np.array([next(it) for _ in range(params[p].nodes.size)], dtype=np.intp)
             .reshape(params[p].shape) for p in positions]
    if order == 1:
        result.derivatives = grads
        return result
    shape = params[positions[0]].shape
    level = list(first)  # the derivatives of one order, flattened
    for _ in range(order - 1):  # each order differentiates every entry of the one before
        level = [n for g in level for n in vjp_nodes(graph, [g], [graph.const(1.0)], wrt)]
    result.derivatives = [np.array(level, dtype=np.intp).reshape(shape * order)]
    result.guards = list(graph.guards)
    return result


def _output_ids(graph: Graph, output: Any, transform: str, need_scalar: bool) -> np.ndarray:
    if isinstance(output, Traced):
        if output.dtype == np.bool_:
            raise OutputTypeError(f"{transform}: the function returned a boolean; it must "
                                  "return a float (scalar or array)")
        ids = output.ids
    else:
        try:
            array = np.asarray(output, dtype=np.float64)
        except (TypeError, ValueError):
            raise OutputTypeError(f"{transform}: the function returned a "
                                  f"{type(output).__name__}; it must return a float scalar or "
                                  "array") from None
        ids = as_ids(graph, array)
    if need_scalar and ids.shape != ():
        raise NonScalarOutputError(
            f"{transform}: the function must return a scalar to be differentiated, got an array "
            f"of shape {ids.shape}; reduce it (.sum(), .mean()) or index one element")
    return np.asarray(ids, dtype=np.intp)
