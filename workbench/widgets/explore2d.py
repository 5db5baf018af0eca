"""The two-variable explorer: contours and gradient field of f(x, y); at a chosen point the
gradient arrow and the Hessian's eigen-directions."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import numpy as np

from .compute import Field
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


class Explorer2D(ExplorerPanel):
    """Explore f(x, y): filled contours, the gradient field, and at (x0, y0) the gradient arrow
    and the Hessian's eigen-directions (solid: positive curvature, dashed: negative).

    Attributes (drive them from Python, or find them in a browser by CSS class):

    * ``x0``, ``y0`` -- ``FloatSlider`` for the point (``wb-explore-x0``, ``wb-explore-y0``);
    * ``x_min``, ``x_max``, ``y_min``, ``y_max`` -- ``FloatText`` of the ranges
      (``wb-explore-range``);
    * ``text``, ``export_button``, ``code``, ``latex``, ``derivative``, ``badge``,
      ``check_report``, ``message``, ``message_text``, ``numbers`` -- as in the one-variable
      explorer (same CSS classes);
    * ``values`` -- ``{"x0", "y0", "f", "gradient" (2,), "hessian" (2, 2), "eigenvalues" (2,),
      "eigenvectors" (2, 2), columns}`` at the point;
    * ``figure``, ``axes``; ``contour`` (the ``QuadContourSet``) and its ``colorbar``, ``field`` (the gradient
      ``Quiver``), ``arrow`` (the ``Quiver`` of the gradient at the point), ``lines`` --
      ``"point"``, ``"eigen0"``, ``"eigen1"`` (``Line2D``); ``xs``, ``ys`` the grid.

    >>> e = Explorer2D("x**2 + 3*y**2", x0=1.0, y0=1.0)
    >>> e.values["gradient"].tolist()
    [2.0, 6.0]
    """

    n_variables = 2

    def __init__(self, f: Callable | str, *, x_range: tuple[float, float] = (-3.0, 3.0),
                 y_range: tuple[float, float] | None = None, x0: float | None = None,
                 y0: float | None = None, samples: int = 81, arrows: int = 15) -> None:
        super().__init__(f)
        self.text.description = "f(x, y) ="
        self.samples, self.arrows = int(samples), int(arrows)
        self.field_values: Field | None = None
        xlo, xhi = check_range("x_range", x_range)
        ylo, yhi = check_range("y_range", x_range if y_range is None else y_range)
        self.x_min, self.x_max = range_boxes("x", xlo, xhi)
        self.y_min, self.y_max = range_boxes("y", ylo, yhi)
        self.x0 = point_slider("x0", xlo, xhi, x0)
        self.y0 = point_slider("y0", ylo, yhi, y0)

        self.figure = new_figure(6.4, 5.0)
        self.axes = self.figure.add_axes((0.09, 0.1, 0.74, 0.83))
        self.colorbar_axes = self.figure.add_axes((0.86, 0.1, 0.025, 0.83))
        self.axes.set_xlabel("x")
        self.axes.set_ylabel("y")
        self.contour = None
        self.colorbar = None
        self.field = None
        self.arrow = None
        self.lines = {
            "point": self.axes.plot([], [], "o", color="black", ms=6, zorder=5)[0],
            "eigen0": self.axes.plot([], [], color="white", lw=2.5, zorder=4)[0],
            "eigen1": self.axes.plot([], [], color="white", lw=2.5, zorder=4)[0],
        }
        self.canvas = self.figure.canvas
        self._set_grid()

        for w in (self.x_min, self.x_max, self.y_min, self.y_max):
            w.observe(self._on_range, names="value")
        self.x0.observe(self._on_point, names="value")
        self.y0.observe(self._on_point, names="value")
        self._arrange([widgets.HBox([self.x_min, self.x_max, self.y_min, self.y_max]),
                       self.x0, self.y0])
        self._start()

    def _set_grid(self) -> None:
        self.xs = np.linspace(self.x_min.value, self.x_max.value, self.samples)
        self.ys = np.linspace(self.y_min.value, self.y_max.value, self.samples)

    # ----- compile and draw -----
    def _compile(self, source: FunctionSource) -> None:
        field = Field(source.function)
        field.at(float(self.x0.value), float(self.y0.value))  # traces now: failures show here
        self.field_values = field

    def redraw(self) -> bool:
        """Contours and gradient field over the ranges (compiled code), then the point."""
        if self.field_values is None:
            return False
        X, Y = np.meshgrid(self.xs, self.ys)
        qx = np.linspace(self.xs[0], self.xs[-1], self.arrows)
        qy = np.linspace(self.ys[0], self.ys[-1], self.arrows)
        QX, QY = np.meshgrid(qx, qy)
        try:
            Z, _, _ = self.field_values.evaluate(X, Y)
            _, GX, GY = self.field_values.evaluate(QX, QY)
        except Exception as error:  # noqa: BLE001
            self.show_error(f"cannot evaluate f on these ranges: {short_error(error)}")
            return False
        for artist in (self.contour, self.field):
            if artist is not None:
                artist.remove()
        ax = self.axes
        if np.isfinite(Z).any():
            self.contour = ax.contourf(X, Y, np.ma.masked_invalid(Z), levels=20, cmap="viridis",
                                       zorder=1)
            self.colorbar_axes.clear()  # its own axes: redrawing never shrinks the plot
            self.colorbar = self.figure.colorbar(self.contour, cax=self.colorbar_axes)
        else:
            self.contour = None
        # Arrows to scale: the longest spans one cell of the arrow grid.
        cell = min(qx[1] - qx[0], qy[1] - qy[0])
        lengths = np.hypot(GX, GY)
        finite = np.isfinite(lengths)
        longest = float(lengths[finite].max()) if finite.any() else 1.0
        self._field_scale = float(longest / (0.9 * cell)) if longest > 0 else 1.0
        self.field = ax.quiver(QX, QY, GX, GY, angles="xy", scale_units="xy",
                               scale=self._field_scale, color="white", alpha=0.7, width=0.003,
                               zorder=2)
        ax.set_xlim(self.xs[0], self.xs[-1])
        ax.set_ylim(self.ys[0], self.ys[-1])
        ax.set_title(f"f = {self.source.text}" if self.source else "", fontsize="medium")
        self._grid_finite = bool(np.isfinite(Z).all())
        self.update_point()
        return True

    def update_point(self) -> None:
        """Gradient arrow, eigen-directions, numbers and badge at (x0, y0) (compiled code)."""
        if self.field_values is None:
            return
        x0, y0 = float(self.x0.value), float(self.y0.value)
        try:
            fz, gradient, hess = self.field_values.at(x0, y0)
        except Exception as error:  # noqa: BLE001
            self.show_error(f"cannot evaluate f at ({x0:.6g}, {y0:.6g}): {short_error(error)}")
            return
        inside = np.isfinite(fz) and np.all(np.isfinite(hess))
        eigenvalues, eigenvectors = (np.linalg.eigh(hess) if inside else
                                     (np.full(2, np.nan), np.full((2, 2), np.nan)))
        self.values = {"x0": x0, "y0": y0, "f": fz, "gradient": gradient, "hessian": hess,
                       "eigenvalues": eigenvalues, "eigenvectors": eigenvectors}
        span = min(self.xs[-1] - self.xs[0], self.ys[-1] - self.ys[0])
        if self.arrow is not None:
            self.arrow.remove()
            self.arrow = None
        if inside:
            self.lines["point"].set_data([x0], [y0])
            norm = float(np.hypot(*gradient))
            if norm > 0:  # drawn at a fixed length: the panel gives the magnitude
                u, v = gradient / norm * 0.25 * span
                self.arrow = self.axes.quiver([x0], [y0], [u], [v], angles="xy",
                                              scale_units="xy", scale=1, color="C3",
                                              width=0.008, zorder=6, label="∇f")
            for k in range(2):
                half = 0.15 * span * eigenvectors[:, k]
                self.lines[f"eigen{k}"].set_data([x0 - half[0], x0 + half[0]],
                                                 [y0 - half[1], y0 + half[1]])
                self.lines[f"eigen{k}"].set_linestyle("-" if eigenvalues[k] >= 0 else "--")
        else:
            for line in self.lines.values():
                line.set_data([], [])
        self.numbers.value = (
            "<table class='wb-explore-values'>"
            f"<tr><td>(x0, y0)</td><td>({number(x0)}, {number(y0)})</td></tr>"
            f"<tr><td>f</td><td>{number(fz)}</td></tr>"
            f"<tr><td>∂f/∂x, ∂f/∂y</td><td>{number(gradient[0])}, {number(gradient[1])}</td></tr>"
            f"<tr><td>Hessian</td><td>[[{number(hess[0, 0])}, {number(hess[0, 1])}], "
            f"[{number(hess[1, 0])}, {number(hess[1, 1])}]]</td></tr>"
            "<tr><td>eigenvalues (lines: solid ≥ 0, dashed &lt; 0)</td>"
            f"<td>{number(eigenvalues[0])}, "
            f"{number(eigenvalues[1])}</td></tr></table>")
        if not inside:
            self.show_error(f"({x0:.6g}, {y0:.6g}) is outside the domain of f (f = {fz}): "
                            "move the point to where the contours are drawn")
            self.badge.value = ""
            self.check_report = None
        else:
            if not getattr(self, "_grid_finite", True):
                self.show_note("f is not defined (or not finite) on part of the plane: the "
                               "blank region")
            else:
                self.clear_error()
            self._check_at(x0, y0)
        self.canvas.draw_idle()

    def point(self) -> tuple[float, ...]:
        return (float(self.x0.value), float(self.y0.value))

    # ----- events -----
    def _on_point(self, _change: dict) -> None:
        self.update_point()

    def _on_range(self, _change: dict) -> None:
        for name, low, high in (("x", self.x_min.value, self.x_max.value),
                                ("y", self.y_min.value, self.y_max.value)):
            if not (np.isfinite(low) and np.isfinite(high) and low < high):
                self.show_error(f"range: '{name} from' ({low:g}) must be less than "
                                f"'to' ({high:g})")
                return
        for slider, low, high in ((self.x0, self.x_min.value, self.x_max.value),
                                  (self.y0, self.y_min.value, self.y_max.value)):
            rerange(slider, low, high)
        self._set_grid()
        self.clear_error()
        self.redraw()

    # ----- static fallback -----
    def summary(self) -> str:
        name = self.source.text if self.source else "(no function)"
        v = self.values
        lines = [f"wb.explore: f = {name}"]
        if v:
            g, h, lam = v["gradient"], v["hessian"], v["eigenvalues"]
            lines.append(f"(x0, y0) = ({number(v['x0'])}, {number(v['y0'])}): "
                         f"f = {number(v['f'])}, gradient = ({number(g[0])}, {number(g[1])}), "
                         f"Hessian = [[{number(h[0, 0])}, {number(h[0, 1])}], "
                         f"[{number(h[1, 0])}, {number(h[1, 1])}]], "
                         f"eigenvalues = ({number(lam[0])}, {number(lam[1])})")
        if self.derivative is not None:
            lines.extend(repr(self.derivative).splitlines()[:2])
        if self.message_text:
            lines.append(self.message_text)
        return "\n".join(lines)
