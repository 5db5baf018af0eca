"""wb.graph: node and edge counts from first principles, adjoints against torch and finite
differences, backward steps, the JSON schema, truncation, and the escaped static drawing."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import central_difference, require

import workbench as wb
from workbench.views import graph_schema
from workbench.views.frames import frames
from workbench.views.layout import crossings, layered_layout

HOSTILE = '<img src=x onerror=alert(1)><script>alert(1)</script>'


def _validate(doc):
    jsonschema = require("jsonschema")
    jsonschema.validate(doc, graph_schema.SCHEMA)
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc


def _by_op(doc):
    ops: dict[str, int] = {}
    for n in doc["nodes"]:
        ops[n["op"]] = ops.get(n["op"], 0) + 1
    return ops


# ----- structure, counted by hand -----
def test_sin_x_times_x_is_input_sin_mul_with_three_edges():
    view = wb.graph(lambda x: np.sin(x) * x, 0.5)
    doc = view.to_json()
    _validate(doc)
    assert _by_op(doc) == {"input": 1, "sin": 1, "mul": 1}
    ids = {n["op"]: n["id"] for n in doc["nodes"]}
    pairs = sorted((e["source"], e["target"]) for e in doc["edges"])
    assert pairs == sorted([(ids["input"], ids["sin"]), (ids["input"], ids["mul"]),
                            (ids["sin"], ids["mul"])])
    assert doc["inputs"] == [ids["input"]] and doc["outputs"] == [ids["mul"]]
    assert repr(view) == "Graph of f: 3 nodes, 3 edges"
    assert doc["nodes"][0]["label"] == "x" and not doc["truncated"]


def test_shared_subexpressions_are_one_node():
    # sin(x) + sin(x): one sin node used twice by the add
    doc = wb.graph(lambda x: np.sin(x) + np.sin(x), 0.5).to_json()
    assert _by_op(doc) == {"input": 1, "sin": 1, "add": 1} and len(doc["edges"]) == 3


def test_constants_and_two_inputs():
    doc = wb.graph(lambda x, y: x * y + 3.0 * x, 2.0, 5.0).to_json()
    _validate(doc)
    assert _by_op(doc) == {"input": 2, "const": 1, "mul": 2, "add": 1}
    assert len(doc["edges"]) == 6  # two arguments for each of mul, mul, add
    const = next(n for n in doc["nodes"] if n["op"] == "const")
    assert const["label"] == "3" and const["value"] == 3.0 and const["adjoint"] is None
    labels = [n["label"] for n in doc["nodes"] if n["op"] == "input"]
    assert labels == ["x", "y"]


def test_array_parameters_give_element_inputs_at_element_level():
    doc = wb.graph(lambda w: np.sum(w * w), np.array([1.0, 2.0, 3.0]), level="elements").to_json()
    _validate(doc)
    assert [n["label"] for n in doc["nodes"] if n["op"] == "input"] == ["w_0", "w_1", "w_2"]
    assert _by_op(doc) == {"input": 3, "mul": 3, "add": 1}  # w_i * w_i, one sum
    assert len(doc["edges"]) == 3 * 2 + 3
    # d/dw_i sum(w^2) = 2 w_i
    assert [n["adjoint"] for n in doc["nodes"] if n["op"] == "input"] == [2.0, 4.0, 6.0]


def test_expressions_are_readable_and_capped():
    doc = wb.graph(lambda x, y: np.sin(x) * y, 0.5, 2.0).to_json()
    expressions = {n["op"]: n["expression"] for n in doc["nodes"]}
    assert expressions["sin"] == "sin(x)" and expressions["mul"] == "y*sin(x)"
    assert doc["title"] == "f(x, y) = y*sin(x)"

    def deep(x):
        for _ in range(30):
            x = np.sin(x) * x
        return x

    doc = wb.graph(deep, 0.5).to_json()
    out = next(n for n in doc["nodes"] if n["id"] == doc["outputs"][0])
    assert out["expression"] == "" and doc["title"] == "deep(x)"


@pytest.mark.parametrize("level, outputs", [("elements", 2), ("auto", 1)])
def test_array_output_has_no_adjoints(level, outputs):
    # element level: one output node per element; array level: one node of shape (2,)
    doc = wb.graph(lambda x: x * 2.0, np.ones(2), level=level).to_json()
    _validate(doc)
    assert len(doc["outputs"]) == outputs and "backward" not in doc
    assert all(n["adjoint"] is None for n in doc["nodes"])


def test_non_finite_values_are_strings():
    doc = wb.graph(np.log, 0.0).to_json()
    _validate(doc)
    assert [n["value"] for n in doc["nodes"]] == [0.0, "-inf"]
    assert doc["nodes"][0]["adjoint"] == "inf"  # d log(x)/dx = 1/x at 0


# ----- adjoints against torch, run live -----
TORCH_OPS = {
    "add": lambda t, *a: sum(a[1:], a[0]), "sub": lambda t, a, b: a - b,
    "mul": lambda t, a, b: a * b, "div": lambda t, a, b: a / b, "neg": lambda t, a: -a,
    "pow": lambda t, a, b: a ** b, "sin": lambda t, a: t.sin(a), "cos": lambda t, a: t.cos(a),
    "tanh": lambda t, a: t.tanh(a), "exp": lambda t, a: t.exp(a), "log": lambda t, a: t.log(a),
    "sqrt": lambda t, a: t.sqrt(a), "maximum": lambda t, a, b: t.maximum(a, b),
}


def _torch_adjoints_of_document(torch, doc):
    """Rebuild the document's graph in torch, node by node, and backprop from the output."""
    args: dict[int, list] = {}
    for e in doc["edges"]:
        args.setdefault(e["target"], []).append((e["argnum"], e["source"]))
    tensors = {}
    for n in doc["nodes"]:
        if n["op"] in ("input", "const"):
            t = torch.tensor(float(n["value"]), requires_grad=True)
        else:
            operands = [tensors[s] for _, s in sorted(args[n["id"]])]
            t = TORCH_OPS[n["op"]](torch, *operands)
            t.retain_grad()
        tensors[n["id"]] = t
    out = tensors[doc["outputs"][0]]
    out.retain_grad()
    out.backward()
    return {i: (None if t.grad is None else float(t.grad)) for i, t in tensors.items()}, out


