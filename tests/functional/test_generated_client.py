"""A frontend's view of the contract: a client generated from /openapi.json by a real
generator (openapi-python-client), used against the running app, gets typed answers."""

import importlib
import sys
from datetime import UTC, datetime

import pytest
import responses

from tests.helpers.clients import generate_python_client, write_spec
from tests.helpers.payloads import paddle_subscription
from tests.helpers.rows import SAMPLE_SUBSCRIPTION, make_active_subscription
from tests.helpers.tokens import user_token

PACKAGE = "generated_billing_api"  # not billing_client: the real client's name


@pytest.fixture
def generated_client(app, tmp_path):
    generate_python_client(write_spec(app, tmp_path), tmp_path / PACKAGE)
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def test_a_generated_client_gets_a_typed_subscription_and_typed_errors(
    generated_client, served, session
):
    make_active_subscription(session)
    cancel = importlib.import_module(f"{PACKAGE}.api.subscription.cancel_subscription")
    get = importlib.import_module(f"{PACKAGE}.api.subscription.get_subscription")
    models = importlib.import_module(f"{PACKAGE}.models")
    client = generated_client.AuthenticatedClient(base_url=served, token=user_token("acct_1"))

    scheduled = {"action": "cancel", "effective_at": "2099-03-08T11:02:03Z", "resume_at": None}
    answer = paddle_subscription(scheduled_change=scheduled, updated_at="2024-02-09T00:00:00Z")
    with responses.RequestsMock() as paddle:
        paddle.post(f"https://paddle.test/subscriptions/{SAMPLE_SUBSCRIPTION}/cancel", json=answer)
        body = models.CancelRequest(
            effective_from=models.CancelRequestEffectiveFrom.NEXT_BILLING_PERIOD
        )
        canceled = cancel.sync_detailed(client=client, body=body)
    assert canceled.status_code == 200
    assert isinstance(canceled.parsed, models.Subscription)
    assert isinstance(canceled.parsed.scheduled_change, models.ScheduledChange)
    assert canceled.parsed.scheduled_change.action == "cancel"
    assert canceled.parsed.scheduled_change.effective_at == datetime(
        2099, 3, 8, 11, 2, 3, tzinfo=UTC
    )

    again = cancel.sync_detailed(client=client, body=body)  # already scheduled: 409
    assert again.status_code == 409
    assert isinstance(again.parsed, models.Error)
    assert again.parsed.error == models.ErrorError.INVALID_STATE

    fresh = get.sync(client=client)
    assert isinstance(fresh, models.Subscription)
    assert fresh.status == models.SubscriptionStatus.ACTIVE
    assert fresh.scheduled_change.action == "cancel"
