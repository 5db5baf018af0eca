"""wb.tape.grad: torch.func.grad's semantics, live agreement with torch, nesting, and the views."""

from __future__ import annotations

import importlib
import json
import math
from collections import namedtuple

import numpy as np
import pytest
from conftest import central_difference, require

import workbench as wb
from workbench import pytree

tg = wb.tape.grad


# ----- agreement with torch.func.grad, run live -----
def _loss(y, y_pred):
    return ((0.5 * y_pred - y) ** 2).mean()


def _mlp(params, x):
    h = (x @ params["w1"] + params["b1"]).tanh()
    return ((h @ params["w2"]).sum() - 1.0) ** 2


def _linear_relu(weights, example, target):
    # weights.dot(example): ndarray.dot(tape value) would not dispatch to the tape (numpy's
    # method does not honour __array_function__), while the tape value's own method does.
    y = weights.dot(example).relu()
    return ((y - target) ** 2).mean()


rng = np.random.default_rng(7)
V = rng.normal(size=5)
M = rng.normal(size=(3, 4))
W = rng.normal(size=(4, 2))
P = {"w1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4), "w2": rng.normal(size=(4, 2))}

# (name, f, args, argnums): f is written once and runs on torch tensors and tape values alike
TORCH_CASES = [
    ("sin", lambda x: x.sin(), (0.8,), 0),
    ("exp*cos sum", lambda x: (x.exp() * x.cos()).sum(), (V,), 0),
    ("tanh sigmoid", lambda x: (x.tanh() + x.sigmoid()).sum(), (V,), 0),
    ("log sqrt abs", lambda x: (x.abs().sqrt() + (x * x + 1.0).log()).sum(), (V,), 0),
    ("pow tensor exponent", lambda x, y: (x.abs() ** y).sum(), (V, V * 0.5 + 1.0), (0, 1)),
    ("x.pow(3)", lambda x: x.pow(3).mean(), (V,), 0),
    ("div and rsub", lambda x: (1.0 / (2.0 + x * x) - x).sum(), (V,), 0),
    ("relu", lambda x: x.relu().sum(), (V,), 0),
    ("softplus via wb", lambda x: wb.softplus(x * 10.0).sum(), (V,), 0),
    ("wb.sigmoid", lambda x: wb.sigmoid(x).prod(), (V,), 0),
    ("maximum of two", lambda x, y: wb.maximum(x, y).sum(), (V, V[::-1].copy()), (0, 1)),
    ("minimum", lambda x, y: wb.minimum(x, y * 2.0).sum(), (V, V[::-1].copy()), (0, 1)),
    ("max reduction", lambda x: x.max() * 2.0, (V,), 0),
    ("amax dim", lambda x: x.amax(dim=1).sum(), (M,), 0),
    ("mean dim keepdim", lambda x: (x - x.mean(dim=0, keepdim=True)).pow(2).sum(), (M,), 0),
    ("sum dim", lambda x: (x.sum(dim=1) * x[:, 0]).sum(), (M,), 0),
    ("clamp", lambda x: x.clamp(-0.5, 0.5).sum() + x.clamp(min=0.1).mean(), (V,), 0),
    ("dot", lambda v, w: v.dot(w) ** 2, (V, V * 2.0 + 0.1), (0, 1)),
    ("matmul 2-D", lambda a, b: (a @ b).tanh().sum(), (M, W), (0, 1)),
    ("matmul mat-vec", lambda a, v: (a @ v).sin().sum(), (M, V[:4].copy()), (0, 1)),
    ("matmul vec-mat", lambda v, a: (v @ a).exp().sum(), (V[:3].copy(), M), (0, 1)),
    ("broadcast row", lambda x, b: ((x + b) ** 2).sum(), (M, V[:4].copy()), (0, 1)),
    ("broadcast column", lambda x, c: (x * c).sin().sum(), (M, V[:3].reshape(3, 1).copy()), (0, 1)),
    ("indexing", lambda x: x[1:, ::2].sum() * x[0, 1], (M,), 0),
    ("index list", lambda x: (x[[0, 0, 2]] ** 2).sum(), (V,), 0),
    ("transpose .T", lambda x: (x.T @ x).sum(), (M,), 0),
    ("reshape", lambda x: (x.reshape(4, 3) ** 3).sum(), (M,), 0),
    ("unsqueeze/squeeze", lambda x: (x.unsqueeze(0).squeeze(0) * x).sum(), (V,), 0),
    ("atan2", lambda y, x: wb.atan2(y, x).sum(), (V, V * 0.3 + 2.0), (0, 1)),
    ("mask arithmetic", lambda x: ((x > 0) * x * x - (x <= 0) * x).sum(), (V,), 0),
    ("mask .double()", lambda x: ((x > 0).double() * x.exp()).sum(), (V,), 0),
    ("torch.where on a comparison", lambda x: __import__("torch").where(x > 0, x, x * x).sum(),
     (V,), 0),
    ("negative argnums", lambda x, y: (x * y).sin().sum(), (V, V + 1.0), -1),
    ("per-sample loss", _linear_relu, (V, V * 0.5, 0.3), 0),
    ("my_loss_func", _loss, (V, V * 2.0), (0, 1)),
    ("pytree MLP", _mlp, (P, M.T.copy()), 0),
]


@pytest.mark.parametrize("name, f, args, argnums", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_tape_agrees_with_torch_func_grad(torch, name, f, args, argnums):
    def to_torch(x):
        if isinstance(x, dict):
            return {k: to_torch(v) for k, v in x.items()}
        return torch.tensor(x, dtype=torch.float64)

    expected = torch.func.grad(f, argnums=argnums)(*[to_torch(a) for a in args])
    got = tg(f, argnums=argnums)(*args)
    expected_leaves = pytree.flatten(expected)[0]
    got_leaves = pytree.flatten(got)[0]
    assert len(got_leaves) == len(expected_leaves)
    for g, e in zip(got_leaves, expected_leaves):
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("table", ["CATALOGUE", "NESTED", "NON_SMOOTH"])
def test_tape_agrees_with_torch_on_the_core_cross_check_catalogue(torch, table):
    """The functions of the core's cross-check (tests/test_grad_torch.py), on the tape."""
    core = importlib.import_module("test_grad_torch")
    failures = []
    for name, case in getattr(core, table).items():
        if table == "CATALOGUE":
            fn, args, argnums = case
            got, want = tg(fn, argnums=argnums)(*args), torch.func.grad(fn, argnums=argnums)(*args)
        elif table == "NESTED":
            build, args = case
            got, want = build(tg)(*args), build(torch.func.grad)(*args)
        else:
            fn, x = case
            got, want = tg(fn)(x), torch.func.grad(fn)(x)
        got_leaves, want_leaves = pytree.flatten(got)[0], pytree.flatten(want)[0]
        try:
            assert len(got_leaves) == len(want_leaves)
            for g, w in zip(got_leaves, want_leaves):
                assert isinstance(g, torch.Tensor)  # torch tensors in, torch tensors out
                torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12, equal_nan=True)
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    assert not failures, "\n".join(failures)


def test_the_reference_examples_of_torch_func_grad():
    x = 0.3
    assert float(tg(np.sin)(x)) == pytest.approx(math.cos(x))
    assert float(tg(tg(np.sin))(x)) == pytest.approx(-math.sin(x))
    (g_true, g_pred), (y_pred, per_sample) = tg(
        lambda y, p: (_loss(y, p), (p, (0.5 * p - y) ** 2)), argnums=(0, 1), has_aux=True)(V, V * 2)
    np.testing.assert_allclose(g_true, -2.0 * (0.5 * V * 2 - V) / 5)
    np.testing.assert_allclose(g_pred, (0.5 * V * 2 - V) / 5)
    np.testing.assert_allclose(y_pred, V * 2)
    assert isinstance(per_sample, np.ndarray)


# ----- semantics -----
def test_scalar_float_input_gives_a_numpy_float():
    g = tg(lambda x: x * x)(3.0)
    assert isinstance(g, np.float64) and g == 6.0


def test_argnums_tuple_negative_and_pytrees():
    Pair = namedtuple("Pair", "a b")
    f = lambda p, q: p["w"][0] * q.a + np.sum(p["w"][1] * q.b)  # noqa: E731
    p = {"w": [2.0, np.array([1.0, 2.0])]}
    q = Pair(3.0, np.array([4.0, 5.0]))
    gp, gq = tg(f, argnums=(0, -1))(p, q)
    assert gp["w"][0] == 3.0 and gp["w"][1].tolist() == [4.0, 5.0]
    assert isinstance(gq, Pair) and gq.a == 2.0 and gq.b.tolist() == [1.0, 2.0]


def test_unused_input_gets_zeros_of_its_shape():
    g = tg(lambda x, y: np.sum(x), argnums=1)(np.ones(2), np.ones((2, 3)))
    assert g.shape == (2, 3) and not g.any()
    assert tg(lambda x: 5.0)(1.0) == 0.0


def test_float32_gradients_keep_the_dtype():
    g = tg(lambda x: np.sum(x * x))(np.ones(3, dtype=np.float32))
    assert g.dtype == np.float32


@pytest.mark.parametrize("argnums, error", [
    (1.0, wb.ArgnumsTypeError), ("0", wb.ArgnumsTypeError), ((), wb.ArgnumsError),
    ((0, 0), wb.ArgnumsError), (2, wb.ArgnumsError), (-3, wb.ArgnumsError)])
def test_argnums_errors(argnums, error):
    with pytest.raises(error, match="argnums"):
        tg(lambda x, y: x * y, argnums=argnums)(1.0, 2.0)


def test_input_and_output_errors_are_clear():
    with pytest.raises(wb.InputTypeError, match="integer|int"):
        tg(lambda x: x * 2)(3)
    with pytest.raises(wb.InputTypeError, match="dtype"):
        tg(lambda x: np.sum(x))(np.arange(3))
    with pytest.raises(wb.NonScalarOutputError, match=r"shape \(3,\)"):
        tg(lambda x: x * 2)(np.ones(3))
    with pytest.raises(wb.OutputTypeError, match="has_aux"):
        tg(lambda x: (x, x))(1.0)
    with pytest.raises(wb.HasAuxError, match="pair"):
        tg(lambda x: x, has_aux=True)(1.0)
    with pytest.raises(wb.UnsupportedOperationError, match="np.fft"):
        tg(lambda x: np.fft.fft(x).real.sum())(np.ones(4))


def test_assigning_into_a_tape_value_says_what_to_do():
    def f(x):
        x[0] = 1.0
        return np.sum(x)

    with pytest.raises(wb.UnsupportedOperationError, match="np.where"):
        tg(f)(np.ones(2))


def test_conversions_that_drop_the_gradient_raise():
    with pytest.raises(wb.TracedConversionError, match="float"):
        tg(lambda x: float(x) * x)(1.0)
    out = np.zeros(2)

    def fill(x):
        out[0] = x
        return x

    with pytest.raises((wb.TracedConversionError, ValueError)):
        tg(fill)(1.0)
    assert float(tg(lambda x: x * x.item())(3.0)) == 3.0  # item() is a constant, as in torch


def test_python_control_flow_takes_the_branch_of_the_value():
    f = lambda x: x * x if x > 0 else -x  # noqa: E731
    assert tg(f)(2.0) == 4.0 and tg(f)(-2.0) == -1.0


def test_no_grad_inside_is_a_constant_and_outside_changes_nothing():
    def f(x):
        with wb.no_grad():
            c = x ** 2
        return x - c

    assert tg(f)(3.0) == 1.0
    with wb.no_grad():
        assert tg(lambda x: x ** 2)(3.0) == 6.0


def test_torch_no_grad_inside(torch):
    def f(x):
        with torch.no_grad():
            c = x ** 2
        return x * c

    assert tg(f)(3.0) == 9.0


def test_torch_tensor_inputs_give_torch_gradients(torch):
    g = tg(lambda x: (x.sin() * x).sum())(torch.tensor([0.5, 1.0], dtype=torch.float64))
    assert isinstance(g, torch.Tensor)
    np.testing.assert_allclose(g.numpy(), np.sin([0.5, 1.0]) + np.array([0.5, 1.0]) * np.cos([0.5, 1.0]))


def test_grad_and_value_and_has_aux():
    g, (v, aux) = wb.tape.grad_and_value(lambda x: (x ** 3, {"x2": x * x}), has_aux=True)(2.0)
    assert (g, v, aux["x2"]) == (12.0, 8.0, 4.0)
    assert not isinstance(aux["x2"], wb.tape.TapeArray)


def test_nesting_gives_higher_derivatives_without_perturbation_confusion():
    assert tg(tg(tg(lambda x: x ** 4)))(2.0) == pytest.approx(48.0)
    assert tg(tg(lambda x: np.sin(x) * np.exp(x)))(0.5) == pytest.approx(2 * math.cos(0.5) * math.exp(0.5))
    # d/dx [x * d/dy (x * y)] = d/dx x^2... the inner derivative sees x as a constant: 2x
    assert tg(lambda x: x * tg(lambda y: x * y)(1.0))(3.0) == pytest.approx(6.0)
    # relu'' = 0 and its kink convention holds at every level
    assert tg(tg(lambda x: wb.relu(x) * x))(0.0) == 0.0
    hess_row = tg(lambda v: tg(lambda w: np.sum(w ** 3))(v)[0])(np.array([1.0, 2.0]))
    np.testing.assert_allclose(hess_row, [6.0, 0.0])


def test_nested_no_grad_around_inner_grad_makes_a_constant():
    def f(x):
        with wb.no_grad():
            inner = tg(lambda y: y * x)(1.0)  # = x, but a constant to the outer level
        return inner * x

    assert tg(f)(3.0) == 3.0


def test_tape_values_cannot_escape_their_run():
    leaked = []
    tg(lambda x: leaked.append(x) or x * 1.0)(1.0)
    with pytest.raises(wb.TracedConversionError, match="finished"):
        np.sin(leaked[0])


def test_agrees_with_finite_differences_on_a_longer_program():
    def f(x):
        y = np.stack([np.sin(x), np.cos(x) * x]).T
        z = np.concatenate([y.ravel(), np.cumsum(x)])
        return np.sum(np.tanh(z) * np.arange(z.size)) + np.var(x) + np.linalg.norm(x)

    x = np.array([0.3, -1.2, 2.0, 0.7])
    np.testing.assert_allclose(tg(f)(x), central_difference(f, x), rtol=1e-6, atol=1e-8)


# ----- the Tape -----
def _run():
    return wb.tape.record(lambda x, w: np.sum(wb.relu(x @ w)), np.array([1.0, -2.0]),
                          np.array([[1.0, 0.5], [0.25, 1.0]]), argnums=(0, 1))


def test_record_lists_entries_in_order_with_values_and_adjoints():
    tape = _run()
    assert [e.op for e in tape.entries] == ["input", "input", "matmul", "relu", "sum"]
    assert [tape.entries[i].label for i in tape.inputs] == ["x", "w"]
    assert tape.entries[2].value.tolist() == [0.5, -1.5]
    assert tape.entries[3].adjoint.tolist() == [1.0, 1.0]
    assert tape.entries[2].adjoint.tolist() == [1.0, 0.0]  # relu'(-1.5) = 0
    np.testing.assert_array_equal(tape.gradient[1], [[1.0, 0.0], [-2.0, 0.0]])


def test_text_and_html_views():
    tape = _run()
    text = str(tape)
    assert text.splitlines()[0].split() == ["#", "op", "inputs", "shape", "value", "adjoint"]
    assert "matmul" in text and "#2" in text and "(x)" in text
    html = tape._repr_html_()
    assert html.startswith("<table") and html.count("<tr>") == 6
    labelled = wb.tape.record(lambda a: a * 2.0, 1.0)
    labelled.entries[0].label = "<b>x</b>"
    assert "<b>x</b>" not in labelled._repr_html_()  # labels are text, never HTML


def test_json_export_validates_against_the_documented_schema():
    jsonschema = require("jsonschema")
    tape = _run()
    doc = tape.to_json()
    jsonschema.validate(doc, wb.tape.SCHEMA)
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc
    assert [n["op"] for n in doc["nodes"]] == ["input", "input", "matmul", "relu", "sum"]
    assert {"source": 2, "target": 3, "argnum": 0} in doc["edges"]
    assert doc["inputs"] == [0, 1] and doc["output"] == 4
    bundle = tape._repr_mimebundle_()
    assert bundle["application/vnd.workbench.tape+json"] == doc


def test_json_export_of_non_finite_values_and_big_arrays():
    jsonschema = require("jsonschema")
    doc = wb.tape.record(lambda x: np.sum(np.sqrt(x)) + np.sum(x[:2]), np.zeros(2000)).to_json()
    jsonschema.validate(doc, wb.tape.SCHEMA)
    assert doc["nodes"][0]["truncated"] and doc["nodes"][0]["value"] is None
    small = wb.tape.record(lambda x: np.sqrt(x), 0.0).to_json()
    jsonschema.validate(small, wb.tape.SCHEMA)
    assert small["nodes"][0]["adjoint"] == "inf"


def test_inputs_are_labelled_by_their_pytree_path():
    Point = namedtuple("Point", "x y")
    tape = wb.tape.record(lambda p, q: p["w"][1] * q.y, {"w": [1.0, 2.0]}, Point(3.0, 4.0),
                          argnums=(0, 1))
    assert [tape.entries[i].label for i in tape.inputs] == ["p['w'][0]", "p['w'][1]", "q.x", "q.y"]


@pytest.mark.parametrize("our_no_grad", ["wb.no_grad", "torch.no_grad"])
def test_nested_no_grad_cases_of_the_core_match_torch(torch, our_no_grad):
    """The nesting x no_grad cases of tests/test_no_grad.py, with wb.tape.grad at every level."""
    core = importlib.import_module("test_no_grad")
    no_grad = wb.no_grad if our_no_grad == "wb.no_grad" else torch.no_grad
    x = torch.tensor(0.7, dtype=torch.float64)
    for name, make in core.NESTED.items():
        expected = make(torch.func.grad, torch.no_grad)
        ours = make(tg, no_grad)
        if name.startswith("third"):
            want, got = expected(x), ours(x)
        else:
            want, got = torch.func.grad(expected)(x), tg(ours)(x)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, msg=name)
    enable_grad = wb.enable_grad if our_no_grad == "wb.no_grad" else torch.enable_grad
    want = torch.func.grad(core.enable_grad_inside(torch.func.grad, torch.no_grad,
                                                   torch.enable_grad))(x)
    got = tg(core.enable_grad_inside(tg, no_grad, enable_grad))(x)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


