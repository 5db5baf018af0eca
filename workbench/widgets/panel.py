"""What both explorers share: the expression box, the message line, the derivative in LaTeX,
the ``wb.check`` badge, the export button, and the static fallback of the whole widget.

Errors in anything the user typed or chose are caught here and shown in the message line (never
a traceback); the widget keeps its last good plot and keeps working.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..config import config
from .figure import png_base64
from .source import ExploreError, FunctionSource, function_source


def short_error(error: BaseException) -> str:
    """One readable line: the error's type and the first line of its message."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def number(value: float) -> str:
    """A number as the panel shows it (nan stays visible as 'nan')."""
    if value is None or not np.isfinite(value):
        return "nan" if value is None or np.isnan(value) else str(float(value))
    return f"{float(value) + 0.0:.6g}"  # + 0.0: a zero prints as 0, not -0


def run_later(job: Callable[[], None]) -> None:
    """Run ``job`` after the current cell has shown its output, where a kernel's event loop runs
    (the plot appears first, slow steps fill in after); without a loop, run it now."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        job()
        return
    loop.call_soon(job)


def check_range(name: str, value: tuple[float, float]) -> tuple[float, float]:
    """``value`` as (low, high): two finite numbers with low < high, else ExploreError."""
    low, high = (float(v) for v in value)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ExploreError(f"wb.explore: {name}={value!r} must be two finite numbers "
                           "(low, high) with low < high")
    return low, high


def range_boxes(axis: str, low: float, high: float) -> tuple[widgets.FloatText, widgets.FloatText]:
    """The two number boxes of one axis' plotted range ("x from ... to ...")."""
    boxes = (widgets.FloatText(low, description=f"{axis} from", layout={"width": "11em"}),
             widgets.FloatText(high, description="to", layout={"width": "11em"}))
    for box in boxes:
        box.add_class("wb-explore-range")
    return boxes


def point_slider(name: str, low: float, high: float, start: float | None) -> widgets.FloatSlider:
    """The slider of one coordinate of the chosen point (middle of the range by default)."""
    value = (low + high) / 2 if start is None else float(start)
    if not low <= value <= high:
        raise ExploreError(f"wb.explore: {name}={start!r} lies outside its range "
                           f"({low:g}, {high:g})")
    slider = widgets.FloatSlider(value, min=low, max=high, step=(high - low) / 1000,
                                 description=name, readout_format=".4g",
                                 continuous_update=True, layout={"width": "100%"})
    slider.add_class(f"wb-explore-{name}")
    return slider


def rerange(slider: widgets.FloatSlider, low: float, high: float) -> None:
    """Give ``slider`` a new range (the value is clamped into it), in an order ipywidgets
    accepts (min never above max on the way) and with one notification."""
    with slider.hold_trait_notifications():
        if low > slider.max:
            slider.max, slider.min = high, low
        else:
            slider.min, slider.max = low, high
        slider.step = (high - low) / 1000
        slider.value = min(max(slider.value, low), high)


