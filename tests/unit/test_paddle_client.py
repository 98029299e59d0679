"""Each client method sends the right request and parses Paddle's real answers."""

import json
import threading
import time
from datetime import UTC, datetime

import pytest
from responses import matchers

from paddle_client import ApiError, Client
from tests.helpers.config import PADDLE_BASE
from tests.helpers.samples import sample


@pytest.fixture
def client():
    return Client("pdl_sdbx_apikey_secret", base_url=PADDLE_BASE, sleep=lambda _: None)


def sent_json(paddle, index=-1):
    return json.loads(paddle.calls[index].request.body)


def test_every_request_carries_the_key_and_version(paddle, client):
    paddle.get(f"{PADDLE_BASE}/customers/ctm_1", json=sample("api-customer-get.json"))
    client.customers.get("ctm_1")
    headers = paddle.calls[0].request.headers
    assert headers["Authorization"] == "Bearer pdl_sdbx_apikey_secret"
    assert headers["Paddle-Version"] == "1"


def test_the_environment_picks_the_base_url():
    assert Client("k", environment="live").transport.base_url == "https://api.paddle.com"
    assert Client("k").transport.base_url == "https://sandbox-api.paddle.com"
    with pytest.raises(ValueError, match="environment"):
        Client("k", environment="production")


def test_the_key_never_shows_in_a_repr():
    client = Client("pdl_live_apikey_verysecret")
    assert "verysecret" not in repr(client)
    assert "verysecret" not in repr(client.transport)


def test_products_are_listed_with_prices_at_the_largest_page_size(paddle, client):
    paddle.get(
        f"{PADDLE_BASE}/products",
        match=[matchers.query_param_matcher({"per_page": "200", "include": "prices"})],
        json=sample("api-product-list.json"),
    )
    products = list(client.products.list())
    assert len(products) == 6
    assert all(product["id"].startswith("pro_") for product in products)


def test_prices_list_and_get(paddle, client):
    paddle.get(
        f"{PADDLE_BASE}/prices",
        match=[matchers.query_param_matcher({"per_page": "200", "product_id": "pro_1,pro_2"})],
        json=sample("api-price-list.json"),
    )
    paddle.get(
        f"{PADDLE_BASE}/prices/pri_01gsz8x8sawmvhz1pv30nge1ke",
        match=[matchers.query_param_matcher({"include": "product"})],
        json=sample("api-price-get-with-product.json"),
    )
    prices = list(client.prices.list(product_id=["pro_1", "pro_2"]))
    assert len(prices) == 16
    price = client.prices.get("pri_01gsz8x8sawmvhz1pv30nge1ke", include_product=True)
    assert price["unit_price"]["amount"].isdigit()
    assert price["product"]["id"].startswith("pro_")


def test_customer_create_sends_the_body(paddle, client):
    paddle.post(
        f"{PADDLE_BASE}/customers",
        match=[matchers.json_params_matcher({"email": "test2@example.com"})],
        json=sample("api-customer-get.json"),
        status=201,
    )
    customer = client.customers.create("test2@example.com")
    assert customer["id"] == sample("api-customer-get.json")["data"]["id"]


def test_get_or_create_finds_the_existing_customer_on_409(paddle, client):
    existing = sample("api-customer-get.json")
    paddle.post(
        f"{PADDLE_BASE}/customers",
        status=409,
        json={
            "error": {
                "type": "request_error",
                "code": "customer_already_exists",
                "detail": (
                    "customer email conflicts with customer of id ctm_01h8441jn5pcwrfhwh78jqt8hk"
                ),
            },
            "meta": {"request_id": "r1"},
        },
    )
    paddle.get(f"{PADDLE_BASE}/customers/ctm_01h8441jn5pcwrfhwh78jqt8hk", json=existing)
    customer = client.customers.get_or_create("weloveyourproduct@paddle.com")
    assert customer == existing["data"]


def test_customers_list_by_email(paddle, client):
    paddle.get(
        f"{PADDLE_BASE}/customers",
        match=[matchers.query_param_matcher({"per_page": "200", "email": "a@b.com"})],
        json=sample("api-customer-list.json"),
    )
    assert client.customers.find_by_email("a@b.com")["id"].startswith("ctm_")


def test_portal_session(paddle, client):
    paddle.post(
        f"{PADDLE_BASE}/customers/ctm_1/portal-sessions",
        match=[matchers.json_params_matcher(sample("request-customer-portal-session-create.json"))],
        json=sample("api-customer-portal-session-create.json"),
        status=201,
    )
    session = client.customers.create_portal_session("ctm_1", ["sub_01h04vsc0qhwtsbsxh3422wjs4"])
    assert session["id"].startswith("cpls_")
    assert session["urls"]["general"]["overview"].startswith("https://")


