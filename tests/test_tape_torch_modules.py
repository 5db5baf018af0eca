"""The numeric tape on torch modules: ``torch.func.functional_call(model, params, (x,))`` under
``wb.tape.grad``, ``wb.check`` and ``wb.backprop``. Every expected gradient is torch.func.grad's,
run live on the same function."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import require

import workbench as wb
from workbench.errors import ShapeError, UnsupportedOperationError

TOLERANCES = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 1e-4, "atol": 1e-6}}


def _assert_close_tree(torch, got, expected, dtype):
    """Same pytree structure, torch tensors of the leaf dtype, values close to torch's."""
    if isinstance(expected, (tuple, list)):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for g, e in zip(got, expected):
            _assert_close_tree(torch, g, e, dtype)
        return
    if isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected)
        for key in expected:
            _assert_close_tree(torch, got[key], expected[key], dtype)
        return
    assert type(got) is torch.Tensor  # a plain tensor, not the tape's wrapper
    assert got.dtype == expected.dtype == dtype
    torch.testing.assert_close(got, expected, **TOLERANCES[str(dtype).removeprefix("torch.")])


# ----- models: (name, build(torch) -> model, input shape, target kind, loss) -----
def _mlp(torch):
    nn = torch.nn
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _tanh_mlp(torch):
    nn = torch.nn
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3), nn.Sigmoid())


def _cnn(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv1d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 7, 4))


def _strided_cnn(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv1d(2, 4, 3, stride=2, padding=2, dilation=2), nn.Tanh(),
                         nn.Conv1d(4, 3, 2, padding="same", bias=False), nn.Flatten(),
                         nn.Linear(3 * 4, 3))


MODELS = [
    ("Linear, MSELoss", lambda torch: torch.nn.Linear(4, 3), (5, 4), "values", "mse"),
    ("MLP, CrossEntropyLoss", _mlp, (5, 4), "classes", "cross_entropy"),
    ("Tanh MLP, probability targets", _tanh_mlp, (5, 4), "probabilities", "cross_entropy"),
    ("Conv1d, MSELoss", lambda torch: torch.nn.Conv1d(2, 3, 3), (5, 2, 7), "values", "mse"),
    ("1-D CNN, CrossEntropyLoss", _cnn, (5, 2, 7), "classes", "cross_entropy"),
    ("strided, dilated, 'same' CNN", _strided_cnn, (5, 2, 7), "classes", "cross_entropy"),
]


def _problem(torch, build, x_shape, targets, loss_kind, dtype):
    """The model, its parameters, an input, targets and ``loss(params, x, y)``."""
    torch.manual_seed(0)
    model = build(torch).to(dtype)
    params = {k: v.detach() for k, v in model.named_parameters()}
    x = torch.randn(*x_shape, dtype=dtype)
    out_shape = model(x).shape
    if targets == "classes":
        y = torch.randint(0, out_shape[1], out_shape[:1])
    elif targets == "probabilities":
        y = torch.softmax(torch.randn(*out_shape, dtype=dtype), dim=1)
    else:
        y = torch.randn(*out_shape, dtype=dtype)
    criterion = torch.nn.MSELoss() if loss_kind == "mse" else torch.nn.CrossEntropyLoss()

    def loss(p, x, y):
        return criterion(torch.func.functional_call(model, p, (x,)), y)

    return model, params, x, y, loss


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, build, x_shape, targets, loss_kind", MODELS,
                         ids=[m[0] for m in MODELS])
def test_tape_gradients_of_modules_match_torch(torch, name, build, x_shape, targets, loss_kind,
                                               dtype):
    dtype = getattr(torch, dtype)
    _, params, x, y, loss = _problem(torch, build, x_shape, targets, loss_kind, dtype)
    for argnums in (0, (0, 1), 1):
        got = wb.tape.grad(loss, argnums=argnums)(params, x, y)
        expected = torch.func.grad(loss, argnums=argnums)(params, x, y)
        _assert_close_tree(torch, got, expected, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, build, x_shape, targets, loss_kind", MODELS,
                         ids=[m[0] for m in MODELS])
