"""The Python client (`clients/python`, `billing_client`) against the real service under
gunicorn, beside the Paddle simulator: answers from memory kept current by the events feed,
the clock's changes, outages, background usage, and the framework helpers."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from billing_client import BillingClient, QuotaExceeded
from billing_client.flask import requires_feature
from billing_client.middleware import MeteringMiddleware
from flask import Flask, g, request
from werkzeug.exceptions import HTTPException

from billing_app.models import Subscription
from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.rows import make_account, make_plan, make_subscription
from tests.helpers.stack import ROOT, STARTER, Api, Sim, Stack, serving, status_becomes
from tests.helpers.waiting import eventually

SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
PROCESSES = 4
CLIENT_PROCESS = [sys.executable, "-m", "tests.helpers.client_process"]


@pytest.fixture(scope="module")
def stack(_migrated):
    """Threads enough for every client's long poll of the feed (one each)."""
    running = Stack(_migrated).start(workers=2, threads=16)
    yield running
    running.stop()


@pytest.fixture
def e2e(stack):
    requests.post(f"{stack.sim}/_sim/reset", timeout=5).raise_for_status()
    return stack


@pytest.fixture
def proxy(e2e):
    faults = FaultProxy(e2e.service)
    with serving(faults.app) as url:
        faults.url = url
        yield faults


@pytest.fixture
def clients():
    made: list[BillingClient] = []

    def make(base_url: str, **options) -> BillingClient:
        client = BillingClient(base_url, SERVICE_TOKEN, feed_wait=2, **options)
        made.append(client)
        assert client.wait_until_following(15), "the client never followed the feed"
        return client

    yield make
    for client in made:
        client.close(timeout=5)


def active(session, account_id: str, **plan_fields) -> None:
    """An account with an active subscription on a plan giving "projects" and "exports"."""
    plan = make_plan(
        session, slug=f"plan-{account_id}", price_id=f"pri_{account_id}", **plan_fields
    )
    make_account(session, account_id)
    make_subscription(
        session,
        account_id=account_id,
        status="active",
        plan_id=plan.id,
        paddle_subscription_id=f"sub_{account_id}",
        current_period_start=datetime.now(UTC) - timedelta(days=1),
        current_period_end=datetime.now(UTC) + timedelta(days=29),
    )


def change(session, account_id: str, **values) -> None:
    """A change applied by the service's own code path (the ORM: its events are written)."""
    subscription = session.query(Subscription).filter_by(account_id=account_id).one()
    for name, value in values.items():
        setattr(subscription, name, value)
    session.commit()