# (numpy function, the same in torch, arguments)
FUNCTIONS = [
    (lambda x, y: np.tanh(x * y + 3.0 * x) / (1.0 + y ** 2),
     lambda t, x, y: t.tanh(x * y + 3.0 * x) / (1.0 + y ** 2), (0.5, 2.0)),
    (lambda x, y: np.exp(np.sin(x) * np.sin(x)) - y * np.log(x + y),
     lambda t, x, y: t.exp(t.sin(x) * t.sin(x)) - y * t.log(x + y), (0.7, 1.3)),
    (lambda x, y: x ** y + np.maximum(x, 0.0) * np.sqrt(y),
     lambda t, x, y: x ** y + t.clamp(x, min=0.0) * t.sqrt(y), (2.0, 3.0)),
]


@pytest.mark.parametrize("f, torch_f, args", FUNCTIONS)
def test_every_node_adjoint_matches_torch(torch, f, torch_f, args):
    doc = wb.graph(f, *args).to_json()
    _validate(doc)
    expected, out = _torch_adjoints_of_document(torch, doc)
    assert out.item() == pytest.approx(f(*args), rel=1e-12)
    # the inputs' adjoints are the gradient of the original function, by torch.autograd
    leaves = [torch.tensor(a, requires_grad=True) for a in args]
    grads = torch.autograd.grad(torch_f(torch, *leaves), leaves)
    inputs = [n for n in doc["nodes"] if n["op"] == "input"]
    assert [n["adjoint"] for n in inputs] == pytest.approx([float(g) for g in grads], rel=1e-12)
    # every other node's adjoint: torch's, on the same graph rebuilt in torch
    for n in doc["nodes"]:
        if n["op"] != "const":
            assert n["adjoint"] == pytest.approx(expected[n["id"]], rel=1e-12, abs=1e-15), n


