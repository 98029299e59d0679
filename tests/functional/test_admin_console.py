"""The operator console: sign-in on every page, CSRF on every form, the audit log, and
each room doing what its CLI twin does (replay, link, reconcile)."""

from __future__ import annotations

import contextvars
import re
from datetime import UTC, datetime, timedelta

import pytest
import responses
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from billing_app.db import utcnow
from billing_app.extensions import db
from billing_app.models import (
    Account,
    Adjustment,
    AuditEntry,
    EventEndpoint,
    JobLease,
    ReconcileRequest,
    ReconcileRun,
    Subscription,
    Transaction,
    UsageCharge,
    WebhookEvent,
)
from billing_app.services.locks import Lease
from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.events import events_of, send_due
from tests.helpers.paddle_lists import serve_subscription_list
from tests.helpers.payloads import envelope, paddle_entity, subscription_data
from tests.helpers.receiver import Receiver
from tests.helpers.rows import (
    SAMPLE_CUSTOMER,
    SAMPLE_SUBSCRIPTION,
    ledger_row,
    make_account,
    make_active_subscription,
    make_subscription,
)
from tests.helpers.tokens import auth

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def password_hash() -> str:
    return generate_password_hash(PASSWORD)


@pytest.fixture
def console(make_app, password_hash):
    app = make_app(ADMIN_PASSWORD_HASH=password_hash, RECONCILE_REQUESTS_PER_MINUTE=0)
    with app.app_context():
        yield app


class OwnContextClient(FlaskClient):
    """Each request in a context of its own, as in production: the test's app context
    would otherwise be shared by every request, and with it `g`, where Flask-WTF keeps the
    request's CSRF token."""

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def browser(console):
    console.test_client_class = OwnContextClient
    return console.test_client()


