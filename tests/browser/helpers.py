"""Helpers for the browser tests: skip-or-fail checks, the Lab handle, notebook driving."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).parent / "artifacts"
GRAPH_MIME = "application/vnd.workbench.graph+json"
TAPE_MIME = "application/vnd.workbench.tape+json"
EXTENSION_NAME = "workbench-jupyterlab"
KERNEL_TIMEOUT_MS = 120_000


def missing(what: str, how: str) -> None:
    """Skip (on a user's machine) or fail (in CI, where everything must be installed)."""
    message = f"browser tests need {what}: {how}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def chromium_executable() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    missing("Chromium", "apt-get install chromium (Debian), or run .ci/run")
    raise AssertionError("unreachable")


def labextension_dir() -> Path | None:
    """Where JupyterLab finds the built extension, if it was installed."""
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("labextensions"):
        candidate = Path(base) / EXTENSION_NAME / "package.json"
        if candidate.exists():
            return candidate.parent
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    root: Path

    def link(self, path: str = "") -> str:
        """A URL in a workspace of its own, so no tab of an earlier test is restored."""
        workspace = f"/lab/workspaces/t{secrets.token_hex(6)}"
        where = f"{workspace}/tree/{path}" if path else workspace
        return f"{self.url}{where}?token={self.token}"


def write_notebook(lab: Lab, name: str, cells: list[str]) -> str:
    """Write a python3 notebook of code cells into the server's root; return its name."""
    nbformat = require("nbformat")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab.root / name)
    return name


WAIT_KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle';
}"""

RUN_ALL = """async () => {
  await window.jupyterapp.commands.execute('notebook:run-all-cells');
}"""

ERRORS = """() => {
  const errors = [];
  for (const cell of window.jupyterapp.shell.currentWidget.content.widgets) {
    if (cell.model.type !== 'code') continue;
    for (const o of cell.model.outputs.toJSON()) {
      if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
    }
  }
  return errors;
}"""

ALL_EXECUTED = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => c.model.type === 'code' && c.model.sharedModel.getSource().trim())
  .every(c => c.model.executionCount !== null)"""


def wait_for_kernel(page) -> None:
    page.wait_for_function(WAIT_KERNEL_IDLE, timeout=KERNEL_TIMEOUT_MS)


def run_all(page) -> float:
    """Run every cell of the current notebook; wait until all ran; return the seconds it took."""
    wait_for_kernel(page)
    started = time.perf_counter()
    page.evaluate(RUN_ALL)
    page.wait_for_function(ALL_EXECUTED, timeout=KERNEL_TIMEOUT_MS)
    wait_for_kernel(page)
    elapsed = time.perf_counter() - started
    errors = page.evaluate(ERRORS)
    assert not errors, f"cells raised: {errors}"
    return elapsed


def open_and_run(page, lab: Lab, name: str, cells: list[str]) -> float:
    """Write the notebook, open it in JupyterLab, run it; return the run time in seconds."""
    write_notebook(lab, name, cells)
    page.goto(lab.link(name))
    page.wait_for_function(
        "(name) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return !!w && !!w.context && w.context.path === name && w.content.widgets.length > 0; }",
        arg=name, timeout=KERNEL_TIMEOUT_MS)
    return run_all(page)
