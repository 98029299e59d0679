"""One account must never reach another's Paddle customer, whatever email its token carries."""

from __future__ import annotations

from sqlalchemy import select

from billing_app.models import Account, Subscription
from tests.helpers.rows import make_plan
from tests.helpers.stack import STARTER, Api, Sim
from tests.helpers.waiting import eventually

BOB_EMAIL = "bob@example.com"


def read(session, statement) -> list[tuple]:
    """Rows of plain values; the transaction ends before the service needs to write."""
    rows = [tuple(row) for row in session.execute(statement)]
    session.commit()
    return rows


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
    # Mallory pays her own checkout as Bob: Paddle finds Bob's customer by the address.
    sim.post(f"/transactions/{hers.json()['transaction_id']}/complete", {"email": BOB_EMAIL})
    sim.settle()

    customers = dict(
        read(
            session, select(Account.id, Account.paddle_customer_id).where(Account.id.like("acct_%"))
        )
    )
    assert customers["acct_bob"] is not None
    assert customers["acct_mallory"] is None
    rows = read(
        session,
        select(Subscription.account_id, Subscription.paddle_customer_id).where(
            Subscription.paddle_subscription_id.is_not(None)
        ),
    )
    by_owner = dict(rows)
    assert by_owner["acct_bob"] == customers["acct_bob"]
    assert by_owner[None] == customers["acct_bob"]  # Mallory's payment: kept for an operator
    assert "acct_mallory" not in by_owner

    # Mallory gets no portal (it would let her cancel Bob's subscription); Bob does.
    portal = mallory.post("/portal-session")
    assert portal.status_code == 404, portal.text
    assert bob.post("/portal-session").status_code == 200
    assert mallory.get("/entitlements").json()["access"] is False
    assert bob.get("/entitlements").json()["access"] is True
