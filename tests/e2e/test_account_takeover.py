"""One account must never reach another's Paddle customer, whatever email its token carries."""

from __future__ import annotations

import requests
from sqlalchemy import select

from billing_app.models import Account, Subscription
from tests.helpers.rows import make_plan
from tests.helpers.stack import SIM_KEY, STARTER, Api, Sim
from tests.helpers.waiting import eventually

BOB_EMAIL = "bob@example.com"


def read(session, statement) -> list[tuple]:
    """Rows of plain values; the transaction ends before the service needs to write."""
    rows = [tuple(row) for row in session.execute(statement)]
    session.commit()
    return rows


def customers_of_accounts(session) -> dict[str, str | None]:
    return dict(
        read(
            session, select(Account.id, Account.paddle_customer_id).where(Account.id.like("acct_%"))
        )
    )


def owners_of_subscriptions(session) -> dict[str | None, str]:
    rows = read(
        session,
        select(Subscription.account_id, Subscription.paddle_customer_id).where(
            Subscription.paddle_subscription_id.is_not(None)
        ),
    )
    return dict(rows)


def the_portal_is_refused(api: Api) -> bool:
    portal = api.post("/portal-session")
    return portal.status_code == 409 and portal.json()["error"] == "customer_shared"


def test_an_email_typed_into_paddles_checkout_hands_the_victims_subscription_to_no_one(
    e2e, session
):
    """Mallory checks out with no verified email and types Bob's address into Paddle's
    checkout: Paddle makes a customer for it. Bob later checks out and pays; Paddle puts his
    payment on that same customer. Bob's subscription is Bob's, and Mallory's portal never
    opens the customer that now holds it."""
    make_plan(session, slug="starter", price_id=STARTER, amount="1900")
    sim = Sim(e2e)
    mallory = Api(e2e, "acct_mallory", email="mallory@example.com", email_verified=False)
    bob = Api(e2e, "acct_bob", email=BOB_EMAIL, email_verified=True)

    hers = mallory.post("/checkout", {"plan": "starter"})
    assert hers.status_code == 201, hers.text
    sim.post(f"/transactions/{hers.json()['transaction_id']}/complete", {"email": BOB_EMAIL})
    assert eventually(lambda: mallory.get("/subscription").json()["status"] == "active")

    his = bob.post("/checkout", {"plan": "starter"})
    assert his.status_code == 201, his.text
    sim.post(f"/transactions/{his.json()['transaction_id']}/complete", {"email": BOB_EMAIL})
    sim.settle()

    assert eventually(lambda: bob.get("/subscription").json()["status"] == "active")
    assert bob.get("/entitlements").json()["access"] is True
    owners = owners_of_subscriptions(session)
    assert set(owners) == {"acct_mallory", "acct_bob"}
    assert owners["acct_bob"] == owners["acct_mallory"]  # one Paddle customer pays for both
    assert customers_of_accounts(session)["acct_bob"] is None  # it is not Bob's to take
    assert the_portal_is_refused(mallory)
    assert the_portal_is_refused(bob)

    shared = e2e.cli("billing", "customers", "shared")
    assert shared.returncode == 0, shared.stderr
    assert owners["acct_bob"] in shared.stdout
    assert "acct_bob" in shared.stdout and "acct_mallory" in shared.stdout


def test_an_unverified_email_never_reaches_the_customer_of_its_owner(e2e, session):
    make_plan(session, slug="starter", price_id=STARTER, amount="1900")
    sim = Sim(e2e)
    mallory = Api(e2e, "acct_mallory", email=BOB_EMAIL, email_verified=False)
    bob = Api(e2e, "acct_bob", email=BOB_EMAIL, email_verified=True)

    # Mallory signs in with Bob's (unverified) address and checks out first.
    hers = mallory.post("/checkout", {"plan": "starter"})
    assert hers.status_code == 201, hers.text
    # Bob checks out and pays.
    his = bob.post("/checkout", {"plan": "starter"})
    assert his.status_code == 201, his.text
    sim.post(f"/transactions/{his.json()['transaction_id']}/complete", {"email": BOB_EMAIL})
    assert eventually(lambda: bob.get("/subscription").json()["status"] == "active")
    assert bob.post("/portal-session").status_code == 200  # his alone, so far
    # Mallory pays her own checkout as Bob: Paddle finds Bob's customer by the address.
    sim.post(f"/transactions/{hers.json()['transaction_id']}/complete", {"email": BOB_EMAIL})
    sim.settle()

    customers = customers_of_accounts(session)
    assert customers["acct_bob"] is not None
    assert customers["acct_mallory"] is None  # Bob's customer never becomes hers
    owners = owners_of_subscriptions(session)
    assert owners == {"acct_bob": customers["acct_bob"], "acct_mallory": customers["acct_bob"]}

    # What she paid for is hers; the portal (which could cancel Bob's) opens for neither.
    assert eventually(lambda: mallory.get("/entitlements").json()["access"] is True)
    assert bob.get("/entitlements").json()["access"] is True
    assert the_portal_is_refused(mallory)
    assert the_portal_is_refused(bob)


def test_a_checkout_naming_the_victim_in_custom_data_changes_nothing_about_the_victim(e2e, session):
    """The victim checks out. The attacker runs Paddle.js with `custom_data` naming the
    victim's account and pays as a new customer of their own: that subscription stays
    unlinked, the victim's account is untouched, and the victim's own payment activates
    the victim's subscription, paid as the victim's own customer, whose portal opens."""
    make_plan(session, slug="starter", price_id=STARTER, amount="1900")
    sim = Sim(e2e)
    victim = Api(e2e, "acct_victim", email="victim@example.com", email_verified=False)
    started = victim.post("/checkout", {"plan": "starter"})
    assert started.status_code == 201, started.text

    squatted = requests.post(
        f"{e2e.sim}/transactions",
        json={
            "items": [{"price_id": STARTER, "quantity": 1}],
            "custom_data": {"app_account_id": "acct_victim"},
        },
        headers={"Authorization": f"Bearer {SIM_KEY}"},
        timeout=10,
    ).json()["data"]
    sim.post(f"/transactions/{squatted['id']}/complete", {"email": "attacker@example.com"})
    sim.settle()
    assert customers_of_accounts(session)["acct_victim"] is None
    assert owners_of_subscriptions(session).keys() == {None}  # the attacker's: unlinked

    sim.post(
        f"/transactions/{started.json()['transaction_id']}/complete",
        {"email": "victim@example.com"},
    )
    sim.settle()
    assert eventually(lambda: victim.get("/subscription").json()["status"] == "active")
    assert victim.get("/entitlements").json()["access"] is True
    victims_customer = customers_of_accounts(session)["acct_victim"]
    assert victims_customer is not None
    assert owners_of_subscriptions(session)["acct_victim"] == victims_customer
    assert victim.post("/portal-session").status_code == 200
