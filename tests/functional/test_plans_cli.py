from pathlib import Path

from billing_app.models import Plan
from tests.conftest import FIXTURES

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

    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    result = run_import(app, broken)
    assert result.exit_code != 0
    assert "not valid JSON or YAML" in result.output
    assert session.query(Plan).count() == 0


def test_sync_refreshes_price_facts_and_deactivates_unsold_plans(app, session):
    import responses

    from tests.conftest import sample
    from tests.factories import make_plan

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