def test_transaction_create_sends_items_customer_custom_data_and_checkout(paddle, client):
    paddle.post(
        f"{PADDLE_BASE}/transactions", json=sample("api-transaction-create.json"), status=201
    )
    transaction = client.transactions.create(
        [{"price_id": "pri_1", "quantity": 2}],
        customer_id="ctm_1",
        custom_data={"app_account_id": "a1", "app_subscription_id": "s1"},
        checkout_url="https://app.example.com/pay",
    )
    assert sent_json(paddle) == {
        "items": [{"price_id": "pri_1", "quantity": 2}],
        "customer_id": "ctm_1",
        "custom_data": {"app_account_id": "a1", "app_subscription_id": "s1"},
        "checkout": {"url": "https://app.example.com/pay"},
    }
    assert transaction["id"].startswith("txn_")
    assert transaction["origin"] == "api"


def test_transaction_get_and_invoice(paddle, client):
    paddle.get(
        f"{PADDLE_BASE}/transactions/txn_1",
        match=[matchers.query_param_matcher({"include": "customer,address"})],
        json=sample("api-transaction-get-with-includes.json"),
    )
    paddle.get(
        f"{PADDLE_BASE}/transactions/txn_1/invoice",
        json={"data": {"url": "https://paddle.test/invoice.pdf"}, "meta": {"request_id": "r"}},
    )
    transaction = client.transactions.get("txn_1", includes=["customer", "address"])
    assert transaction["customer"]["id"].startswith("ctm_")
    assert client.transactions.invoice_pdf_url("txn_1") == "https://paddle.test/invoice.pdf"


def test_transactions_follow_next_across_pages(paddle, client):
    page1 = sample("api-transaction-list-page1.json")
    page2 = sample("api-transaction-list-page2.json")
    # `next` is a full URL on Paddle's host; the test serves it from ours.
    next_url = page1["meta"]["pagination"]["next"].replace("https://api.paddle.com", PADDLE_BASE)
    page1["meta"]["pagination"]["next"] = next_url
    paddle.get(
        f"{PADDLE_BASE}/transactions",
        match=[
            matchers.query_param_matcher({"per_page": "30", "subscription_id": "sub_1"}),
        ],
        json=page1,
    )
    paddle.get(
        next_url,
        match=[matchers.query_param_matcher({"after": "txn_06h69ddtrb11km0wk46dn607ya"})],
        json=page2,
    )
    ids = [transaction["id"] for transaction in client.transactions.list(subscription_id="sub_1")]
    assert ids == [t["id"] for t in page1["data"]] + [t["id"] for t in page2["data"]]
    assert len(paddle.calls) == 2


def test_lists_are_lazy(paddle, client):
    first = {
        "data": [{"id": "sub_1"}],
        "meta": {
            "pagination": {"next": f"{PADDLE_BASE}/subscriptions?after=sub_1", "has_more": True}
        },
    }
    paddle.get(f"{PADDLE_BASE}/subscriptions", json=first)
    iterator = client.subscriptions.list()
    assert next(iterator)["id"] == "sub_1"
    assert len(paddle.calls) == 1  # the second page is not asked for until it is needed


def test_subscription_get_and_list_filters(paddle, client):
    paddle.get(
        f"{PADDLE_BASE}/subscriptions/sub_1",
        match=[matchers.query_param_matcher({"include": "next_transaction"})],
        json=sample("api-subscription-get-with-includes.json"),
    )
    paddle.get(
        f"{PADDLE_BASE}/subscriptions",
        match=[
            matchers.query_param_matcher(
                {
                    "per_page": "200",
                    "order_by": "id[ASC]",
                    "status": "active,past_due",
                    "scheduled_change_action": "cancel",
                }
            )
        ],
        json=sample("api-subscription-list.json"),
    )
    subscription = client.subscriptions.get("sub_1", includes=["next_transaction"])
    assert subscription["id"].startswith("sub_")
    listed = list(
        client.subscriptions.list(status=["active", "past_due"], scheduled_change_action="cancel")
    )
    assert len(listed) == 4


def test_update_with_items_and_proration(paddle, client):
    paddle.patch(f"{PADDLE_BASE}/subscriptions/sub_1", json=sample("api-subscription-get.json"))
    request = sample("request-subscription-update-example.json")
    client.subscriptions.update(
        "sub_1", items=request["items"], proration_billing_mode=request["proration_billing_mode"]
    )
    assert sent_json(paddle) == request


def test_update_can_send_a_null_scheduled_change(paddle, client):
    paddle.patch(f"{PADDLE_BASE}/subscriptions/sub_1", json=sample("api-subscription-get.json"))
    client.subscriptions.remove_scheduled_change("sub_1")
    assert sent_json(paddle) == {"scheduled_change": None}
    with pytest.raises(ValueError, match="null"):
        client.subscriptions.update("sub_1", scheduled_change={"action": "cancel"})
    with pytest.raises(ValueError, match="proration"):
        client.subscriptions.update("sub_1", items=[{"price_id": "pri_1", "quantity": 1}])


def test_preview_update(paddle, client):
    paddle.patch(
        f"{PADDLE_BASE}/subscriptions/sub_1/preview",
        json=sample("api-subscription-preview-update.json"),
    )
    preview = client.subscriptions.preview_update(
        "sub_1",
        items=[{"price_id": "pri_1", "quantity": 5}],
        proration_billing_mode="prorated_immediately",
    )
    assert "update_summary" in preview
    assert sent_json(paddle)["proration_billing_mode"] == "prorated_immediately"


