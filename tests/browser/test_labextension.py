"""The installed package brings its JupyterLab extension: `jupyter labextension list` shows it enabled."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.browser.helpers import EXTENSION_NAME, REPO, labextension_dir, missing
from tests.conftest import require


def test_labextension_is_listed_enabled_and_ok() -> None:
    require("jupyterlab")
    if labextension_dir() is None:
        missing("the built extension", "node >= 20.19, then `pip install -e .` (or `make test`)")
    run = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"],
                         capture_output=True, text=True, timeout=120)
    listing = re.sub(r"\x1b\[[0-9;]*m", "", run.stdout + run.stderr)  # drop colour codes
    line = next((ln for ln in listing.splitlines() if EXTENSION_NAME in ln), None)
    assert line is not None, listing
    assert re.search(r"\benabled\b", line) and re.search(r"\bOK\b", line), line
    assert "(python, workbench)" in line


def test_installed_extension_is_the_one_this_checkout_builds() -> None:
    require("jupyterlab")
    installed = labextension_dir()
    if installed is None:
        missing("the built extension", "node >= 20.19, then `pip install -e .` (or `make test`)")
    source = json.loads((REPO / "extension" / "package.json").read_text())
    built = json.loads((installed / "package.json").read_text())
    assert built["name"] == source["name"] == EXTENSION_NAME
    assert built["version"] == source["version"]
    # both renderers and the launcher plugin are in the build
    assert built["jupyterlab"]["_build"]["mimeExtension"] and built["jupyterlab"]["_build"]["extension"]
