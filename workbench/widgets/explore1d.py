"""The one-variable explorer: f, f′, f″ on a range, the tangent and Taylor curves at x0."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import numpy as np

from .compute import Curves
from .figure import new_figure
from .panel import (
    ExplorerPanel,
    check_range,
    number,
    point_slider,
    range_boxes,
    rerange,
    short_error,
)
from .source import FunctionSource


def y_limits(*curves: np.ndarray) -> tuple[float, float] | None:
    """Limits that show the curves; near a pole (tan, 1/x) the central 96 % of the values."""
    finite = np.concatenate([c[np.isfinite(c)] for c in curves])
    if finite.size == 0:
        return None
    low, high = float(finite.min()), float(finite.max())
    p_low, p_high = (float(v) for v in np.percentile(finite, [2, 98]))
    if high - low > 10 * max(p_high - p_low, 1e-12):
        low, high = p_low, p_high
    pad = 0.08 * (high - low) if high > low else max(1.0, abs(high)) * 0.5
    return low - pad, high + pad


class Explorer1D(ExplorerPanel):
    """Explore f(x): the curves of f, f′ and f″, and the tangent (and Taylor curve) at x0.

    Attributes (drive them from Python, or find them in a browser by CSS class):

    * ``x0`` -- ``FloatSlider`` for the point (``wb-explore-x0``);
    * ``x_min``, ``x_max`` -- ``FloatText`` of the range (``wb-explore-range``);
    * ``taylor`` -- ``Checkbox``: show the second-order Taylor curve (``wb-explore-taylor``);
    * ``text`` -- ``Text``: type an expression such as ``x**2*sin(x)`` (``wb-explore-text``);
    * ``export_button`` (``wb-explore-export``) shows ``code`` (``wb-explore-code``), the
      gradient exported by ``wb.export(f, x0, target="numpy")``;
    * ``values`` -- ``{"x0", "f", "df", "d2f"}`` at the point; ``numbers`` shows them
      (``wb-explore-numbers``);
    * ``latex`` -- ``HTMLMath`` with ``wb.derivative(f)`` (``wb-explore-latex``);
      ``derivative`` the object;
    * ``badge`` -- the ``wb.check`` verdict at x0 (``wb-explore-check``); ``check_report``;
    * ``message`` -- ``HTML``: what is wrong, if anything (``wb-explore-message``);
      ``message_text`` the same as plain text;
    * ``figure`` -- the matplotlib figure (its ``canvas`` is the ipympl widget,
      ``wb-explore-plot``); ``lines`` -- its ``Line2D`` objects ``"f"``, ``"df"``, ``"d2f"``,
      ``"tangent"``, ``"taylor"``, ``"point"``; ``xs`` the grid.

    >>> import numpy as np
    >>> e = Explorer1D(np.sin, x_range=(-3.0, 3.0), x0=0.0)
    >>> e.values["df"]
    1.0
    """

    n_variables = 1

    def __init__(self, f: Callable | str, *, x_range: tuple[float, float] = (-5.0, 5.0),
                 x0: float | None = None, samples: int = 401) -> None:
        super().__init__(f)
        self.text.description = "f(x) ="
        self.samples = int(samples)
        self.curves: Curves | None = None
        low, high = check_range("x_range", x_range)
        self.x_min, self.x_max = range_boxes("x", low, high)
        self.x0 = point_slider("x0", low, high, x0)
        start = self.x0.value
        self.taylor = widgets.Checkbox(False, description="Taylor curve (2nd order)",
                                       indent=False)
        self.taylor.add_class("wb-explore-taylor")

        self.figure = new_figure(6.4, 4.6, left=0.11, right=0.98, top=0.98, bottom=0.1,
                                 hspace=0.08)
        top, bottom = self.figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        self.axes = (top, bottom)
        self.lines = {
            "f": top.plot([], [], color="C0", lw=2, label="f")[0],
            "tangent": top.plot([], [], color="C3", lw=1.2, ls="--", label="tangent")[0],
            "taylor": top.plot([], [], color="C2", lw=1.4, ls=":", label="Taylor (2nd order)",
                               visible=False)[0],
            "point": top.plot([], [], "o", color="C3", ms=6)[0],
            "df": bottom.plot([], [], color="C1", lw=1.6, label=r"$f'$")[0],
            "d2f": bottom.plot([], [], color="C4", lw=1.2, label=r"$f''$")[0],
        }
        self._marker_df = bottom.axvline(start, color="C3", lw=0.8, alpha=0.6)
        self._legend()
        bottom.legend(loc="upper left", fontsize="small")
        for ax in self.axes:
            ax.grid(True, alpha=0.3)
        bottom.set_xlabel("x")
        self.canvas = self.figure.canvas
        self.xs = np.linspace(low, high, self.samples)

        self.x_min.observe(self._on_range, names="value")
        self.x_max.observe(self._on_range, names="value")
        self.x0.observe(self._on_x0, names="value")
        self.taylor.observe(self._on_taylor, names="value")
        self._arrange([widgets.HBox([self.x_min, self.x_max, self.taylor]), self.x0])
        self._start()

    # ----- compile and draw -----
    def _compile(self, source: FunctionSource) -> None:
        curves = Curves(source.function)
        curves.evaluate(self.xs[:1])  # traces now, so an untraceable f fails here, visibly
        self.curves = curves

    def redraw(self) -> bool:
        """Curves over the range (from compiled code), then the point; False on failure."""
        if self.curves is None:
            return False
        try:
            y, dy, d2y = self.curves.evaluate(self.xs)
        except Exception as error:  # noqa: BLE001 -- e.g. a new branch that does not trace
            self.show_error(f"cannot evaluate f on this range: {short_error(error)}")
            return False
        self._grid_values = (y, dy, d2y)
        self.lines["f"].set_data(self.xs, y)
        self.lines["df"].set_data(self.xs, dy)
        self.lines["d2f"].set_data(self.xs, d2y)
        self.lines["f"].set_label(f"f = {self.source.text}" if self.source else "f")
        top, bottom = self.axes
        self._legend()
        for ax in self.axes:
            ax.set_xlim(self.xs[0], self.xs[-1])
        for ax, data in ((top, (y,)), (bottom, (dy, d2y))):
            limits = y_limits(*data)
            if limits is not None:
                ax.set_ylim(*limits)
        self.update_point()
        return True

    def update_point(self) -> None:
        """Tangent, Taylor curve, numbers and check badge at x0 (no tracing: compiled code)."""
        if self.curves is None:
            return
        x0 = float(self.x0.value)
        try:
            fx, dfx, d2fx = self.curves.at(x0)
        except Exception as error:  # noqa: BLE001
            self.show_error(f"cannot evaluate f at x0 = {x0:.6g}: {short_error(error)}")
            return
        self.values = {"x0": x0, "f": fx, "df": dfx, "d2f": d2fx}
        dx = self.xs - x0
        inside = np.isfinite(fx)
        if inside:
            with np.errstate(all="ignore"):  # f′(x0) = inf (sqrt at 0): no line, no warning
                tangent = fx + dfx * dx
                taylor = tangent + 0.5 * d2fx * dx**2
            self.lines["tangent"].set_data(self.xs, tangent)
            self.lines["taylor"].set_data(self.xs, taylor)
            self.lines["point"].set_data([x0], [fx])
        else:
            for key in ("tangent", "taylor", "point"):
                self.lines[key].set_data([], [])
        self.lines["taylor"].set_visible(bool(self.taylor.value))
        self._marker_df.set_xdata([x0, x0])
        self.numbers.value = (
            "<table class='wb-explore-values'>"
            f"<tr><td>x0</td><td>{number(x0)}</td></tr>"
            f"<tr><td>f(x0)</td><td>{number(fx)}</td></tr>"
            f"<tr><td>f′(x0)</td><td>{number(dfx)}</td></tr>"
            f"<tr><td>f″(x0)</td><td>{number(d2fx)}</td></tr></table>")
        if not inside:
            self.show_error(f"x0 = {x0:.6g} is outside the domain of f (f(x0) = {fx}): "
                            "move x0 to where the curve is drawn")
            self.badge.value = ""
            self.check_report = None
        else:
            y = getattr(self, "_grid_values", (np.zeros(1),))[0]
            if not np.all(np.isfinite(y)):
                self.show_note("f is not defined (or not finite) on part of the range: the "
                               "curves have gaps there")
            else:
                self.clear_error()
            self._check_at(x0)
        self.canvas.draw_idle()

    def point(self) -> tuple[float, ...]:
        return (float(self.x0.value),)

    # ----- events -----
    def _on_x0(self, _change: dict) -> None:
        self.update_point()

    def _on_taylor(self, _change: dict) -> None:
        self.lines["taylor"].set_visible(bool(self.taylor.value))
        self._legend()
        self.canvas.draw_idle()

    def _legend(self) -> None:
        """The upper plot's legend, listing the curves shown (the Taylor curve when toggled on)."""
        shown = [self.lines[k] for k in ("f", "tangent", "taylor") if self.lines[k].get_visible()]
        self.axes[0].legend(handles=shown, loc="upper left", fontsize="small")

    def _on_range(self, _change: dict) -> None:
        low, high = float(self.x_min.value), float(self.x_max.value)
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            self.show_error(f"range: 'x from' ({low:g}) must be less than 'to' ({high:g})")
            return
        self.xs = np.linspace(low, high, self.samples)
        rerange(self.x0, low, high)
        self.clear_error()
        self.redraw()

    # ----- static fallback -----
    def summary(self) -> str:
        name = self.source.text if self.source else "(no function)"
        v = self.values
        lines = [f"wb.explore: f = {name}"]
        if v:
            lines.append(f"x0 = {number(v['x0'])}: f(x0) = {number(v['f'])}, "
                         f"f′(x0) = {number(v['df'])}, f″(x0) = {number(v['d2f'])}")
        if self.derivative is not None:
            lines.append(self.derivative.__repr__().splitlines()[0])
        if self.message_text:
            lines.append(self.message_text)
        return "\n".join(lines)