def test_check_passes_on_modules_with_the_tape_as_a_witness(torch, name, build, x_shape,
                                                             targets, loss_kind, dtype):
    _, params, x, y, loss = _problem(torch, build, x_shape, targets, loss_kind,
                                     getattr(torch, dtype))
    report = wb.check(loss, params, x, y)
    assert report.passed, str(report)
    assert report.reference == "symbolic"  # so the tape has a row of its own
    assert not [n for n in report.notes if "tape failed" in n]
    tape_rows = [m for i in report.inputs for m in i.methods if m.method == "tape"]
    assert len(tape_rows) == len(params)
    assert all(m.status == "pass" for m in tape_rows), str(report)


def test_the_value_and_the_gradient_of_a_module_loss(torch):
    _, params, x, y, loss = _problem(torch, _mlp, (5, 4), "classes", "cross_entropy",
                                     torch.float64)
    (g, value) = wb.tape.grad_and_value(loss)(params, x, y)
    assert float(value) == pytest.approx(float(loss(params, x, y)), rel=1e-12)
    _assert_close_tree(torch, g, torch.func.grad(loss)(params, x, y), torch.float64)


def test_nested_tape_gradients_through_a_module(torch):
    """A gradient penalty: d/dp |d loss/dx|^2, the tape inside the tape against torch in torch."""
    _, params, x, y, loss = _problem(torch, _tanh_mlp, (5, 4), "probabilities",
                                     "cross_entropy", torch.float64)

    def penalty(grad):
        def f(p, x, y):
            return (grad(loss, argnums=1)(p, x, y) ** 2).sum()
        return f

    got = wb.tape.grad(penalty(wb.tape.grad))(params, x, y)
    expected = torch.func.grad(penalty(torch.func.grad))(params, x, y)
    _assert_close_tree(torch, got, expected, torch.float64)
    got = wb.tape.grad(penalty(wb.tape.grad), argnums=1)(params, x, y)
    expected = torch.func.grad(penalty(torch.func.grad), argnums=1)(params, x, y)
    _assert_close_tree(torch, got, expected, torch.float64)


def test_backprop_of_a_module_has_backward_steps_and_torchs_gradients(torch):
    _, params, x, y, loss = _problem(torch, _cnn, (5, 2, 7), "classes", "cross_entropy",
                                     torch.float64)
    doc = wb.backprop(loss, params, x, y).to_json()
    require("jsonschema").validate(doc, wb.tape.SCHEMA)
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc
    steps = doc["backward"]
    assert steps and steps[0]["node"] == doc["output"] and steps[0]["adjoint"] == 1.0
    expected = torch.func.grad(loss)(params, x, y)
    nodes = {n["id"]: n for n in doc["nodes"]}
    for node_id, key in zip(doc["inputs"], expected):
        assert nodes[node_id]["label"] == f"p[{key!r}]"
        np.testing.assert_allclose(nodes[node_id]["adjoint"], expected[key].numpy(),
                                   rtol=1e-10, atol=1e-12)


