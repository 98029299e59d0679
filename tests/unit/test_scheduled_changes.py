"""When a change at period end is sent, and how it is billed: the rules read off Paddle's
subscription entity."""

import uuid
from datetime import UTC, datetime, timedelta

from billing_app.services.subscriptions.scheduled_changes import (
    Claimed,
    _holds,
    _items_after,
    _late_mode,
    _moment,
)

END = datetime(2027, 1, 1, 12, tzinfo=UTC)
TEAM, STARTER, STORAGE = "pri_team", "pri_starter", "pri_storage"


def claimed(**fields) -> Claimed:
    values = {
        "id": 1,
        "subscription_id": uuid.uuid4(),
        "paddle_id": "sub_1",
        "kind": "plan",
        "price_id": STARTER,
        "quantity": 1,
        "from_price_id": TEAM,
        "effective_at": END,
        "new_amount": 1900,
        "held_plan_id": 2,
        "held_quantity": 1,
    }
    return Claimed(**{**values, **fields})


def item(price_id, quantity=1, amount="4900"):
    return {"price": {"id": price_id, "unit_price": {"amount": amount}}, "quantity": quantity}


def entity(*items, starts=END - timedelta(days=31), renewal=END):
    return {
        "items": list(items),
        "current_billing_period": {"starts_at": starts.isoformat(), "ends_at": renewal.isoformat()},
        "next_billed_at": renewal.isoformat(),
    }


def test_it_is_sent_once_the_renewal_is_near_and_is_late_once_paddle_renewed():
    waiting = entity(item(TEAM))
    assert _moment(waiting, claimed(), END - timedelta(hours=2)) == "early"
    assert _moment(waiting, claimed(), END - timedelta(minutes=44)) == "on_time"
    renewed = entity(item(TEAM), starts=END, renewal=END + timedelta(days=31))
    assert _moment(renewed, claimed(), END + timedelta(minutes=5)) == "late"


def test_a_late_cheaper_change_is_credited_and_a_dearer_one_bills_nothing():
    renewed = entity(item(TEAM, quantity=2))
    assert _late_mode(renewed, claimed(quantity=5)) == "prorated_immediately"  # 9500 <= 9800
    assert _late_mode(renewed, claimed(quantity=6)) == "do_not_bill"  # 11400 > 9800
    assert _late_mode(renewed, claimed(new_amount=None)) == "do_not_bill"  # cannot price it


def test_the_main_item_is_swapped_and_add_ons_kept():
    current = entity(item(TEAM, 3), item(STORAGE, 2, "500"))
    assert _items_after(current, claimed()) == [
        {"price_id": STARTER, "quantity": 1},
        {"price_id": STORAGE, "quantity": 2},
    ]


def test_paddle_holds_the_change_once_the_old_price_is_gone_or_the_seats_moved():
    assert not _holds(entity(item(TEAM)), claimed())
    assert _holds(entity(item(STARTER), item(STORAGE)), claimed())
    seats = claimed(price_id=TEAM, from_price_id=TEAM, quantity=3)
    assert not _holds(entity(item(TEAM, 5)), seats)
    assert _holds(entity(item(TEAM, 3)), seats)