class ExplorerPanel(widgets.VBox):
    """The parts of an explorer that do not depend on the number of variables (a base class)."""

    n_variables = 1

    def __init__(self, f: Callable | str) -> None:
        super().__init__()
        self.source: FunctionSource | None = None
        self.check_report: Any = None
        self.derivative: Any = None
        self.values: dict[str, Any] = {}
        self.text = widgets.Text(description="f =", continuous_update=False,
                                 layout=widgets.Layout(width="100%"))
        self.message = widgets.HTML("")
        self.latex = widgets.HTMLMath("")
        self.badge = widgets.HTML("")
        self.numbers = widgets.HTML("")
        self.export_button = widgets.Button(description="numpy code", icon="code",
                                            tooltip="show the gradient exported by wb.export")
        self.code = widgets.HTML("", layout=widgets.Layout(display="none"))
        for w, name in [(self, "wb-explore"), (self.text, "wb-explore-text"),
                        (self.message, "wb-explore-message"), (self.latex, "wb-explore-latex"),
                        (self.badge, "wb-explore-check"), (self.numbers, "wb-explore-numbers"),
                        (self.export_button, "wb-explore-export"),
                        (self.code, "wb-explore-code")]:
            w.add_class(name)
        self.text.observe(self._on_text, names="value")
        self.export_button.on_click(self._on_export)
        self._initial = f

    def _arrange(self, controls: list) -> None:
        """Lay the panel out: the text box, the explorer's own ``controls``, the message line,
        the plot, the numbers beside the check badge, the LaTeX and the export."""
        self.canvas.add_class("wb-explore-plot")
        self.children = [
            self.text,
            *controls,
            self.message,
            self.canvas,
            widgets.HBox([self.numbers, self.badge],
                         layout={"justify_content": "space-between", "width": "100%"}),
            self.latex,
            self.export_button,
            self.code,
        ]

    # ----- the function -----
    def _start(self) -> None:
        """Load the initial function (its errors go to the message line like any other)."""
        f = self._initial
        if isinstance(f, str):
            self.text.value = f  # observed: loads it
        else:
            self.text.placeholder = (f"Python function {getattr(f, '__name__', '')}; type an "
                                     "expression here to explore it instead")
            self._load(f)

    def _on_text(self, change: dict) -> None:
        if change["new"].strip():
            self._load(change["new"])

    def _load(self, f: Callable | str) -> None:
        try:
            source = function_source(f)
            if len(source.variables) != self.n_variables:
                raise ExploreError(
                    f"this explorer is for functions of {self.n_variables} variable"
                    f"{'s' if self.n_variables > 1 else ''}; {source.text!r} has "
                    f"{len(source.variables)} ({', '.join(source.variables)}): open a new one "
                    f"with wb.explore({source.text!r})")
            self._compile(source)
        except Exception as error:  # noqa: BLE001 -- any failure is the user's input: say so
            self.show_error(f"cannot explore this function: {short_error(error)}")
            return
        self.source = source
        self.derivative = None
        self.code.value = ""
        self.code.layout.display = "none"
        self.export_button.description = "numpy code"
        self.clear_error()
        self._defer_check = True  # the first check (it may import torch) runs after the plot
        try:
            if not self.redraw():
                return
        finally:
            self._defer_check = False
        self.latex.value = (f"<i>simplifying… (at most {config.simplify_seconds:g} s, "
                            "wb.config.simplify_seconds)</i>")
        run_later(self._show_derivative)

    def _show_derivative(self) -> None:
        """The derivative in LaTeX: simplification is budgeted by ``wb.config``."""
        source = self.source
        if source is None:
            return
        from .. import derivative

        try:
            argnums = 0 if self.n_variables == 1 else (0, 1)
            self.derivative = derivative(source.function, argnums=argnums)
            self.latex.value = f"$${self.derivative.latex()}$$"
        except Exception as error:  # noqa: BLE001
            self.latex.value = ("<i>no symbolic derivative: "
                                f"{html.escape(short_error(error))}</i>")

    # ----- check and export -----
    def _check_at(self, *point: float) -> None:
        """The ``wb.check`` badge at the point: symbolic vs tape vs finite differences (vs torch)."""
        if getattr(self, "_defer_check", False):
            self.badge.value = '<span class="wb-badge wb-badge-pending">checking…</span>'
            source = self.source
            run_later(lambda: self._run_check(point)
                      if self.source is source and self.point() == point else None)
            return
        self._run_check(point)

    def _run_check(self, point: tuple[float, ...]) -> None:
        from ..check import check

        self.check_report = None
        if self.source is None:
            return
        try:
            argnums = 0 if self.n_variables == 1 else (0, 1)
            report = check(self.source.function, *point, argnums=argnums)
        except Exception as error:  # noqa: BLE001
            self.badge.value = (f'<span class="wb-badge wb-badge-na">check: not available '
                                f'({html.escape(short_error(error))})</span>')
            return
        self.check_report = report
        title = html.escape(repr(report), quote=True)
        if report.passed:
            self.badge.value = (f'<span class="wb-badge wb-badge-pass" title="{title}" style="'
                                'color:#1e7e34">&#10004; wb.check passed at this point</span>')
        else:
            self.badge.value = (f'<span class="wb-badge wb-badge-fail" title="{title}" style="'
                                'color:#bd2130">&#10008; wb.check FAILED at this point</span>')

    def point(self) -> tuple[float, ...]:
        """The chosen point (x0,) or (x0, y0)."""
        raise NotImplementedError

    def _on_export(self, _button: Any = None) -> None:
        if self.code.layout.display != "none":
            self.code.layout.display = "none"
            self.export_button.description = "numpy code"
            return
        if self.source is None:
            self.show_error("no function to export: type an expression first")
            return
        from ..export import export

        try:
            argnums = 0 if self.n_variables == 1 else (0, 1)
            exported = export(self.source.function, *self.point(), argnums=argnums,
                              target="numpy")
        except Exception as error:  # noqa: BLE001
            self.show_error(f"export failed: {short_error(error)}")
            return
        self.code.value = f"<pre>{html.escape(exported.source)}</pre>"
        self.code.layout.display = None
        self.export_button.description = "hide code"

    # ----- messages -----
    def show_error(self, text: str) -> None:
        self.message.value = (f'<span class="wb-error" style="color:#bd2130">'
                              f'{html.escape(text)}</span>')

    def show_note(self, text: str) -> None:
        self.message.value = (f'<span class="wb-note" style="color:#856404">'
                              f'{html.escape(text)}</span>')

    def clear_error(self) -> None:
        self.message.value = ""

    @property
    def message_text(self) -> str:
        """The message line as plain text ("" when all is well)."""
        import re

        return html.unescape(re.sub(r"<[^>]+>", "", self.message.value))

    # ----- subclasses draw -----
    def _compile(self, source: FunctionSource) -> None:
        raise NotImplementedError

    def redraw(self) -> bool:
        raise NotImplementedError

    # ----- static fallback -----
    def summary(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = dict(super()._repr_mimebundle_(**kwargs) or {})
        text = self.summary()
        bundle["text/plain"] = text
        image = png_base64(self.figure)
        latex = ""
        if self.derivative is not None:
            latex = f"<div>$${html.escape(self.derivative.latex())}$$</div>"
        bundle["image/png"] = image
        bundle["text/html"] = (f'<div class="wb-explore-static"><pre>{html.escape(text)}</pre>'
                               f"{latex}<img src=\"data:image/png;base64,{image}\" "
                               'alt="plot of the explored function"/></div>')
        return bundle
