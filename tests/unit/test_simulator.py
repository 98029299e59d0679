"""The simulator speaks Paddle's wire format, moves subscriptions as Paddle does, and signs
its webhooks as Paddle signs them."""

import json
from urllib.parse import urlsplit

import responses
from werkzeug.test import Client as WsgiClient

from paddle_client import Client
from paddle_client.simulator import create_simulator
from paddle_client.webhooks import parse_notification, verify
from tests.helpers.simulated_paddle import AUTH, HOOK, KEY, SECRET, STARTER, checkout


def event_types(sim):
    return [event["event_type"] for event in sim.events]


def test_the_key_is_required_and_errors_use_paddles_envelope(http):
    assert http.get("/subscriptions").json["error"]["code"] == "authentication_missing"
    wrong = http.get("/subscriptions", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json["error"]["code"]) == (403, "invalid_token")
    missing = http.get("/no/such/route", headers=AUTH)
    assert missing.status_code == 404
    assert set(missing.json["error"]) >= {"type", "code", "detail", "documentation_url"}


def test_checkout_emits_paddles_sequence(sim, http):
    transaction = checkout(http, app_account_id="acct_1")
    assert transaction["status"] == "completed"
    assert event_types(sim) == [
        "transaction.created",
        "customer.created",
        "transaction.paid",
        "subscription.created",
        "subscription.activated",
        "transaction.updated",
        "transaction.completed",
    ]
    created = next(e for e in sim.events if e["event_type"] == "subscription.created")
    assert created["data"]["transaction_id"] == transaction["id"]
    assert created["data"]["custom_data"] == {"app_account_id": "acct_1"}
    assert "management_urls" not in created["data"]


def test_webhooks_are_signed_as_paddle_signs_them(sim, http, hooks):
    checkout(http)
    assert sim.deliverer.wait_idle(10)
    posts = [call for call in hooks.calls if call.request.url == HOOK]
    assert len(posts) == len(sim.events)
    for call in posts:
        body = call.request.body
        verify(call.request.headers["Paddle-Signature"], body, [SECRET], tolerance=60)
        assert parse_notification(body).notification_id.startswith("ntf_")


def test_the_client_pages_through_the_simulator(sim, hooks):
    sim.state.seed_subscriptions(450, STARTER)
    hooks.add_passthru("http://sim.test")
    client = Client(KEY, base_url="http://sim.test")
    client.transport.session.mount("http://sim.test", WsgiAdapter(sim))
    ids = [subscription["id"] for subscription in client.subscriptions.list()]
    assert len(ids) == 450 and ids == sorted(ids)


class WsgiAdapter:
    """Lets `requests` talk to the WSGI app in-process."""

    def __init__(self, app):
        self.client = WsgiClient(app)

    def send(self, request, **kwargs):
        from requests.models import Response

        url = urlsplit(request.url)
        answer = self.client.open(
            request.path_url,
            base_url=f"{url.scheme}://{url.netloc}",
            method=request.method,
            headers=dict(request.headers),
            data=request.body,
        )
        response = Response()
        response.status_code = answer.status_code
        response._content = answer.get_data()
        response.headers.update(answer.headers)
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


def test_time_travel_renews_and_applies_scheduled_cancellation(sim, http):
    subscription_id = checkout(http)["subscription_id"]
    http.post(f"/subscriptions/{subscription_id}/cancel", json={}, headers=AUTH)
    first = http.get(f"/subscriptions/{subscription_id}", headers=AUTH).json["data"]
    assert (first["status"], first["scheduled_change"]["action"]) == ("active", "cancel")
    http.post("/_sim/clock/advance", json={"seconds": 40 * 86400})
    after = http.get(f"/subscriptions/{subscription_id}", headers=AUTH).json["data"]
    assert after["status"] == "canceled" and after["canceled_at"]
    assert event_types(sim)[-1] == "subscription.canceled"


def test_a_renewal_bills_and_moves_the_period(sim, http):
    subscription_id = checkout(http)["subscription_id"]
    before = http.get(f"/subscriptions/{subscription_id}", headers=AUTH).json["data"]
    http.post("/_sim/clock/advance", json={"seconds": 32 * 86400})
    after = http.get(f"/subscriptions/{subscription_id}", headers=AUTH).json["data"]
    assert (
        after["current_billing_period"]["starts_at"] == before["current_billing_period"]["ends_at"]
    )
    renewal = [e for e in sim.events if e["event_type"] == "transaction.completed"][-1]
    assert renewal["data"]["origin"] == "subscription_recurring"


