"""JupyterLab in Chromium: the workbench renderer, the explorer widget and the launcher card.

Every test opens a notebook that it wrote, runs it in a real kernel and checks what the page shows.
Expected counts come from the documents the test sends (or from the tape run live in the test
process), and expected adjoints from calculus. Screenshots land in tests/browser/artifacts/.
"""

from __future__ import annotations

import json
import math
import re
import time

import numpy as np
import pytest

from tests.browser.helpers import (
    ARTIFACTS,
    GRAPH_MIME,
    TAPE_MIME,
    open_and_run,
    run_all,
    wait_for_kernel,
)

pytestmark = pytest.mark.browser

IMPORTS = "import numpy as np\nimport workbench as wb\nfrom IPython.display import display"


def display_cell(mime: str, doc: dict) -> str:
    """A cell that sends `doc` to the front-end under `mime`, and nothing else."""
    return f"import json\ndisplay({{{mime!r}: json.loads({json.dumps(doc)!r})}}, raw=True)"


def views(page) -> list:
    return page.locator(".jp-OutputArea-output .wb-graph-view").all()


def sin_times_x_steps(x: float) -> dict:
    """The tape document of sin(x)*x with its backward steps, worked out by hand."""
    s, c = math.sin(x), math.cos(x)
    node = {"shape": [], "dtype": "float64", "params": {}, "truncated": False}
    return {
        "schema": "workbench.tape", "version": 1,
        "nodes": [{**node, "id": 0, "op": "input", "label": "x", "value": x, "adjoint": s + x * c},
                  {**node, "id": 1, "op": "sin", "label": "", "value": s, "adjoint": x},
                  {**node, "id": 2, "op": "mul", "label": "", "value": s * x, "adjoint": 1.0}],
        "edges": [{"source": 0, "target": 1, "argnum": 0}, {"source": 1, "target": 2, "argnum": 0},
                  {"source": 0, "target": 2, "argnum": 1}],
        "inputs": [0], "output": 2,
        "backward": [
            {"node": 2, "adjoint": 1.0, "contributions": [
                {"to": 1, "argnum": 0, "value": x, "total": x},
                {"to": 0, "argnum": 1, "value": s, "total": s}]},
            {"node": 1, "adjoint": x, "contributions": [
                {"to": 0, "argnum": 0, "value": x * c, "total": s + x * c}]},
            {"node": 0, "adjoint": s + x * c, "contributions": []}],
    }


def shown(x: float) -> str:
    """The renderer's short form of a number (4 significant digits)."""
    return f"ā {float(f'{x:.4g}'):g}"


def test_tape_documents_render_with_their_nodes_and_edges(page, lab) -> None:
    import workbench as wb

    arrays = np.array([0.1, 0.2, 0.3])
    expected = wb.tape.record(lambda x: np.sum(np.tanh(x) * x), arrays).to_json()
    open_and_run(page, lab, "tape.ipynb", [
        IMPORTS,
        "wb.tape.record(lambda x: np.sin(x) * x, 0.5)",
        "wb.tape.record(lambda x: np.sum(np.tanh(x) * x), np.array([0.1, 0.2, 0.3]))",
    ])
    page.wait_for_selector(".wb-graph-view g.wb-node")
    first, second = views(page)
    # sin(x)*x: x, sin, mul; x feeds sin and mul, sin feeds mul
    assert first.locator("g.wb-node[data-node-id]").count() == 3
    assert first.locator("path.wb-edge").count() == 3
    assert first.locator(".wb-node-label").all_text_contents() == ["x", "sin", "mul"]
    assert second.locator("g.wb-node").count() == len(expected["nodes"])
    assert second.locator("path.wb-edge").count() == len(expected["edges"])
    assert second.locator(".wb-node-label", has_text="[3]").count() >= 2  # array nodes show their shape
    # Without backward steps the final adjoints show: d(sin(x)*x)/dx = sin(x) + x cos(x)
    adjoint_x = first.locator('g.wb-node[data-node-id="0"] .wb-node-adjoint').text_content()
    assert adjoint_x == shown(math.sin(0.5) + 0.5 * math.cos(0.5))
    # Hover: the tooltip names op, value and adjoint
    first.locator('g.wb-node[data-node-id="1"]').hover()
    tooltip = first.locator(".wb-tooltip")
    tooltip.wait_for(state="visible")
    text = tooltip.text_content()
    assert "sin" in text and f"{math.sin(0.5):.4g}" in text and "adjoint" in text
    # Zoom with the wheel and pan by dragging rewrite the viewport transform
    viewport = first.locator("g.wb-viewport")
    before = viewport.get_attribute("transform")
    first.locator("svg.wb-surface").hover()
    page.mouse.wheel(0, -300)
    zoomed = viewport.get_attribute("transform")
    assert zoomed != before
    box = first.locator("svg.wb-surface").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 80, box["y"] + 50)
    page.mouse.up()
    assert viewport.get_attribute("transform") != zoomed
    assert not page.problems


