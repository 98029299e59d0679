import pytest

from billing_app.config import ConfigError, load_config


def test_defaults_match_the_contract():
    config = load_config({})
    assert config["DATABASE_URL"] is None
    assert config["PADDLE_ENVIRONMENT"] == "sandbox"
    assert config["PADDLE_WEBHOOK_SECRETS"] == []
    assert config["PADDLE_WEBHOOK_TOLERANCE_SECONDS"] == 300
    assert config["RECONCILE_CRON"] == "0 3 * * *"
    assert config["PADDLE_API_KEY"] is None


def test_values_are_parsed_to_their_types():
    config = load_config(
        {
            "PADDLE_WEBHOOK_SECRETS": " pdl_ntfset_a , pdl_ntfset_b,",
            "PADDLE_WEBHOOK_TOLERANCE_SECONDS": "60",
            "SCHEDULER_ENABLED": "true",
            "PADDLE_ENVIRONMENT": "live",
        }
    )
    assert config["PADDLE_WEBHOOK_SECRETS"] == ["pdl_ntfset_a", "pdl_ntfset_b"]
    assert config["PADDLE_WEBHOOK_TOLERANCE_SECONDS"] == 60
    assert config["SCHEDULER_ENABLED"] is True
    assert config["PADDLE_ENVIRONMENT"] == "live"


def test_a_bad_value_names_the_variable():
    with pytest.raises(ConfigError, match="PADDLE_WEBHOOK_TOLERANCE_SECONDS"):
        load_config({"PADDLE_WEBHOOK_TOLERANCE_SECONDS": "five minutes"})


def test_an_unknown_environment_is_refused():
    with pytest.raises(ConfigError, match="PADDLE_ENVIRONMENT"):
        load_config({"PADDLE_ENVIRONMENT": "production"})


def test_every_package_of_the_source_tree_ships():
    """setup.cfg lists packages by hand (the migrations ship as billing_app.migrations)."""
    import configparser
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    config = configparser.ConfigParser()
    config.read(root / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for top in ("billing_app", "paddle_client")
        for init in (root / top).rglob("__init__.py")
    }
    assert found <= listed, found - listed
    assert {"billing_app.migrations", "billing_app.migrations.versions"} <= listed


@pytest.mark.parametrize(
    ("name", "value"),
    [("PADDLE_ENVIRONMENT", "production"), ("USAGE_OVERAGE_EFFECTIVE_FROM", "tomorrow")],
)
def test_a_setting_with_choices_refuses_anything_else(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})


def test_with_no_database_url_the_sqlite_file_is_in_the_directory_started_from(
    tmp_path, monkeypatch
):
    from billing_app import create_app

    monkeypatch.chdir(tmp_path)
    app = create_app({"DATABASE_URL": None})
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'instance' / 'billing.db'}"
    assert (tmp_path / "instance").is_dir()
