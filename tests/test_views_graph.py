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


def test_array_parameters_give_element_inputs():
    doc = wb.graph(lambda w: np.sum(w * w), np.array([1.0, 2.0, 3.0])).to_json()
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


def test_array_output_has_no_adjoints():
    doc = wb.graph(lambda x: x * 2.0, np.ones(2)).to_json()
    _validate(doc)
    assert len(doc["outputs"]) == 2 and "backward" not in doc
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