def test_a_failed_renewal_goes_past_due_and_recovers(sim, http):
    subscription_id = checkout(http)["subscription_id"]
    http.post(f"/_sim/subscriptions/{subscription_id}/fail-next-renewal")
    http.post("/_sim/clock/advance", json={"seconds": 32 * 86400})
    assert (
        http.get(f"/subscriptions/{subscription_id}", headers=AUTH).json["data"]["status"]
        == "past_due"
    )
    assert "transaction.payment_failed" in event_types(sim)
    overdue = http.get(
        f"/subscriptions/{subscription_id}/update-payment-method-transaction", headers=AUTH
    ).json["data"]
    assert overdue["status"] == "past_due"
    http.post(f"/_sim/transactions/{overdue['id']}/complete", json={})
    assert (
        http.get(f"/subscriptions/{subscription_id}", headers=AUTH).json["data"]["status"]
        == "active"
    )


def test_pause_now_resume_and_state_errors(sim, http):
    subscription_id = checkout(http)["subscription_id"]
    paused = http.post(
        f"/subscriptions/{subscription_id}/pause",
        json={"effective_from": "immediately"},
        headers=AUTH,
    ).json["data"]
    assert (paused["status"], paused["current_billing_period"]) == ("paused", None)
    again = http.post(f"/subscriptions/{subscription_id}/pause", json={}, headers=AUTH)
    assert again.status_code == 400
    resumed = http.post(f"/subscriptions/{subscription_id}/resume", json={}, headers=AUTH).json[
        "data"
    ]
    assert resumed["status"] == "active"
    http.post(
        f"/subscriptions/{subscription_id}/cancel",
        json={"effective_from": "immediately"},
        headers=AUTH,
    )
    refused = http.patch(
        f"/subscriptions/{subscription_id}",
        json={
            "items": [{"price_id": STARTER, "quantity": 2}],
            "proration_billing_mode": "do_not_bill",
        },
        headers=AUTH,
    )
    assert refused.json["error"]["code"] == "subscription_update_when_canceled"


def test_customers_are_unique_by_email(http):
    http.post("/customers", json={"email": "a@example.com"}, headers=AUTH)
    clash = http.post("/customers", json={"email": "a@example.com"}, headers=AUTH)
    assert clash.status_code == 409
    assert clash.json["error"]["code"] == "customer_already_exists"
    assert "ctm_" in clash.json["error"]["detail"]


def test_rate_limit_fault_answers_429_with_retry_after(sim, http):
    http.post("/_sim/faults", json={"rate_limit_next": 1})
    limited = http.get("/subscriptions", headers=AUTH)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert http.get("/subscriptions", headers=AUTH).status_code == 200


def test_delivery_faults_drop_and_duplicate(sim, http, hooks):
    http.post("/_sim/faults", json={"drop_next": 2, "duplicate": True})
    checkout(http)
    sim.deliverer.wait_idle(10)
    deliveries = http.get("/_sim/deliveries").json["data"]
    assert [d["status"] for d in deliveries[:2]] == ["dropped", "dropped"]
    assert all(len(d["attempts"]) == 2 for d in deliveries[2:])  # each sent twice


def test_the_checkout_page_has_pay_and_decline(sim, http):
    created = http.post(
        "/transactions", json={"items": [{"price_id": STARTER}]}, headers=AUTH
    ).json["data"]
    page = http.get(f"/checkout?_ptxn={created['id']}")
    assert b"<button>Pay</button>" in page.data and b"Decline" in page.data
    declined = http.post(
        f"/_sim/transactions/{created['id']}/decline",
        data={},
        content_type="application/x-www-form-urlencoded",
    )
    assert declined.status_code == 303
    back = http.get(declined.headers["Location"]).get_data(as_text=True)
    assert "The card was declined" in back
    assert event_types(sim)[-1] == "transaction.payment_failed"