def test_stepping_the_backward_pass_moves_the_highlight_and_the_adjoints(page, lab) -> None:
    doc = sin_times_x_steps(0.5)
    open_and_run(page, lab, "steps.ipynb", [
        IMPORTS, display_cell(TAPE_MIME, doc)])
    view = page.locator(".wb-graph-view").first
    view.locator("g.wb-node").first.wait_for()
    active = view.locator("g.wb-node.wb-active")
    adjoint_x = view.locator('g.wb-node[data-node-id="0"] .wb-node-adjoint')
    assert active.get_attribute("data-node-id") == "2"  # step 1 processes the output
    assert view.locator(".wb-step-label").text_content() == "step 1 of 3"
    assert adjoint_x.text_content() == shown(math.sin(0.5))  # only the direct path so far
    assert view.locator(".wb-step-detail").text_content().startswith("mul (ā = 1) sends 0.5 to sin")
    view.locator(".wb-step-next").click()
    assert active.get_attribute("data-node-id") == "1"
    assert view.locator(".wb-step-label").text_content() == "step 2 of 3"
    assert adjoint_x.text_content() == shown(math.sin(0.5) + 0.5 * math.cos(0.5))
    view.locator(".wb-step-next").click()
    assert active.get_attribute("data-node-id") == "0"
    assert view.locator(".wb-step-next").is_disabled()


def test_backprop_and_graph_views_render_and_step(page, lab) -> None:
    import workbench as wb

    graph_doc = wb.graph(lambda x: np.sin(x) * x, 0.5).to_json()
    tape_doc = wb.backprop(lambda x: np.sin(x) * x, 0.5).to_json()
    open_and_run(page, lab, "views.ipynb", [
        IMPORTS, "wb.graph(lambda x: np.sin(x) * x, 0.5)", "wb.backprop(lambda x: np.sin(x) * x, 0.5)"])
    page.wait_for_selector(".wb-graph-view g.wb-node")
    graph, tape = views(page)
    assert graph.locator("g.wb-node").count() == len(graph_doc["nodes"])
    assert graph.locator("path.wb-edge").count() == len(graph_doc["edges"])
    assert tape.locator("g.wb-node").count() == len(tape_doc["nodes"])
    steps = len(tape_doc["backward"])
    assert tape.locator(".wb-step-label").text_content() == f"step 1 of {steps}"
    first_active = tape.locator("g.wb-node.wb-active").get_attribute("data-node-id")
    before = tape.locator(".wb-node-adjoint").all_text_contents()
    for _ in range(steps - 1):
        tape.locator(".wb-step-next").click()
    assert tape.locator("g.wb-node.wb-active").get_attribute("data-node-id") != first_active
    assert tape.locator(".wb-node-adjoint").all_text_contents() != before
    # after the last step the input's adjoint is the derivative sin(x) + x cos(x)
    input_id = tape_doc["inputs"][0]
    assert tape.locator(f'g.wb-node[data-node-id="{input_id}"] .wb-node-adjoint').text_content() == \
        shown(math.sin(0.5) + 0.5 * math.cos(0.5))


HOSTILE_IMG = '<img src=x onerror="window.__wbHacked = 1; alert(1)">'
HOSTILE_SCRIPT = "<script>window.__wbHacked = 2; alert(2)</script>"


