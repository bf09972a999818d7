"""01-quickstart in a real JupyterLab, driven by headless Chromium: widgets and plots render.

JupyterLab serves on 127.0.0.1 only (no token, fresh workspace/settings/config dirs);
Chromium is Debian's, launched by Playwright with background networking off, and every
request that is not to that server is aborted and counted (there must be none).
A screenshot lands in artifacts/ for a human to look at.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.support.browser import ARTIFACTS, ROOT, open_page, playwright_or_skip

from .test_notebooks import TEST_PARAMETERS, parametrise

pytestmark = pytest.mark.integration

KERNEL_READY = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""
ALL_RUN = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w.sessionContext.session.kernel;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  return k.status === 'idle' && cells.every(c => c.model.executionCount !== null);
}"""
ERRORS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => c.model.type === 'code')
  .flatMap(c => c.model.outputs.toJSON())
  .filter(o => o.output_type === 'error')
  .map(o => o.ename + ': ' + o.evalue)"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{tail}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {timeout_s:.0f} s")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """JupyterLab on a free loopback port over a dir holding the parametrised quickstart."""
    pytest.importorskip("jupyterlab", reason="pip install -e '.[dev]' (jupyterlab)")
    root = tmp_path / "lab"
    root.mkdir()
    nb = nbformat.read(ROOT / "notebooks" / "01-quickstart.ipynb", as_version=4)
    parametrise(nb, TEST_PARAMETERS)
    nbformat.write(nb, root / "01-quickstart.ipynb")
    notification = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
        HF_HUB_OFFLINE="1",
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
    )
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
        "--ServerApp.password=", "--allow-root", "--LabApp.extension_manager=readonly",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.workspaces_dir={tmp_path / 'lab-workspaces'}",
        "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    log_path = tmp_path / "jupyterlab.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/status", proc, log_path)
        yield f"http://127.0.0.1:{port}", root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_quickstart_renders_runner_picker_progress_and_plots(lab: tuple[str, Path]) -> None:
    playwright = playwright_or_skip()
    base, root = lab
    blocked: list[str] = []
    with open_page(playwright, (1400, 1000), (base, "data:", "blob:"), blocked) as page:
        page.goto(f"{base}/lab/tree/01-quickstart.ipynb")
        page.wait_for_function(KERNEL_READY, timeout=120_000)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(ALL_RUN, timeout=300_000, polling=500)
        assert page.evaluate(ERRORS) == []

        # JupyterLab skips rendering cells out of view (content-visibility), and
        # innerText of a skipped cell is empty: bring each widget into view and wait for its text
        picker = page.locator(".llem-runner-picker")
        picker.wait_for(state="visible", timeout=30_000)
        picker.scroll_into_view_if_needed()
        expect = playwright.expect
        expect(picker).to_contain_text("pytorch", timeout=30_000)  # retried until rendered
        assert picker.locator("select").count() == 1
        expect(picker).to_contain_text("chosen by:")
        progress = page.locator(".llem-progress")
        progress.scroll_into_view_if_needed()
        expect(progress).to_contain_text("4/4 finished", timeout=30_000)
        plots = page.locator(".jp-OutputArea-output img[src^='data:image/png']")
        assert plots.count() == 2, "each of the two figures draws once"
        assert plots.first.evaluate("img => img.naturalWidth") > 100

        picker.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "browser-quickstart-widgets.png"))
        plots.first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "browser-quickstart-plot.png"))
    assert blocked == [], f"requests outside the lab server: {blocked}"
    assert list(root.glob("results/*/*.result.json"))