# ----- torch.nn.functional, option by option -----
def _functional_cases(torch):
    F = torch.nn.functional
    torch.manual_seed(1)
    logits = torch.randn(4, 5)
    probs = torch.softmax(torch.randn(4, 5), dim=1)
    classes = torch.tensor([0, 4, 1, 1])
    ignored = torch.tensor([0, -100, 3, 1])
    weight = torch.rand(5) + 0.5
    signal = torch.randn(2, 3, 9)
    cases = []
    for reduction in ("mean", "sum", "none"):
        cases += [
            (f"cross_entropy classes {reduction}",
             lambda z, r=reduction: F.cross_entropy(z, classes, reduction=r).sum(), (logits,)),
            (f"cross_entropy probabilities {reduction}",
             lambda z, t, r=reduction: F.cross_entropy(z, t, reduction=r).sum(), (logits, probs)),
            (f"cross_entropy weight, ignore_index, smoothing {reduction}",
             lambda z, r=reduction: F.cross_entropy(z, ignored, weight=weight, reduction=r,
                                                    label_smoothing=0.2).sum(), (logits,)),
            (f"cross_entropy probabilities, weight, smoothing {reduction}",
             lambda z, t, r=reduction: F.cross_entropy(z, t, weight=weight, reduction=r,
                                                       label_smoothing=0.1).sum(),
             (logits, probs)),
            (f"nll_loss weight, ignore_index {reduction}",
             lambda z, r=reduction: F.nll_loss(F.log_softmax(z, dim=1), ignored, weight=weight,
                                               reduction=r).sum(), (logits,)),
            (f"mse_loss {reduction}", lambda z, t, r=reduction: F.mse_loss(z, t, reduction=r).sum(),
             (logits, probs)),
        ]
    cases += [
        ("cross_entropy of one sample", lambda z: F.cross_entropy(z, torch.tensor(2)),
         (logits[0],)),
        ("cross_entropy over extra dims", lambda z: F.cross_entropy(
            z, torch.tensor([[0, 1, 2], [2, 2, 0]])), (torch.randn(2, 3, 3),)),
        ("cross_entropy over extra dims, weight, ignore_index, smoothing",
         lambda z: F.cross_entropy(z, torch.tensor([[0, 7, 2], [2, 2, 0]]), ignore_index=7,
                                   weight=weight[:3], label_smoothing=0.3),
         (torch.randn(2, 3, 3),)),
        ("cross_entropy probabilities over extra dims, weight", lambda z, t: F.cross_entropy(
            z, t, weight=weight[:3]), (torch.randn(2, 3, 4), torch.rand(2, 3, 4))),
        ("unbatched conv1d", lambda s, w: (F.conv1d(s, w, padding=1) ** 2).sum(),
         (signal[0], torch.randn(4, 3, 2))),
        ("linear without bias, leaky_relu", lambda z, w: F.leaky_relu(F.linear(z, w), 0.1).sum(),
         (logits, torch.randn(3, 5))),
        ("eval-mode dropout, log_softmax", lambda z: (F.dropout(z, 0.5, training=False)
                                                      * F.log_softmax(z, dim=1)).sum(), (logits,)),
    ]
    for options in ({"stride": 2}, {"padding": 2}, {"padding": "same", "dilation": 2},
                    {"padding": "valid", "stride": 3, "dilation": 2},
                    {"padding": (1,), "stride": (2,), "dilation": (1,)}):
        for k in (1, 3, 4):
            cases.append((f"conv1d k={k} {options}",
                          lambda s, w, b, o=options: (F.conv1d(s, w, b, **o) ** 2).sum(),
                          (signal, torch.randn(4, 3, k), torch.randn(4))))
    return cases


def test_functional_options_match_torch(torch):
    for name, f, args in _functional_cases(torch):
        argnums = tuple(range(len(args)))
        got = wb.tape.grad(f, argnums=argnums)(*args)
        expected = torch.func.grad(f, argnums=argnums)(*args)
        try:
            _assert_close_tree(torch, got, expected, torch.float64)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from None


# ----- what the tape does not run says so -----
def _module_loss(torch, *layers):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), *layers)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, x, y):
        return torch.nn.functional.cross_entropy(torch.func.functional_call(model, p, (x,)), y)

    return model, loss, params, torch.randn(5, 4), torch.tensor([0, 2, 1, 1, 0])


@pytest.mark.parametrize("layer, match", [
    ("BatchNorm1d(3)", r"torch\.nn\.functional\.batch_norm is not supported .* Linear, Conv1d"),
    ("LayerNorm(3)", r"torch\.nn\.functional\.layer_norm is not supported"),
    ("Dropout(0.2)", r"dropout with training=True .* model\.eval\(\)"),
    ("ReLU(inplace=True)", r"relu with inplace=True"),
])
def test_unsupported_layers_give_a_clear_error(torch, layer, match):
    _, loss, params, x, y = _module_loss(torch, eval(f"torch.nn.{layer}"))
    with pytest.raises(UnsupportedOperationError, match=match):
        wb.tape.grad(loss)(params, x, y)


