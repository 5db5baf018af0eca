"""Cell builders for the course notebooks: prose, code, learning goals, exercises and solutions.

Every notebook follows the same handout shape, which ``tests/test_notebooks.py`` checks:

* the first cell is the title with a "Learning goals" list;
* each exercise is a markdown cell headed "Exercise", followed by its solution: a code cell
  tagged ``solution`` and hidden (``metadata.jupyter.source_hidden``) so a student sees the
  task first and opens the solution on purpose. Solutions run with the notebook, so they are
  tested like everything else.

Cell ids are derived from the notebook's name and the cell's position, so regenerating a
notebook gives the same file (the tests compare the committed notebooks with the generator).
"""

from __future__ import annotations

import textwrap

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
SOLUTION_METADATA = {"jupyter": {"source_hidden": True}, "tags": ["solution"]}


def _text(source: str) -> str:
    return textwrap.dedent(source).strip("\n")


def md(source: str) -> nbformat.NotebookNode:
    """A markdown cell (the source is dedented, so triple-quoted strings can be indented)."""
    return new_markdown_cell(_text(source))


def code(source: str) -> nbformat.NotebookNode:
    """A code cell."""
    return new_code_cell(_text(source))


def title(heading: str, goals: list[str], intro: str = "") -> nbformat.NotebookNode:
    """The opening cell: the title, a short introduction and the learning goals."""
    lines = [f"# {heading}", ""]
    if intro:
        lines += [_text(intro), ""]
    lines += ["## Learning goals", "", "After this notebook you can:", ""]
    lines += [f"- {goal}" for goal in goals]
    return new_markdown_cell("\n".join(lines))


def exercise(number: int, task: str, solution: str) -> list[nbformat.NotebookNode]:
    """An exercise (markdown) and its solution (a hidden code cell tagged ``solution``)."""
    prompt = new_markdown_cell(f"### Exercise {number}\n\n{_text(task)}\n\n"
                               "*The solution is in the hidden cell below: click the three dots "
                               "(or the cell's collapsed input) to show it.*")
    answer = new_code_cell(_text(solution))
    answer.metadata.update({"jupyter": dict(SOLUTION_METADATA["jupyter"]),
                            "tags": list(SOLUTION_METADATA["tags"])})
    return [prompt, answer]


def notebook(stem: str, cells: list) -> nbformat.NotebookNode:
    """The notebook with stable cell ids (``<stem>-00``, ``<stem>-01``...) and no outputs."""
    flat: list[nbformat.NotebookNode] = []
    for cell in cells:
        flat.extend(cell if isinstance(cell, list) else [cell])
    for k, cell in enumerate(flat):
        cell.id = f"{stem}-{k:02d}"
    nb = new_notebook(cells=flat, metadata={"kernelspec": dict(KERNELSPEC),
                                            "language_info": {"name": "python"}})
    nbformat.validate(nb)
    return nb
