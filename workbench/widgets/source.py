"""What the explorer differentiates: a Python function, or a text through the whitelisting parser.

>>> s = function_source("x**2 * sin(x)")
>>> s.variables, s.text
(('x',), 'x**2 * sin(x)')
>>> round(float(s.function(2.0)), 6)
3.63719
>>> function_source("x +* 2")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
workbench.exprparse.ExpressionError: expression 'x +* 2' does not parse: ...
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import WorkbenchError


class ExploreError(WorkbenchError, ValueError):
    """``wb.explore`` cannot explore this input (what is wrong and what to do is in the text)."""


class ExploreTypeError(WorkbenchError, TypeError):
    """``wb.explore`` was given something that is neither a function nor a text."""


@dataclass(frozen=True)
class FunctionSource:
    """A function to explore: ``function`` (traceable), its ``variables`` and how to show it."""

    function: Callable
    variables: tuple[str, ...]
    text: str  # the expression text, or the function's name

    @property
    def name(self) -> str:
        return self.text


def function_source(f: Callable | str) -> FunctionSource:
    """Parse a text (whitelisting parser) or inspect a function; raise a clear error if neither
    works or it has not one or two variables."""
    if isinstance(f, str):
        from ..exprparse import parse

        expression = parse(f)
        variables = expression.variables
        if not 1 <= len(variables) <= 2:
            raise ExploreError(
                f"wb.explore: the expression {f!r} has {len(variables)} variables "
                f"({', '.join(variables) or 'none'}); write one with one variable "
                "(e.g. 'x**2*sin(x)') or two (e.g. 'x*y + sin(x)')")
        return FunctionSource(_named(expression.function(), "f"), variables, f.strip())
    if not callable(f):
        raise ExploreTypeError(f"wb.explore: expected a function or a text such as "
                               f"'x**2*sin(x)', got {type(f).__name__}")
    variables = _parameters(f)
    return FunctionSource(f, variables, getattr(f, "__name__", type(f).__name__))


def _named(function: Callable, name: str) -> Callable:
    """The parsed function under the name ``name`` (derivatives then read df/dx)."""

    @functools.wraps(function)
    def named(*args):
        return function(*args)

    named.__name__ = named.__qualname__ = name
    return named


def _parameters(f: Callable) -> tuple[str, ...]:
    try:
        signature = inspect.signature(f)
    except (TypeError, ValueError):  # builtins and ufuncs (np.sin) have no signature
        return ("x",)
    names = []
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            break
        if p.default is not p.empty:
            break
        names.append(p.name)
    if not 1 <= len(names) <= 2:
        raise ExploreError(
            f"wb.explore: {getattr(f, '__name__', 'the function')} takes {len(names)} required "
            "arguments; give a function of one variable (f(x)) or two (f(x, y)), e.g. "
            "wb.explore(lambda x: f(x, 2.0)) to fix the others")
    return tuple(names)
