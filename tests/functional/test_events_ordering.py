"""Whatever the order and duplication of Paddle's webhooks, an account's
`entitlements.changed` events end at the state in-order delivery ends at, never go back to
an older state, and none is written when nothing the product sees changed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from billing_app.extensions import db
from billing_app.models import Plan
from tests.helpers.events import entitlement_changes, events_of
from tests.helpers.payloads import body_of, envelope, subscription_data
from tests.helpers.rows import make_account, make_plan
from tests.helpers.webhooks import post_webhook

T0 = datetime(2026, 3, 1, tzinfo=UTC)
# The subscription's life, in Paddle's order: (event type, status, seats of the base plan).
LIFE = [
    ("subscription.activated", "active", 1),
    ("subscription.updated", "active", 5),
    ("subscription.paused", "paused", 5),
    ("subscription.resumed", "active", 7),
    ("subscription.canceled", "canceled", 7),
]
_accounts = itertools.count(1)


def notifications(account_id: str, paddle_id: str) -> list[bytes]:
    bodies = []
    for step, (kind, status, seats) in enumerate(LIFE):
        data = subscription_data(
            id=paddle_id, status=status, custom_data={"app_account_id": account_id}
        )
        data["items"] = data["items"][:1]
        data["items"][0]["quantity"] = seats
        moment = T0 + timedelta(hours=step)
        bodies.append(body_of(envelope(kind, data, occurred_at=moment)))
    return bodies


# Each step of the life delivered once, some twice, in any order.
deliveries = st.lists(st.integers(0, len(LIFE) - 1), max_size=len(LIFE)).flatmap(
    lambda again: st.permutations(list(range(len(LIFE))) + again)
)


def seen(state: dict) -> tuple:
    """What the product may use (a subscription's status is its own events'; a plan without
    access gives nothing)."""
    plan = state["plan"] if state["access"] else None
    return (state["access"], plan, tuple(state["features"]), state["seats"])


NOTHING = (False, None, (), None)


# What each step of the life leaves the product seeing.
LIFE_SEEN = [
    (True, "starter", ("projects", "exports"), 1),
    (True, "starter", ("projects", "exports"), 5),
    NOTHING,
    (True, "starter", ("projects", "exports"), 7),
    NOTHING,
]


def test_the_in_order_life_is_what_the_product_hears(app, client, session):
    make_plan(session)
    make_account(session, "acct_in_order")
    for body in notifications("acct_in_order", "sub_in_order"):
        post_webhook(client, body)
    changes = entitlement_changes(app, "acct_in_order")
    # active with 1 seat, 5 seats, paused (no access), 7 seats, canceled.
    assert [seen(change["after"]) for change in changes] == LIFE_SEEN
    told = [kind for kind in events_of(app, "acct_in_order", types=True) if "subscription." in kind]
    assert told == [
        "subscription.created",
        "subscription.activated",
        "subscription.updated",
        "subscription.paused",
        "subscription.resumed",
        "subscription.canceled",
    ]
    count = len(events_of(app, "acct_in_order"))
    for body in notifications("acct_in_order", "sub_in_order"):  # the whole life again
        post_webhook(client, body)
    assert len(events_of(app, "acct_in_order")) == count


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(order=deliveries)
def test_any_order_ends_where_in_order_ends_and_never_goes_back(app, client, order):
    number = next(_accounts)
    account, paddle_id = f"acct_order_{number}", f"sub_order_{number:020d}"
    if db.session.scalars(select(Plan)).first() is None:
        make_plan(db.session)
    make_account(db.session, account)
    bodies = notifications(account, paddle_id)
    for step in order:
        post_webhook(client, bodies[step])
    changes = entitlement_changes(app, account)
    told = [seen(change["after"]) for change in changes]
    # It ends where the in-order life ends: nothing to use (canceled; told nothing at all
    # when the cancellation came first, as the account never had anything to lose).
    assert ([NOTHING, *told])[-1] == LIFE_SEEN[-1], (order, told)
    # Never back to an older state: the states told follow the life's order.
    place = 0
    for state in told:
        later = [n for n, life in enumerate(LIFE_SEEN) if life == state and n >= place]
        assert later, (order, told)
        place = later[0] + 1
    # Nothing told when nothing the product sees changed.
    for change in changes:
        assert change["before"] != change["after"]
    # A subscription's events only for a state that changed (the events of one change, as
    # created and activated, share its moment), and they end where the life ends.
    states = {}
    for event in events_of(app, account):
        if "subscription" in event["data"]:
            states.setdefault(event["timestamp"], event["data"]["subscription"])
    changes_told = list(states.values())
    assert all(older != newer for older, newer in itertools.pairwise(changes_told))
    assert (changes_told[-1]["status"], changes_told[-1]["seats"]) == ("canceled", 7)
    sequences = [event["sequence"] for event in events_of(app, account)]
    assert sequences == list(range(1, len(sequences) + 1))