def test_the_checkout_page_names_the_plan_says_what_paying_did_and_then_shows_no_pay(sim, http):
    created = http.post(
        "/transactions", json={"items": [{"price_id": STARTER}]}, headers=AUTH
    ).json["data"]
    page = http.get(f"/checkout?_ptxn={created['id']}").get_data(as_text=True)
    product = sim.state.products[created["items"][0]["price"]["product_id"]]["name"]
    assert f"<h1>{product}</h1>" in page
    paid = http.post(
        f"/_sim/transactions/{created['id']}/complete",
        data={},
        content_type="application/x-www-form-urlencoded",
    )
    # Redirect after POST: the page a buyer lands on is a GET, which a reload repeats safely.
    assert paid.status_code == 303
    assert paid.headers["Location"] == f"/checkout?_ptxn={created['id']}&done=1"
    landed = http.get(paid.headers["Location"]).get_data(as_text=True)
    assert "(completed)" in landed and "webhooks" in landed
    assert http.get(paid.headers["Location"]).get_data(as_text=True) == landed  # a reload
    assert event_types(sim).count("transaction.completed") == 1  # paid once
    again = http.get(f"/checkout?_ptxn={created['id']}").get_data(as_text=True)
    assert "<button>Pay</button>" not in again
    assert "nothing to pay" in again


def test_reset_forgets_everything(sim, http):
    checkout(http)
    http.post("/_sim/reset")
    assert http.get("/subscriptions", headers=AUTH).json["data"] == []
    assert sim.events == []
    assert json.loads(http.get("/_sim/faults").data)["duplicate"] is False


def test_a_failed_delivery_is_retried_until_it_is_accepted():
    with responses.RequestsMock() as mock:
        mock.post(HOOK, status=500)
        mock.post(HOOK, status=503)
        mock.post(HOOK, json={"status": "processed"})
        simulator = create_simulator(KEY, HOOK, SECRET)
        try:
            WsgiClient(simulator).post("/customers", json={"email": "r@example.com"}, headers=AUTH)
            assert simulator.deliverer.wait_idle(15)
            (delivery,) = simulator.deliverer.deliveries
            assert [a["response_code"] for a in delivery.attempts] == [500, 503, 200]
            assert delivery.status == "delivered"
        finally:
            simulator.deliverer.stop()


ONBOARDING = "pri_01hsim0onboarding0000000"  # the simulator's one-time price


def test_a_charge_for_the_next_period_waits_for_the_renewal_and_an_immediate_one_bills_now(
    sim, http
):
    subscription_id = checkout(http)["subscription_id"]
    later = {
        "effective_from": "next_billing_period",
        "items": [{"price_id": ONBOARDING, "quantity": 3}],
    }
    assert (
        http.post(f"/subscriptions/{subscription_id}/charge", json=later, headers=AUTH).status_code
        == 201
    )
    upcoming = http.get(
        f"/subscriptions/{subscription_id}?include=next_transaction", headers=AUTH
    ).json["data"]["next_transaction"]["details"]["line_items"]
    assert {"price_id": ONBOARDING, "quantity": 3} in upcoming
    http.post("/_sim/clock/advance", json={"seconds": 32 * 86400})
    renewal = [e for e in sim.events if e["event_type"] == "transaction.completed"][-1]["data"]
    assert renewal["origin"] == "subscription_recurring"
    assert [(i["price"]["id"], i["quantity"]) for i in renewal["items"]][-1] == (ONBOARDING, 3)
    after = http.get(f"/subscriptions/{subscription_id}?include=next_transaction", headers=AUTH)
    lines = after.json["data"]["next_transaction"]["details"]["line_items"]
    assert ONBOARDING not in {line["price_id"] for line in lines}  # billed once

    now = {"effective_from": "immediately", "items": [{"price_id": ONBOARDING, "quantity": 1}]}
    http.post(f"/subscriptions/{subscription_id}/charge", json=now, headers=AUTH)
    billed = [e for e in sim.events if e["event_type"] == "transaction.completed"][-1]["data"]
    assert (billed["origin"], billed["items"][0]["price"]["id"]) == (
        "subscription_charge",
        ONBOARDING,
    )


PRO_TRIAL = "pri_01hsim0protrial000000000"
ONBOARDING = "pri_01hsim0onboarding0000000"


def buy(http, price_id):
    created = http.post(
        "/transactions", json={"items": [{"price_id": price_id, "quantity": 1}]}, headers=AUTH
    ).json["data"]
    return http.post(f"/_sim/transactions/{created['id']}/complete", json={}).json["data"]


