"""wb.explore driven from Python: sliders, toggles, ranges, typed texts, the export button.

Expected values come from mathematics (hand-derived derivatives), central finite differences
and numpy's ``eigh`` of the analytic Hessian -- never from the explorer's own output.
"""

from __future__ import annotations

import asyncio
import base64
import html
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import central_difference, require

require("ipywidgets")
require("matplotlib")
require("ipympl")

import workbench as wb  # noqa: E402
from workbench.widgets import ExploreError, ExploreTypeError, explore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# f(x) = x^2 sin x and its derivatives, by hand
def f(x):
    return x**2 * np.sin(x)


def df(x):
    return 2 * x * np.sin(x) + x**2 * np.cos(x)


def d2f(x):
    return 2 * np.sin(x) + 4 * x * np.cos(x) - x**2 * np.sin(x)


def ydata(line) -> np.ndarray:
    return np.asarray(line.get_ydata(), dtype=np.float64)


# ----- one variable -----
def test_curves_are_f_and_its_analytic_derivatives_on_the_grid():
    e = explore("x**2*sin(x)", x_range=(-4.0, 3.0), x0=1.0)
    xs = np.asarray(e.lines["f"].get_xdata())
    assert xs[0] == -4.0 and xs[-1] == 3.0
    np.testing.assert_allclose(ydata(e.lines["f"]), f(xs), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ydata(e.lines["df"]), df(xs), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ydata(e.lines["d2f"]), d2f(xs), rtol=1e-12, atol=1e-12)
    assert e.message_text == ""


def test_python_function_sin_gives_cos_and_minus_sin():
    e = explore(np.sin, x0=0.3)
    xs = e.xs
    np.testing.assert_allclose(ydata(e.lines["df"]), np.cos(xs), atol=1e-13)
    np.testing.assert_allclose(ydata(e.lines["d2f"]), -np.sin(xs), atol=1e-13)


def test_tangent_passes_through_the_point_with_the_finite_difference_slope():
    e = explore("x**2*sin(x)", x0=0.0)
    e.x0.value = 1.3
    x0 = e.x0.value
    xs, tangent = np.asarray(e.lines["tangent"].get_xdata()), ydata(e.lines["tangent"])
    slope = (tangent[-1] - tangent[0]) / (xs[-1] - xs[0])
    expected_slope = float(central_difference(f, x0))
    assert slope == pytest.approx(expected_slope, rel=1e-7)
    assert np.interp(x0, xs, tangent) == pytest.approx(f(x0), rel=1e-12)
    assert list(e.lines["point"].get_xdata()) == [x0]
    assert e.lines["point"].get_ydata()[0] == pytest.approx(f(x0), rel=1e-12)


def test_numbers_at_x0_match_the_analytic_values_and_are_shown():
    e = explore("x**2*sin(x)", x0=0.0)
    e.x0.value = -2.2
    x0 = -2.2
    assert e.values["x0"] == x0
    assert e.values["f"] == pytest.approx(f(x0), rel=1e-12)
    assert e.values["df"] == pytest.approx(df(x0), rel=1e-12)
    assert e.values["d2f"] == pytest.approx(d2f(x0), rel=1e-12)
    shown = e.numbers.value
    for value in (f(x0), df(x0), d2f(x0)):
        assert f"{value:.6g}" in shown


def test_taylor_toggle_shows_the_second_order_taylor_curve():
    e = explore("x**2*sin(x)", x0=0.5)
    assert not e.lines["taylor"].get_visible()
    e.taylor.value = True
    assert e.lines["taylor"].get_visible()
    x0 = 0.5
    xs = np.asarray(e.lines["taylor"].get_xdata())
    expected = f(x0) + df(x0) * (xs - x0) + 0.5 * d2f(x0) * (xs - x0) ** 2
    np.testing.assert_allclose(ydata(e.lines["taylor"]), expected, rtol=1e-10, atol=1e-10)
    e.x0.value = 2.0  # the curve follows the point
    expected = f(2.0) + df(2.0) * (xs - 2.0) + 0.5 * d2f(2.0) * (xs - 2.0) ** 2
    np.testing.assert_allclose(ydata(e.lines["taylor"]), expected, rtol=1e-10, atol=1e-10)
    assert "Taylor" in " ".join(t.get_text() for t in e.axes[0].get_legend().get_texts())
    e.taylor.value = False
    assert not e.lines["taylor"].get_visible()
    assert "Taylor" not in " ".join(t.get_text() for t in e.axes[0].get_legend().get_texts())