def test_input_adjoints_match_central_differences():
    f = lambda x: np.sin(x) ** 3 / (1.0 + x * x)  # noqa: E731
    doc = wb.graph(f, 0.8).to_json()
    x = next(n for n in doc["nodes"] if n["op"] == "input")
    assert x["adjoint"] == pytest.approx(float(central_difference(f, 0.8)), rel=1e-7)


# ----- backward steps -----
@pytest.mark.parametrize("f, torch_f, args", FUNCTIONS)
def test_backward_contributions_sum_to_torch_adjoints(torch, f, torch_f, args):
    doc = wb.graph(f, *args).to_json()
    expected, _ = _torch_adjoints_of_document(torch, doc)
    steps = doc["backward"]
    assert steps[0]["node"] == doc["outputs"][0] and steps[0]["adjoint"] == 1.0
    sums: dict[int, float] = {doc["outputs"][0]: 1.0}
    running: dict[int, float] = {}
    processed = set()
    for step in steps:
        processed.add(step["node"])
        # a node's adjoint is final when it is processed: equal to the sum pushed into it so far
        assert step["adjoint"] == pytest.approx(sums[step["node"]], rel=1e-12)
        for c in step["contributions"]:
            assert c["to"] not in processed  # nothing flows into a finished node
            sums[c["to"]] = sums.get(c["to"], 0.0) + c["value"]
            # running totals are the partial sums, in order
            running[c["to"]] = running.get(c["to"], 0.0) + c["value"]
            assert c["total"] == pytest.approx(running[c["to"]], rel=1e-12, abs=1e-300)
    for node, total in sums.items():
        assert total == pytest.approx(expected[node], rel=1e-12, abs=1e-15)
    # a stepper over the graph document ends with torch's adjoint on every non-constant node
    last = frames(doc, {n["id"]: n["label"] for n in doc["nodes"]})[-1]
    for n in doc["nodes"]:
        if n["op"] != "const":
            assert last.adjoints[n["id"]] == pytest.approx(expected[n["id"]], rel=1e-12,
                                                           abs=1e-15)


# ----- truncation -----
def test_big_graphs_keep_the_nodes_nearest_the_output():
    def chain(x):
        for _ in range(2500):
            x = np.sin(x)
        return x

    doc = wb.graph(chain, 0.5).to_json()
    _validate(doc)
    assert doc["truncated"] and len(doc["nodes"]) == 2000
    assert "2,000 nodes nearest the output, of 2,501" in doc["title"]
    ids = [n["id"] for n in doc["nodes"]]
    assert doc["outputs"][0] in ids and doc["inputs"] == []  # x is 2,500 steps away
    kept = set(ids)
    assert all(e["source"] in kept and e["target"] in kept for e in doc["edges"])
    assert len(doc["edges"]) == 1999  # a chain
    assert "truncated" in repr(wb.graph(chain, 0.5, max_nodes=10))
    page = wb.graph(chain, 0.5)._repr_html_()
    assert "<svg" not in page and "too many to draw" in page and "sin 2,000" in page
    # the adjoint of the first kept sin: the product of cos over the rest of the chain
    values = [0.5]
    for _ in range(2500):
        values.append(np.sin(values[-1]))
    # the first kept node is sin number 501: its adjoint is the product of the later cosines
    first = doc["nodes"][0]
    assert first["value"] == pytest.approx(values[501], rel=1e-12)
    assert first["adjoint"] == pytest.approx(np.prod(np.cos(values[501:2500])), rel=1e-9)


# ----- the drawing -----
def test_html_is_a_static_escaped_svg():
    def f(x):
        return np.sin(x) * 2.0

    f.__name__ = HOSTILE
    view = wb.graph(f, 0.5)
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {graph_schema.MIME_TYPE, "text/html", "text/plain"}
    assert bundle[graph_schema.MIME_TYPE]["title"].startswith(HOSTILE)  # JSON keeps the text
    page = bundle["text/html"]
    assert "<svg" in page and "&lt;img src=x" in page and "&lt;script&gt;" in page
    assert not re.search(r"<\s*(img|script)", page, re.IGNORECASE)
    assert page.count('class="wb-node') == 4 and page.count('class="wb-edge"') == 3


