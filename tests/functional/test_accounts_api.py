"""`PUT /api/v1/accounts/<id>`: the product declares an account, and the Paddle customer it
already knows pays for it, before any checkout."""

from sqlalchemy import select

from billing_app.models import Account, Subscription
from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.payloads import body_of, envelope, subscription_data
from tests.helpers.rows import make_account, make_subscription
from tests.helpers.tokens import auth
from tests.helpers.webhooks import post_webhook

SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
CUSTOMER = "ctm_01hv6y1jedq4p1n0yqn5ba3ky4"  # the samples' customer


def put(client, account_id: str, **body):
    return client.put(f"/api/v1/accounts/{account_id}", json=body, headers=SERVICE)


def test_an_account_is_declared_with_its_email_name_and_customer(client, session):
    answer = put(
        client, "acct_42", email="ada@example.com", name="Ada", paddle_customer_id=CUSTOMER
    )
    assert answer.status_code == 200, answer.json
    assert answer.json == {
        "account_id": "acct_42",
        "email": "ada@example.com",
        "name": "Ada",
        "paddle_customer_id": CUSTOMER,
    }
    again = put(client, "acct_42", paddle_customer_id=CUSTOMER)  # the same again: no change
    assert again.status_code == 200 and again.json == answer.json


def test_a_declared_customers_subscriptions_link_themselves(client, session):
    make_subscription(
        session,
        paddle_subscription_id="sub_01waiting",
        paddle_customer_id=CUSTOMER,
        status="active",
    )
    assert put(client, "acct_42", paddle_customer_id=CUSTOMER).status_code == 200
    # One made in Paddle's dashboard later, with no custom_data of ours, links itself too.
    made_later = subscription_data(id="sub_01dashboard", customer_id=CUSTOMER, custom_data=None)
    waiting = session.scalars(
        select(Subscription).where(Subscription.paddle_subscription_id == "sub_01waiting")
    ).one()
    waiting.status = "canceled"  # an account has one live subscription at a time
    session.commit()
    post_webhook(client, body_of(envelope("subscription.created", made_later)))
    session.expire_all()
    rows = session.execute(select(Subscription.paddle_subscription_id, Subscription.account_id))
    owners = {paddle_id: owner for paddle_id, owner in rows}
    assert owners == {"sub_01waiting": "acct_42", "sub_01dashboard": "acct_42"}


def test_a_customer_is_never_moved_between_accounts(client, session):
    make_account(session, "acct_owner", paddle_customer_id=CUSTOMER)
    make_account(session, "acct_other", paddle_customer_id="ctm_01othersown0000000000000")
    taken = put(client, "acct_42", paddle_customer_id=CUSTOMER)
    assert taken.status_code == 409 and taken.json["error"] == "customer_conflict"
    moved = put(client, "acct_other", paddle_customer_id=CUSTOMER)
    assert moved.status_code == 409 and moved.json["error"] == "customer_conflict"
    session.expire_all()
    customers = dict(session.execute(select(Account.id, Account.paddle_customer_id)).all())
    assert customers == {"acct_owner": CUSTOMER, "acct_other": "ctm_01othersown0000000000000"}


def test_only_services_declare_accounts_and_bad_input_is_a_422(client, session):
    user = client.put("/api/v1/accounts/acct_42", json={}, headers=auth("acct_42"))
    assert user.status_code == 401
    assert put(client, "acct_42", paddle_customer_id="cus_stripe").status_code == 422
    assert put(client, "acct_42", email="not an email").status_code == 422
    assert put(client, "acct_42", plan="pro").status_code == 422  # unknown fields are refused
    assert session.scalars(select(Account)).all() == []
