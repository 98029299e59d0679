from pathlib import Path

import pytest

from billing_app.models import Addon, Plan
from tests.helpers.samples import FIXTURES

PLANS = FIXTURES / "plans"


def run_import(app, path: Path):
    return app.test_cli_runner().invoke(args=["billing", "plans", "import", str(path)])


def test_import_creates_plans_from_yaml(app, session):
    result = run_import(app, PLANS / "plans.yaml")
    assert result.exit_code == 0, result.output
    assert "created: 2" in result.output

    starter = session.query(Plan).filter_by(slug="starter").one()
    assert starter.price_id == "pri_01gsz8x8sawmvhz1pv30nge1ke"
    assert starter.amount == "3000"
    assert starter.features == ["projects", "exports"]
    assert starter.limits == {"projects": 3, "seats": 1}
    team = session.query(Plan).filter_by(slug="team").one()
    assert team.amount == "50000"  # an integer in the file, a string of minor units here
    assert team.interval == "year"


def test_import_updates_by_slug(app, session, tmp_path):
    run_import(app, PLANS / "plans.yaml")
    changed = tmp_path / "plans.json"
    changed.write_text(
        '[{"slug": "starter", "name": "Starter Plus", "price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke",'
        ' "amount": "3500", "currency": "USD", "interval": "month", "features": ["projects"]}]'
    )
    result = run_import(app, changed)
    assert result.exit_code == 0, result.output
    assert "updated: 1" in result.output
    session.expire_all()
    starter = session.query(Plan).filter_by(slug="starter").one()
    assert (starter.name, starter.amount, starter.features) == (
        "Starter Plus",
        "3500",
        ["projects"],
    )
    assert session.query(Plan).count() == 2


def test_a_bad_file_names_plan_and_field_and_changes_nothing(app, session):
    run_import(app, PLANS / "plans.yaml")
    result = run_import(app, PLANS / "bad-amount.json")
    assert result.exit_code != 0
    assert "'pro'" in result.output
    assert "amount" in result.output
    session.expire_all()
    assert session.query(Plan).filter_by(slug="starter").one().name == "Starter"
    assert session.query(Plan).filter_by(slug="pro").count() == 0


def test_a_price_cannot_belong_to_two_plans(app, session, tmp_path):
    run_import(app, PLANS / "plans.yaml")
    clash = tmp_path / "clash.json"
    clash.write_text(
        '[{"slug": "other", "name": "Other", "price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke",'
        ' "amount": "1", "currency": "USD", "interval": "month"}]'
    )
    result = run_import(app, clash)
    assert result.exit_code != 0
    assert "'other'" in result.output and "price_id" in result.output
    assert session.query(Plan).count() == 2


def test_unknown_fields_and_unparseable_files_are_refused(app, session, tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        "- {slug: x, name: X, price_id: pri_x1, amount: '1', currency: USD, interval: month,"
        " featurs: [a]}\n"
    )
    result = run_import(app, typo)
    assert result.exit_code != 0
    assert "featurs" in result.output

    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("- slug: x\n  name: [unclosed\n")
    result = run_import(app, bad_yaml)
    assert result.exit_code != 0
    assert f"{bad_yaml}: not valid JSON or YAML" in result.output
    assert "line 3" in result.output and "<unicode string>" not in result.output

    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    result = run_import(app, broken)
    assert result.exit_code != 0
    assert "not valid JSON or YAML" in result.output
    assert session.query(Plan).count() == 0


def test_a_limit_that_is_not_a_number_boolean_or_null_is_refused(app, session, tmp_path):
    words = tmp_path / "words.yaml"
    words.write_text(
        "- {slug: x, name: X, price_id: pri_x1, amount: '1', currency: USD, interval: month,"
        " limits: {projects: three, seats: 5, sso: true, storage: null}}\n"
    )
    result = run_import(app, words)
    assert result.exit_code != 0
    assert "projects: a limit is a number, true or false, or null" in result.output
    assert "'three'" in result.output and "seats" not in result.output
    assert session.query(Plan).count() == 0