def test_paying_allows_and_an_immediate_cancel_denies_within_a_second_everywhere(
    e2e, session, clients
):
    api, sim = Api(e2e), Sim(e2e)
    billing = clients(e2e.service)
    assert not billing.allowed("acct_e2e", "projects")  # nothing bought yet

    make_plan(session, slug="starter", price_id=STARTER, amount="1900", features=["projects"])
    started = api.post("/checkout", {"plan": "starter"}).json()
    sim.post(f"/transactions/{started['transaction_id']}/complete")
    assert eventually(lambda: billing.allowed("acct_e2e", "projects"), timeout=15)
    assert billing.entitlements("acct_e2e").plan == "starter"
    assert status_becomes(api, "active")

    processes = [
        subprocess.Popen(
            [*CLIENT_PROCESS, e2e.service, SERVICE_TOKEN, "acct_e2e", "projects"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for process in processes:
            assert process.stdout.readline().split() == ["ready", "True"]
        canceled = api.act("/subscription/cancel", {"effective_from": "immediately"})
        applied = time.time()  # the cancel is stored when Paddle's answer comes back
        assert canceled.status_code == 200, canceled.text
        outputs = [process.communicate(timeout=30)[0].split() for process in processes]
    finally:
        for process in processes:
            process.kill()
    delays = [float(output[1]) - applied for output in outputs if output[0] == "changed"]
    assert len(delays) == PROCESSES, outputs
    assert max(delays) < 1.0, delays
    assert not billing.allowed("acct_e2e", "projects")


def test_an_answer_changes_when_its_recheck_at_comes_with_no_event(e2e, session, clients):
    active(session, "acct_1")
    billing = clients(e2e.service)
    assert billing.allowed("acct_1", "exports")
    stops = datetime.now(UTC) + timedelta(seconds=2)
    change(session, "acct_1", scheduled_action="cancel", scheduled_effective_at=stops)
    assert eventually(lambda: billing.entitlements("acct_1").recheck_at == stops, timeout=5)
    assert billing.allowed("acct_1", "exports")
    assert eventually(lambda: not billing.allowed("acct_1", "exports"), timeout=5, pause=0.01)
    # On time, by the client's own clock (the service's clock job tells it within a minute).
    assert timedelta(0) <= datetime.now(UTC) - stops < timedelta(seconds=0.5)


def test_the_service_stopped_serves_max_stale_then_the_fallback(e2e, session, clients, caplog):
    active(session, "acct_1")
    active(session, "acct_2")
    deny = clients(e2e.service, max_stale=3)
    per_feature = clients(e2e.service, max_stale=3, on_unavailable={"exports": True})
    for billing in (deny, per_feature):
        assert billing.allowed("acct_1", "projects") and billing.allowed("acct_1", "exports")
    e2e.stop_service()
    try:
        assert eventually(lambda: not deny.following, timeout=10)
        assert deny.allowed("acct_1", "projects")  # within max_stale: from memory
        assert not deny.allowed("acct_2", "projects")  # never read: the fallback at once
        with caplog.at_level(logging.WARNING, logger="billing_client"):
            assert eventually(lambda: not deny.allowed("acct_1", "projects"), timeout=10)
        assert deny.stale_for >= 3  # not before max_stale
        assert eventually(lambda: not per_feature.allowed("acct_1", "projects"), timeout=10)
        assert per_feature.allowed("acct_1", "exports")  # its fallback value
        assert deny.stats["fallback_answers"] >= 2
        assert "billing service unavailable" in caplog.text
    finally:
        e2e.start_service(workers=2, threads=16)
    assert eventually(lambda: deny.allowed("acct_1", "projects"), timeout=15)


def test_every_change_made_while_the_feed_was_cut_is_seen_after(e2e, session, proxy, clients):
    accounts = [f"acct_{n}" for n in range(5)]
    for account_id in accounts:
        active(session, account_id)
    billing = clients(proxy.url, max_stale=120)
    billing.prefetch(accounts)
    assert all(billing.allowed(account_id, "exports") for account_id in accounts)
    fetches = billing.stats["fetches"]

    proxy.faults["/api/v1/events"] = "down"
    assert eventually(lambda: not billing.following, timeout=10)
    for account_id in accounts[:3]:
        change(session, account_id, status="canceled")
    assert all(billing.allowed(a, "exports") for a in accounts)  # stale, within max_stale

    del proxy.faults["/api/v1/events"]
    assert eventually(lambda: billing.following, timeout=10)
    assert [billing.allowed(a, "exports") for a in accounts] == [False] * 3 + [True] * 2
    assert billing.stats["fetches"] == fetches + 3  # the changed ones read again, no other


def test_background_usage_through_a_503_period_is_counted_once(e2e, session, proxy, clients):
    active(session, "acct_1", meters={"api_calls": {"included": 1000}})
    billing = clients(proxy.url, usage_interval=0.2, usage_batch_size=50)
    proxy.faults["/api/v1/usage/batch"] = "lose_answer"  # recorded, but the answer is lost
    for _ in range(120):
        billing.usage.add("acct_1", "api_calls", 1)
    assert eventually(lambda: billing.stats["usage_retries"] >= 2, timeout=10)
    proxy.faults["/api/v1/usage/batch"] = "down"
    time.sleep(0.5)
    del proxy.faults["/api/v1/usage/batch"]
    assert billing.usage.flush(timeout=20)
    used = requests.get(f"{e2e.service}/api/v1/accounts/acct_1/usage", headers=SERVICE, timeout=5)
    assert used.json()["meters"][0]["used"] == 120
    assert billing.stats["usage_sent"] + billing.stats["usage_duplicates"] == 120
    assert billing.stats["usage_duplicates"] > 0  # the lost answers' reports, counted once


def test_report_usage_answers_now_and_raises_past_the_hard_limit(e2e, session, clients):
    active(session, "acct_1", meters={"api_calls": {"included": 10, "hard_limit": 10}})
    billing = clients(e2e.service)
    assert billing.report_usage("acct_1", "api_calls", 7, key="req-1").remaining == 3
    assert billing.report_usage("acct_1", "api_calls", 7, key="req-1").used == 7  # once
    with pytest.raises(QuotaExceeded) as refused:
        billing.report_usage("acct_1", "api_calls", 4, key="req-2")
    assert refused.value.status == 402
    assert billing.exhausted("acct_1", "api_calls")


def test_the_middleware_meters_requests_and_refuses_past_a_hard_limit(e2e, session, clients):
    active(session, "acct_1", meters={"api_calls": {"included": 5, "hard_limit": 5}})
    billing = clients(e2e.service, usage_interval=0.1)
    product = Flask("product")
    product.add_url_rule("/work", "work", lambda: "done")
    product.wsgi_app = MeteringMiddleware(
        product.wsgi_app, billing, "api_calls", account=lambda env: env.get("HTTP_X_ACCOUNT")
    )
    http = product.test_client()
    statuses = [http.get("/work", headers={"X-Account": "acct_1"}).status_code for _ in range(7)]
    assert statuses == [200] * 5 + [402] * 2
    assert http.get("/work").status_code == 200  # no account: not metered
    assert billing.usage.flush(timeout=10)
    used = requests.get(f"{e2e.service}/api/v1/accounts/acct_1/usage", headers=SERVICE, timeout=5)
    assert used.json()["meters"][0]["used"] == 5
    assert billing.stats["requests_refused"] == 2


def test_the_flask_gate_answers_402_or_403_in_the_apps_style(e2e, session, clients):
    active(session, "acct_paid", features=["projects"])
    billing = clients(e2e.service)
    product = Flask("product")

    @product.get("/exports")
    @requires_feature(billing, "exports", account=lambda: g.get("account"))
    def exports():
        return "exported"

    @product.before_request
    def who():
        g.account = request.headers.get("X-Account")

    @product.errorhandler(HTTPException)
    def refused(error):
        return {"refused": error.code, "why": error.description}, error.code

    http = product.test_client()
    paid = http.get("/exports", headers={"X-Account": "acct_paid"})
    assert (paid.status_code, paid.json["refused"]) == (403, 403)  # pays, plan lacks it
    assert http.get("/exports", headers={"X-Account": "acct_free"}).status_code == 402
    change(session, "acct_paid", plan_id=make_plan(session, slug="pro", price_id="pri_pro").id)
    assert eventually(
        lambda: http.get("/exports", headers={"X-Account": "acct_paid"}).status_code == 200
    )


def asgi_get(app, path: str, headers: dict[str, str]):
    """One request to an ASGI app, in process (httpx's ASGI transport)."""
    import asyncio

    import httpx

    async def get():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://product") as http:
            return await http.get(path, headers=headers)

    return asyncio.run(get())


def test_the_fastapi_dependency_and_the_asgi_middleware(e2e, session, clients):
    from billing_client.fastapi import requires_feature as fastapi_requires
    from billing_client.middleware import AsgiMeteringMiddleware
    from fastapi import Depends, FastAPI, Header

    active(session, "acct_paid", meters={"api_calls": {"included": 2, "hard_limit": 2}})
    billing = clients(e2e.service, usage_interval=0.1)
    product = FastAPI()

    def account(x_account: str = Header()) -> str:
        return x_account

    exports_allowed = fastapi_requires(billing, "exports", account=account)

    @product.get("/exports")
    def exports(account_id: str = Depends(exports_allowed)):
        return {"exported_for": account_id}

    assert asgi_get(product, "/exports", {"X-Account": "acct_paid"}).json() == {
        "exported_for": "acct_paid"
    }
    refused = asgi_get(product, "/exports", {"X-Account": "acct_nobody"})
    assert refused.status_code == 402 and "exports" in refused.json()["detail"]

    def account_of(scope) -> str | None:
        return dict(scope["headers"]).get(b"x-account", b"").decode() or None

    metered = AsgiMeteringMiddleware(product, billing, "api_calls", account=account_of)
    statuses = [
        asgi_get(metered, "/exports", {"X-Account": "acct_paid"}).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 402]


def test_a_full_buffer_drops_by_policy_and_counts_it(e2e, session, proxy, clients):
    billing = clients(proxy.url, usage_max_buffer=3, usage_when_full="drop", usage_batch_size=1000)
    proxy.faults["/api/v1/usage/batch"] = "down"
    added = [billing.usage.add("acct_1", "api_calls") for _ in range(6)]
    assert added.count(False) >= 2 and billing.stats["usage_dropped"] == added.count(False)
    del proxy.faults["/api/v1/usage/batch"]


def test_a_background_report_refused_past_the_hard_limit_is_told_and_counted(e2e, session, clients):
    active(session, "acct_1", meters={"api_calls": {"included": 3, "hard_limit": 3}})
    refusals = []
    billing = clients(e2e.service, usage_interval=0.1, on_usage_refused=refusals.append)
    for _ in range(5):
        billing.usage.add("acct_1", "api_calls", 1)
    assert billing.usage.flush(timeout=10)
    assert [(r.status, r.error) for r in refusals] == [(402, "quota_exceeded")] * 2
    assert billing.stats["usage_refused"] == 2 and billing.stats["usage_sent"] == 3
    assert billing.exhausted("acct_1", "api_calls")  # the middleware refuses from now on
