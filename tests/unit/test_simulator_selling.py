"""The simulator sells as Paddle does: localized prices and tax in pricing previews, and
discounts on checkouts, renewals and subscriptions."""

from tests.helpers.simulated_paddle import AUTH, STARTER

TEAM = "pri_01hsim0teammonth000000000"
MONTH = 31 * 86400


def preview(http, **body):
    answer = http.post("/pricing-preview", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.json
    return answer.json["data"]


def discount(http, **fields):
    body = {"description": "Test", "type": "percentage", "amount": "20", **fields}
    answer = http.post("/discounts", json=body, headers=AUTH)
    assert answer.status_code == 201, answer.json
    return answer.json["data"]


def test_a_country_override_is_shown_with_the_tax_it_includes(http):
    data = preview(
        http, items=[{"price_id": STARTER, "quantity": 1}], address={"country_code": "GB"}
    )
    line = data["details"]["line_items"][0]
    assert data["currency_code"] == "GBP"
    assert line["unit_totals"] == {
        "subtotal": "1250",
        "discount": "0",
        "tax": "250",
        "total": "1500",
    }
    assert line["formatted_unit_totals"]["total"] == "£15.00"
    assert line["tax_rate"] == "0.2"


def test_without_an_override_the_price_is_converted_and_zero_decimal_currencies_stay_whole(http):
    us = preview(http, items=[{"price_id": STARTER, "quantity": 2}], address={"country_code": "US"})
    assert us["details"]["line_items"][0]["totals"]["total"] == "3800"
    japan = preview(
        http, items=[{"price_id": STARTER, "quantity": 1}], address={"country_code": "JP"}
    )
    line = japan["details"]["line_items"][0]
    assert (japan["currency_code"], line["unit_totals"]["total"]) == ("JPY", "2850")
    assert line["formatted_unit_totals"]["total"] == "¥2,850"
    euros = preview(
        http,
        items=[{"price_id": STARTER, "quantity": 1}],
        address={"country_code": "US"},
        currency_code="EUR",
    )
    assert euros["details"]["line_items"][0]["unit_totals"]["total"] == "1748"


def test_an_address_is_located_by_ip(http):
    data = preview(
        http, items=[{"price_id": TEAM, "quantity": 1}], customer_ip_address="81.2.69.142"
    )
    assert data["currency_code"] == "GBP"
    assert data["details"]["line_items"][0]["unit_totals"]["total"] == "3900"


def test_a_discount_comes_off_before_the_tax_a_price_includes(http):
    code = discount(http, code="SAVE20")
    data = preview(
        http,
        items=[{"price_id": STARTER, "quantity": 1}],
        address={"country_code": "GB"},
        discount_id=code["id"],
    )
    line = data["details"]["line_items"][0]
    assert line["unit_totals"] == {
        "subtotal": "1300",
        "discount": "300",
        "tax": "200",
        "total": "1200",
    }
    assert line["discounts"][0]["discount"]["code"] == "SAVE20"


def test_codes_are_unique_and_listed_by_code_whatever_the_case(http):
    made = discount(http, code="Launch")
    clash = http.post(
        "/discounts",
        json={"description": "x", "type": "percentage", "amount": "5", "code": "LAUNCH"},
        headers=AUTH,
    )
    assert (clash.status_code, clash.json["error"]["code"]) == (409, "discount_code_conflict")
    found = http.get("/discounts?code=launch", headers=AUTH).json["data"]
    assert [d["id"] for d in found] == [made["id"]]


def test_a_checkout_carries_its_discount_and_counts_a_use(http, sim):
    code = discount(http, type="flat", amount="500", currency_code="USD", usage_limit=1)
    created = http.post(
        "/transactions",
        json={"items": [{"price_id": STARTER, "quantity": 1}], "discount_id": code["id"]},
        headers=AUTH,
    ).json["data"]
    assert created["discount_id"] == code["id"]
    assert created["details"]["totals"]["discount"] == "500"
    assert created["details"]["totals"]["grand_total"] == "1400"
    http.post(f"/_sim/transactions/{created['id']}/complete", json={})
    again = http.post(
        "/transactions",
        json={"items": [{"price_id": STARTER, "quantity": 1}], "discount_id": code["id"]},
        headers=AUTH,
    )
    assert again.json["error"]["code"] == "discount_usage_limit_exceeded"
    assert http.get(f"/discounts/{code['id']}", headers=AUTH).json["data"]["status"] == "used"


def test_an_expired_discount_is_refused_at_checkout(http):
    code = discount(http, expires_at="2020-01-01T00:00:00Z")
    refused = http.post(
        "/transactions",
        json={"items": [{"price_id": STARTER, "quantity": 1}], "discount_id": code["id"]},
        headers=AUTH,
    )
    assert (refused.status_code, refused.json["error"]["code"]) == (
        400,
        "transaction_discount_not_found",
    )


def test_a_recurring_discount_lasts_its_intervals_then_renewals_bill_in_full(http, sim):
    code = discount(http, recur=True, maximum_recurring_intervals=2)
    created = http.post(
        "/transactions",
        json={"items": [{"price_id": STARTER, "quantity": 1}], "discount_id": code["id"]},
        headers=AUTH,
    ).json["data"]
    paid = http.post(f"/_sim/transactions/{created['id']}/complete", json={}).json["data"]
    subscription = sim.state.subscriptions[paid["subscription_id"]]
    assert subscription["discount"]["id"] == code["id"]
    http.post("/_sim/clock/advance", json={"seconds": MONTH})
    http.post("/_sim/clock/advance", json={"seconds": MONTH})
    renewals = [
        t["details"]["totals"]
        for t in sim.state.transactions.values()
        if t["origin"] == "subscription_recurring"
    ]
    assert [(t["discount"], t["grand_total"]) for t in renewals] == [("380", "1520"), ("0", "1900")]