def test_sync_refreshes_price_facts_and_deactivates_unsold_plans(app, session):
    import responses

    from tests.helpers.rows import make_plan
    from tests.helpers.samples import sample

    prices = sample("api-price-list.json")
    sold = prices["data"][0]
    make_plan(session, slug="sold", price_id=sold["id"], amount="1", currency="EUR", interval="day")
    make_plan(session, slug="gone", price_id="pri_no_longer_sold")
    with responses.RequestsMock() as paddle:
        paddle.get("https://paddle.test/prices", json=prices)
        result = app.test_cli_runner().invoke(args=["billing", "plans", "sync"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    plan = session.query(Plan).filter_by(slug="sold").one()
    assert plan.amount == sold["unit_price"]["amount"]
    assert plan.currency == sold["unit_price"]["currency_code"]
    assert plan.interval == (sold["billing_cycle"] or {}).get("interval", "day")
    assert plan.name == "Starter"  # our own words are kept
    assert session.query(Plan).filter_by(slug="gone").one().active is False
    assert "deactivated: 1" in result.output


CONTRACT_ONLY = (
    '[{"slug": "starter", "name": "Starter", "price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke",'
    ' "features": ["projects"], "limits": {"projects": 3}}]'
)


def test_a_file_with_only_the_contracts_fields_imports_without_paddle(make_app, tmp_path):
    from billing_app.extensions import db

    app = make_app(PADDLE_API_KEY=None)
    plans = tmp_path / "plans.json"
    plans.write_text(CONTRACT_ONLY)
    result = run_import(app, plans)
    assert result.exit_code == 0, result.output
    assert "plans sync" in result.output  # says what is missing and how to fill it
    with app.app_context():
        plan = db.session.query(Plan).one()
        assert (plan.amount, plan.currency, plan.interval, plan.interval_count) == (
            None,
            None,
            None,
            1,
        )
        listed = app.test_client().get("/api/v1/plans").json
    assert listed[0]["slug"] == "starter"
    assert listed[0]["amount"] is None


def test_import_fills_the_price_facts_from_paddle_and_a_file_that_gives_them_wins(
    app, session, tmp_path
):
    import json

    import responses

    from tests.helpers.samples import sample

    price = sample("api-price-get-with-product.json")
    price_id = price["data"]["id"]
    entries = json.loads(CONTRACT_ONLY)
    entries[0]["price_id"] = price_id
    entries.append(
        {
            "slug": "team",
            "name": "Team",
            "price_id": "pri_01gsz91wy9k1yn7kx82aafwvea",
            "amount": "50000",
            "currency": "EUR",
            "interval": "year",
        }
    )
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps(entries))
    with responses.RequestsMock() as paddle:
        paddle.get(f"https://paddle.test/prices/{price_id}", json=price)
        result = run_import(app, plans)
        asked = [call.request.url for call in paddle.calls]
    assert result.exit_code == 0, result.output
    assert len(asked) == 1  # only the plan that left them out
    session.expire_all()
    starter = session.query(Plan).filter_by(slug="starter").one()
    assert starter.amount == price["data"]["unit_price"]["amount"]
    assert starter.currency == price["data"]["unit_price"]["currency_code"]
    assert starter.interval == price["data"]["billing_cycle"]["interval"]
    team = session.query(Plan).filter_by(slug="team").one()
    assert (team.amount, team.currency, team.interval) == ("50000", "EUR", "year")


def test_reimporting_an_identical_file_reports_unchanged(app, session):
    run_import(app, PLANS / "plans.yaml")
    result = run_import(app, PLANS / "plans.yaml")
    assert result.exit_code == 0, result.output
    assert "created: 0, updated: 0, unchanged: 2" in result.output


def test_a_file_that_is_not_utf8_is_refused_clearly(app, session, tmp_path):
    latin = tmp_path / "plans.yaml"
    latin.write_bytes("- slug: caf\xe9\n  name: Caf\xe9\n".encode("latin-1"))
    result = run_import(app, latin)
    assert result.exit_code == 1
    assert "not UTF-8" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"PADDLE_API_KEY": None}, "not configured"),
        ({"PADDLE_API_BASE_URL": "http://127.0.0.1:9"}, "unreachable"),
    ],
)
def test_sync_without_a_working_paddle_is_one_clear_line(make_app, settings, expected):
    app = make_app(PADDLE_REQUEST_DEADLINE_SECONDS=2, **settings)
    result = app.test_cli_runner().invoke(args=["billing", "plans", "sync"])
    assert result.exit_code == 1
    assert expected in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_sync_with_a_wrong_key_is_one_clear_line(app):
    import responses

    with responses.RequestsMock() as paddle:
        paddle.get(
            "https://paddle.test/prices",
            status=403,
            json={"error": {"code": "forbidden", "detail": "bad key"}},
        )
        result = app.test_cli_runner().invoke(args=["billing", "plans", "sync"])
    assert result.exit_code == 1
    assert "refused the API key" in result.output