def test_moving_the_slider_or_the_range_never_traces_again(traces):
    e = explore("x**2*sin(x)", x0=0.0)
    traced = len(traces)
    assert traced > 0  # the counter sees the explorer's traces
    for x0 in np.linspace(-4.5, 4.5, 25):
        e.x0.value = float(x0)
    e.taylor.value = True
    e.x_max.value = 8.0
    e.x_min.value = -1.0
    assert len(traces) == traced
    np.testing.assert_allclose(ydata(e.lines["df"]), df(e.xs), rtol=1e-12, atol=1e-12)


def test_log_has_nan_gaps_and_a_point_outside_the_domain_says_so():
    e = explore(lambda x: np.log(x), x_range=(-2.0, 3.0), x0=1.0)
    xs = e.xs
    y, dy = ydata(e.lines["f"]), ydata(e.lines["df"])
    assert np.isnan(y[xs < 0]).all() and np.isnan(dy[xs < 0]).all()
    np.testing.assert_allclose(dy[xs > 0], 1 / xs[xs > 0], rtol=1e-12)
    e.x0.value = -1.0
    assert "outside the domain" in e.message_text
    assert math.isnan(e.values["f"])
    e.x0.value = 2.0
    assert "outside the domain" not in e.message_text
    assert e.values["df"] == pytest.approx(0.5)


def test_a_typo_shows_a_message_and_a_corrected_text_plots_again():
    e = explore("sin(x)", x0=0.0)
    before = ydata(e.lines["f"]).copy()
    e.text.value = "sin(x +* 2"
    assert "does not parse" in e.message_text
    np.testing.assert_array_equal(ydata(e.lines["f"]), before)  # the last good plot stays
    e.text.value = "exp(x)"
    assert e.message_text == ""
    np.testing.assert_allclose(ydata(e.lines["f"]), np.exp(e.xs), rtol=1e-12)
    np.testing.assert_allclose(ydata(e.lines["df"]), np.exp(e.xs), rtol=1e-12)


def test_a_text_that_does_not_parse_at_the_start_gives_a_working_widget():
    e = explore("x**")
    assert "does not parse" in e.message_text
    e.text.value = "x**3"
    np.testing.assert_allclose(ydata(e.lines["df"]), 3 * e.xs**2, rtol=1e-12)


def test_an_untraceable_function_shows_a_message_then_a_text_works():
    e = explore(lambda x: math.sin(x))  # math.sin cannot see a traced value
    assert "TracedConversionError" in e.message_text
    e.text.value = "cos(x)"
    assert e.message_text == ""
    np.testing.assert_allclose(ydata(e.lines["df"]), -np.sin(e.xs), atol=1e-13)


def test_refused_text_and_wrong_number_of_variables_are_messages():
    e = explore("x**2")
    e.text.value = "__import__('os').system('echo no')"
    assert "refused" in e.message_text
    e.text.value = "x*y"
    assert "wb.explore('x*y')" in e.message_text
    e.text.value = "x**2 + 1"
    assert e.message_text == ""


def test_a_bad_range_shows_a_message_and_a_good_one_updates_the_plot():
    e = explore("x**2", x_range=(-5.0, 5.0), x0=0.0)
    before = ydata(e.lines["f"]).copy()
    e.x_min.value = 7.0
    assert "must be less than" in e.message_text
    np.testing.assert_array_equal(ydata(e.lines["f"]), before)
    e.x_min.value = 1.0
    assert e.message_text == ""
    xs = np.asarray(e.lines["f"].get_xdata())
    assert xs[0] == 1.0 and xs[-1] == 5.0
    np.testing.assert_allclose(ydata(e.lines["f"]), xs**2, rtol=1e-12)
    assert e.x0.min == 1.0 and e.x0.value == 1.0  # the point is kept inside the range
    e.x_max.value, e.x_min.value = 30.0, 20.0  # a range entirely beyond the old one
    assert (e.x0.min, e.x0.max) == (20.0, 30.0)
    assert e.message_text == ""