def test_hostile_labels_create_no_element_and_run_no_script(page, lab) -> None:
    node = {"shape": [], "value": 1.0, "adjoint": 1.0}
    graph = {"schema": "workbench.graph", "version": 1, "title": HOSTILE_SCRIPT,
             "nodes": [{**node, "id": 0, "op": "input", "label": HOSTILE_IMG, "expression": HOSTILE_SCRIPT},
                       {**node, "id": 1, "op": HOSTILE_SCRIPT, "label": HOSTILE_SCRIPT,
                        "expression": HOSTILE_IMG}],
             "edges": [{"source": 0, "target": 1, "argnum": 0}], "inputs": [0], "outputs": [1],
             "truncated": False}
    tape = {"schema": "workbench.tape", "version": 1, "inputs": [0], "output": 1,
            "nodes": [{**node, "id": 0, "op": HOSTILE_IMG, "label": "", "dtype": HOSTILE_SCRIPT,
                       "params": {}, "truncated": False},
                      {**node, "id": 1, "op": "sin", "label": HOSTILE_IMG, "dtype": "float64",
                       "params": {}, "truncated": False}],
            "edges": [{"source": 0, "target": 1, "argnum": 0}]}
    open_and_run(page, lab, "hostile.ipynb", [
        IMPORTS,
        display_cell(GRAPH_MIME, graph),
        display_cell(TAPE_MIME, tape)])
    page.wait_for_selector(".wb-graph-view g.wb-node")
    assert len(views(page)) == 2
    tooltips = []
    for view in views(page):
        view.locator("g.wb-node").first.hover()  # the tooltip shows label, op and expression in full
        tooltips.append(view.locator(".wb-tooltip").text_content())
        assert view.locator("img, script, [onerror]").count() == 0
    assert HOSTILE_IMG in tooltips[0] and HOSTILE_SCRIPT in tooltips[0]  # shown, as text
    labels = page.locator(".wb-node-label").all_text_contents()  # long labels are cut with "…"
    assert labels[0].startswith(HOSTILE_IMG[:20]) and labels[1].startswith(HOSTILE_SCRIPT[:20])
    assert page.locator(".wb-title").first.text_content() == HOSTILE_SCRIPT
    page.wait_for_timeout(500)  # a broken image's onerror would have fired by now
    assert page.locator('img[src="x"]').count() == 0
    assert page.evaluate("window.__wbHacked") is None
    assert not page.problems  # no alert dialog, no page error


def big_graph_cell(terms: int) -> str:
    """A cell that displays the graph of sum_i sin(x_i) * w_i: inputs x_i, w_i, then sin, mul, add."""
    return f"""
nodes, edges = [], []
def node(op, label=""):
    nodes.append({{"id": len(nodes), "op": op, "label": label or op, "expression": "", "shape": [],
                  "value": 0.0, "adjoint": 1.0}})
    return len(nodes) - 1
acc = None
for i in range({terms}):
    x, w = node("input", f"x{{i}}"), node("input", f"w{{i}}")
    s = node("sin"); edges.append({{"source": x, "target": s, "argnum": 0}})
    m = node("mul")
    edges += [{{"source": s, "target": m, "argnum": 0}}, {{"source": w, "target": m, "argnum": 1}}]
    if acc is not None:
        a = node("add")
        edges += [{{"source": acc, "target": a, "argnum": 0}}, {{"source": m, "target": a, "argnum": 1}}]
        m = a
    acc = m
doc = {{"schema": "workbench.graph", "version": 1, "title": "{terms} terms", "nodes": nodes, "edges": edges,
       "inputs": [n["id"] for n in nodes if n["op"] == "input"], "outputs": [acc], "truncated": False}}
display({{{GRAPH_MIME!r}: doc}}, raw=True)
"""


def insert_cell(page, index: int, source: str) -> None:
    page.evaluate("([i, source]) => window.jupyterapp.shell.currentWidget.content.model.sharedModel"
                  ".insertCell(i, {cell_type: 'code', source})", [index, source])


def test_big_graph_render_time_and_summary(page, lab) -> None:
    terms = 300  # x, w, sin, mul and an add per term (no add for the first): 1499 nodes, drawn in full
    open_and_run(page, lab, "big.ipynb", [IMPORTS])
    page.evaluate("window.__wbStart = performance.now()")
    wall = time.perf_counter()
    insert_cell(page, 1, big_graph_cell(terms))
    run_all(page)
    view = page.locator(".wb-graph-view").first
    view.locator("g.wb-node").first.wait_for()
    wall = time.perf_counter() - wall
    assert view.locator("g.wb-node").count() == 5 * terms - 1
    assert view.locator("path.wb-edge").count() == 5 * terms - 2
    render_ms = float(view.get_attribute("data-render-ms"))
    # the page still answers: the stepper-less view can be zoomed right away
    started = time.perf_counter()
    view.locator(".wb-zoom-in").click()
    click_ms = (time.perf_counter() - started) * 1000
    report = (f"{5 * terms - 1}-node graph: renderer {render_ms:.0f} ms (layout + DOM, in the browser); "
              f"cell run to nodes on screen {wall:.2f} s; zoom click answered in {click_ms:.0f} ms")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "render_time.txt").write_text(report + "\n")
    print("\n" + report)

    # Past the limit (1500 nodes) a summary is drawn, with a note saying how many are hidden.
    insert_cell(page, 2, big_graph_cell(600))
    run_all(page)
    summary = page.locator(".wb-graph-view").nth(1)
    summary.locator("g.wb-node").first.wait_for()
    total = 5 * 600 - 1
    drawn = summary.locator("g.wb-node").count()
    assert drawn < 1500
    assert summary.locator(".wb-hidden-note").text_content().startswith(f"{total - drawn} nodes hidden")
    print(f"{total}-node graph summarised to {drawn} nodes in {summary.get_attribute('data-render-ms')} ms")