def test_a_plans_file_carries_meters_and_one_free_plan(app, session):
    result = run_import(app, PLANS / "metered.yaml")
    assert result.exit_code == 0, result.output
    free = session.query(Plan).filter_by(slug="free").one()
    assert (free.free, free.price_id, free.meters["api_calls"]["included"]) == (True, None, 1000)
    pro = session.query(Plan).filter_by(slug="pro").one()
    assert pro.meters["api_calls"] == {
        "included": 100000,
        "hard_limit": 150000,
        "overage_price_id": "pri_01gsz98e27ak2tyhexptwc58yk",
        "overage_unit": 1000,
    }
    assert "still without" not in result.output  # the free plan needs no price facts


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ('{"included": -1}', "api_calls"),
        ('{"included": 10, "hard_limit": 5}', "hard_limit"),
        ('{"included": 10, "overage_price_id": "price_1"}', "overage_price_id"),
        ('{"included": 10, "overage_unit": 0}', "overage_unit"),
        ('{"included": 10, "surprise": 1}', "surprise"),
    ],
)
def test_a_bad_meter_names_its_plan_and_field_and_changes_nothing(
    app, session, tmp_path, entry, named
):
    bad = tmp_path / "plans.json"
    bad.write_text(
        '[{"slug": "pro", "name": "Pro", "price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke",'
        f' "meters": {{"api_calls": {entry}}}}}]'
    )
    result = run_import(app, bad)
    assert result.exit_code != 0
    assert "plan 'pro'" in result.output and named in result.output, result.output
    assert session.query(Plan).count() == 0


def test_the_free_plan_has_no_price_and_there_is_one_at_most(app, session, tmp_path):
    priced = tmp_path / "priced.json"
    priced.write_text(
        '[{"slug": "free", "name": "Free", "free": true,'
        ' "price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke"}]'
    )
    result = run_import(app, priced)
    assert result.exit_code != 0 and "the free plan has no price" in result.output
    two = tmp_path / "two.json"
    two.write_text(
        '[{"slug": "a", "name": "A", "free": true}, {"slug": "b", "name": "B", "free": true}]'
    )
    result = run_import(app, two)
    assert result.exit_code != 0 and "plan 'b'" in result.output, result.output
    assert run_import(app, PLANS / "metered.yaml").exit_code == 0
    other = tmp_path / "other.json"
    other.write_text('[{"slug": "basic", "name": "Basic", "free": true}]')
    result = run_import(app, other)
    assert result.exit_code != 0 and "is the free plan already" in result.output, result.output


def test_add_ons_import_with_their_grants_and_name_plans_that_exist(app, session, tmp_path):
    run_import(app, PLANS / "plans.yaml")
    addons = tmp_path / "addons.yaml"
    addons.write_text(
        "- {type: addon, slug: storage, name: Storage, price_id: pri_storage, amount: 500,"
        " currency: USD, interval: month, limits: {projects: 10}, seats: 1, quantity: true,"
        " plans: [team]}\n"
    )
    result = run_import(app, addons)
    assert result.exit_code == 0, result.output
    storage = session.query(Addon).filter_by(slug="storage").one()
    assert (storage.limits, storage.seats, storage.has_quantity, storage.plans) == (
        {"projects": 10},
        1,
        True,
        ["team"],
    )
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        "- {type: addon, slug: sso, name: SSO, price_id: pri_sso, features: [sso],"
        " plans: [enterprise]}\n"
        "- {type: addon, slug: nothing, name: Nothing, price_id: pri_nothing}\n"
    )
    refused = run_import(app, wrong)
    assert refused.exit_code != 0
    assert "add-on 'nothing' (entry 2): features" in refused.output
    bad_plan = tmp_path / "bad_plan.yaml"
    bad_plan.write_text(
        "- {type: addon, slug: sso, name: SSO, price_id: pri_sso, features: [sso],"
        " plans: [enterprise]}\n"
    )
    unknown = run_import(app, bad_plan)
    assert unknown.exit_code != 0
    assert "no plan 'enterprise'" in unknown.output
    assert session.query(Addon).count() == 1


def test_a_meters_alerts_are_percents_or_the_cap(app, session, tmp_path):
    bad = tmp_path / "alerts.yaml"
    bad.write_text(
        "- {slug: pro, name: Pro, price_id: pri_pro, amount: 100, currency: USD,"
        " interval: month, meters: {api: {included: 10, alerts: [80, soon, 0]}}}\n"
    )
    refused = run_import(app, bad)
    assert refused.exit_code != 0
    assert "meters.api.alerts" in refused.output and "'soon'" in refused.output
    assert session.query(Plan).count() == 0