def test_svg_shows_values_and_adjoints_with_the_formula_on_hover():
    svg = wb.graph(lambda x: np.sin(x) * x, 0.5).svg()
    assert "= 0.4794" in svg and "grad 0.9182" in svg and "<title>mul = x*sin(x)" in svg


def test_layout_points_edges_right_and_removes_crossings():
    nodes, edges = [0, 1, 2, 3, 4, 5], [(0, 3), (1, 2), (2, 4), (3, 5), (0, 4)]
    layout = layered_layout(nodes, edges, anchored={0, 1})
    assert all(layout.place[s][0] < layout.place[t][0] for s, t in edges)
    assert crossings(layout, edges) == 0
    # as given (ids in order) the first column's edges cross
    as_given = layered_layout(nodes, [], anchored=set(nodes))
    as_given.place.update({2: (1, 0), 3: (1, 1)})
    assert crossings(as_given, [(0, 3), (1, 2)]) == 1


# ----- bad input, imports -----
def test_bad_input_is_a_clear_error():
    with pytest.raises(wb.InputTypeError, match="expected a function"):
        wb.graph(3.0)
    with pytest.raises(wb.InputTypeError, match="max_nodes"):
        wb.graph(np.sin, 0.5, max_nodes=0)


def test_wb_graph_is_the_view_and_import_stays_light():
    from workbench import views

    assert wb.graph is views.graph and wb.backprop is views.backprop
    code = ("import sys, numpy as np, workbench as wb; wb.graph(np.sin, 0.5); "
            "wb.backprop(np.sin, 0.5)._repr_mimebundle_(); "
            "from workbench.graph import Graph; "
            "print(sorted(m for m in ('ipywidgets', 'matplotlib', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----- array level: one node per array op, with its shape -----
BATCH = 64


def _mlp(W1, b1, W2, b2, x, y, keep=lambda v: v):
    """A 784-128-10 relu MLP with softmax cross-entropy, written one array op per line; ``keep``
    records each intermediate when the test runs it on plain numpy (it is the identity when
    traced)."""
    a = keep(x @ W1)
    h = keep(a + b1)
    r = keep(np.maximum(h, 0.0))
    z = keep(r @ W2)
    z = keep(z + b2)
    m = keep(z.max(axis=1, keepdims=True))
    s = keep(z - m)
    e = keep(np.exp(s))
    t = keep(e.sum(axis=1, keepdims=True))
    lt = keep(np.log(t))
    logp = keep(s - lt)
    picked = keep(logp[np.arange(len(y)), y])
    total = keep(picked.sum())
    mean = keep(total / float(len(y)))
    return keep(-mean)


def _mlp_args(batch=BATCH, sizes=(784, 128, 10), seed=0):
    rng = np.random.default_rng(seed)
    n_in, n_hidden, n_out = sizes
    return (rng.normal(size=(n_in, n_hidden)) / np.sqrt(n_in), rng.normal(size=n_hidden) * 0.1,
            rng.normal(size=(n_hidden, n_out)) / np.sqrt(n_hidden), rng.normal(size=n_out) * 0.1,
            rng.normal(size=(batch, n_in)), rng.integers(0, n_out, size=batch))


def _intermediates(args):
    """Every intermediate of the MLP, computed by plain numpy, in the order it is computed."""
    seen = []

    def keep(v):
        seen.append(np.asarray(v))
        return v

    _mlp(*args, keep=keep)
    return seen


def _summary_numbers(text):
    return [float(v) for v in re.findall(r"(?:mean|min|max) (\S+?)(?:,|$)", text)]


def _torch_grads(torch, args):
    func = require("torch.func")

    def loss(W1, b1, W2, b2, x, y):
        z = torch.relu(x @ W1 + b1) @ W2 + b2
        return torch.nn.functional.cross_entropy(z, y)

    tensors = [torch.tensor(a) for a in args]
    return [g.numpy() for g in func.grad(loss, argnums=(0, 1, 2, 3, 4))(*tensors)]


def test_mlp_graph_has_one_node_per_array_op_with_numpy_shapes_and_values():
    args = _mlp_args()
    view = wb.graph(_mlp, *args)
    doc = view.to_json()
    _validate(doc)
    assert doc["level"] == "arrays" and len(doc["nodes"]) < 40
    assert all(isinstance(n["label"], str) and n["label"] for n in doc["nodes"])
    inputs = [n for n in doc["nodes"] if n["op"] == "input"]
    assert [n["label"] for n in inputs] == ["W1", "b1", "W2", "b2", "x"]  # y is integer data
    assert [n["shape"] for n in inputs] == [list(np.shape(a)) for a in args[:5]]
    assert doc["inputs"] == [n["id"] for n in inputs]
    # the ops, in the order they ran, against the intermediates numpy computes on its own
    ops = [n for n in doc["nodes"] if n["op"] not in ("input", "const")]
    expected = _intermediates(args)
    assert len(ops) == len(expected) == 15
    assert doc["outputs"] == [ops[-1]["id"]]
    for node, want in zip(ops, expected):
        assert node["shape"] == list(want.shape), node["label"]
        full = view.value(node["id"])
        np.testing.assert_allclose(full, want, rtol=1e-12, atol=1e-12)
        if want.size <= 100:  # small values are in the document itself
            np.testing.assert_allclose(np.asarray(node["value"], dtype=float), want, rtol=1e-12)
            assert "value_summary" not in node
        else:  # big ones are null, with their mean, min and max in words
            assert node["value"] is None
            assert _summary_numbers(node["value_summary"]) == pytest.approx(
                [want.mean(), want.min(), want.max()], rel=1e-3, abs=1e-12)
    labels = [n["label"] for n in ops]
    assert labels[0] == "x @ W1" and "maximum" in labels[2] and labels[3] == "· @ W2"
    assert "max(axis=1" in labels[5] and "sum(axis=1" in labels[8]
    assert labels[11].endswith("[arange(64), y]")
    assert doc["nodes"][ops[1]["id"]]["expression"] == "x @ W1 + b1"
    # a few kilobytes, whatever the batch (values past 100 elements are summarised)
    assert len(json.dumps(doc)) < 60_000


def test_mlp_adjoints_match_torch_func_grad(torch):
    args = _mlp_args()
    view = wb.graph(_mlp, *args)
    doc = view.to_json()
    grads = _torch_grads(torch, args)
    inputs = [n for n in doc["nodes"] if n["op"] == "input"]
    for node, want in zip(inputs, grads):
        np.testing.assert_allclose(view.adjoint(node["id"]), want, rtol=1e-9, atol=1e-12)
        if want.size <= 100:
            np.testing.assert_allclose(np.asarray(node["adjoint"], dtype=float), want, rtol=1e-9,
                                       atol=1e-12)
        else:
            assert node["adjoint"] is None and _summary_numbers(node["adjoint_summary"]) == \
                pytest.approx([want.mean(), want.min(), want.max()], rel=1e-3, abs=1e-9)
    out = next(n for n in doc["nodes"] if n["id"] == doc["outputs"][0])
    assert out["adjoint"] == 1.0 and out["shape"] == []


def test_small_mlp_document_has_every_adjoint_and_backward_step_in_full(torch):
    args = _mlp_args(batch=4, sizes=(3, 5, 2), seed=1)
    doc = wb.graph(_mlp, *args).to_json()
    _validate(doc)
    assert not any(k.endswith("_summary") for n in doc["nodes"] for k in n)
    grads = _torch_grads(torch, args)
    inputs = [n for n in doc["nodes"] if n["op"] == "input"]
    for node, want in zip(inputs, grads):
        np.testing.assert_allclose(np.asarray(node["adjoint"], dtype=float), want, rtol=1e-9,
                                   atol=1e-12)
    # the backward pass in a few array steps: one per op and input, each final when processed
    steps = doc["backward"]
    active = [n for n in doc["nodes"] if n["op"] != "const"]
    assert len(steps) == len(active) and steps[0]["node"] == doc["outputs"][0]
    adjoint = {n["id"]: np.asarray(n["adjoint"], dtype=float) for n in active}
    sums: dict[int, np.ndarray] = {doc["outputs"][0]: np.asarray(1.0)}
    done = set()
    for step in steps:
        done.add(step["node"])
        np.testing.assert_allclose(np.asarray(step["adjoint"], dtype=float), sums[step["node"]],
                                   rtol=1e-12, atol=1e-15)
        for c in step["contributions"]:
            assert c["to"] not in done
            sums[c["to"]] = sums.get(c["to"], 0.0) + np.asarray(c["value"], dtype=float)
            np.testing.assert_allclose(np.asarray(c["total"], dtype=float), sums[c["to"]],
                                       rtol=1e-12, atol=1e-15)
    for node, total in sums.items():
        np.testing.assert_allclose(total, adjoint[node], rtol=1e-12, atol=1e-15)
    last = frames(doc, {n["id"]: n["label"] for n in doc["nodes"]})[-1]
    for n in active:
        np.testing.assert_allclose(np.asarray(last.adjoints[n["id"]], dtype=float),
                                   adjoint[n["id"]], rtol=1e-12, atol=1e-15)


def test_big_backward_steps_are_summarised_and_validate():
    doc = wb.graph(_mlp, *_mlp_args()).to_json()
    steps = doc["backward"]
    assert len(steps) == len([n for n in doc["nodes"] if n["op"] != "const"])
    matmul = next(s for s in steps if s["node"] == next(
        n["id"] for n in doc["nodes"] if n["label"] == "x @ W1"))
    to_w1 = next(c for c in matmul["contributions"] if c["argnum"] == 1)
    assert to_w1["value"] is None and to_w1["total"] is None  # 784 x 128
    assert _summary_numbers(to_w1["total_summary"]) and matmul["adjoint"] is None


def test_array_graph_svg_shows_shapes_and_escapes_labels():
    def f(x, W):
        return np.sum(np.tanh(x @ W))

    f.__name__ = HOSTILE
    view = wb.graph(f, np.ones((64, 3)), np.full((3, 128), 0.1))
    page = view._repr_html_()
    assert "64×128" in page and "3×128" in page and ">scalar<" in page
    assert "x @ W" in page and "mean 0.2913" in page  # tanh(0.3) everywhere
    assert not re.search(r"<\s*(img|script)", page, re.IGNORECASE)
    assert page.count('class="wb-node') == 5
    # the element graph of a scalar function draws no shape line
    assert "scalar" not in wb.graph(np.sin, 0.5).svg()


def test_functions_the_array_level_cannot_trace_keep_the_element_graph():
    x = np.array([0.5, 1.5, 2.0])
    def f(x):  # a write into an array: element level only
        y = x.copy()
        y[1] = y[1] * x[0] * x[2]
        return (y * y).sum()

    doc = wb.graph(f, x).to_json()
    _validate(doc)
    assert "level" not in doc
    assert [n["label"] for n in doc["nodes"] if n["op"] == "input"] == ["x_0", "x_1", "x_2"]
    # f = x_0^2 + x_1^2 x_0^2 x_2^2 + x_2^2
    p2 = (x[0] * x[1] * x[2]) ** 2
    expected = [2 * x[0] + 2 * p2 / x[0], 2 * p2 / x[1], 2 * x[2] + 2 * p2 / x[2]]
    assert [n["adjoint"] for n in doc["nodes"] if n["op"] == "input"] == pytest.approx(expected)
    with pytest.raises(wb.UnsupportedOperationError, match="level='arrays'"):
        wb.graph(f, x, level="arrays")
    with pytest.raises(wb.InputTypeError, match="level must be one of"):
        wb.graph(np.sin, 0.5, level="array")
    # scalars stay at element level, and level="arrays" draws them as 0-d arrays
    assert "level" not in wb.graph(lambda x: np.sin(x) * x, 0.5).to_json()
    doc = wb.graph(lambda x: np.sin(x) * x, 0.5, level="arrays").to_json()
    assert doc["level"] == "arrays" and doc["nodes"][0]["adjoint"] == pytest.approx(
        np.sin(0.5) + 0.5 * np.cos(0.5), rel=1e-12)