def test_pause_resume_cancel_send_the_documented_bodies(paddle, client):
    subscription = sample("api-subscription-get.json")
    for action in ("pause", "resume", "cancel"):
        paddle.post(f"{PADDLE_BASE}/subscriptions/sub_1/{action}", json=subscription)

    client.subscriptions.pause(
        "sub_1",
        effective_from="next_billing_period",
        resume_at=datetime(2023, 10, 9, 16, 30, tzinfo=UTC),
        on_resume="start_new_billing_period",
    )
    assert sent_json(paddle) == sample("request-subscription-pause-with-on-resume.json")
    client.subscriptions.resume("sub_1")
    assert sent_json(paddle) == sample("request-subscription-resume-immediately.json")
    client.subscriptions.cancel("sub_1", effective_from="next_billing_period")
    assert sent_json(paddle) == sample("request-subscription-cancel.json")


def test_update_payment_method_transaction_and_charge(paddle, client):
    paddle.get(
        f"{PADDLE_BASE}/subscriptions/sub_1/update-payment-method-transaction",
        json=sample("api-subscription-update-payment-method-transaction.json"),
    )
    paddle.post(
        f"{PADDLE_BASE}/subscriptions/sub_1/charge",
        json=sample("api-subscription-get.json"),
        status=201,
    )
    transaction = client.subscriptions.update_payment_method_transaction("sub_1")
    assert transaction["checkout"]["url"]
    request = sample("request-subscription-charge-example.json")
    client.subscriptions.charge("sub_1", request["items"], effective_from=request["effective_from"])
    assert sent_json(paddle) == request


def test_events_and_notification_replay(paddle, client):
    events = sample("api-event-list.json")
    events["meta"]["pagination"]["has_more"] = False
    paddle.get(
        f"{PADDLE_BASE}/events",
        match=[
            matchers.query_param_matcher(
                {
                    "per_page": "200",
                    "order_by": "id[ASC]",
                    "after": "evt_0",
                    "event_type": "subscription.updated",
                }
            )
        ],
        json=events,
    )
    paddle.post(
        f"{PADDLE_BASE}/notifications/ntf_1/replay",
        json=sample("api-notification-replay.json"),
        status=202,
    )
    listed = list(client.events.list(after="evt_0", event_types=["subscription.updated"]))
    assert len(listed) == 11 and all(e["event_id"].startswith("evt_") for e in listed)
    assert client.notifications.replay("ntf_1") == "ntf_01h46h1s2zabpkdks7yt4vkgkc"


def test_a_refusal_becomes_an_api_error_with_its_fields(paddle, client):
    paddle.post(
        f"{PADDLE_BASE}/subscriptions/sub_1/pause",
        status=400,
        json={
            "error": {
                "type": "request_error",
                "code": "invalid_field",
                "detail": "Invalid request.",
                "documentation_url": "https://developer.paddle.com/errors/shared/invalid_field",
                "errors": [{"field": "resume_at", "message": "must be in the future"}],
            },
            "meta": {"request_id": "req-9"},
        },
    )
    with pytest.raises(ApiError) as caught:
        client.subscriptions.pause("sub_1", resume_at="2020-01-01T00:00:00Z")
    error = caught.value
    assert (error.status, error.code, error.type) == (400, "invalid_field", "request_error")
    assert error.field_errors[0].field == "resume_at"
    assert error.request_id == "req-9"
    assert len(paddle.calls) == 1  # a refusal is not retried


def test_prefetched_pages_come_in_order_and_errors_surface_where_they_happened():
    from paddle_client.pagination import prefetched

    def pages():
        yield [1]
        yield [2]
        raise ApiError(500, code="boom")

    iterator = prefetched(pages())
    assert next(iterator) == [1]
    assert next(iterator) == [2]
    with pytest.raises(ApiError):
        next(iterator)


def test_prefetching_stops_when_the_consumer_stops():
    import itertools

    from paddle_client.pagination import prefetched

    fetched = []

    def endless():
        for number in itertools.count():
            fetched.append(number)
            yield [number]

    iterator = prefetched(endless())
    assert next(iterator) == [0]
    iterator.close()
    time.sleep(0.3)  # give a runaway fetcher time to show itself
    stopped_at = len(fetched)
    time.sleep(0.3)
    assert len(fetched) == stopped_at  # nothing more is fetched once the consumer is gone
    assert stopped_at <= 3  # one in hand, one waiting, at most one being fetched
    alive = [t for t in threading.enumerate() if t.name == "paddle-prefetch" and t.is_alive()]
    assert alive == []  # the fetching thread ends instead of waiting forever


def test_pages_carry_paddles_estimated_total(paddle, client):
    listed = sample("api-subscription-list.json")
    paddle.get(f"{PADDLE_BASE}/subscriptions", json=listed)
    (page,) = list(client.subscriptions.list_pages())
    assert page.estimated_total == listed["meta"]["pagination"]["estimated_total"]
    assert len(page) == len(listed["data"])
