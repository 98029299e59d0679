"""The Python client's own rules, without a service: misses batched, a fetch overtaken by a
change not kept, the fallback values, and a clock behind the service's. (The client against
the real service: tests/e2e/test_python_client.py.)"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import responses
from billing_client import BillingClient, Entitlements, Fallback
from billing_client.cache import RECHECK_AT_LEAST_AFTER, EntitlementCache, recheck_deadline

SERVICE = "https://billing.test"


def answer(account_id: str, features=("exports",), **fields) -> dict:
    return {
        "account_id": account_id,
        "access": True,
        "plan": "pro",
        "status": "active",
        "features": list(features),
        "limits": {"projects": 3},
        "seats": 1,
        "meters": [],
        "grants": [],
        "recheck_at": None,
        **fields,
    }


@pytest.fixture
def service():
    """The billing service's HTTP API, faked at the edge: a batch read that takes 0.2 s
    and a feed that has nothing new (each poll waits a moment, as a long poll does)."""
    asked: list[list[str]] = []

    def batch(request):
        accounts = json.loads(request.body)["account_ids"]
        asked.append(accounts)
        time.sleep(0.2)
        return 200, {}, json.dumps({"entitlements": [answer(a) for a in accounts]})

    def events(_request):
        time.sleep(0.05)
        return 200, {}, json.dumps({"data": [], "next_cursor": "c0"})

    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        fake.add_callback("POST", f"{SERVICE}/api/v1/entitlements/batch", callback=batch)
        fake.add("GET", f"{SERVICE}/api/v1/events/cursor", json={"cursor": "c0"})
        fake.add_callback("GET", f"{SERVICE}/api/v1/events", callback=events)
        yield asked


def test_reads_missed_while_a_fetch_is_on_its_way_are_fetched_together(service):
    billing = BillingClient(SERVICE, "token")
    assert billing.wait_until_following(5)
    answers: dict[str, bool] = {}

    def ask(account_id: str) -> None:
        answers[account_id] = billing.allowed(account_id, "exports")

    first = threading.Thread(target=ask, args=("acct_0",))
    first.start()
    time.sleep(0.05)  # acct_0's fetch is on its way
    rest = [threading.Thread(target=ask, args=(f"acct_{n}",)) for n in range(1, 10)]
    for thread in rest:
        thread.start()
    for thread in [first, *rest]:
        thread.join()
    billing.close(timeout=1)
    assert answers == {f"acct_{n}": True for n in range(10)}
    assert service[0] == ["acct_0"]
    assert sorted(a for asked in service[1:] for a in asked) == [f"acct_{n}" for n in range(1, 10)]
    assert len(service) == 2  # the nine that waited went together


def test_a_fetch_overtaken_by_a_change_answers_but_is_not_kept():
    cache: EntitlementCache

    def fetch(account_ids):
        cache.forget(["acct_1"])  # the feed heard of a change while the read was on its way
        return {a: Entitlements.of(answer(a)) for a in account_ids}

    cache = EntitlementCache(fetch)
    read = cache.read(["acct_1", "acct_2"])
    assert read["acct_1"].answer.access and read["acct_2"].answer.access
    assert set(cache.entries) == {"acct_2"}


def test_the_fallback_answers_per_feature_and_denies_the_rest():
    assert not Fallback("deny").allows("exports") and Fallback("deny").limit("projects") == 0
    assert Fallback("allow").allows("exports") and Fallback("allow").limit("projects") is None
    mapped = Fallback({"exports": True, "projects": 3, "sso": False})
    assert mapped.allows("exports") and not mapped.allows("sso")
    assert not mapped.allows("audit")  # not named: denied
    assert (mapped.limit("projects"), mapped.limit("exports"), mapped.limit("seats")) == (
        3,
        None,
        0,
    )
    with pytest.raises(ValueError):
        Fallback("maybe")


def test_an_answer_is_rechecked_at_its_recheck_at_and_never_in_a_busy_loop():
    now = time.monotonic()
    soon = Entitlements.of(
        answer("a", recheck_at=(datetime.now(UTC) + timedelta(seconds=30)).isoformat())
    )
    assert 29 < recheck_deadline(soon, now) - now <= 30
    # A host clock ahead of the service's: the moment has passed here, not there yet.
    passed = Entitlements.of(
        answer("a", recheck_at=(datetime.now(UTC) - timedelta(seconds=5)).isoformat())
    )
    assert recheck_deadline(passed, now) - now == RECHECK_AT_LEAST_AFTER
    assert recheck_deadline(Entitlements.of(answer("a")), now) == float("inf")


def test_a_forked_child_trusts_nothing_of_its_parent_and_follows_the_feed_itself(service):
    import os

    billing = BillingClient(SERVICE, "token")
    assert billing.allowed("acct_1", "exports") and billing.wait_until_following(5)
    billing.usage.add("acct_1", "api_calls")  # the parent's to send
    child = os.fork()
    if child == 0:  # the child: 0 if all holds, else which check failed
        checks = [
            not billing.following,
            billing.usage.pending() == 0,
            billing.allowed("acct_1", "exports"),  # read again, by the child
            billing.wait_until_following(5),
        ]
        os._exit(next((n + 1 for n, held in enumerate(checks) if not held), 0))
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert billing.following and billing.usage.pending() == 1
    billing.close(timeout=0.1)  # the fake service has no batch endpoint: it is not sent
    assert len(service) == 1  # the parent's read only; the child's was in the child


def test_a_service_that_cannot_be_read_is_tried_once_a_second_not_by_every_call():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        down = responses.ConnectionError("refused")
        batch = fake.add("POST", f"{SERVICE}/api/v1/entitlements/batch", body=down)
        fake.add("GET", f"{SERVICE}/api/v1/events/cursor", body=down)
        billing = BillingClient(SERVICE, "token", on_unavailable={"exports": True})
        answers = [billing.allowed("acct_1", feature) for feature in ["exports", "sso"] * 50]
        assert answers == [True, False] * 50  # the fallback's, at once
        assert batch.call_count == 1
        assert billing.stats["fallback_answers"] == 100
        billing.close(timeout=0)


def test_while_the_feed_is_lost_but_reads_work_an_answer_is_trusted_a_second():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        batch = fake.add(
            "POST",
            f"{SERVICE}/api/v1/entitlements/batch",
            json={"entitlements": [answer("acct_1")]},
        )
        fake.add("GET", f"{SERVICE}/api/v1/events/cursor", status=503)
        billing = BillingClient(SERVICE, "token")
        assert all(billing.allowed("acct_1", "exports") for _ in range(100))
        assert batch.call_count == 1 and not billing.following
        time.sleep(1.05)
        assert billing.allowed("acct_1", "exports")
        assert batch.call_count == 2  # read again: nothing tells it of changes
        billing.close(timeout=0)
