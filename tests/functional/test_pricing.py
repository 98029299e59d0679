"""GET /api/v1/pricing: the catalogue priced for a visitor by Paddle's pricing preview (the
simulator answering at Paddle's address), remembered per key, one call per key at a time."""

import threading
import time

import pytest
import responses

from paddle_client.simulator import create_simulator
from tests.helpers.config import PADDLE_API_KEY, PADDLE_BASE
from tests.helpers.rows import make_plan
from tests.helpers.simulated_paddle import SimulatedPaddle

STARTER = "pri_01hsim0startermonth000000"
TEAM = "pri_01hsim0teammonth000000000"
PREVIEW = ("POST", "/pricing-preview")


@pytest.fixture
def simulated():
    """The simulator at Paddle's address (a call to any route not forwarded fails)."""
    simulator = create_simulator(PADDLE_API_KEY, None, None)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = SimulatedPaddle(mock, PADDLE_BASE, simulator)
        fake.route("POST", "/pricing-preview")
        fake.route("GET", "/discounts")
        yield fake
    simulator.deliverer.stop()


@pytest.fixture
def catalogue(session):
    make_plan(session, slug="starter", name="Starter", price_id=STARTER)
    make_plan(session, slug="team", name="Team", price_id=TEAM)
    make_plan(session, slug="free", name="Free", price_id=None, free=True, amount=None)
    session.commit()


def discount(simulated, **fields):
    body = {"description": "Launch", "type": "percentage", "amount": "20", **fields}
    return simulated.simulator.state.create_discount(body)


def by_slug(answer):
    return {item["slug"]: item for item in answer.json["items"]}


def test_a_visitor_in_each_country_sees_their_currency_and_tax(client, simulated, catalogue):
    uk = client.get("/api/v1/pricing?country=gb")
    assert uk.status_code == 200, uk.json
    assert uk.json["currency"] == "GBP"
    assert uk.json["location"] == {"country": "GB", "postal_code": None, "located_by": "country"}
    starter = by_slug(uk)["starter"]
    assert starter["unit_totals"] == {
        "subtotal": "1250",
        "discount": "0",
        "tax": "250",
        "total": "1500",
    }
    assert starter["formatted_unit_totals"]["total"] == "£15.00"
    assert (starter["tax_included"], starter["tax_rate"]) == (True, "0.2")
    assert set(by_slug(uk)) == {"starter", "team"}  # the free plan has no price

    us = client.get("/api/v1/pricing?country=US&postal_code=10001")
    assert us.json["currency"] == "USD"
    assert by_slug(us)["team"]["unit_totals"]["total"] == "4900"
    assert by_slug(us)["team"]["tax_included"] is False
    assert uk.headers["Cache-Control"] == "public, max-age=60"


def test_a_discount_code_prices_every_item_it_covers(client, simulated, catalogue):
    discount(simulated, code="LAUNCH20", restrict_to=[STARTER], recur=True)
    answer = client.get("/api/v1/pricing?country=DE&discount_code=launch20")
    assert answer.status_code == 200, answer.json
    assert answer.json["discount"]["code"] == "LAUNCH20"
    assert answer.json["discount"]["recurring"] is True
    items = by_slug(answer)
    assert items["starter"]["unit_totals"]["discount"] == "360"  # 20% of €18.00
    assert items["starter"]["unit_totals"]["total"] == "1440"
    assert items["team"]["unit_totals"]["discount"] == "0"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"code": "OLD", "expires_at": "2020-01-01T00:00:00Z"}, "no longer valid"),
        ({"code": "OFF", "status": "archived"}, "no longer valid"),
        ({"code": "STAFF", "enabled_for_checkout": False}, "cannot be used at checkout"),
    ],
)
def test_a_code_that_cannot_be_used_is_refused_before_pricing(
    client, simulated, catalogue, fields, reason
):
    discount(simulated, **fields)
    answer = client.get(f"/api/v1/pricing?country=US&discount_code={fields['code']}")
    assert answer.status_code == 422
    assert answer.json["error"] == "discount_invalid"
    assert reason in answer.json["message"]
    assert simulated.calls[PREVIEW] == 0


def test_answers_are_remembered_per_key_with_an_etag(client, simulated, catalogue):
    first = client.get("/api/v1/pricing?country=GB")
    again = client.get("/api/v1/pricing?country=gb")
    assert again.data == first.data
    assert simulated.calls[PREVIEW] == 1
    unchanged = client.get(
        "/api/v1/pricing?country=GB", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert unchanged.status_code == 304
    euros = client.get("/api/v1/pricing?country=GB&currency=eur")
    assert euros.json["currency"] == "EUR"
    assert simulated.calls[PREVIEW] == 2


def test_a_stampede_of_first_requests_makes_one_paddle_call(make_app, simulated, catalogue):
    app = make_app(RATE_LIMIT_ENABLED=False)
    simulated.before[PREVIEW] = lambda: time.sleep(0.5)  # every visitor arrives meanwhile
    start = threading.Barrier(500)
    statuses, answers = [], set()

    def visit():
        start.wait()
        answer = app.test_client().get("/api/v1/pricing?country=FR")
        statuses.append(answer.status_code)
        answers.add(answer.data)

    threads = [threading.Thread(target=visit) for _ in range(500)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 500
    assert len(answers) == 1
    assert simulated.calls[PREVIEW] == 1


def test_paddle_down_serves_the_last_good_answer_marked_stale(make_app, simulated, catalogue):
    client = make_app(PRICING_CACHE_SECONDS=0.05).test_client()
    fresh = client.get("/api/v1/pricing?country=GB")
    assert fresh.json["stale"] is False
    time.sleep(0.1)
    simulated.simulator.deliverer.faults.fail_api_next = 1000  # an outage
    stale = client.get("/api/v1/pricing?country=GB")
    assert stale.status_code == 200
    assert stale.json["stale"] is True
    assert stale.json["items"] == fresh.json["items"]
    assert stale.headers["ETag"] != fresh.headers["ETag"]
    never_priced = client.get("/api/v1/pricing?country=DE")
    assert (never_priced.status_code, never_priced.json["error"]) == (503, "paddle_unavailable")


def test_the_address_locates_a_visitor_only_through_trusted_proxies(make_app, simulated, catalogue):
    forwarded = {"X-Forwarded-For": "81.2.69.142"}
    direct = make_app().test_client().get("/api/v1/pricing", headers=forwarded)
    assert direct.json["location"]["located_by"] == "none"  # anyone can send the header
    assert direct.json["currency"] == "USD"
    proxied = make_app(TRUSTED_PROXIES=1).test_client().get("/api/v1/pricing", headers=forwarded)
    assert proxied.json["location"]["located_by"] == "ip_address"
    assert proxied.json["currency"] == "GBP"
    assert proxied.headers["Cache-Control"] == "private, max-age=60"


def test_a_trusted_country_header_locates_the_visitor(make_app, simulated, catalogue):
    client = make_app(PRICING_COUNTRY_HEADER="CF-IPCountry").test_client()
    answer = client.get("/api/v1/pricing", headers={"CF-IPCountry": "de"})
    assert answer.json["location"]["country"] == "DE"
    assert answer.json["currency"] == "EUR"


def test_bad_queries_are_refused_with_their_fields(client, catalogue):
    answer = client.get("/api/v1/pricing?country=Britain&currency=pounds&colour=red")
    assert answer.status_code == 422
    assert set(answer.json["errors"]) >= {"country", "currency", "colour"}
