"""`/docs` in a real browser (Debian's Chromium, headless, driven by Playwright) with every
host but this one blocked: the page must list the operations from what we serve alone,
read cleanly, say how to get a token, and ask for nothing that is not there."""

from importlib.metadata import version

from tests.helpers.browser import page_on


def test_the_docs_page_lists_the_operations_with_other_hosts_blocked(served):
    with page_on(served) as (page, elsewhere):
        missing = []
        page.on("response", lambda answer: answer.status >= 400 and missing.append(answer.url))
        page.goto(f"{served}/docs")
        page.wait_for_selector(".opblock", timeout=15_000)
        operations = page.locator(".opblock").count()
        summaries = page.locator(".opblock-summary-description").all_inner_texts()
        text = page.inner_text("body")
        favicon = page.request.get(f"{served}/favicon.ico")

    assert elsewhere == []  # nothing was asked of another host
    assert missing == []  # nor anything we do not serve
    assert favicon.status == 200 and favicon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert operations >= 15
    assert "/api/v1/subscription/pause" in text
    assert "Billing service" in text
    assert version("paddle-billing-service") in text
    assert "AUTH_JWT_SECRET" in text and "BILLING_SERVICE_TOKEN" in text  # how to get a token
    assert len(summaries) == operations
    assert not [summary for summary in summaries if "`" in summary]


def test_every_summary_is_one_plain_line(app):
    spec = app.test_client().get("/openapi.json").json
    summaries = [
        operation["summary"]
        for path in spec["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "summary" in operation
    ]
    assert len(summaries) >= 15
    assert not [summary for summary in summaries if "`" in summary or "\n" in summary]
    checkout = spec["paths"]["/api/v1/checkout"]["post"]
    assert "`transaction_id`" in checkout["description"]  # Markdown stays where it renders
