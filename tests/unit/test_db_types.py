from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

from billing_app.models import Account, Subscription


def test_timestamps_come_back_aware_and_in_utc(session):
    account = Account(id="acct_1", email="a@example.com")
    session.add(account)
    paris = timezone(timedelta(hours=1))
    subscription = Subscription(
        account_id="acct_1", status="active", next_billed_at=datetime(2026, 1, 1, 12, tzinfo=paris)
    )
    session.add(subscription)
    session.commit()
    session.expire_all()

    stored = session.get(Subscription, subscription.id)
    assert stored.next_billed_at == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert stored.next_billed_at.utcoffset() == timedelta(0)
    assert stored.created_at.tzinfo is not None


def test_naive_timestamps_are_refused(session):
    session.add(Account(id="acct_1"))
    session.add(Subscription(account_id="acct_1", next_billed_at=datetime(2026, 1, 1)))  # noqa: DTZ001
    with pytest.raises(StatementError, match="naive datetime"):
        session.commit()
    session.rollback()
