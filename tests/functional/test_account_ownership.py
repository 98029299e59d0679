"""Who owns what Paddle tells us about. A checkout this service created for an account makes
that account the owner, whichever Paddle customer paid; a `custom_data` claim (anyone running
Paddle.js can set one) never changes an account, whether its link is refused or not."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from billing_app.models import Account, Subscription
from tests.helpers.config import PADDLE_BASE
from tests.helpers.payloads import body_of, checkout_transaction, envelope, subscription_data
from tests.helpers.rows import make_account, make_plan, make_subscription
from tests.helpers.samples import sample
from tests.helpers.tokens import auth
from tests.helpers.webhooks import post_webhook

STARTER = "pri_01gsz8x8sawmvhz1pv30nge1ke"  # the price of the samples' subscription
ATTACKERS = "ctm_01attackerattackerattacker0"
VICTIMS = "ctm_01victimvictimvictimvictim0"


def accounts(session) -> dict[str, tuple]:
    session.expire_all()
    return {
        account.id: (account.email, account.name, account.paddle_customer_id)
        for account in session.scalars(select(Account))
    }


def squatted(paddle_id: str, account_id: str, **changes) -> bytes:
    """A signed `subscription.created` for the attacker's customer, naming `account_id`."""
    data = subscription_data(
        id=paddle_id,
        customer_id=ATTACKERS,
        custom_data={"app_account_id": account_id},
        transaction_id="txn_01attackersownattackersown",
        **changes,
    )
    return body_of(envelope("subscription.created", data))


def owner_of(session, paddle_id: str) -> str | None:
    session.expire_all()
    return session.scalars(
        select(Subscription.account_id).where(Subscription.paddle_subscription_id == paddle_id)
    ).one()


def no_account_has_a_customer(session) -> None:
    assert accounts(session) == {}


def victim_pays_as_another_customer(session) -> None:
    make_account(session, "acct_victim", paddle_customer_id=VICTIMS)


def the_customer_is_another_accounts(session) -> None:
    make_account(session, "acct_victim")
    make_account(session, "acct_attacker", paddle_customer_id=ATTACKERS)


def victim_has_a_live_subscription(session) -> None:
    make_account(session, "acct_victim")
    make_subscription(
        session, account_id="acct_victim", status="active", paddle_subscription_id="sub_own"
    )


@pytest.mark.parametrize(
    "arrange",
    [
        no_account_has_a_customer,
        victim_pays_as_another_customer,
        the_customer_is_another_accounts,
        victim_has_a_live_subscription,
    ],
    ids=["unknown-account", "pays-as-another", "customer-is-anothers", "already-subscribed"],
)
def test_a_refused_link_changes_no_account(client, session, arrange):
    arrange(session)
    before = accounts(session)
    response = post_webhook(client, squatted("sub_01squatted", "acct_victim"))
    assert response.status_code == 200
    assert owner_of(session, "sub_01squatted") != "acct_victim"  # unlinked, or the payer's own
    assert accounts(session) == before


def test_an_accepted_claim_links_the_subscription_but_never_moves_the_accounts_customer(
    client, session
):
    """The named account exists and has nothing yet: the subscription is its (the attacker
    paid for it), but the attacker's customer does not become the account's customer, or
    the account's next checkout would pay as a customer the attacker can open."""
    make_account(session, "acct_victim")
    post_webhook(client, squatted("sub_01gift", "acct_victim"))
    assert owner_of(session, "sub_01gift") == "acct_victim"
    assert accounts(session)["acct_victim"][2] is None


def test_a_transaction_naming_an_account_never_moves_its_customer(client, session):
    make_account(session, "acct_victim")
    data = checkout_transaction(
        id="txn_01squattedsquattedsquatted",
        customer_id=ATTACKERS,
        subscription_id=None,
        custom_data={"app_account_id": "acct_victim"},
    )
    post_webhook(client, body_of(envelope("transaction.completed", data)))
    assert accounts(session)["acct_victim"][2] is None


def checkout(client, paddle, account_id: str) -> dict:
    """`POST /checkout` of the starter plan, by an account whose email is not verified
    (so the transaction has no customer: Paddle's checkout asks the buyer)."""
    empty = {"data": [], "meta": {"request_id": "r", "pagination": {"has_more": False}}}
    paddle.get(f"{PADDLE_BASE}/transactions", json=empty)  # no lost checkout to find
    created = sample("api-transaction-create.json")
    created["data"]["customer_id"] = None
    paddle.post(f"{PADDLE_BASE}/transactions", json=created, status=201)
    response = client.post(
        "/api/v1/checkout", json={"plan": "starter"}, headers=auth(account_id, email_verified=False)
    )
    assert response.status_code == 201, response.json
    return response.json


def paid(checkout_started: dict, customer_id: str, paddle_id: str) -> list[bytes]:
    """What Paddle sends when the checkout is paid as `customer_id`: the transaction
    completed, and the subscription it created (naming it in `transaction_id`). Paddle
    copies the transaction's custom_data; a buyer's Paddle.js may have replaced it."""
    transaction = checkout_transaction(
        id=checkout_started["transaction_id"],
        customer_id=customer_id,
        subscription_id=paddle_id,
        custom_data=None,
    )
    subscription = subscription_data(
        id=paddle_id,
        customer_id=customer_id,
        transaction_id=checkout_started["transaction_id"],
        custom_data=None,
    )
    return [
        body_of(envelope("subscription.created", subscription)),
        body_of(envelope("transaction.completed", transaction)),
    ]


def test_a_checkout_of_ours_belongs_to_its_account_whichever_customer_paid(client, session, paddle):
    """The attacker's account already pays as the customer Paddle made for the victim's
    email; the victim's own checkout, paid as that same customer, is still the victim's."""
    make_plan(session, price_id=STARTER)
    make_account(session, "acct_attacker", paddle_customer_id=VICTIMS)
    make_subscription(
        session,
        account_id="acct_attacker",
        status="active",
        paddle_subscription_id="sub_01attackers",
        paddle_customer_id=VICTIMS,
    )
    started = checkout(client, paddle, "acct_victim")
    for body in paid(started, VICTIMS, "sub_01victims"):
        assert post_webhook(client, body).status_code == 200
    assert owner_of(session, "sub_01victims") == "acct_victim"
    assert client.get("/api/v1/entitlements", headers=auth("acct_victim")).json["access"] is True
    # The customer is the attacker's by our table, and now pays for both: the portal,
    # which shows and cancels every subscription of the customer, opens for neither.
    for account_id in ("acct_victim", "acct_attacker"):
        portal = client.post("/api/v1/portal-session", headers=auth(account_id))
        assert portal.status_code == 409, portal.json
        assert portal.json["error"] == "customer_shared"


def test_after_a_squat_the_victims_own_checkout_still_links_and_pays_as_its_customer(
    client, session, paddle
):
    make_plan(session, price_id=STARTER)
    make_account(session, "acct_victim")
    make_subscription(
        session, account_id="acct_victim", status="active", paddle_subscription_id="sub_own"
    )
    post_webhook(client, squatted("sub_01squatted", "acct_victim"))
    session.execute(
        Subscription.__table__.update()
        .where(Subscription.paddle_subscription_id == "sub_own")
        .values(status="canceled")
    )
    session.commit()
    started = checkout(client, paddle, "acct_victim")
    for body in paid(started, VICTIMS, "sub_01victims"):
        post_webhook(client, body)
    assert owner_of(session, "sub_01victims") == "acct_victim"
    assert accounts(session)["acct_victim"][2] == VICTIMS
    assert client.get("/api/v1/entitlements", headers=auth("acct_victim")).json["access"] is True
