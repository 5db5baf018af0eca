"""Matplotlib figures drawn in an ipympl canvas widget, without touching the user's backend.

The explorer owns its figures: each is a plain :class:`matplotlib.figure.Figure` with ipympl's
canvas widget attached, never registered with pyplot. So ``plt.show()``, ``plt.gcf()`` and the
user's backend are untouched, and moving a slider redraws the canvas in place (no flicker).
Every figure also renders to a static PNG, the fallback shown where no kernel runs.

>>> fig = new_figure(4, 3)
>>> ax = fig.add_subplot()
>>> png_base64(fig)[:8]   # the PNG signature, base64-encoded
'iVBORw0K'
"""

from __future__ import annotations

import base64
import io
import sys
import warnings

from matplotlib.figure import Figure


def _import_ipympl_backend():
    """ipympl's canvas module, imported without its package's side effect.

    ``ipympl/__init__.py`` calls ``matplotlib.use("module://ipympl.backend_nbagg")`` when
    matplotlib is already imported; with pyplot loaded that switches the user's backend and
    closes their open figures. Hiding matplotlib from ``sys.modules`` while that one file runs
    skips it; the canvas module itself only defines classes.
    """
    if "ipympl" not in sys.modules:
        hidden = {name: sys.modules.pop(name) for name in ("matplotlib",) if name in sys.modules}
        try:
            import ipympl  # noqa: F401
        finally:
            sys.modules.update(hidden)
    from ipympl import backend_nbagg

    return backend_nbagg


def new_figure(width: float, height: float, **margins: float) -> Figure:
    """A figure of ``width`` x ``height`` inches whose ``.canvas`` is an ipympl widget.

    ``margins`` (``left``, ``bottom``, ... as figure fractions) are fixed: a layout engine
    would lay the figure out again on every redraw, which doubles the cost of a slider step.
    """
    backend = _import_ipympl_backend()
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(**margins)
    with warnings.catch_warnings():
        # ipympl's toolbar passes its canvas on to traitlets, which warns; not ours to fix.
        warnings.filterwarnings("ignore", "Passing unrecognized arguments", DeprecationWarning)
        canvas = backend.Canvas(figure)
        backend.FigureManager(canvas, 0)  # the canvas needs a manager to answer the front end
    canvas.header_visible = False
    canvas.footer_visible = False
    canvas.toolbar_position = "right"
    return figure


def png_base64(figure: Figure, dpi: int = 80) -> str:
    """The figure as a base64-encoded PNG (the static fallback)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
