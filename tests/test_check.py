"""wb.check: four gradients compared, kinks and non-finite values reported, failures caught."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from workbench.tape import vjps


def _statuses(report):
    return {(r.label, m.method): m.status for r in report.inputs for m in r.methods}


def test_a_smooth_numpy_function_passes_and_torch_is_not_applicable():
    report = wb.check(lambda x: np.sum(np.sin(x) * x), np.array([0.5, 1.5]))
    assert report.passed and report.reference == "symbolic"
    statuses = _statuses(report)
    assert statuses[("x", "tape")] == "pass"
    assert statuses[("x", "finite differences")] == "pass"
    assert statuses[("x", "torch.func.grad")] == "n/a"
    assert any(n.startswith("torch: not applicable (") for n in report.notes)
    fd = report.inputs[0].methods[1]
    assert fd.max_abs < 1e-8 and fd.rtol == 1e-5


def test_a_torch_style_function_is_checked_against_torch(torch):
    def loss(weights, example, target):
        return ((weights.dot(example).relu() - target) ** 2).mean()

    w, e = np.array([0.3, -0.2, 0.9]), np.array([1.0, 2.0, -0.5])
    report = wb.check(loss, w, e, 0.25, argnums=(0, 1))
    assert report.passed, report
    assert [r.label for r in report.inputs] == ["weights", "example"]
    assert all(s == "pass" for s in _statuses(report).values())


def test_kinks_are_reported_not_failed():
    report = wb.check(lambda x: np.sum(wb.relu(x)) + np.max(x), np.array([0.0, 2.0, 2.0]))
    assert report.passed
    assert any(k.startswith("relu (tape entry #1): 1 element(s) exactly") for k in report.kinks)
    assert any(k.startswith("amax") and "ties" in k for k in report.kinks)
    statuses = _statuses(report)
    assert statuses[("x", "tape")] == "pass"  # the conventions still have to agree
    assert statuses[("x", "finite differences")] == "expected"


def test_non_finite_gradients_are_reported_as_such():
    report = wb.check(lambda x: np.sum(np.sqrt(x)), np.array([0.0, 4.0]))
    assert report.passed
    fd = report.inputs[0].methods[1]
    assert fd.nonfinite and fd.nonfinite[0][0] == (0,) and fd.nonfinite[0][1] == np.inf
    assert "non-finite" in repr(report)


def test_where_ties_and_stop_gradient_are_expected_differences():
    report = wb.check(lambda v: np.sum(np.where(v > 0, v ** 2, -v)), np.array([1.0, 0.0]))
    assert report.passed
    assert any(k.startswith("comparison gt") for k in report.kinks)
    report = wb.check(lambda x: np.sum(x + wb.stop_gradient(x) * x), np.array([1.0, 3.0]))
    assert report.passed
    fd = report.inputs[0].methods[1]
    assert fd.status == "expected" and "stop_gradient" in fd.note and len(fd.failing) == 2


def test_a_wrong_finite_difference_is_a_failure_with_its_entries():
    def f(x):  # a function that computes something else on plain numpy arrays
        return np.sum(x * (2.0 if isinstance(x, np.ndarray) else 3.0))

    report = wb.check(f, np.array([1.0, 3.0]))
    assert not report.passed
    fd = report.inputs[0].methods[1]
    assert fd.status == "fail" and [i for i, _, _ in fd.failing] == [(0,), (1,)]
    text = repr(report)
    assert text.startswith("wb.check(f): FAIL") and "x[1]: finite differences gives" in text
    assert "#f8d7da" in report._repr_html_()


def test_a_wrong_vjp_rule_in_the_tape_is_caught(monkeypatch):
    monkeypatch.setitem(vjps.VJPS, "sin", lambda argnum, g, ans, x: g * np.sin(x))
    report = wb.check(lambda x: np.sum(np.sin(x)), np.array([0.1, 0.2]))
    assert not report.passed
    tape = report.inputs[0].methods[0]
    assert tape.method == "tape" and tape.status == "fail"
    assert tape.failing[0][1] == pytest.approx(np.cos(0.1))


def test_pytrees_and_labels():
    report = wb.check(lambda p: p["w"][0] * np.sum(p["w"][1] ** 2), {"w": [2.0, np.ones(3)]})
    assert report.passed
    assert [r.label for r in report.inputs] == ["p['w'][0]", "p['w'][1]"]


def test_finite_differences_respect_their_budget():
    report = wb.check(lambda x: np.sum(np.tanh(x)), np.linspace(-1, 1, 10), fd_max_entries=3)
    assert report.passed
    assert "finite differences checked 3 of 10 entries" in report.notes


def test_html_view_is_a_green_table_when_passing():
    html = wb.check(lambda x: x * x, 1.5)._repr_html_()
    assert "PASS" in html and "#d4edda" in html and "<table>" in html


def test_bad_calls_raise_the_workbench_errors():
    with pytest.raises(wb.ArgnumsError):
        wb.check(lambda x: x, 1.0, argnums=3)
    with pytest.raises(wb.InputTypeError):
        wb.check(lambda x: x * 2.0, 3)
    with pytest.raises(wb.NonScalarOutputError):
        wb.check(lambda x: x * 2.0, np.ones(2))


def test_float32_inputs_widen_the_tolerance_and_keep_finite_differences_in_float64():
    report = wb.check(lambda x: np.sum(np.sin(x) * x), np.array([0.5, 1.5], dtype=np.float32))
    assert report.passed, report
    fd = report.inputs[0].methods[1]
    assert fd.max_abs < 1e-6 and fd.rtol == pytest.approx(1e3 * np.finfo(np.float32).eps)


def test_float32_torch_models_get_finite_differences(torch):
    # Parameters passed to functional_call are promoted to float64 for the differences; a
    # float32 module closed over cannot be, so they run in float32 with a step sized for it.
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)).float()
    params = {k: v.detach() for k, v in model.named_parameters()}
    x, y = torch.randn(5, 4, dtype=torch.float32), torch.tensor([0, 1, 1, 0, 1])

    def loss(p, x, y):
        return torch.nn.functional.cross_entropy(torch.func.functional_call(model, p, (x,)), y)

    def closed_over(x):
        return torch.tanh(model(x)).sum()

    for report in (wb.check(loss, params, x, y), wb.check(closed_over, x)):
        assert report.passed, report
        assert {m for (_, m), status in _statuses(report).items() if status == "pass"} == \
            {"tape", "finite differences", "torch.func.grad"}, report


def test_big_runs_skip_the_symbolic_gradient_and_compare_against_the_tape():
    report = wb.check(lambda w: np.sum(np.tanh(np.ones((20, 30)) @ w)), np.full((30, 4), 0.01),
                      symbolic_max_ops=1000, fd_max_entries=20)
    assert report.reference == "tape" and report.passed
    assert any("symbolic wb.grad skipped: the run makes about" in n for n in report.notes)
    assert [m.method for m in report.inputs[0].methods] == ["finite differences", "torch.func.grad"]


def test_finite_differences_of_a_python_float_argument():
    report = wb.check(lambda x, y: x * np.sin(y), 0.7, 1.1, argnums=(0, 1))
    assert report.passed
    assert {m.method: m.status for r in report.inputs for m in r.methods}["finite differences"] \
        == "pass"
