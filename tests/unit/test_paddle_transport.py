"""The retry loop: what is retried, how long it waits, and what it gives up with."""

import pytest
import requests
import responses

from paddle_client import ApiError, Client, RateLimited, RetryPolicy, Unavailable
from paddle_client.transport import backoff_delay, may_retry
from tests.helpers.config import PADDLE_BASE
from tests.helpers.samples import sample


class FakeClock:
    """Time that moves only when the client sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


def make_client(clock, **policy):
    client = Client(
        "pdl_sdbx_apikey_secret",
        base_url=PADDLE_BASE,
        retry=RetryPolicy(**policy) if policy else None,
        sleep=clock.sleep,
        rand=lambda: 1.0,  # the top of each jitter window, so the schedule is exact
    )
    client.transport._clock = clock
    return client


def rate_limited(retry_after="3"):
    return responses.Response(
        "GET",
        f"{PADDLE_BASE}/subscriptions/sub_1",
        status=429,
        json=sample("api-error-too-many-requests.json"),
        headers={"Retry-After": retry_after},
    )


def test_backoff_grows_exponentially_and_is_capped():
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    assert [backoff_delay(n, policy, lambda: 1.0) for n in range(1, 6)] == [0.5, 1, 2, 4, 4]
    assert backoff_delay(3, policy, lambda: 0.25) == 0.5  # jitter scales the window


def test_the_retry_rule():
    assert may_retry(status=429, reached_paddle=True, repeatable=False)
    assert may_retry(status=None, reached_paddle=False, repeatable=False)
    assert may_retry(status=502, reached_paddle=True, repeatable=True)
    assert not may_retry(status=502, reached_paddle=True, repeatable=False)
    assert not may_retry(status=None, reached_paddle=True, repeatable=False)
    assert not may_retry(status=404, reached_paddle=True, repeatable=True)


def test_429_waits_retry_after_then_succeeds(paddle, clock):
    paddle.add(rate_limited("3"))
    paddle.get(f"{PADDLE_BASE}/subscriptions/sub_1", json=sample("api-subscription-get.json"))
    subscription = make_client(clock).subscriptions.get("sub_1")
    assert subscription["id"].startswith("sub_")
    assert clock.sleeps == [3.0]  # Retry-After beats the 0.5 s backoff


def test_429_that_outlasts_the_budget_raises_rate_limited_with_retry_after(paddle, clock):
    paddle.add(rate_limited("120"))
    with pytest.raises(RateLimited) as caught:
        make_client(clock, max_elapsed=30).subscriptions.get("sub_1")
    assert caught.value.retry_after == 120
    assert clock.sleeps == []
    assert isinstance(caught.value, Unavailable)


def test_5xx_is_retried_then_raised_as_unavailable(paddle, clock):
    for _ in range(4):
        paddle.get(f"{PADDLE_BASE}/subscriptions/sub_1", status=503, body="upstream down")
    with pytest.raises(Unavailable) as caught:
        make_client(clock).subscriptions.get("sub_1")
    assert caught.value.status == 503
    assert len(paddle.calls) == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_total_time_is_bounded(paddle, clock):
    for _ in range(2):
        paddle.get(f"{PADDLE_BASE}/subscriptions/sub_1", status=500, json={})
    with pytest.raises(Unavailable):
        make_client(
            clock, max_attempts=10, base_delay=2, max_delay=60, max_elapsed=5
        ).subscriptions.get("sub_1")
    assert sum(clock.sleeps) <= 5
    assert len(paddle.calls) == 2  # 2 s, then 4 s would pass the 5 s budget


def test_timeouts_are_retried_for_reads(paddle, clock):
    paddle.get(f"{PADDLE_BASE}/subscriptions/sub_1", body=requests.exceptions.ReadTimeout("slow"))
    paddle.get(f"{PADDLE_BASE}/subscriptions/sub_1", json=sample("api-subscription-get.json"))
    assert make_client(clock).subscriptions.get("sub_1")["id"].startswith("sub_")
    assert len(paddle.calls) == 2


def test_a_transaction_create_that_may_have_reached_paddle_is_not_repeated(paddle, clock):
    paddle.post(f"{PADDLE_BASE}/transactions", body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(Unavailable):
        make_client(clock).transactions.create([{"price_id": "pri_1", "quantity": 1}])
    assert len(paddle.calls) == 1

    paddle.post(f"{PADDLE_BASE}/transactions", status=502, json={})
    with pytest.raises(Unavailable):
        make_client(clock).transactions.create([{"price_id": "pri_1", "quantity": 1}])
    assert len(paddle.calls) == 2


def test_a_transaction_create_that_never_left_is_retried(paddle, clock):
    paddle.post(f"{PADDLE_BASE}/transactions", body=requests.exceptions.ConnectTimeout("no route"))
    paddle.post(f"{PADDLE_BASE}/transactions", status=429, json={}, headers={"Retry-After": "1"})
    paddle.post(
        f"{PADDLE_BASE}/transactions", json=sample("api-transaction-create.json"), status=201
    )
    transaction = make_client(clock).transactions.create([{"price_id": "pri_1", "quantity": 1}])
    assert transaction["id"].startswith("txn_")
    assert len(paddle.calls) == 3


def test_a_state_transition_whose_answer_was_lost_is_not_sent_again(paddle, clock):
    """A repeat of a pause that landed is refused; the caller reads back instead."""
    paddle.post(f"{PADDLE_BASE}/subscriptions/sub_1/cancel", status=500, json={})
    with pytest.raises(Unavailable) as caught:
        make_client(clock).subscriptions.cancel("sub_1")
    assert caught.value.may_have_applied is True
    assert len(paddle.calls) == 1


def test_a_state_transition_that_never_left_is_retried(paddle, clock):
    paddle.post(
        f"{PADDLE_BASE}/subscriptions/sub_1/cancel", body=requests.exceptions.ConnectTimeout()
    )
    paddle.post(
        f"{PADDLE_BASE}/subscriptions/sub_1/cancel", json=sample("api-subscription-get.json")
    )
    make_client(clock).subscriptions.cancel("sub_1")
    assert len(paddle.calls) == 2


def test_a_rate_limited_answer_did_not_apply(paddle, clock):
    paddle.get(
        f"{PADDLE_BASE}/subscriptions/sub_1", status=429, json={}, headers={"Retry-After": "1"}
    )
    with pytest.raises(RateLimited) as caught:
        make_client(clock, max_attempts=1).subscriptions.get("sub_1")
    assert caught.value.may_have_applied is False


def test_a_deadline_bounds_attempts_and_sleeps_together(paddle, clock):
    paddle.get(f"{PADDLE_BASE}/subscriptions/sub_1", status=503, json={})  # every time
    client = make_client(clock, max_attempts=4, base_delay=2, max_delay=8, max_elapsed=30)
    with pytest.raises(Unavailable), client.deadline(5):
        client.subscriptions.get("sub_1")
    # Sleeps of 2 s then 4 s: the second would end past the 5 s deadline, so it is not taken.
    assert clock.sleeps == [2]
    assert len(paddle.calls) == 2


def test_each_attempt_gets_only_the_time_left(paddle, clock):
    seen = []

    def answer(request):
        seen.append(request.req_kwargs["timeout"])
        clock.now += 1.5
        return (503, {}, "{}")

    paddle.add_callback(responses.GET, f"{PADDLE_BASE}/subscriptions/sub_1", callback=answer)
    client = make_client(clock, max_attempts=3, base_delay=0.25, max_delay=0.25)
    with pytest.raises(Unavailable), client.deadline(3):
        client.subscriptions.get("sub_1")
    assert seen[0] == 3  # the transport's own timeout is 10 s; the deadline cuts it
    assert seen[1] == pytest.approx(3 - 1.5 - 0.25)


def test_after_the_deadline_nothing_is_sent(paddle, clock):
    client = make_client(clock)
    with pytest.raises(Unavailable, match="deadline"), client.deadline(1):
        clock.now += 1
        client.subscriptions.get("sub_1")
    assert len(paddle.calls) == 0


def test_a_deadline_ends_with_its_block(paddle, clock):
    paddle.get(f"{PADDLE_BASE}/subscriptions/sub_1", json=sample("api-subscription-get.json"))
    client = make_client(clock)
    with client.deadline(1):
        pass
    clock.now += 5
    assert client.subscriptions.get("sub_1")["id"]


def test_a_non_json_error_page_still_maps_to_an_error(paddle, clock):
    paddle.get(f"{PADDLE_BASE}/subscriptions/sub_1", status=403, body="<html>Forbidden</html>")
    with pytest.raises(ApiError) as caught:
        make_client(clock).subscriptions.get("sub_1")
    assert caught.value.status == 403
    assert caught.value.code == "unknown_error"


def test_errors_do_not_carry_the_key(paddle, clock):
    paddle.get(
        f"{PADDLE_BASE}/subscriptions/sub_1", status=403, json={"error": {"code": "invalid_token"}}
    )
    with pytest.raises(ApiError) as caught:
        make_client(clock).subscriptions.get("sub_1")
    assert "pdl_sdbx_apikey_secret" not in str(caught.value)
    assert "pdl_sdbx_apikey_secret" not in repr(caught.value.__dict__)


def test_requests_keep_a_steady_pace(paddle, clock):
    for _ in range(3):
        paddle.get(f"{PADDLE_BASE}/subscriptions/sub_1", json=sample("api-subscription-get.json"))
    client = Client(
        "pdl_sdbx_apikey_secret", base_url=PADDLE_BASE, sleep=clock.sleep, requests_per_minute=120
    )
    client.transport._clock = clock
    for _ in range(3):
        client.subscriptions.get("sub_1")
        clock.now += 0.1  # each answer takes 100 ms to use
    assert clock.sleeps == pytest.approx([0.4, 0.4])  # 120 a minute: one every 0.5 s
