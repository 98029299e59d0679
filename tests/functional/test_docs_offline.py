"""`/docs` in a real browser (Debian's Chromium, headless, driven by Playwright) with every
host but this one blocked: the page must list the operations from what we serve alone."""

from tests.helpers.browser import page_on


def test_the_docs_page_lists_the_operations_with_other_hosts_blocked(served):
    with page_on(served) as (page, elsewhere):
        page.goto(f"{served}/docs")
        page.wait_for_selector(".opblock", timeout=15_000)
        operations = page.locator(".opblock").count()
        text = page.inner_text("body")

    assert elsewhere == []  # nothing was asked of another host
    assert operations >= 15
    assert "/api/v1/subscription/pause" in text
    assert "Billing service" in text
