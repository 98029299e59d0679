"""Debian's Chromium, headless, driven by Playwright (which downloads nothing), with every
host but the one under test blocked."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As the machine's notes advise: no background traffic, no sandbox as root, a fresh profile.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def page_on(served: str, *, viewport: dict | None = None) -> Iterator[tuple[object, list[str]]]:
    """A fresh page that may load from `served` only; with the list of the URLs of other
    hosts it tried to load (to be empty)."""
    from playwright.sync_api import sync_playwright

    ours = urlparse(served).netloc
    elsewhere: list[str] = []

    def only_this_host(route):
        if urlparse(route.request.url).netloc == ours:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport=viewport or {"width": 1366, "height": 900})
            page.route("**/*", only_this_host)
            yield page, elsewhere
        finally:
            browser.close()
