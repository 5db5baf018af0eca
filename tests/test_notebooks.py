"""The course notebooks: each runs top to bottom in a real kernel, and each is a handout.

Structure checked here (each check can fail on a hand-edited or regenerated notebook):
the course notebooks exist and are exactly what ``scripts/make_notebooks.py`` generates;
each opens with learning goals; each has exercises, every one followed by a solution cell that
is hidden and tagged ``solution``; key facts and every solution are asserted in code (so a broken
engine fails the run); notebooks are committed without outputs; an interactive view
(``wb.explore``/``wb.graph``/``wb.backprop``) called for display is its cell's last expression.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
COURSE = ["01_getting_started.ipynb", "02_exploring_derivatives.ipynb",
          "03_how_reverse_mode_works.ipynb", "04_per_sample_gradients.ipynb",
          "05_exporting_gradient_code.ipynb", "06_nonsmooth_and_control_flow.ipynb",
          "07_gradients_as_matrix_formulas.ipynb", "08_torch_modules.ipynb"]
VIEWS = {"explore", "graph", "backprop"}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _is_solution(cell: dict) -> bool:
    return "solution" in cell.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path) -> None:
    nbformat = require("nbformat")
    nbclient = require("nbclient")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    errors = [o for cell in notebook.cells if cell.cell_type == "code"
              for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def test_the_course_is_complete() -> None:
    assert [p.name for p in NOTEBOOKS] == COURSE, \
        "notebooks/ holds exactly the course notebooks that `make lab` opens"


def test_notebooks_are_what_the_generator_writes() -> None:
    require("nbformat")
    spec = importlib.util.spec_from_file_location("make_notebooks", ROOT / "scripts" / "make_notebooks.py")
    make_notebooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_notebooks)
    generated = make_notebooks.generated()
    assert sorted(generated) == COURSE
    stale = [name for name, text in generated.items() if (NOTEBOOK_DIR / name).read_text() != text]
    assert not stale, f"{stale} differ from scripts/course/: run python scripts/make_notebooks.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_opens_with_learning_goals(path: Path) -> None:
    first = _cells(path)[0]
    text = _source(first)
    assert first["cell_type"] == "markdown" and text.startswith("# ")
    assert "## Learning goals" in text
    goals = [line for line in text.split("## Learning goals")[1].splitlines() if line.startswith("- ")]
    assert len(goals) >= 3, "a handout states at least three learning goals"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_exercise_has_a_hidden_solution(path: Path) -> None:
    cells = _cells(path)
    exercises = [k for k, c in enumerate(cells)
                 if c["cell_type"] == "markdown" and _source(c).startswith("### Exercise")]
    solutions = [k for k, c in enumerate(cells) if _is_solution(c)]
    assert exercises, "each notebook has exercises"
    assert solutions == [k + 1 for k in exercises], "each exercise is followed by its solution"
    for k in solutions:
        cell = cells[k]
        assert cell["cell_type"] == "code" and _source(cell).strip()
        assert cell["metadata"].get("jupyter", {}).get("source_hidden") is True, \
            f"solution cell {cell.get('id')} must be hidden by default"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_without_outputs(path: Path) -> None:
    for cell in _cells(path):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, cell.get("id")


def _view_call(node: ast.AST) -> str | None:
    """'explore'/'graph'/'backprop' when ``node`` is ``wb.<view>(...)`` or ``wb.<view>(...).widget()``."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "widget":
        return _view_call(func.value)
    if isinstance(func, ast.Attribute) and func.attr in VIEWS and isinstance(func.value, ast.Name) \
            and func.value.id == "wb":
        return func.attr
    return None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_interactive_views_are_the_last_expression(path: Path) -> None:
    """A view shown as a statement that is not the cell's last would be thrown away unseen."""
    for cell in _cells(path):
        if cell["cell_type"] != "code":
            continue
        body = ast.parse(_source(cell)).body
        for statement in body[:-1]:
            assert not (isinstance(statement, ast.Expr) and _view_call(statement.value)), \
                f"{cell.get('id')}: a view that is not the cell's last expression is never displayed"
        explores = [n for n in ast.walk(ast.Module(body=body, type_ignores=[]))
                    if _view_call(n) == "explore"]
        for call in explores:
            assert isinstance(body[-1], ast.Expr) and _shows(body, call), \
                f"{cell.get('id')}: wb.explore(...) must be the cell's last expression"


def _shows(body: list[ast.stmt], call: ast.Call) -> bool:
    """The cell's last expression is ``call``, or a name that ``call`` was assigned to."""
    last = body[-1].value
    if last is call:
        return True
    return isinstance(last, ast.Name) and any(
        isinstance(s, ast.Assign) and s.value is call
        and any(isinstance(t, ast.Name) and t.id == last.id for t in s.targets) for s in body)


def _asserts(source: str) -> int:
    return sum(isinstance(n, ast.Assert) for n in ast.walk(ast.parse(source)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_key_facts_and_solutions_are_asserted(path: Path) -> None:
    """A broken engine must fail the notebook run, not just print a wrong number."""
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    assert sum(_asserts(_source(c)) for c in code if not _is_solution(c)) >= 10
    for cell in code:
        if _is_solution(cell):
            assert _asserts(_source(cell)), f"solution {cell.get('id')} checks its answer"
