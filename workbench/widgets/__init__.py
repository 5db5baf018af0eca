"""Interactive explorers (ipywidgets 8 + matplotlib drawn by ipympl), loaded only when used.

``wb.explore(f)`` returns a widget: for f(x) the curves of f, f′, f″, a slider for x0 with the
tangent line and the second-order Taylor curve, the numbers, the derivative in LaTeX, a
``wb.check`` badge and the exported numpy code; for f(x, y) contours, the gradient field, and
the gradient and Hessian eigen-directions at a point. Everything is computed by code compiled
once per function: moving a slider never traces again.

Why these libraries: ipympl's canvas is an ipywidgets widget that redraws in place (no flicker),
works in JupyterLab 4 with ipywidgets 8, and every figure also renders to a static PNG, which
the explorer adds to its output for notebooks viewed without a kernel. Tangent, Taylor curve,
contours and quiver are plain matplotlib. Importing this package never changes the user's
matplotlib backend (see :mod:`workbench.widgets.figure`).

>>> import workbench as wb
>>> e = wb.explore("x**2", x0=1.0)
>>> e.values["df"], e.values["d2f"]
(2.0, 2.0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .explore1d import Explorer1D
from .explore2d import Explorer2D
from .source import ExploreError, ExploreTypeError, function_source


def explore(f: Callable | str, *, x_range: tuple[float, float] | None = None,
            x0: float | None = None, **options: Any) -> Explorer1D | Explorer2D:
    """An interactive explorer of ``f``: a function of one or two variables, or a text.

    ``f`` may be a Python function (traced by workbench, so numpy code works) or an expression
    such as ``"x**2*sin(x)"`` or ``"x*y + sin(x)"`` (through the whitelisting parser, never
    ``eval``). One variable gives :class:`Explorer1D` (options: ``samples``); two give
    :class:`Explorer2D` (options: ``y_range``, ``y0``, ``samples``, ``arrows``).
    ``x_range`` defaults to (-5, 5) for one variable, (-3, 3) for two. An expression that
    does not parse or trace still returns the explorer, showing the message: fix the text in
    its box. See the classes for the attributes a test or a browser can drive.
    """
    try:
        n = len(function_source(f).variables)
    except Exception:  # noqa: BLE001
        if not isinstance(f, str):
            raise
        n = 1  # a text that does not parse: the explorer shows why, and takes a corrected one
    if n == 1:
        return Explorer1D(f, x_range=x_range or (-5.0, 5.0), x0=x0, **options)
    return Explorer2D(f, x_range=x_range or (-3.0, 3.0), x0=x0, **options)


__all__ = ["explore", "Explorer1D", "Explorer2D", "ExploreError", "ExploreTypeError"]
