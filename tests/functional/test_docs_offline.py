"""`/docs` in a real browser (Debian's Chromium, headless, driven by Playwright) with every
host but this one blocked: the page must list the operations from what we serve alone."""

import shutil
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


def test_the_docs_page_lists_the_operations_with_other_hosts_blocked(served):
    from playwright.sync_api import sync_playwright

    ours = urlparse(served).netloc
    elsewhere = []

    def only_this_host(route):
        if urlparse(route.request.url).netloc == ours:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_this_host)
            page.goto(f"{served}/docs")
            page.wait_for_selector(".opblock", timeout=15_000)
            operations = page.locator(".opblock").count()
            text = page.inner_text("body")
        finally:
            browser.close()

    assert elsewhere == []  # nothing was asked of another host
    assert operations >= 15
    assert "/api/v1/subscription/pause" in text
    assert "Billing service" in text
