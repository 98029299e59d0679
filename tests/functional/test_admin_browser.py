"""The console in a real browser (Debian's Chromium, headless, driven by Playwright), with
every other host blocked: support signs in, finds a customer, reads the account's
timeline, replays its dead event and sees it processed. Screenshots are kept as test
artifacts (BROWSER_ARTIFACTS_DIR, default build/browser-artifacts)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from billing_app.models import Account, ReconcileRun
from tests.helpers.browser import page_on
from tests.helpers.payloads import envelope, subscription_data
from tests.helpers.rows import (
    SAMPLE_CUSTOMER,
    SAMPLE_SUBSCRIPTION,
    ledger_row,
    make_active_subscription,
    make_subscription,
)
from tests.helpers.stack import serving

PASSWORD = "correct horse battery staple"
ARTIFACTS = Path(
    os.environ.get("BROWSER_ARTIFACTS_DIR")
    or Path(__file__).resolve().parents[2] / "build" / "browser-artifacts"
)
T = datetime(2026, 11, 30, 9, tzinfo=UTC)


@pytest.fixture
def console(make_app):
    app = make_app(ADMIN_PASSWORD_HASH=generate_password_hash(PASSWORD))
    with app.app_context():
        yield app


def a_customer_with_a_dead_event(session) -> str:
    """acct_1042, active, with a processed, a stale and a dead event; a few other accounts
    so that the overview has something to count. The dead event's id."""
    plan_id = make_active_subscription(session, "acct_1042", last_event_at=T).plan_id
    session.get(Account, "acct_1042").email = "maria@example.com"
    for number, status in enumerate(["active", "active", "past_due", "paused", "canceled"]):
        session.add(Account(id=f"acct_{2000 + number}", email=f"user{number}@example.com"))
        session.flush()
        make_subscription(
            session,
            account_id=f"acct_{2000 + number}",
            status=status,
            plan_id=plan_id,
            quantity=1,
            paddle_subscription_id=f"sub_01other{number}",
            current_period_start=datetime.now(UTC) - timedelta(days=2),
        )
    session.add(
        ReconcileRun(
            status="succeeded",
            started_at=T - timedelta(hours=6),
            finished_at=T - timedelta(hours=6) + timedelta(minutes=4),
            seen=6,
            in_sync=5,
            drift_fixed=1,
        )
    )
    session.commit()

    def about_the_subscription(event_type, minutes, **changes):
        data = subscription_data(id=SAMPLE_SUBSCRIPTION, customer_id=SAMPLE_CUSTOMER, **changes)
        return envelope(event_type, data, occurred_at=T + timedelta(minutes=minutes))

    ledger_row(session, about_the_subscription("subscription.created", -60), status="stale")
    ledger_row(session, about_the_subscription("subscription.activated", 0), status="processed")
    dead = about_the_subscription("subscription.updated", 30, status="paused")
    ledger_row(
        session,
        dead,
        status="dead",
        attempts=12,
        error="OperationalError: the database was restarted mid-apply",
    )
    session.commit()
    return dead["event_id"]


def test_support_finds_the_customer_reads_the_timeline_and_replays_the_dead_event(console, session):
    dead_event = a_customer_with_a_dead_event(session)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serving(console) as served, page_on(served) as (page, elsewhere):
        page.goto(f"{served}/admin/")
        assert "/admin/sign-in" in page.url  # nothing without signing in
        page.fill("input[name=name]", "Maria from support")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("h1:has-text('Overview')")
        assert "Accounts with access now" in page.inner_text("main")
        page.screenshot(path=str(ARTIFACTS / "console-overview.png"), full_page=True)

        page.click("header >> text=Find a customer")
        page.fill("input[name=q]", "MARIA@example.com")
        page.press("input[name=q]", "Enter")
        page.wait_for_selector("#timeline")
        assert page.url.endswith("/admin/accounts/acct_1042")
        timeline = page.inner_text("#timeline")
        assert timeline.index("subscription.created") < timeline.index("subscription.updated")
        for outcome in ("stale", "processed", "dead"):
            assert outcome in timeline
        assert page.inner_text("#access-reason") == "active"
        page.screenshot(path=str(ARTIFACTS / "console-account-timeline.png"), full_page=True)

        page.click("#timeline tr:has(.status.dead) a")
        page.wait_for_selector("#replay")
        assert page.inner_text("#event-status") == "dead"
        page.click("#replay")
        page.wait_for_selector(".flash.ok")
        assert f"{dead_event} (subscription.updated): processed" in page.inner_text(".flash.ok")
        assert page.inner_text("#event-status") == "processed"
        page.screenshot(path=str(ARTIFACTS / "console-replayed.png"), full_page=True)

        page.goto(f"{served}/admin/accounts/acct_1042")
        timeline = page.inner_text("#timeline")
        assert "dead" not in timeline and "Maria from support: replay_webhook" in timeline
        assert page.inner_text("#access-reason") == "paused"  # the replayed event applied

    assert elsewhere == []  # every page and its stylesheet came from the service itself
    for name in ("console-overview.png", "console-account-timeline.png", "console-replayed.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000


@pytest.mark.parametrize("width", [1280, 1920])
def test_the_inbox_shows_one_line_per_event_with_its_account(console, session, width):
    dead_event = a_customer_with_a_dead_event(session)
    with (
        serving(console) as served,
        page_on(served, viewport={"width": width, "height": 900}) as (page, elsewhere),
    ):
        page.goto(f"{served}/admin/sign-in")
        page.fill("input[name=name]", "Ops")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("h1:has-text('Overview')")
        page.goto(f"{served}/admin/webhooks")
        rows = page.locator("#inbox tr:has(td)")
        heights = [box["height"] for box in (rows.nth(i).bounding_box() for i in range(3))]
        line = page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight) || 20")
        assert all(height < 2 * line + 12 for height in heights), (heights, line)  # one line
        table = page.locator("#inbox").bounding_box()
        assert table["width"] > width * 0.85  # the screen's width, not a capped column
        headers = page.locator("#inbox th").all_inner_texts()
        assert "Account" in headers and "Replay" in headers  # a dead event can be replayed
        page.click(f"#inbox tr:has-text('{dead_event}') >> text=acct_1042")
        page.wait_for_selector("#timeline")
        assert page.url.endswith("/admin/accounts/acct_1042")
        page.goto(f"{served}/admin/webhooks/{dead_event}")
        page.click("#event-account")
        page.wait_for_selector("#timeline")
        assert page.url.endswith("/admin/accounts/acct_1042")
        page.goto(f"{served}/admin/webhooks?status=processed")
        assert "Replay" not in page.locator("#inbox th").all_inner_texts()  # nothing to replay
    assert elsewhere == []