def csrf_token(html: bytes) -> str:
    match = re.search(rb'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1).decode()


def sign_in(client, name: str = "Ada") -> str:
    """Sign in as `name`; the CSRF token of the signed-in session."""
    token = csrf_token(client.get("/admin/sign-in").data)
    response = client.post(
        "/admin/sign-in", data={"csrf_token": token, "name": name, "password": PASSWORD}
    )
    assert response.status_code == 303, response.data
    return csrf_token(client.get("/admin/").data)


def stored(statement) -> list:
    """What the database holds now. The read's transaction ends at once: on SQLite it
    would hold the write lock the console's next request needs."""
    db.session.expire_all()
    rows = list(db.session.scalars(statement))
    db.session.commit()
    return rows


def audit_entries() -> list[tuple[str, str, str, str | None]]:
    entries = stored(select(AuditEntry).order_by(AuditEntry.id))
    return [(entry.actor, entry.action, entry.result, entry.target) for entry in entries]


SAMPLE_ARGUMENTS = {
    "account_id": "acct_1",
    "event_id": "evt_1",
    "run_id": 1,
    "paddle_subscription_id": "sub_1",
    "endpoint_id": "ep_1",
    "action": "disable",
}


def console_urls(app) -> list[tuple[str, str]]:
    """Every (method, URL) of the console but the sign-in page and its stylesheet."""
    urls = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not rule.endpoint.startswith("admin.") or rule.endpoint in (
                "admin.sign_in",
                "admin.static",
            ):
                continue
            arguments = {name: SAMPLE_ARGUMENTS[name] for name in rule.arguments}
            url = app.url_for(rule.endpoint, **arguments)
            urls += [(method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return urls


def test_the_console_is_off_unless_a_password_hash_is_configured(client):
    assert client.get("/admin/").status_code == 404
    assert client.get("/admin/sign-in").status_code == 404


@pytest.mark.parametrize(
    "credentials",
    [{}, auth("acct_1"), {"Authorization": f"Bearer {SERVICE_TOKEN}"}],
    ids=["anonymous", "user token", "service token"],
)
def test_every_console_page_needs_a_signed_in_operator(console, browser, credentials):
    urls = console_urls(console)
    assert len(urls) >= 14  # every room is counted: pages and their actions
    for method, url in urls:
        response = browser.open(url, method=method, headers=credentials)
        assert response.status_code == 303, (method, url, response.status_code)
        assert response.headers["Location"].startswith("/admin/sign-in?next="), (method, url)
    assert audit_entries() == []  # nothing acted


def test_a_wrong_password_is_refused_and_recorded(browser):
    token = csrf_token(browser.get("/admin/sign-in").data)
    response = browser.post(
        "/admin/sign-in", data={"csrf_token": token, "name": "Mallory", "password": "guess"}
    )
    assert response.status_code == 401
    assert b"Sign-in failed: that is not the console&#39;s password." in response.data
    assert browser.get("/admin/").status_code == 303  # still signed out
    assert audit_entries() == [("Mallory", "sign_in", "refused", None)]
    nameless = browser.post(
        "/admin/sign-in", data={"csrf_token": token, "name": " ", "password": PASSWORD}
    )
    assert nameless.status_code == 401 and b"Sign-in failed: give your name" in nameless.data


def test_a_wrong_password_from_a_signed_in_browser_is_recorded_under_the_name_typed(browser):
    token = sign_in(browser, "Ada")
    response = browser.post(
        "/admin/sign-in", data={"csrf_token": token, "name": "Eve", "password": "guess"}
    )
    assert response.status_code == 401
    assert audit_entries()[-1] == ("Eve", "sign_in", "refused", None)


def test_signing_in_sets_a_scoped_http_only_lax_cookie_and_lands_on_the_page_asked_for(browser):
    token = csrf_token(browser.get("/admin/sign-in").data)
    response = browser.post(
        "/admin/sign-in",
        data={"csrf_token": token, "name": "Ada", "password": PASSWORD, "next": "/admin/audit"},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/admin/audit"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    page = browser.get("/admin/audit")
    assert page.status_code == 200 and b"sign_in" in page.data and b"Ada" in page.data


def test_over_https_the_cookie_is_secure(browser):
    page = browser.get("/admin/sign-in", base_url="https://billing.example.com")
    response = browser.post(
        "/admin/sign-in",
        base_url="https://billing.example.com",
        headers={"Referer": "https://billing.example.com/admin/sign-in"},
        data={"csrf_token": csrf_token(page.data), "name": "Ada", "password": PASSWORD},
    )
    assert response.status_code == 303
    assert "Secure" in response.headers["Set-Cookie"]


def test_an_offsite_next_page_is_not_followed(browser):
    token = csrf_token(browser.get("/admin/sign-in").data)
    response = browser.post(
        "/admin/sign-in",
        data={
            "csrf_token": token,
            "name": "Ada",
            "password": PASSWORD,
            "next": "https://evil.example/admin",
        },
    )
    assert response.headers["Location"] == "/admin/"


def test_a_form_without_its_csrf_token_is_refused_and_does_nothing(console, browser, session):
    sign_in(browser)
    row = ledger_row(session, envelope("subscription.updated", subscription_data()), status="dead")
    response = browser.post("/admin/webhooks/replay", data={"event_id": row.event_id})
    assert response.status_code == 400
    assert b"did not come from this console" in response.data
    assert stored(select(WebhookEvent.status)) == ["dead"]
    assert [entry[1] for entry in audit_entries()] == ["sign_in"]


def guesses(app, count: int, password: str = "guess") -> list:
    """`count` sign-ins from one address as Eve, with `password`: the answers."""
    browser = app.test_client()
    token = csrf_token(browser.get("/admin/sign-in").data)
    return [
        browser.post(
            "/admin/sign-in", data={"csrf_token": token, "name": "Eve", "password": password}
        )
        for _ in range(count)
    ]


def test_sign_in_attempts_are_rate_limited_per_address(make_app, password_hash):
    app = make_app(ADMIN_PASSWORD_HASH=password_hash, ADMIN_SIGN_IN_RATE_LIMIT="3/minute")
    assert [answer.status_code for answer in guesses(app, 4)] == [401, 401, 401, 429]
    assert app.test_client().get("/admin/sign-in").status_code == 200  # the form is not limited


def test_changing_the_password_hash_signs_everyone_out(console, browser):
    sign_in(browser)
    assert browser.get("/admin/").status_code == 200
    console.config["ADMIN_PASSWORD_HASH"] = generate_password_hash("another long password")
    assert browser.get("/admin/").status_code == 303


def test_pages_carry_headers_that_keep_them_out_of_frames_and_caches(browser):
    sign_in(browser)
    response = browser.get("/admin/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_signing_out_is_recorded_and_ends_the_session(browser):
    token = sign_in(browser)
    assert browser.post("/admin/sign-out", data={"csrf_token": token}).status_code == 303
    assert browser.get("/admin/").status_code == 303
    assert [entry[1:3] for entry in audit_entries()] == [("sign_in", "ok"), ("sign_out", "ok")]


def test_the_hash_password_command_prints_a_hash_of_the_password(console):
    from billing_app.__main__ import main

    result = console.test_cli_runner().invoke(
        main, ["admin", "hash-password"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    printed = result.output.strip().splitlines()[-1]
    assert check_password_hash(printed, PASSWORD) and not check_password_hash(printed, "other")
    short = console.test_cli_runner().invoke(main, ["admin", "hash-password", "--password", "x"])
    assert short.exit_code != 0 and "at least 12" in short.output


def test_the_overview_says_whether_a_scheduler_is_running(browser, console, session):
    from billing_app import jobs

    sign_in(browser)
    page = browser.get("/admin/").get_data(as_text=True)
    assert "no scheduler running" in page and "none has ever run" in page
    jobs.heartbeat(console)
    page = browser.get("/admin/").get_data(as_text=True)
    assert "scheduler running" in page and "no scheduler running" not in page
    assert "last heartbeat" in page


def test_hash_password_reads_a_piped_password_quietly_and_prints_a_dotenv_line(tmp_path):
    import subprocess
    import sys

    environment = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}"}
    command = [sys.executable, "-m", "billing_app", "admin", "hash-password"]
    piped = subprocess.run(
        command, input=f"{PASSWORD}\n", capture_output=True, text=True, env=environment
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""  # no GetPassWarning, no prompt
    assert check_password_hash(piped.stdout.strip(), PASSWORD)

    line = subprocess.run(
        [*command, "--password", PASSWORD, "--env"],
        capture_output=True,
        text=True,
        env=environment,
    ).stdout.strip()
    name, quoted = line.split("=", 1)
    assert name == "ADMIN_PASSWORD_HASH" and quoted[0] == quoted[-1] == "'"
    assert "$" in quoted and check_password_hash(quoted[1:-1], PASSWORD)


# Finding a customer, and the account page


def test_a_customer_is_found_by_each_of_its_ids_and_its_email_in_any_case(browser, session):
    make_active_subscription(session, "acct_9")
    session.get(Account, "acct_9").email = "Grace@Example.com"
    session.add(
        Transaction(paddle_transaction_id="txn_01found", account_id="acct_9", status="completed")
    )
    session.commit()
    sign_in(browser)
    for query in (
        "acct_9",
        "grace@example.COM",
        SAMPLE_CUSTOMER,
        SAMPLE_SUBSCRIPTION,
        "txn_01found",
    ):
        response = browser.get("/admin/find", query_string={"q": query})
        assert response.status_code == 303, query
        assert response.headers["Location"] == "/admin/accounts/acct_9", query
    nothing = browser.get("/admin/find", query_string={"q": "nobody@example.com"})
    assert nothing.status_code == 200 and b"Nothing matches" in nothing.data


def test_a_customer_is_found_by_the_start_of_an_email_or_id_or_by_domain(browser, session):
    for number, email in enumerate(
        ["grace@example.com", "GRACIE@example.com", "ada@other.org", "bob@example.com"]
    ):
        make_account(session, f"acct_{4200 + number}", email=email)
    make_account(session, "acct_x_y", email=None)
    session.commit()
    sign_in(browser)

    def found(query: str) -> list[str]:
        response = browser.get("/admin/find", query_string={"q": query})
        assert response.status_code in (200, 303), query
        if response.status_code == 303:
            return [response.headers["Location"].rsplit("/", 1)[1]]
        return re.findall(r'href="/admin/accounts/([^"]+)"', response.get_data(as_text=True))

    assert found("gra") == ["acct_4200", "acct_4201"]  # any case, every match listed
    assert found("example.com") == ["acct_4200", "acct_4201", "acct_4203"]
    assert found("@EXAMPLE.com") == ["acct_4200", "acct_4201", "acct_4203"]
    assert found("acct_420") == ["acct_4200", "acct_4201", "acct_4202", "acct_4203"]
    assert found("ad") == []  # two characters: exact matches only
    assert found("acct%") == [] and found("acct_x_") == ["acct_x_y"]  # wildcards are text
    page = browser.get("/admin/find", query_string={"q": "gra"}).get_data(as_text=True)
    assert "email starts so" in page


def test_an_unlinked_subscription_found_by_search_offers_the_link(browser, session):
    make_subscription(session, status="active", paddle_subscription_id="sub_01orphan")
    sign_in(browser)
    response = browser.get("/admin/find", query_string={"q": "sub_01orphan"})
    assert response.status_code == 200
    assert b"/admin/unlinked/sub_01orphan/link" in response.data


def timeline_rows(html: str) -> list[str]:
    table = html.split('id="timeline"', 1)[1].split("</table>", 1)[0]
    return [row for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S) if "<th>" not in row]


def test_the_account_page_shows_access_with_its_reason_and_the_timeline_in_paddles_order(
    browser, session
):
    make_active_subscription(
        session,
        "acct_1",
        scheduled_action="cancel",
        scheduled_effective_at=utcnow() - timedelta(minutes=5),
    )
    base = datetime(2026, 3, 1, tzinfo=UTC)
    late = envelope(
        "subscription.updated",
        subscription_data(id=SAMPLE_SUBSCRIPTION),
        occurred_at=base + timedelta(minutes=2),
    )
    early = envelope(
        "subscription.created",
        subscription_data(id=SAMPLE_SUBSCRIPTION),
        occurred_at=base,
    )
    ledger_row(session, late, status="processed")  # received first, happened last
    ledger_row(session, early, status="stale")
    customer = envelope(
        "customer.updated", {"id": SAMPLE_CUSTOMER}, occurred_at=base + timedelta(minutes=1)
    )
    ledger_row(session, customer, status="dead", error="ValueError: bad")
    ledger_row(session, envelope("subscription.updated", subscription_data(id="sub_other")))
    sign_in(browser)

    page = browser.get("/admin/accounts/acct_1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "a scheduled pause or cancellation has taken effect" in html
    rows = timeline_rows(html)
    assert len(rows) == 3  # another subscription's event is not this account's
    assert "subscription.created" in rows[0] and "stale" in rows[0]
    assert "customer.updated" in rows[1] and "dead" in rows[1] and "ValueError: bad" in rows[1]
    assert "subscription.updated" in rows[2] and "processed" in rows[2]
    assert f"https://sandbox-vendors.paddle.com/subscriptions-v2/{SAMPLE_SUBSCRIPTION}" in html
    assert browser.get("/admin/accounts/acct_unknown").status_code == 404


def test_a_payload_is_shown_as_text_never_as_html(browser, session):
    notification = envelope(
        "customer.updated", {"id": "ctm_x", "name": "<script>alert(1)</script>"}
    )
    ledger_row(session, notification, status="failed")
    sign_in(browser)
    page = browser.get(f"/admin/webhooks/{notification['event_id']}")
    assert page.status_code == 200
    assert b"<script>alert(1)</script>" not in page.data
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page.data


# Replays, links and reconciliation: each recorded in the audit log


def test_replaying_a_dead_event_applies_it_and_records_the_outcome(browser, session):
    make_active_subscription(session, "acct_1")
    notification = envelope(
        "subscription.updated",
        subscription_data(id=SAMPLE_SUBSCRIPTION, customer_id=SAMPLE_CUSTOMER, status="paused"),
        occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    dead = ledger_row(session, notification, status="dead", error="ValueError: it was a bug")
    dead_id, event_id = dead.id, dead.event_id
    token = sign_in(browser, "Grace")
    response = browser.post(
        "/admin/webhooks/replay",
        data={"csrf_token": token, "event_id": event_id, "back": "/admin/webhooks"},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/admin/webhooks"
    inbox = browser.get("/admin/webhooks").get_data(as_text=True)
    assert f"{event_id} (subscription.updated): processed" in inbox
    assert stored(select(WebhookEvent.status).where(WebhookEvent.id == dead_id)) == ["processed"]
    assert stored(select(Subscription.status)) == ["paused"]
    assert audit_entries()[-1] == ("Grace", "replay_webhook", "processed", event_id)
    account_page = browser.get("/admin/accounts/acct_1").get_data(as_text=True)
    assert "Grace: replay_webhook" in account_page


def test_the_inbox_filters_by_status_and_type_and_pages_newest_first(browser, session):
    for number in range(55):
        ledger_row(
            session,
            envelope("subscription.updated", subscription_data(id=f"sub_{number:03d}")),
            status="processed",
            received_at=datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=number),
        )
    ledger_row(session, envelope("transaction.completed", {"id": "txn_1"}), status="dead")
    sign_in(browser)
    dead = browser.get("/admin/webhooks", query_string={"status": "dead"}).get_data(as_text=True)
    assert dead.count('name="event_id"') == 1 and "transaction.completed" in dead
    first = browser.get("/admin/webhooks", query_string={"type": "subscription.updated"}).get_data(
        as_text=True
    )
    assert first.count("<code>sub_") == 50 and "sub_054" in first and "sub_004" not in first
    older = re.search(r'href="([^"]+after=[^"]+)"', first).group(1).replace("&amp;", "&")
    second = browser.get(older).get_data(as_text=True)
    assert second.count("<code>sub_") == 5 and "sub_000" in second and "sub_054" not in second


def test_the_account_page_reads_cleanly(browser, session):
    """A pending checkout has no period yet; a past-due account says until when its grace
    lasts; the timeline names a moment's kind only where it is not a webhook event."""
    make_account(session, "acct_pending")
    make_subscription(session, account_id="acct_pending", status="pending")
    started = utcnow() - timedelta(days=1)
    make_active_subscription(session, "acct_late", status="past_due", current_period_start=started)
    ledger_row(
        session,
        envelope("subscription.past_due", subscription_data(id=SAMPLE_SUBSCRIPTION)),
        status="processed",
    )
    sign_in(browser)
    pending = browser.get("/admin/accounts/acct_pending").get_data(as_text=True)
    assert "none yet" in pending and "- → -" not in pending
    late = browser.get("/admin/accounts/acct_late").get_data(as_text=True)
    reason = re.search(r'id="access-reason">([^<]+)<', late).group(1)
    grace = browser.application.config["PAST_DUE_GRACE_DAYS"]
    until = (started + timedelta(days=grace)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert reason == f"past due, within the grace period, until {until}"
    kinds = re.findall(r'<td class="kind">(.*?)</td>', late, re.S)
    assert kinds and not [kind for kind in kinds if "event" in kind]


def test_the_unlinked_page_says_why_each_subscription_is_unlinked(browser, session):
    make_account(session, "acct_paying_elsewhere", paddle_customer_id="ctm_01theirs")
    for number, customer, custom_data in (
        (1, "ctm_01nobody", {"note": "bought by phone"}),
        (2, "ctm_01stranger", {"app_account_id": "acct_unknown"}),
        (3, "ctm_01mine", {"app_account_id": "acct_paying_elsewhere"}),
    ):
        make_subscription(
            session,
            status="active",
            paddle_subscription_id=f"sub_01why{number}",
            paddle_customer_id=customer,
            custom_data=custom_data,
        )
    session.commit()
    sign_in(browser)
    page = browser.get("/admin/unlinked").get_data(as_text=True)
    reasons = re.findall(r'<td class="reason">([^<]+)</td>', page)
    assert reasons == [
        "It names no account in its custom_data, and no account pays as customer ctm_01nobody.",
        "It names account acct_unknown, which we do not know.",
        "It names account acct_paying_elsewhere, which pays as customer ctm_01theirs.",
    ]
    assert "no account id in their custom_data" not in page


def test_linking_an_unlinked_subscription_asks_first_then_follows_the_clis_rule(browser, session):
    make_subscription(
        session,
        status="active",
        paddle_subscription_id="sub_01orphan",
        paddle_customer_id="ctm_01orphan",
        custom_data={"note": "bought by phone"},
    )
    ledger_row(
        session,
        envelope("customer.created", {"id": "ctm_01orphan", "email": "orphan@example.com"}),
        status="processed",
    )
    token = sign_in(browser)
    listing = browser.get("/admin/unlinked").get_data(as_text=True)
    assert "sub_01orphan" in listing and "orphan@example.com" in listing
    assert "bought by phone" in listing

    confirm = browser.get(
        "/admin/unlinked/sub_01orphan/link", query_string={"account_id": "acct_new"}
    )
    assert b"Confirm: link to acct_new" in confirm.data
    assert stored(select(Subscription.account_id)) == [None]  # asked, not done yet

    done = browser.post(
        "/admin/unlinked/sub_01orphan/link", data={"csrf_token": token, "account_id": "acct_new"}
    )
    assert done.status_code == 303 and done.headers["Location"] == "/admin/accounts/acct_new"
    assert stored(select(Subscription.account_id)) == ["acct_new"]
    assert audit_entries()[-1] == ("Ada", "link_subscription", "ok", "sub_01orphan")


def test_a_link_that_breaks_the_rule_is_refused_and_recorded(browser, session):
    make_active_subscription(session, "acct_1")
    make_subscription(session, status="active", paddle_subscription_id="sub_01second")
    token = sign_in(browser)
    warning = browser.get(
        "/admin/unlinked/sub_01second/link", query_string={"account_id": "acct_1"}
    )
    assert b"already has a live subscription" in warning.data
    refused = browser.post(
        "/admin/unlinked/sub_01second/link", data={"csrf_token": token, "account_id": "acct_1"}
    )
    assert refused.status_code == 303
    second = select(Subscription.account_id).where(
        Subscription.paddle_subscription_id == "sub_01second"
    )
    assert stored(second) == [None]
    assert audit_entries()[-1][1:] == ("link_subscription", "refused", "sub_01second")


def test_reconcile_now_is_a_request_a_scheduler_runs_under_the_lease(console, browser, session):
    """The console only asks; a scheduler process takes the request (a web process may be
    restarted by a deploy mid-run), and while another run holds the lease it waits."""
    from billing_app import jobs

    token = sign_in(browser)
    asked = browser.post("/admin/reconciliation", data={"csrf_token": token, "dry_run": "yes"})
    assert asked.status_code == 303
    page = browser.get("/admin/reconciliation").get_data(as_text=True)
    assert "A dry run was requested, but no scheduler is running" in page
    assert "is waiting for a scheduler process" in page
    assert "Reconciliation started" not in page
    assert stored(select(ReconcileRun)) == []  # nothing ran in the web process
    jobs.heartbeat(console)
    browser.post("/admin/reconciliation", data={"csrf_token": token, "dry_run": "yes"})
    page = browser.get("/admin/reconciliation").get_data(as_text=True)
    assert "A dry run was requested: a scheduler process starts it within seconds" in page

    lease = Lease(db.engine, "reconcile", timedelta(minutes=5))
    assert lease.acquire()
    assert jobs.run_requested_reconciliation(console) is None  # refused: it waits again
    assert [request.taken_at for request in stored(select(ReconcileRequest))] == [None]
    lease.release()

    with responses.RequestsMock() as paddle:
        serve_subscription_list(
            paddle, [paddle_entity("sub_01new", updated_at="2026-03-01T00:00:00Z")]
        )
        run = jobs.run_requested_reconciliation(console)
    assert (run.status, run.dry_run, run.seen) == ("succeeded", True, 1)
    assert stored(select(JobLease)) == []  # given back
    assert jobs.run_requested_reconciliation(console) is None  # nothing waits any more
    page = browser.get(f"/admin/reconciliation/{run.id}").get_data(as_text=True)
    assert "succeeded" in page and "dry run" in page
    assert [entry[1:3] for entry in audit_entries()[-1:]] == [("reconcile_dry_run", "requested")]


def test_usage_lists_overage_charges_by_status(browser, session):
    for status in ("confirmed", "dead"):
        session.add(
            UsageCharge(
                account_id=f"acct_{status}",
                paddle_subscription_id=f"sub_{status}",
                meter="api_calls",
                period_start=datetime(2026, 2, 1, tzinfo=UTC),
                period_end=datetime(2026, 3, 1, tzinfo=UTC),
                used=1500,
                price_id="pri_overage",
                quantity=5,
                effective_from="next_billing_period",
                status=status,
            )
        )
    session.commit()
    sign_in(browser)
    dead = browser.get("/admin/usage", query_string={"status": "dead"}).get_data(as_text=True)
    assert "acct_dead" in dead and "acct_confirmed" not in dead


def test_the_overview_counts_what_the_table_holds(browser, session):
    make_active_subscription(session, "acct_1")  # 10 seats of 30.00 USD a month
    make_account(session, "acct_2")
    make_subscription(
        session,
        account_id="acct_2",
        status="past_due",
        current_period_start=utcnow() - timedelta(days=1),
    )
    make_subscription(session, status="active", paddle_subscription_id="sub_nobody")
    ledger_row(session, envelope("subscription.updated", subscription_data()), status="dead")
    session.add(
        Transaction(paddle_transaction_id="txn_01bank", account_id="acct_1", status="completed")
    )
    session.add(
        Adjustment(
            paddle_adjustment_id="adj_01bank",
            paddle_transaction_id="txn_01bank",
            paddle_subscription_id=SAMPLE_SUBSCRIPTION,
            action="chargeback",
            status="approved",
            currency="USD",
            total=3000,
        )
    )
    session.commit()
    sign_in(browser)
    html = browser.get("/admin/").get_data(as_text=True)
    chargebacks = html.split('id="chargebacks"', 1)[1].split("</table>", 1)[0]
    assert "/admin/accounts/acct_1" in chargebacks and "30.00 USD" in chargebacks
    figure = re.search(r"Accounts with access now</div>\s*<div class=\"value\">(\d+)", html)
    assert figure.group(1) == "2"  # the unlinked one gives no account access
    assert "300.00 USD" in html  # MRR: 3000 minor units x 10 seats (the linked active only)
    dead = re.search(r"Dead letters</div>\s*<div class=\"value\"><a [^>]+>(\d+)", html)
    assert dead.group(1) == "1"


def test_the_sign_in_limit_holds_when_the_apis_limits_are_off(make_app, password_hash):
    app = make_app(
        ADMIN_PASSWORD_HASH=password_hash,
        ADMIN_SIGN_IN_RATE_LIMIT="3/minute",
        RATE_LIMIT_ENABLED=False,
    )
    assert [answer.status_code for answer in guesses(app, 3)] == [401, 401, 401]
    (refused,) = guesses(app, 1, PASSWORD)  # even the right one, until the minute is over
    assert refused.status_code == 429
    assert refused.mimetype == "text/html" and b"Too many attempts" in refused.data
    assert "Retry-After" in refused.headers


def test_the_sign_in_limit_has_its_own_switch(make_app, password_hash):
    app = make_app(
        ADMIN_PASSWORD_HASH=password_hash,
        ADMIN_SIGN_IN_RATE_LIMIT="1/minute",
        ADMIN_SIGN_IN_RATE_LIMIT_ENABLED=False,
    )
    assert [answer.status_code for answer in guesses(app, 3)] == [401, 401, 401]


def test_a_cookie_copied_before_signing_out_opens_nothing_after(console, browser):
    token = sign_in(browser)
    copied = browser.get_cookie("billing_console", path="/admin").value
    assert browser.post("/admin/sign-out", data={"csrf_token": token}).status_code == 303
    thief = console.test_client()
    thief.set_cookie("billing_console", copied, path="/admin")
    assert thief.get("/admin/").status_code == 303  # to the sign-in page
    assert b"Sign in" in thief.get("/admin/", follow_redirects=True).data


@pytest.mark.parametrize(
    "target",
    [
        "/admin\r\nX-Injected: 1",
        "/admin%0d%0aX:1",
        "//evil.example/admin",
        "/admin//evil.example",
        "/admin\\@evil.example",
        "https://evil.example/admin/",
        "/admin/../elsewhere",
    ],
)
def test_every_console_redirect_stays_on_a_console_page(browser, session, target):
    token = sign_in(browser)
    signed_in = browser.get("/admin/sign-in", query_string={"next": target})
    assert signed_in.status_code == 303
    assert signed_in.headers["Location"] == "/admin/"
    replayed = browser.post(
        "/admin/webhooks/replay", data={"csrf_token": token, "event_id": "evt_x", "back": target}
    )
    assert replayed.status_code == 303
    assert replayed.headers["Location"] == "/admin/webhooks"


def test_the_flask_command_line_has_the_admin_commands(console):
    result = console.test_cli_runner().invoke(
        args=["admin", "hash-password"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("scrypt:")


def test_a_customer_paying_for_two_accounts_is_shown_to_operators(browser, session):
    make_account(session, "acct_mallory", paddle_customer_id="ctm_01sharedsharedsharedshared0")
    make_account(session, "acct_bob")
    for account_id, paddle_id in (("acct_mallory", "sub_01hers"), ("acct_bob", "sub_01his")):
        make_subscription(
            session,
            account_id=account_id,
            status="active",
            paddle_subscription_id=paddle_id,
            paddle_customer_id="ctm_01sharedsharedsharedshared0",
        )
    make_account(session, "acct_alone", paddle_customer_id="ctm_01alonealonealonealone000")
    sign_in(browser)
    page = browser.get("/admin/unlinked").data.decode()
    assert "paying for more than one account" in page
    assert "ctm_01sharedsharedsharedshared0" in page
    assert "acct_mallory" in page and "acct_bob" in page
    assert "ctm_01alonealonealonealone000" not in page


# Outbound events


def test_an_operator_adds_an_endpoint_sees_deliveries_and_redelivers(make_app, password_hash):
    app = make_app(ADMIN_PASSWORD_HASH=password_hash, EVENTS_ALLOW_PRIVATE_URLS=True)
    app.test_client_class = OwnContextClient
    browser = app.test_client()
    with app.app_context(), Receiver() as receiver:
        token = sign_in(browser)
        added = browser.post(
            "/admin/events/endpoints",
            data={"csrf_token": token, "url": receiver.url, "type": "", "description": "the app"},
            follow_redirects=True,
        )
        assert b"Its signing secret, shown this once: whsec_" in added.data
        make_active_subscription(db.session)
        send_due(app)
        page = browser.get("/admin/events")
        assert page.data.count(b'class="status delivered"') == 3
        event_id = events_of(app)[0]["id"]
        detail = browser.get(f"/admin/events/{event_id}")
        assert b"200 in" in detail.data and b"subscription.created" in detail.data
        again = browser.post(
            f"/admin/events/{event_id}/redeliver",
            data={"csrf_token": token, "back": f"/admin/events/{event_id}"},
            follow_redirects=True,
        )
        assert b"1 delivery(ies) go out again" in again.data
        assert send_due(app) == {"delivered": 1}
        endpoint_id = stored(select(EventEndpoint.id))[0]
        browser.post(f"/admin/events/endpoints/{endpoint_id}/disable", data={"csrf_token": token})
        assert b"status disabled" in browser.get("/admin/events").data
        refused = browser.post(
            "/admin/events/endpoints",
            data={"csrf_token": token, "url": "ftp://example.com/x"},
            follow_redirects=True,
        )
        assert b"is not an http(s) URL" in refused.data
        actions = [entry[1] for entry in audit_entries()]
    assert actions[1:] == ["add_event_endpoint", "redeliver_event", "disable_event_endpoint"]


def test_an_operator_exports_an_account_and_erases_it_after_typing_its_id(browser, session):
    make_account(session, "acct_1", email="jo@example.com", name="Jo")
    token = sign_in(browser)
    page = browser.get("/admin/accounts/acct_1").get_data(as_text=True)
    assert "/admin/accounts/acct_1/export" in page and "/admin/accounts/acct_1/erase" in page

    exported = browser.get("/admin/accounts/acct_1/export")
    assert exported.status_code == 200 and exported.mimetype == "application/json"
    assert exported.json["account"]["email"] == "jo@example.com"

    confirm = browser.get("/admin/accounts/acct_1/erase").get_data(as_text=True)
    assert "Type the account id to confirm" in confirm and "account" in confirm
    mistyped = browser.post(
        "/admin/accounts/acct_1/erase", data={"csrf_token": token, "confirm": "acct_"}
    )
    assert mistyped.status_code == 303
    assert stored(select(Account.email)) == ["jo@example.com"]  # nothing erased

    done = browser.post(
        "/admin/accounts/acct_1/erase", data={"csrf_token": token, "confirm": "acct_1"}
    )
    assert done.status_code == 303 and done.headers["Location"] == "/admin/accounts/acct_1"
    assert stored(select(Account.email)) == [None]
    assert ("Ada", "erase_account", "ok", "acct_1") in audit_entries()
    again = browser.get("/admin/accounts/acct_1/erase").get_data(as_text=True)
    assert "already erased" in again
