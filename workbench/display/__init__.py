"""What a user sees of a traced function: formulas, derivatives, step-by-step derivations.

These entry points import SymPy only when called, so ``import workbench`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import api_boundary


@api_boundary  # tracebacks end in the user's code
def trace(func: Callable | str | Any, *example_args: Any, variables: Sequence[Any] | None = None):
    """Trace ``func`` at ``example_args``; show the expressions it computes (LaTeX in Jupyter).

    ``func`` may also be a text (``"x**2 * sin(x)"``, read by the whitelisting parser) or a
    SymPy expression; ``variables`` sets their parameter order.

    With no example arguments, every parameter is a scalar symbol named after it and the
    function is traced at 0.5 (0.625, ... for the next ones): control flow is taken there.
    The result reports the size of the traced function before and after CSE.

    >>> import workbench as wb
    >>> wb.trace(lambda x: x * x + 1).expr
    x**2 + 1
    """
    from .trace import trace as run

    return run(func, *example_args, variables=variables)



@api_boundary  # tracebacks end in the user's code
def derivative(func: Callable | str | Any, *example_args: Any,
               argnums: int | tuple[int, ...] = 0, order: int = 1, simplify: bool = True,
               variables: Sequence[Any] | None = None, form: str = "auto"):
    """The simplified symbolic derivative of ``func`` (see :mod:`workbench.display.derivative`).

    For a function of arrays the gradient is shown in matrix notation where it has one
    (``∇_w f = Xᵀ(Xw − y)``; ``.matrix`` is the SymPy matrix expression), the element form
    beside it for small arrays and on request (``form="elements"``, or ``.elements``).

    ``func`` is a Python function, a text such as ``"sec(x)**2"`` (through the whitelisting
    parser, never ``eval``) or a SymPy expression; ``order`` any positive integer. With no
    example arguments, parameters are scalar symbols named after the function's parameters,
    and control flow is taken at x = 0.5 (0.625, ... for the next parameters).
    ``sympy.sympify(result)`` is the expression.

    >>> import numpy as np, workbench as wb
    >>> wb.derivative(lambda x, y: np.sin(x) * y).expr
    y*cos(x)
    >>> wb.derivative("sin(x)", order=3).expr
    -cos(x)
    """
    from .derivative import derivative as run

    return run(func, *example_args, argnums=argnums, order=order, simplify=simplify,
               variables=variables, form=form)



@api_boundary  # tracebacks end in the user's code
def steps(func: Callable | str | Any, *example_args: Any, argnums: int = 0,
          variables: Sequence[Any] | None = None, form: str = "auto"):
    """A step-by-step derivation of ``func`` (see :mod:`workbench.display.steps`): the rule at
    each step, the intermediate results and the final simplification, as text, LaTeX and pages.
    For an array argument the steps are the matrix chain rule, one array operation at a time
    (its rule, its shapes, the adjoints it sends back); ``form="elements"`` or ``"matrix"``
    insists on one kind.

    >>> import workbench as wb
    >>> wb.steps(lambda x: x * x + 1).result
    2*x
    """
    from .steps import steps as run

    return run(func, *example_args, argnums=argnums, variables=variables, form=form)
