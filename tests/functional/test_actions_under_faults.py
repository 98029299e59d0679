"""User actions against a slow, hanging or forgetful Paddle: nothing held while it thinks,
one deadline for the whole conversation, and a lost answer confirmed before retrying."""

import json
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
import requests
import responses
from sqlalchemy import select

from billing_app.models import Subscription
from tests.helpers.config import PADDLE_BASE
from tests.helpers.payloads import body_of, envelope, paddle_subscription
from tests.helpers.rows import SAMPLE_SUBSCRIPTION, make_active_subscription
from tests.helpers.tokens import auth
from tests.helpers.webhooks import post_webhook

SUB = SAMPLE_SUBSCRIPTION
SCHEDULED_PAUSE = {"action": "pause", "effective_at": "2024-03-08T11:02:03Z", "resume_at": None}


@pytest.fixture
def active(session):
    """acct_1 with an active subscription on the starter plan, known to Paddle."""
    return make_active_subscription(session)


def stored(session) -> Subscription:
    session.expire_all()
    return session.scalars(select(Subscription)).one()


def test_a_webhook_is_answered_at_once_while_paddle_hangs_on_a_pause(app, session, active):
    """The pause holds no lock (nor, on SQLite, the write lock) while it waits on Paddle;
    and its answer, older than the webhook that came meanwhile, changes nothing."""
    asked, let_go = threading.Event(), threading.Event()
    answer = paddle_subscription(
        scheduled_change=SCHEDULED_PAUSE, updated_at="2024-02-09T00:00:00Z"
    )

    def hang(request):
        asked.set()
        let_go.wait(15)
        return (200, {"Content-Type": "application/json"}, json.dumps(answer))

    newer = envelope(
        "subscription.updated",
        paddle_subscription(status="past_due", updated_at="2024-02-10T00:00:00Z")["data"],
        occurred_at=datetime(2024, 2, 10, tzinfo=UTC),
    )
    pauses = []
    with responses.RequestsMock() as paddle:
        paddle.add_callback(
            responses.POST, f"{PADDLE_BASE}/subscriptions/{SUB}/pause", callback=hang
        )
        user = threading.Thread(
            target=lambda: pauses.append(
                app.test_client().post("/api/v1/subscription/pause", json={}, headers=auth())
            )
        )
        user.start()
        assert asked.wait(10)
        started = time.monotonic()
        delivered = post_webhook(app.test_client(), body_of(newer))
        waited = time.monotonic() - started
        let_go.set()
        user.join(20)

    assert delivered.status_code == 200, delivered.json
    assert waited < 1.0, f"the webhook waited {waited:.2f}s behind a hanging Paddle call"
    assert pauses[0].status_code == 200, pauses[0].json
    row = stored(session)
    assert row.status == "past_due"  # the webhook's newer state stands
    assert row.scheduled_action is None
    assert row.last_event_at == datetime(2024, 2, 10, tzinfo=UTC)


@pytest.fixture
def hanging_paddle():
    """A Paddle that accepts connections and never answers (the kernel's backlog accepts)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_an_action_against_a_hanging_paddle_ends_at_the_deadline_with_our_json(
    make_app, session, active, hanging_paddle
):
    app = make_app(
        PADDLE_API_BASE_URL=hanging_paddle,
        PADDLE_TIMEOUT_SECONDS=10,
        PADDLE_REQUEST_DEADLINE_SECONDS=1.5,
    )
    started = time.monotonic()
    response = app.test_client().post(
        "/api/v1/subscription/pause", json={"effective_from": "immediately"}, headers=auth()
    )
    took = time.monotonic() - started
    assert response.status_code == 503
    assert response.json["error"] == "paddle_unavailable"
    # Without the deadline: up to 4 attempts of 10 s, far past a worker's 30 s timeout.
    assert took < 2.5, f"took {took:.2f}s"
    assert stored(session).status == "active"


def test_a_pause_that_landed_while_its_answer_timed_out_answers_success(client, session, active):
    with responses.RequestsMock() as paddle:
        paddle.post(
            f"{PADDLE_BASE}/subscriptions/{SUB}/pause", body=requests.exceptions.ReadTimeout("12 s")
        )
        paddle.get(
            f"{PADDLE_BASE}/subscriptions/{SUB}",
            json=paddle_subscription(
                scheduled_change=SCHEDULED_PAUSE, updated_at="2024-02-09T00:00:00Z"
            ),
        )
        response = client.post("/api/v1/subscription/pause", json={}, headers=auth())
        methods = [call.request.method for call in paddle.calls]
    assert response.status_code == 200, response.json
    assert response.json["scheduled_change"]["action"] == "pause"
    assert methods == ["POST", "GET"]  # read back, never a blind second pause
    assert stored(session).scheduled_action == "pause"


def test_a_quantity_alone_changes_the_seats_of_the_current_plan(client, session, active):
    answer = paddle_subscription(updated_at="2024-02-09T00:00:00Z")
    answer["data"]["items"][0]["quantity"] = 12
    price = answer["data"]["items"][0]["price"]["id"]
    with responses.RequestsMock() as paddle:
        paddle.patch(f"{PADDLE_BASE}/subscriptions/{SUB}", json=answer)
        response = client.post("/api/v1/subscription/change", json={"quantity": 12}, headers=auth())
        sent = json.loads(paddle.calls[0].request.body)
    assert response.status_code == 200, response.json
    assert sent["items"][0] == {"price_id": active.price_id, "quantity": 12}
    assert price == active.price_id
    assert stored(session).quantity == 12


def test_a_quantity_alone_can_be_previewed(client, session, active):
    from tests.helpers.samples import sample

    with responses.RequestsMock() as paddle:
        paddle.patch(
            f"{PADDLE_BASE}/subscriptions/{SUB}/preview",
            json=sample("api-subscription-preview-update.json"),
        )
        response = client.post(
            "/api/v1/subscription/change/preview", json={"quantity": 3}, headers=auth()
        )
        sent = json.loads(paddle.calls[0].request.body)
    assert response.status_code == 200, response.json
    assert sent["items"] == [{"price_id": active.price_id, "quantity": 3}]


@pytest.mark.parametrize(
    "body",
    [{}, {"plan": "starter", "price_id": "pri_x"}, {"proration_billing_mode": "do_not_bill"}],
)
def test_a_change_needs_a_plan_or_a_quantity(client, session, active, body):
    response = client.post("/api/v1/subscription/change", json=body, headers=auth())
    assert response.status_code == 422
    assert response.json["error"] == "validation_error"
