"""The report as a PDF, printed by headless Chromium (for journals that want a PDF).

Chromium is the one the browser tests use (``/usr/bin/chromium``, ``make browser``);
the page is self-contained, so printing it fetches nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from llem_nb.errors import ResultError

CHROMIUM = os.environ.get("LLEM_CHROMIUM", "/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--no-pdf-header-footer")  # fmt: skip


def html_to_pdf(page: str, out: Path, timeout_s: float = 120.0) -> Path:
    """Print ``page`` (HTML text) to ``out``; ``ResultError`` without Chromium or on failure."""
    browser = shutil.which(CHROMIUM) or shutil.which("chromium")
    if browser is None:
        raise ResultError(
            f"report(format='pdf') needs Chromium at {CHROMIUM}",
            fix="install it (make browser, or apt-get install chromium), set LLEM_CHROMIUM, "
            "or write HTML and print it from a browser",
        )
    with tempfile.TemporaryDirectory(prefix="llem-pdf-") as tmp:
        source = Path(tmp) / "report.html"
        source.write_text(page, encoding="utf-8")
        target = out.resolve()
        done = subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={tmp}/profile", f"--print-to-pdf={target}",
             source.as_uri()],
            capture_output=True, timeout=timeout_s, check=False,
        )  # fmt: skip
    if done.returncode != 0 or not target.is_file():
        tail = done.stderr.decode(errors="replace")[-500:]
        raise ResultError(
            f"Chromium could not print the report to {out} (exit {done.returncode}): {tail}",
            fix="write HTML (format='html') and print it from a browser",
        )
    return out
