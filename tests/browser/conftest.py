"""Browser tests: a real JupyterLab server on 127.0.0.1 and Debian's Chromium, driven by Playwright.

Nothing here downloads a browser: Playwright launches the system ``chromium`` through
``executable_path``. Without chromium, playwright or the built extension the tests skip with a
message saying what to install, except in CI (env ``CI`` set), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.browser.helpers import (
    ARTIFACTS,
    EXTENSION_NAME,
    REPO,
    Lab,
    chromium_executable,
    free_port,
    labextension_dir,
    missing,
)
from tests.conftest import require


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A JupyterLab server on a free port of 127.0.0.1, with its own home, config and runtime dirs."""
    require("jupyterlab")
    if labextension_dir() is None:
        how = "`pip install -e .` (or `make test`)" + (
            "" if shutil.which("node") else "; building it needs node >= 20.19, which is not on PATH")
        missing(f"the {EXTENSION_NAME} labextension installed", how)
    base = tmp_path_factory.mktemp("lab")
    root, home, config, runtime, ipython = (
        base / d for d in ("root", "home", "config", "runtime", "ipython"))
    for d in (root, home, config / "labconfig", runtime, ipython):
        d.mkdir(parents=True)
    # The "official Jupyter news?" toast would cover the screenshots.
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    token, port = secrets.token_hex(16), free_port()
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(config),
           "JUPYTER_RUNTIME_DIR": str(runtime), "IPYTHONDIR": str(ipython),
           "MPLCONFIGDIR": str(home / "mpl"), "PYTHONPATH": os.pathsep.join(
               [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    log = open(base / "server.log", "wb")  # noqa: SIM115 (closed at teardown)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={base / 'workspaces'}",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.allow_root=True"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                log.close()
                pytest.fail("JupyterLab did not start:\n" + (base / "server.log").read_text()[-3000:])
            time.sleep(0.3)
    try:
        yield Lab(url, token, root)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, launched through Playwright (no Playwright browser download).

    Module-scoped: Playwright's sync API keeps an asyncio loop running while it is open, which
    code tested later in the session (the explorer checks for a running loop) must not see.
    """
    require("playwright")
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=executable, headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, lab: Lab, request: pytest.FixtureRequest):
    """A fresh page; on the way out a screenshot goes to tests/browser/artifacts/<test>.png."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    problems: list[str] = []
    pg.on("pageerror", lambda error: problems.append(str(error)))
    pg.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    pg.problems = problems
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)
    finally:
        context.close()