def test_a_trial_price_starts_trialing_for_nothing_then_bills_at_its_end(sim, http):
    paid = buy(http, PRO_TRIAL)
    assert paid["details"]["totals"]["total"] == "0"  # the trial's checkout charges nothing
    subscription = http.get(f"/subscriptions/{paid['subscription_id']}", headers=AUTH).json["data"]
    assert subscription["status"] == "trialing"
    trial = subscription["items"][0]["trial_dates"]
    assert subscription["next_billed_at"] == trial["ends_at"]
    assert "subscription.trialing" in event_types(sim)

    http.post("/_sim/clock/advance", json={"seconds": 15 * 86400})
    after = http.get(f"/subscriptions/{paid['subscription_id']}", headers=AUTH).json["data"]
    assert after["status"] == "active"
    renewals = http.get(
        f"/transactions?subscription_id={paid['subscription_id']}&origin=subscription_recurring",
        headers=AUTH,
    ).json["data"]
    assert [(t["status"], t["details"]["totals"]["total"]) for t in renewals] == [
        ("completed", "2900")
    ]
    assert event_types(sim)[-1] == "transaction.completed"
    assert "subscription.activated" in event_types(sim)


def test_activate_ends_a_trial_now_and_bills_it(sim, http):
    paid = buy(http, PRO_TRIAL)
    activated = http.post(
        f"/subscriptions/{paid['subscription_id']}/activate", json={}, headers=AUTH
    ).json["data"]
    assert activated["status"] == "active"
    again = http.post(f"/subscriptions/{paid['subscription_id']}/activate", json={}, headers=AUTH)
    assert again.json["error"]["code"] == "subscription_not_trialing"


def test_invoices_only_for_completed_non_zero_transactions_and_they_are_pdfs(sim, http):
    bought = buy(http, ONBOARDING)
    assert bought["status"] == "completed" and bought["subscription_id"] is None
    link = http.get(f"/transactions/{bought['id']}/invoice", headers=AUTH).json["data"]["url"]
    pdf = http.get(urlsplit(link).path)
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.data.startswith(b"%PDF-1.4") and pdf.data.rstrip().endswith(b"%%EOF")
    assert b"9900" in pdf.data

    trial = buy(http, PRO_TRIAL)
    zero = http.get(f"/transactions/{trial['id']}/invoice", headers=AUTH)
    assert (zero.status_code, zero.json["error"]["code"]) == (
        400,
        "transaction_invoice_unavailable",
    )
    open_one = http.post(
        "/transactions", json={"items": [{"price_id": ONBOARDING, "quantity": 1}]}, headers=AUTH
    ).json["data"]
    assert http.get(f"/transactions/{open_one['id']}/invoice", headers=AUTH).status_code == 400


def test_transactions_are_listed_by_when_they_were_last_updated(sim, http):
    first = buy(http, ONBOARDING)
    http.post("/_sim/clock/advance", json={"seconds": 3 * 86400})
    second = buy(http, ONBOARDING)
    since = second["updated_at"]
    listed = http.get("/transactions", query_string={"updated_at[GTE]": since}, headers=AUTH).json[
        "data"
    ]
    assert [t["id"] for t in listed] == [second["id"]]
    every = http.get("/transactions", headers=AUTH).json["data"]
    assert {first["id"], second["id"]} <= {t["id"] for t in every}


def test_list_filters_all_apply_together(http):
    """The service asks for a customer's open checkouts (customer and status together) and
    a subscription's one-time charges (subscription and origin): every filter counts."""

    def customer(email: str) -> str:
        return http.post("/customers", json={"email": email}, headers=AUTH).json["data"]["id"]

    def open_checkout(customer_id: str) -> dict:
        body = {"items": [{"price_id": STARTER, "quantity": 1}], "customer_id": customer_id}
        return http.post("/transactions", json=body, headers=AUTH).json["data"]

    def listed(**filters) -> set[str]:
        found = http.get("/transactions", query_string=filters, headers=AUTH).json["data"]
        return {transaction["id"] for transaction in found}

    ada, bob = customer("ada@example.com"), customer("bob@example.com")
    adas_open, bobs_open = open_checkout(ada), open_checkout(bob)
    adas_paid = open_checkout(ada)
    paid = http.post(f"/_sim/transactions/{adas_paid['id']}/complete", json={}).json["data"]

    assert listed(customer_id=ada, status="draft,ready") == {adas_open["id"]}
    assert listed(customer_id=bob, status="draft,ready") == {bobs_open["id"]}
    assert listed(customer_id=ada, status="completed") == {paid["id"]}
    assert listed(status="draft,ready") == {adas_open["id"], bobs_open["id"]}
    assert listed(subscription_id=paid["subscription_id"], origin=paid["origin"]) == {paid["id"]}
    assert listed(subscription_id=paid["subscription_id"], origin="subscription_charge") == set()
