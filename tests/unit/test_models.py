import pytest
from sqlalchemy.exc import IntegrityError

from billing_app.models import (
    LIVE_STATUSES,
    SUBSCRIPTION_STATUSES,
    Account,
    Subscription,
    SubscriptionItem,
)


def test_an_account_has_at_most_one_live_subscription(session):
    session.add(Account(id="acct_1"))
    session.add(Subscription(account_id="acct_1", status="active"))
    session.commit()

    session.add(Subscription(account_id="acct_1", status="pending"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_canceled_subscriptions_do_not_count_as_live(session):
    session.add(Account(id="acct_1"))
    session.add_all(
        [
            Subscription(account_id="acct_1", status="canceled"),
            Subscription(account_id="acct_1", status="canceled"),
            Subscription(account_id="acct_1", status="active"),
        ]
    )
    session.commit()
    assert session.query(Subscription).filter_by(account_id="acct_1").count() == 3


def test_unlinked_subscriptions_are_kept(session):
    session.add_all(
        [
            Subscription(account_id=None, status="active", paddle_subscription_id="sub_a"),
            Subscription(account_id=None, status="active", paddle_subscription_id="sub_b"),
        ]
    )
    session.commit()
    assert session.query(Subscription).filter(Subscription.account_id.is_(None)).count() == 2


def test_the_database_refuses_an_unknown_status(session):
    session.add(Subscription(status="expired"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_items_are_unique_per_price(session):
    subscription = Subscription(status="active")
    subscription.items = [
        SubscriptionItem(price_id="pri_a", quantity=2),
        SubscriptionItem(price_id="pri_a", quantity=3),
    ]
    session.add(subscription)
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_paddle_ids_are_unique(session):
    session.add_all(
        [Account(id="a", paddle_customer_id="ctm_1"), Account(id="b", paddle_customer_id="ctm_1")]
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_canceled_is_the_only_status_that_is_not_live():
    # The entitlement query orders live subscriptions first by testing for `canceled` alone.
    assert set(SUBSCRIPTION_STATUSES) - set(LIVE_STATUSES) == {"canceled"}
