"""Debian's Chromium driven by Playwright for the browser tests: headless, background
networking off, and every request outside the allowed prefixes aborted and recorded."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def need_chromium() -> None:
    """Skip the test where Debian's Chromium is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make browser)")


def playwright_or_skip() -> Any:
    """``playwright.sync_api``, or a skip naming what to install."""
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    need_chromium()
    return playwright


@contextlib.contextmanager
def open_page(
    playwright: Any, viewport: tuple[int, int], allowed: tuple[str, ...], blocked: list[str]
) -> Iterator[Any]:
    """A page of ``viewport`` (width, height px); requests not starting with one of
    ``allowed`` are aborted and their URLs appended to ``blocked``. Creates ``ARTIFACTS``."""

    def only_allowed(route: Any) -> None:
        url = route.request.url
        if url.startswith(allowed):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.route("**/*", only_allowed)
            yield page
        finally:
            browser.close()