def test_the_derivative_is_shown_in_latex_and_equals_sympys():
    sympy = pytest.importorskip("sympy")
    e = explore("x**2*sin(x)")
    x = e.derivative.symbols["x"]
    assert sympy.simplify(e.derivative.expr - sympy.diff(x**2 * sympy.sin(x), x)) == 0
    assert e.latex.value.startswith("$$") and r"\frac{d f}{d x}" in e.latex.value


def test_the_latex_waits_until_the_plot_is_shown_when_an_event_loop_runs():
    async def in_a_kernel():
        e = explore("x**2*sin(x)")
        shown_first = e.latex.value
        assert ydata(e.lines["df"]).size == e.xs.size  # the plot is already there
        for _ in range(3):
            await asyncio.sleep(0)
        return shown_first, e.latex.value

    first, later = asyncio.run(in_a_kernel())
    assert "simplifying" in first
    assert later.startswith("$$") and r"\cos" in later


def test_the_check_badge_gives_wb_checks_verdict_at_x0():
    e = explore("x**2*sin(x)", x0=0.7)
    assert e.check_report is not None and e.check_report.passed
    assert "wb-badge-pass" in e.badge.value
    e.x0.value = 1.9
    reference = e.check_report.inputs[0].reference
    assert float(reference) == pytest.approx(df(1.9), rel=1e-12)  # checked at the new x0


def test_the_export_button_shows_numpy_code_that_computes_the_derivative(tmp_path):
    e = explore("x**2*sin(x)", x0=0.4)
    assert e.code.layout.display == "none"
    e.export_button.click()
    assert e.code.layout.display != "none"
    source = html.unescape(re.sub(r"</?pre>", "", e.code.value))
    module = tmp_path / "exported_grad.py"
    module.write_text(source)
    namespace: dict = {}
    exec(compile(source, str(module), "exec"), namespace)  # noqa: S102 -- our generated module
    assert float(namespace["grad_f"](1.1)) == pytest.approx(df(1.1), rel=1e-12)
    e.export_button.click()  # and hides it again
    assert e.code.layout.display == "none"
    e.export_button.click()
    e.text.value = "exp(x)"  # a new function hides the old function's code
    assert e.code.layout.display == "none" and e.export_button.description == "numpy code"