# ----- constant and data operands in the rows -----
def _inputs_column(tape):
    from workbench.tape.view import rows

    return [r[2] for r in rows(tape)]


def test_rows_show_constant_operands_in_their_argument_position():
    tape = wb.tape.record(lambda x: 3.0 * x ** 2 - 1.0, 0.5)
    # pow(x, 2), mul(3, x^2), sub(3x^2, 1)
    assert [e.op for e in tape.entries] == ["input", "pow", "mul", "sub"]
    assert _inputs_column(tape) == ["(x)", "#0, 2", "3, #1", "#2, 1"]
    assert "3, #1" in str(tape) and "3, #1" in tape._repr_html_()


def test_rows_show_data_arrays_by_name_or_shape():
    X = np.ones((3, 5))
    tape = wb.tape.record(lambda w, X: np.sum(np.where(X @ w > 0, X @ w, 0.0)), np.ones(5), X)
    column = _inputs_column(tape)
    assert column[1] == "const(3x5), #0"  # unnamed data: its shape
    assert "mask(3)" in column[-2]  # the comparison's result is data too
    tape.name_data(X, "X")
    assert _inputs_column(tape)[1] == "X(3x5), #0"
    tape.name_data(np.ones((3, 5)), "other")  # equal values, another array: not X
    assert _inputs_column(tape)[1] == "X(3x5), #0"
