"""`billing import paddle` with a CSV mapping (the e2e test covers the custom_data key, a
kill and a resume against the simulator), and its refusals of bad input."""

from __future__ import annotations

from sqlalchemy import select

from billing_app.extensions import db
from billing_app.models import Account, Subscription
from tests.helpers.config import PADDLE_BASE
from tests.helpers.paddle_lists import serve_subscription_list
from tests.helpers.payloads import paddle_entity

CUSTOMER = "ctm_01csvcsvcsvcsvcsvcsvcsvcsv0"


def import_command(app, *options: str):
    runner = app.test_cli_runner()
    return runner.invoke(args=["billing", "import", "paddle", "--transaction-days", "0", *options])


def test_a_csv_names_the_accounts_of_customers_with_no_custom_data(make_app, paddle, tmp_path):
    app = make_app(RECONCILE_REQUESTS_PER_MINUTE=0)
    customer = {"id": CUSTOMER, "email": "ada@example.com", "name": "Ada", "custom_data": None}
    page = {"data": [customer], "meta": {"request_id": "r", "pagination": {"has_more": False}}}
    paddle.get(f"{PADDLE_BASE}/customers", json=page)
    serve_subscription_list(
        paddle, [paddle_entity("sub_01csv", customer_id=CUSTOMER, custom_data=None)]
    )
    mapping = tmp_path / "accounts.csv"
    mapping.write_text(f"account_id,paddle_customer_id\nacct_csv,{CUSTOMER}\n")

    result = import_command(app, "--customers-csv", str(mapping))
    assert result.exit_code == 0, result.output
    assert "accounts_made                  1" in result.output
    with app.app_context():
        account = db.session.get(Account, "acct_csv")
        assert (account.paddle_customer_id, account.email) == (CUSTOMER, "ada@example.com")
        owner = db.session.scalar(
            select(Subscription.account_id).where(
                Subscription.paddle_subscription_id == "sub_01csv"
            )
        )
        assert owner == "acct_csv"


def test_a_bad_mapping_is_refused_before_paddle_is_asked(make_app, paddle, tmp_path):
    app = make_app(RECONCILE_REQUESTS_PER_MINUTE=0)
    mapping = tmp_path / "accounts.csv"
    mapping.write_text("acct_csv;ctm_01wrongseparator\n")
    refused = import_command(app, "--customers-csv", str(mapping))
    assert refused.exit_code != 0
    assert "accounts.csv:1: expected account_id,paddle_customer_id" in refused.output
    no_mapping = import_command(app)
    assert no_mapping.exit_code != 0
    assert "Give --account-key, --customers-csv, or both." in no_mapping.output
    assert not paddle.calls