def test_dropout_in_eval_mode_is_the_identity(torch):
    model, loss, params, x, y = _module_loss(torch, torch.nn.Dropout(0.2))
    model.eval()
    _assert_close_tree(torch, wb.tape.grad(loss)(params, x, y),
                       torch.func.grad(loss)(params, x, y), torch.float64)


@pytest.mark.parametrize("call, error, match", [
    ("F.conv1d(x, w, groups=3)", UnsupportedOperationError, r"groups=3 .* groups=1"),
    ("F.conv1d(x, w, stride=2, padding='same')", UnsupportedOperationError, "padding='same'"),
    ("F.conv1d(x, w[:, :2])", ShapeError, "3 channels, the weight expects 2"),
    ("F.cross_entropy(x[:, :, 0], torch.tensor([0, 1]))", ShapeError, r"shape \(4,\)"),
    ("F.cross_entropy(x[:, :, 0], torch.tensor([0, 1, 2, 7]))", ShapeError, r"\[0, 3\)"),
    ("x.add_(1.0)", UnsupportedOperationError, r"in-place Tensor\.add_ .* x\.add\("),
    ("x.norm(p=1)", UnsupportedOperationError, r"x\.abs\(\)\.sum\(\)"),
])
def test_bad_calls_on_tape_tensors_say_what_to_do(torch, call, error, match):
    names = {"F": torch.nn.functional, "torch": torch, "w": torch.randn(3, 3, 2)}

    def f(x):
        return eval(call, {**names, "x": x}).sum()

    with pytest.raises(error, match=match):
        wb.tape.grad(f)(torch.randn(4, 3, 6))


def test_tensor_code_on_tape_tensors_keeps_torchs_meaning(torch):
    """Operators with constants on either side, comparisons, iteration and metadata."""
    c = torch.tensor([1.0, 3.0, -2.0])

    def f(x):
        assert x.shape == (3,) and x.dim() == 1 and x.size(0) == 3 and x.dtype == torch.float64
        rows = list(x)  # unbind
        mask = x > 0
        return (2 / x + c * x - c @ x + torch.where(mask, x, c) + (c - x) ** 2).sum() \
            + rows[0] * rows[2] + x.norm() + torch.cat([x, c]).flatten(0).max()

    x = torch.tensor([0.5, 2.0, 1.5])
    _assert_close_tree(torch, wb.tape.grad(f)(x), torch.func.grad(f)(x), torch.float64)


def test_aux_tensors_come_back_as_tensors(torch):
    model, params, x, y, _ = _problem(torch, _mlp, (5, 4), "classes", "cross_entropy",
                                      torch.float64)

    def with_logits(p, x, y):
        logits = torch.func.functional_call(model, p, (x,))
        return torch.nn.functional.cross_entropy(logits, y), {"logits": logits}

    g, aux = wb.tape.grad(with_logits, has_aux=True)(params, x, y)
    g_expected, aux_expected = torch.func.grad(with_logits, has_aux=True)(params, x, y)
    _assert_close_tree(torch, g, g_expected, torch.float64)
    _assert_close_tree(torch, aux, aux_expected, torch.float64)


def test_tensor_methods_keep_torchs_meaning_in_nested_closures(torch):
    """An inner tape over a float whose values meet an outer tape tensor runs torch code: its
    x.transpose(0, 1) swaps and x.var() is unbiased, as in torch."""
    m = torch.tensor([[1.0, 2.0, 0.5], [3.0, -1.0, 2.0]])

    def outer(w, grad):
        def inner(s):
            z = (w * s).transpose(0, 1)  # (3, 2)
            return (z[:, 0] * torch.tensor([1.0, 2.0, 3.0])).sum() + z.var()
        return grad(inner)(0.5) if grad is wb.tape.grad else grad(inner)(torch.tensor(0.5))

    got = wb.tape.grad(outer)(m, wb.tape.grad)
    expected = torch.func.grad(outer)(m, torch.func.grad)
    _assert_close_tree(torch, got, expected, torch.float64)