def test_static_fallback_has_text_and_png_beside_the_widget_view():
    e = explore("x**2*sin(x)", x0=1.0)
    bundle = e._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    text = bundle["text/plain"]
    assert "x**2*sin(x)" in text and f"{f(1.0):.6g}" in text and f"{df(1.0):.6g}" in text
    assert f"{d2f(1.0):.6g}" in text
    assert base64.b64decode(bundle["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<img" in bundle["text/html"] and "data:image/png;base64," in bundle["text/html"]


def test_css_classes_for_the_browser_test():
    assert wb.explore is explore  # the public name, loaded lazily
    e = wb.explore("sin(x)")
    assert "wb-explore" in e._dom_classes
    assert "wb-explore-x0" in e.x0._dom_classes
    assert "wb-explore-message" in e.message._dom_classes
    assert "wb-explore-plot" in e.canvas._dom_classes


def test_arguments_that_cannot_work_are_clear_errors():
    with pytest.raises(ExploreTypeError, match="expected a function or a text"):
        explore(42)
    with pytest.raises(ExploreError, match="takes 3 required arguments"):
        explore(lambda a, b, c: a * b * c)
    with pytest.raises(ExploreError, match="x_range"):
        explore("x**2", x_range=(3.0, -3.0))
    assert isinstance(ExploreTypeError("x"), TypeError) and isinstance(ExploreError("x"),
                                                                       ValueError)


# ----- two variables -----
def g(x, y):
    return np.sin(x) * y**2 + x * y


def g_hessian(x, y):
    return np.array([[-np.sin(x) * y**2, 2 * y * np.cos(x) + 1],
                     [2 * y * np.cos(x) + 1, 2 * np.sin(x)]])


def test_two_variables_gradient_at_the_point_matches_finite_differences():
    e = explore("sin(x)*y**2 + x*y", x0=0.5, y0=0.5)
    assert type(e).__name__ == "Explorer2D"
    e.x0.value, e.y0.value = 1.2, -0.7
    point = np.array([1.2, -0.7])
    expected = central_difference(lambda p: g(p[0], p[1]), point)
    np.testing.assert_allclose(e.values["gradient"], expected, rtol=1e-7)
    assert e.values["f"] == pytest.approx(g(1.2, -0.7), rel=1e-12)
    u, v = e.arrow.U[0], e.arrow.V[0]  # the arrow points along the gradient
    direction = expected / np.linalg.norm(expected)
    np.testing.assert_allclose(np.array([u, v]) / math.hypot(u, v), direction, rtol=1e-6)


def test_two_variables_hessian_eigendirections_match_numpy_eigh():
    e = explore(g, x0=1.0, y0=1.0)
    e.x0.value, e.y0.value = 0.4, 1.5
    values, vectors = np.linalg.eigh(g_hessian(0.4, 1.5))
    np.testing.assert_allclose(e.values["hessian"], g_hessian(0.4, 1.5), rtol=1e-12)
    np.testing.assert_allclose(e.values["eigenvalues"], values, rtol=1e-10)
    for k in range(2):  # each drawn direction is parallel to numpy's eigenvector
        xs, ys = e.lines[f"eigen{k}"].get_data()
        drawn = np.array([xs[1] - xs[0], ys[1] - ys[0]])
        cosine = abs(drawn @ vectors[:, k]) / np.linalg.norm(drawn)
        assert cosine == pytest.approx(1.0, abs=1e-10)
        assert (xs[0] + xs[1]) / 2 == pytest.approx(0.4) and (ys[0] + ys[1]) / 2 == pytest.approx(1.5)


def test_two_variables_gradient_field_is_the_analytic_gradient():
    e = explore("x**2 + 3*y**2", x_range=(-2.0, 2.0))
    offsets = e.field.get_offsets()
    np.testing.assert_allclose(np.ravel(e.field.U), 2 * offsets[:, 0], atol=1e-12)
    np.testing.assert_allclose(np.ravel(e.field.V), 6 * offsets[:, 1], atol=1e-12)
    assert e.contour is not None
    levels = e.colorbar.mappable.levels  # the colorbar spans f's values on the grid
    X, Y = np.meshgrid(e.xs, e.ys)
    assert levels[0] <= 0.0 and levels[-1] >= (X**2 + 3 * Y**2).max()
    e.x_max.value = 4.0  # a new range redraws contours and colorbar, and keeps the plot's size
    position = e.axes.get_position().bounds
    X, Y = np.meshgrid(e.xs, e.ys)
    assert e.colorbar.mappable.levels[-1] >= (X**2 + 3 * Y**2).max()
    assert e.axes.get_position().bounds == position


def test_two_variables_sliders_and_ranges_never_trace_again(traces):
    e = explore("sin(x)*y**2 + x*y")
    traced = len(traces)
    for value in np.linspace(-2.5, 2.5, 10):
        e.x0.value = float(value)
        e.y0.value = float(-value)
    e.y_max.value = 4.0
    assert len(traces) == traced
    assert e.values["gradient"][1] == pytest.approx(2 * -2.5 * np.sin(2.5) + 2.5)


def test_two_variables_bad_text_and_domain_messages():
    e = explore("log(x) + y**2", x_range=(-1.0, 2.0), x0=1.0, y0=0.0)
    assert "outside" not in e.message_text
    e.x0.value = -0.5
    assert "outside the domain" in e.message_text
    e.text.value = "x*y +"
    assert "does not parse" in e.message_text
    e.text.value = "x*y"
    e.x0.value, e.y0.value = 1.5, 0.5
    assert e.message_text == ""
    np.testing.assert_allclose(e.values["gradient"], [0.5, 1.5])
    assert "∂f/∂x" in e.summary() and "gradient = (0.5, 1.5)" in e._repr_mimebundle_()["text/plain"]


# ----- imports -----
def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def test_import_workbench_does_not_import_widget_or_plotting_modules():
    result = _run("import sys, workbench\n"
                  "bad = [m for m in ('ipywidgets', 'matplotlib', 'ipympl', 'IPython')\n"
                  "       if m in sys.modules]\n"
                  "print(bad)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_explore_keeps_the_users_matplotlib_backend_and_figures():
    result = _run("import matplotlib\n"
                  "matplotlib.use('agg')\n"
                  "import matplotlib.pyplot as plt\n"
                  "plt.figure()\n"
                  "import workbench as wb\n"
                  "e = wb.explore('sin(x)')\n"
                  "print(matplotlib.get_backend(), plt.get_fignums())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "agg [1]"