EXPLORER_STATE = """(root) => {
  const readouts = new Set(root.querySelectorAll('.widget-readout, .widget-slider, .widget-hslider'));
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const texts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (![...readouts].some(r => r.contains(n))) texts.push(n.textContent);
  }
  const pixels = c => { try { return c.toDataURL(); } catch (e) { return ''; } };
  const inked = c => { try {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] > 0 && (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200)) return true;
      }
    } catch (e) { /* not a 2d canvas */ }
    return false; };
  const plots = [...root.querySelectorAll('canvas')].map(pixels)
    .concat([...root.querySelectorAll('img')].map(i => i.src))
    .concat([...root.querySelectorAll('svg')].map(s => s.outerHTML.length + ':' + s.outerHTML.slice(-2000)));
  const drawn = [...root.querySelectorAll('canvas')].filter(inked).length
    + root.querySelectorAll('img[src^="data:image"], svg path').length;
  return {text: texts.join('|'), plot: plots.join('#'), nplots: plots.length, drawn};
}"""


def panel_numbers(state: dict) -> dict[str, float]:
    """The explorer's number panel ("x0", "f(x0)", ...) read from its text, label then value."""
    tokens = state["text"].split("|")
    numbers = {}
    for label, value in zip(tokens, tokens[1:]):
        if label in ("x0", "f(x0)", "f′(x0)", "f″(x0)"):
            try:
                numbers[label] = float(value.replace("−", "-"))
            except ValueError:
                pass
    return numbers


def poll(page, area, predicate, timeout: float = 30.0) -> dict:
    """Read the explorer's state until `predicate(state)` holds; fail with the last state."""
    deadline = time.monotonic() + timeout
    while True:
        state = area.evaluate(EXPLORER_STATE)
        if predicate(state):
            return state
        assert time.monotonic() < deadline, f"explorer never reached the expected state: {state['text']}"
        page.wait_for_timeout(250)


def agrees_with_f(state: dict) -> bool:
    """The panel shows x0 and f(x0) = x0**2 sin(x0), and the plot is drawn."""
    n = panel_numbers(state)
    if "x0" not in n or "f(x0)" not in n or not state["drawn"]:
        return False
    x0 = n["x0"]
    return abs(n["f(x0)"] - x0 ** 2 * math.sin(x0)) <= 1e-3 * max(1.0, abs(n["f(x0)"]))


def test_explorer_slider_changes_the_plot_and_the_numbers(page, lab) -> None:
    open_and_run(page, lab, "explore.ipynb", [IMPORTS, 'wb.explore("x**2*sin(x)")'])
    sliders = page.locator(".widget-slider, .widget-hslider")
    area = page.locator(".jp-OutputArea-output").filter(has=sliders).first
    area.wait_for()
    handle = area.locator(".noUi-handle, .widget-slider input[type=range]").first
    handle.wait_for()
    before = poll(page, area, agrees_with_f)  # first plot drawn, numbers shown
    assert before["nplots"] > 0, "the explorer shows no plot"
    handle.focus()
    page.keyboard.press("End")  # x0 to the right end of the range
    after = poll(page, area, lambda s: agrees_with_f(s) and
                 panel_numbers(s)["x0"] != panel_numbers(before)["x0"] and s["plot"] != before["plot"])
    wait_for_kernel(page)
    # f'(x0) = 2 x0 sin(x0) + x0^2 cos(x0), from calculus
    n = panel_numbers(after)
    if "f′(x0)" in n:
        x0 = n["x0"]
        slope = 2 * x0 * math.sin(x0) + x0 ** 2 * math.cos(x0)
        assert n["f′(x0)"] == pytest.approx(slope, rel=1e-3, abs=1e-3)
    print("explorer:", panel_numbers(before), "->", n)
    assert not re.search(r"Traceback|Error", after["text"])


