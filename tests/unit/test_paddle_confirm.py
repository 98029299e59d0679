"""A write whose answer was lost is confirmed by reading back, never blindly repeated."""

import pytest
import requests

from paddle_client import ApiError, Client, RetryPolicy, Unavailable
from paddle_client.confirm import confirmed_write
from tests.helpers.config import PADDLE_BASE
from tests.helpers.payloads import paddle_error_body
from tests.helpers.samples import sample

PAUSE = f"{PADDLE_BASE}/subscriptions/sub_1/pause"
GET = f"{PADDLE_BASE}/subscriptions/sub_1"


def entity(**changes):
    return {"data": {**sample("api-subscription-get.json")["data"], **changes}}


LOCKED = paddle_error_body("subscription_locked_pending_changes", "pending changes")

SCHEDULED_PAUSE = {"action": "pause", "effective_at": "2026-06-01T00:00:00Z", "resume_at": None}


def pause(client):
    return confirmed_write(
        lambda: client.subscriptions.pause("sub_1", effective_from="next_billing_period"),
        lambda: client.subscriptions.get("sub_1"),
        lambda current: (current.get("scheduled_change") or {}).get("action") == "pause",
    )


@pytest.fixture
def client():
    return Client("k", base_url=PADDLE_BASE, retry=RetryPolicy(base_delay=0), sleep=lambda _: None)


def test_a_pause_that_landed_while_its_answer_timed_out_is_a_success(paddle, client):
    paddle.post(PAUSE, body=requests.exceptions.ReadTimeout("slow"))
    paddle.get(GET, json=entity(scheduled_change=SCHEDULED_PAUSE))
    answer = pause(client)
    assert answer["scheduled_change"]["action"] == "pause"
    assert [call.request.method for call in paddle.calls] == ["POST", "GET"]


def test_a_pause_that_did_not_land_is_sent_once_more(paddle, client):
    paddle.post(PAUSE, body=requests.exceptions.ReadTimeout("slow"))
    paddle.get(GET, json=entity(scheduled_change=None))
    paddle.post(PAUSE, json=entity(scheduled_change=SCHEDULED_PAUSE))
    assert pause(client)["scheduled_change"]["action"] == "pause"
    assert [call.request.method for call in paddle.calls] == ["POST", "GET", "POST"]


def test_a_refused_repeat_of_a_write_that_landed_meanwhile_is_a_success(paddle, client):
    paddle.post(PAUSE, status=502, json={})
    paddle.get(GET, json=entity(scheduled_change=None))
    paddle.post(PAUSE, status=400, json=LOCKED)
    paddle.get(GET, json=entity(scheduled_change=SCHEDULED_PAUSE))
    assert pause(client)["scheduled_change"]["action"] == "pause"


def test_a_refusal_on_the_first_send_is_the_answer(paddle, client):
    paddle.post(PAUSE, status=400, json=LOCKED)
    with pytest.raises(ApiError):
        pause(client)
    assert len(paddle.calls) == 1  # nothing was lost, so nothing to read back


def test_it_gives_up_when_neither_send_is_confirmed(paddle, client):
    for _ in range(2):
        paddle.post(PAUSE, body=requests.exceptions.ReadTimeout("slow"))
        paddle.get(GET, json=entity(scheduled_change=None))
    with pytest.raises(Unavailable):
        pause(client)
    assert len(paddle.calls) == 4
