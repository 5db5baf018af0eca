"""wb.backprop: the tape document with its backward steps (schema, adjoints against torch, the
steps' arithmetic), the static HTML (escaped), and the stepper widget driven from Python."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import require

import workbench as wb
from workbench.views.frames import frames

HOSTILE = '<img src=x onerror=alert(1)><script>alert(1)</script>'
X = np.array([[0.5, -1.0], [2.0, 0.25], [-0.3, 0.8]])
W = np.array([0.4, -0.7])


def _model(w, X):
    return np.sum(np.tanh(X @ w) * 3.0)


def _torch_model(torch, w, X):
    """The same computation in torch, keeping each intermediate (tape rows 1..4)."""
    rows = [X @ w]
    rows.append(torch.tanh(rows[-1]))
    rows.append(rows[-1] * 3.0)
    rows.append(rows[-1].sum())
    for r in rows:
        r.retain_grad()
    return rows


def _validate(doc):
    jsonschema = require("jsonschema")
    jsonschema.validate(doc, wb.tape.SCHEMA)
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc


def test_document_validates_and_adjoints_match_torch(torch):
    doc = wb.backprop(_model, W, X).to_json()
    _validate(doc)
    assert [n["op"] for n in doc["nodes"]] == ["input", "matmul", "tanh", "mul", "sum"]
    w = torch.tensor(W, requires_grad=True)
    rows = _torch_model(torch, w, torch.tensor(X))
    rows[-1].backward()
    expected = [w.grad] + [r.grad for r in rows]
    for node, grad in zip(doc["nodes"], expected):
        np.testing.assert_allclose(node["adjoint"], grad.numpy(), rtol=1e-12)


def test_backward_contributions_sum_to_torch_gradients(torch):
    doc = wb.backprop(_model, W, X).to_json()
    w = torch.tensor(W, requires_grad=True)
    rows = _torch_model(torch, w, torch.tensor(X))
    rows[-1].backward()
    expected = {0: w.grad.numpy(), **{i + 1: r.grad.numpy() for i, r in enumerate(rows)}}
    steps = doc["backward"]
    assert steps[0]["node"] == doc["output"] == 4 and steps[0]["adjoint"] == 1.0
    assert [s["node"] for s in steps] == [4, 3, 2, 1, 0]
    sums: dict[int, np.ndarray] = {4: np.ones(())}
    for step in steps:
        for c in step["contributions"]:
            sums[c["to"]] = sums.get(c["to"], 0.0) + np.asarray(c["value"])
            np.testing.assert_allclose(c["total"], sums[c["to"]], rtol=1e-12)  # partial sums
    for node, grad in expected.items():
        np.testing.assert_allclose(sums[node], grad, rtol=1e-12)


def test_a_row_used_twice_gets_two_contributions_whose_running_total_is_the_partial_sum():
    # y = x * x at x = 3: dy/dx = 2x = 6, reached as 3 + 3
    doc = wb.backprop(lambda x: x * x, 3.0).to_json()
    (first, last) = doc["backward"]
    assert [(c["to"], c["value"], c["total"]) for c in first["contributions"]] == [
        (0, 3.0, 3.0), (0, 3.0, 6.0)]
    assert last == {"node": 0, "adjoint": 6.0, "contributions": []}


def test_several_inputs_and_steps_match_torch(torch):
    def f(x, y):
        return np.sum(np.exp(x) * y - np.sin(x * y) / (1.0 + y * y))

    x0, y0 = np.array([0.3, -1.2, 0.8]), np.array([1.5, 0.2, -0.4])
    doc = wb.backprop(f, x0, y0, argnums=(0, 1)).to_json()
    _validate(doc)
    tx, ty = torch.tensor(x0, requires_grad=True), torch.tensor(y0, requires_grad=True)
    gx, gy = torch.autograd.grad(torch.sum(torch.exp(tx) * ty - torch.sin(tx * ty)
                                           / (1.0 + ty * ty)), (tx, ty))
    sums: dict[int, np.ndarray] = {}
    for step in doc["backward"]:
        for c in step["contributions"]:
            sums[c["to"]] = sums.get(c["to"], 0.0) + np.asarray(c["value"])
    np.testing.assert_allclose(sums[doc["inputs"][0]], gx.numpy(), rtol=1e-12)
    np.testing.assert_allclose(sums[doc["inputs"][1]], gy.numpy(), rtol=1e-12)


def test_steps_are_recorded_only_for_backprop():
    tape = wb.tape.record(_model, W, X)
    assert tape.steps is None and "backward" not in tape.to_json()
    assert wb.backprop(_model, W, X).tape.steps is not None


# ----- text and HTML -----
def test_text_and_html_show_operands_and_every_backward_step():
    view = wb.backprop(_model, W, X)
    text = str(view)
    assert "X(3x2), #0" in text and "#2, 3" in text  # matmul(X, w), tanh(...) * 3
    assert text.count("\n  ") == 5 and "backward:" in text
    page = view._repr_html_()
    assert page.count("<li>") == 5 and "X(3x2), #0" in page and "<svg" in page
    assert "<script" not in page
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {wb.tape.MIME_TYPE, "text/html", "text/plain"}
    assert bundle[wb.tape.MIME_TYPE]["backward"] == view.to_json()["backward"]


def test_hostile_labels_are_escaped_everywhere():
    def f(p):
        return p[HOSTILE] * 2.0

    f.__name__ = "<script>alert(2)</script>"
    view = wb.backprop(f, {HOSTILE: 1.5})
    assert view.to_json()["nodes"][0]["label"] == f"p[{HOSTILE!r}]"  # JSON keeps the text
    pages = [view._repr_html_(), view.svg(), view.widget().picture.value,
             view.widget().children[0].value, view.widget().caption.value]
    for page in pages:
        assert not re.search(r"<\s*(img|script)", page, re.IGNORECASE), page
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[0]


# ----- the stepper -----
def test_stepper_walks_forward_then_backward(torch):
    require("ipywidgets")
    view = wb.backprop(_model, W, X)
    stepper = view.widget()
    assert "wb-backprop" in stepper._dom_classes
    n = len(view.tape)
    assert stepper.slider.max == 2 * n - 1  # n forward steps, n backward steps
    assert stepper.highlighted == 0 and stepper.shown_adjoints == {}
    assert stepper.prev_button.disabled

    def current_node(svg):
        return [int(m) for m in re.findall(r'class="wb-node[^"]*wb-current[^"]*" data-node="(\d+)"',
                                           svg)]

    stepper.next_button.click()
    assert stepper.highlighted == 1 and current_node(stepper.picture.value) == [1]
    assert "wb-pending" in stepper.picture.value  # rows 2.. not computed yet
    stepper.slider.value = n  # the first backward step: the seed at the output
    assert stepper.highlighted == 4 and stepper.frame.kind == "backward"
    assert set(stepper.shown_adjoints) == {3, 4}
    assert "grad 1" in stepper.picture.value and "seeded" in stepper.caption.value
    stepper.next_button.click()
    assert stepper.highlighted == 3 and set(stepper.shown_adjoints) == {2, 3, 4}
    stepper.play.value = stepper.slider.max  # the Play button drives the slider
    assert stepper.slider.value == stepper.slider.max and stepper.next_button.disabled
    w = torch.tensor(W, requires_grad=True)
    torch.sum(torch.tanh(torch.tensor(X) @ w) * 3.0).backward()
    assert stepper.highlighted == 0
    np.testing.assert_allclose(stepper.shown_adjoints[0], w.grad.numpy(), rtol=1e-12)
    stepper.prev_button.click()
    assert stepper.highlighted == 1 and 0 in stepper.shown_adjoints
    # the drawing keeps its size from step to step (room is kept for the final texts)
    sizes = {re.search(r'<svg[^>]* width="(\d+)"', view.svg(f)).group(1) for f in stepper.frames}
    assert len(sizes) == 1


def test_frames_show_latest_totals():
    doc = wb.backprop(lambda x: x * x + x, 2.0).to_json()  # d/dx = 2x + 1 = 5
    fs = frames(doc, {n["id"]: str(n["id"]) for n in doc["nodes"]})
    backward = [f for f in fs if f.kind == "backward"]
    seen = [f.adjoints.get(0) for f in backward]
    assert seen[-1] == 5.0
    assert [s for s in seen if s is not None] == sorted(s for s in seen if s is not None)


# ----- bad input -----
def test_bad_input_is_a_clear_error():
    with pytest.raises(wb.InputTypeError, match="expected a function"):
        wb.backprop("x**2", 1.0)
    with pytest.raises(wb.ArgnumsError):
        wb.backprop(lambda x: x, 1.0, argnums=3)
    with pytest.raises(wb.InputTypeError):
        wb.backprop(lambda x: x, 1)


def test_rows_and_drawing_show_the_shape_of_every_array_row():
    rng = np.random.default_rng(3)
    x, W1, b1 = rng.normal(size=(64, 20)), rng.normal(size=(20, 8)), rng.normal(size=8)
    view = wb.backprop(lambda W1, b1, x: np.sum(np.tanh(x @ W1 + b1)), W1, b1, x,
                       argnums=(0, 1))
    # the forward intermediates by numpy, in the order the tape records them
    expected = [W1, b1, x @ W1, x @ W1 + b1, np.tanh(x @ W1 + b1), np.sum(np.tanh(x @ W1 + b1))]
    rows = view.rows()
    assert [r[3] for r in rows] == [str(np.shape(v)) for v in expected]
    assert [n["shape"] for n in view.to_json()["nodes"]] == [list(np.shape(v)) for v in expected]
    svg = view.svg()
    assert svg.count(">64×8<") == 3 and ">20×8<" in svg and ">8<" in svg


def test_torch_data_arguments_are_shown_by_name():
    torch = pytest.importorskip("torch")
    weights = torch.tensor([0.5, -1.0], dtype=torch.float64)
    data = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    view = wb.backprop(lambda w, X: torch.tanh(X @ w).sum(), weights, data)
    operands = [r[2] for r in view.rows()]
    assert any(o.startswith("X(3x2)") for o in operands), operands
    assert not any("const(3x2)" in o for o in operands)
