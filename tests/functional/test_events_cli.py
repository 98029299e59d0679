"""`billing events ...`: endpoints managed from a shell, events listed with their
deliveries, and redelivered."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from billing_app.models import EventDelivery, EventEndpoint, Plan
from tests.helpers.events import events_of, send_due
from tests.helpers.receiver import Receiver
from tests.helpers.rows import make_account, make_plan, make_subscription


@pytest.fixture
def app(make_app):
    app = make_app(EVENTS_ALLOW_PRIVATE_URLS=True)
    with app.app_context():
        yield app


def billing(app, *arguments):
    return app.test_cli_runner().invoke(args=["billing", "events", *arguments])


def subscribe(session, account_id="acct_1"):
    plan = session.scalars(select(Plan)).first() or make_plan(session)
    make_account(session, account_id)
    make_subscription(session, account_id=account_id, status="active", plan_id=plan.id)


def test_an_endpoint_added_from_the_shell_receives_signed_events(app, session):
    with Receiver() as receiver:
        added = billing(app, "endpoints", "add", receiver.url, "--type", "entitlements.changed")
        assert added.exit_code == 0, added.output
        secret = re.search(r"whsec_\S+", added.output).group(0)
        subscribe(session)
        send_due(app)
        (received,) = receiver.received
        assert Webhook(secret).verify(received.body, received.headers)["sequence"] == 3
    listed = billing(app, "endpoints", "list")
    assert "types entitlements.changed  enabled" in listed.output
    assert secret not in listed.output  # shown once, at creation


def test_disable_enable_and_rotate(app, session):
    added = billing(app, "endpoints", "add", "http://127.0.0.1:9/hook")
    endpoint_id = re.search(r"ep_\w+", added.output).group(0)
    typed = billing(
        app, "endpoints", "add", "http://127.0.0.1:9/x", "--types", "payment.failed,a.b"
    )
    assert typed.exit_code == 2 and "unknown event type(s): a.b" in typed.output
    two = billing(
        app, "endpoints", "add", "http://127.0.0.1:9/y", "--types", "payment.failed,refund.approved"
    )
    assert "receives payment.failed, refund.approved" in two.output
    assert billing(app, "endpoints", "disable", endpoint_id).exit_code == 0
    session.expire_all()
    assert session.get(EventEndpoint, endpoint_id).disabled_reason == "disabled by an operator"
    enabled = billing(app, "endpoints", "enable", endpoint_id)
    assert "enabled; 0 delivery(ies)" in enabled.output
    rotated = billing(app, "endpoints", "rotate-secret", endpoint_id)
    assert rotated.exit_code == 0 and "whsec_" in rotated.output
    unknown = billing(app, "endpoints", "disable", "ep_nope")
    assert unknown.exit_code == 1 and "no endpoint ep_nope" in unknown.output


def test_private_urls_are_refused_from_the_shell_unless_allowed(make_app):
    strict = make_app()
    refused = strict.test_cli_runner().invoke(
        args=["billing", "events", "endpoints", "add", "http://127.0.0.1:9/hook"]
    )
    assert refused.exit_code == 1 and "non-public address" in refused.output


def test_list_and_redeliver(app, session):
    with Receiver() as receiver:
        billing(app, "endpoints", "add", receiver.url)
        subscribe(session)
        send_due(app)
        first = events_of(app)[0]["id"]
        listed = billing(app, "list", "--account", "acct_1", "--status", "delivered")
        assert listed.output.count(" delivered attempts 1 last 200") == 3
        again = billing(app, "redeliver", first)
        assert again.output.strip() == "1 delivery(ies) go out again."
        assert send_due(app) == {"delivered": 1}
        assert receiver.received[-1].headers["webhook-id"] == first  # the same message id
        endpoint_id = session.scalars(select(EventEndpoint.id)).one()
        since = billing(app, "redeliver", "--endpoint", endpoint_id, "--since", "2000-01-01")
        assert since.output.strip() == "3 delivery(ies) go out again."
        assert send_due(app) == {"delivered": 3}
    assert session.scalars(select(EventDelivery.attempts)).all() == [3, 2, 2]
    assert billing(app, "redeliver").exit_code == 1
    assert "no event evt_nope" in billing(app, "redeliver", "evt_nope").output