def test_launcher_card_creates_a_workbench_notebook_that_runs(page, lab) -> None:
    page.goto(lab.link())
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.commands.hasCommand('workbench:new-notebook')")
    page.evaluate("async () => { await window.jupyterapp.commands.execute('launcher:create'); }")
    card = page.locator(".jp-LauncherCard", has_text="workbench notebook")
    card.first.wait_for()
    page.locator("#jupyterlab-splash").wait_for(state="detached")
    assert card.first.locator("img").count() == 1  # its graph icon, not a letter
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "launcher_card.png"))
    card.first.click()
    sources_js = ("() => { const w = window.jupyterapp.shell.currentWidget;"
                  " return w && w.content && w.content.widgets ?"
                  " w.content.widgets.map(c => c.model.sharedModel.getSource()) : []; }")
    try:  # the panel opens first, its content arrives from the server a moment later
        page.wait_for_function(f"() => ({sources_js})().length > 1", timeout=30_000)
    except Exception:
        pass
    sources = page.evaluate(sources_js)
    assert any("import workbench as wb" in s for s in sources)
    assert any(s.startswith("wb.explore(") for s in sources)
    assert any(s.startswith("wb.graph(") for s in sources)
    wait_for_kernel(page)
    kernel = page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.name")
    assert kernel == "python3"
    run_all(page)
    page.wait_for_selector(".wb-graph-view g.wb-node")
    page.wait_for_selector(".widget-slider, .widget-hslider")


def test_traced_graph_of_1000_plus_nodes_renders_and_steps(page, lab) -> None:
    import workbench as wb

    # level="elements": one node per scalar op (at array level this is 4 nodes)
    call = "wb.graph(lambda x: np.sum(np.sin(x) * x), np.linspace(0.0, 1.0, 400), level='elements')"
    doc = wb.graph(lambda x: np.sum(np.sin(x) * x), np.linspace(0.0, 1.0, 400),
                   level="elements").to_json()
    assert len(doc["nodes"]) >= 1000
    wall = time.perf_counter()
    open_and_run(page, lab, "traced_big.ipynb", [IMPORTS, call])
    view = page.locator(".wb-graph-view").first
    view.locator("g.wb-node").first.wait_for()
    wall = time.perf_counter() - wall
    drawn = view.locator("g.wb-node").count()
    if len(doc["nodes"]) <= 1500:  # drawn in full
        assert drawn == len(doc["nodes"]) and view.locator("path.wb-edge").count() == len(doc["edges"])
    else:  # summarised, and said so
        assert drawn < 1500 and "nodes hidden" in view.locator(".wb-hidden-note").text_content()
    if doc.get("backward"):
        label = view.locator(".wb-step-label")
        first = label.text_content()
        view.locator(".wb-step-next").click()
        assert label.text_content() != first
    report = (f"wb.graph of {len(doc['nodes'])} nodes: renderer {view.get_attribute('data-render-ms')} ms, "
              f"notebook open + run + drawn {wall:.2f} s")
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "render_time.txt", "a") as out:
        out.write(report + "\n")
    print("\n" + report)


MLP_CELL = """
rng = np.random.default_rng(3)
params = (rng.standard_normal((20, 16)), rng.standard_normal(16),
          rng.standard_normal((16, 4)), rng.standard_normal(4))
x, y = rng.standard_normal((64, 20)), rng.integers(0, 4, 64)

def loss(params, x, y):
    w1, b1, w2, b2 = params
    z = np.maximum(x @ w1 + b1, 0.0) @ w2 + b2
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(64), y].mean()

wb.graph(loss, params, x, y)
"""


def test_array_level_graph_shows_array_nodes_with_their_shapes(page, lab) -> None:
    import workbench as wb

    namespace: dict = {"np": np, "wb": wb}
    exec(MLP_CELL.replace("wb.graph(", "doc = wb.graph("), namespace)  # the same cell, here
    doc = namespace["doc"].to_json()
    assert doc.get("level") == "arrays" and len(doc["nodes"]) < 40
    open_and_run(page, lab, "array_graph.ipynb", [IMPORTS, MLP_CELL])
    view = page.locator(".wb-graph-view").first
    view.locator("g.wb-node").first.wait_for()
    assert view.locator("g.wb-node").count() == len(doc["nodes"])
    assert view.locator("path.wb-edge").count() == len(doc["edges"])
    drawn = view.locator("g.wb-node").all_text_contents()
    # Every array node shows its shape, as numpy computes it for that intermediate.
    for shape in ("64×20", "20×16", "64×16", "64×4"):
        assert any(shape in text for text in drawn), (shape, drawn)
    label = view.locator(".wb-step-label")
    first = label.text_content()
    view.locator(".wb-step-next").click()
    assert label.text_content() != first
