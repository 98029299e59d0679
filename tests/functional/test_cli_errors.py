"""The command line on a database or a configuration it cannot use: one `Error:` line that
says what is wrong and what to do, a non-zero exit, no traceback and no password."""

import os

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from billing_app.__main__ import main


def run(*arguments: str, **environment: str):
    result = CliRunner().invoke(main, list(arguments), env=environment)
    lines = result.output.strip().splitlines()
    return result.exit_code, lines


def assert_one_error_line(exit_code, lines, *words):
    assert exit_code != 0
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(
    "arguments", [("billing", "webhooks", "list"), ("billing", "plans", "import", "PLANS")]
)
def test_a_database_never_upgraded_says_run_db_upgrade(tmp_path, arguments):
    plans = tmp_path / "plans.yaml"
    plans.write_text('- {slug: starter, name: Starter, price_id: pri_01, amount: "900"}\n')
    arguments = [str(plans) if part == "PLANS" else part for part in arguments]
    exit_code, lines = run(*arguments, DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    assert_one_error_line(exit_code, lines, "no schema", "billing-service db upgrade")


def test_a_server_that_refuses_connections_is_named_without_the_password():
    url = "postgresql+psycopg://billing:s3cret@127.0.0.1:1/billing"
    exit_code, lines = run("db", "upgrade", DATABASE_URL=url)
    assert_one_error_line(exit_code, lines, "cannot connect", "127.0.0.1:1", "refused")
    assert "s3cret" not in lines[0] and "billing:" not in lines[0]


@pytest.mark.postgres
def test_a_database_that_does_not_exist_says_create_it():
    server = make_url(os.environ["TEST_DATABASE_URL"]).set(database="no_such_billing_db")
    url = server.render_as_string(hide_password=False)
    exit_code, lines = run("db", "upgrade", DATABASE_URL=url)
    assert_one_error_line(exit_code, lines, '"no_such_billing_db" does not exist', "create it")


@pytest.mark.parametrize("url", ["garbage", "mysqlx://user:s3cret@host/db"])
def test_an_unparsable_database_url_shows_the_shape_wanted_not_the_value(url):
    exit_code, lines = run("billing", "webhooks", "list", DATABASE_URL=url)
    assert_one_error_line(exit_code, lines, "DATABASE_URL", "postgresql+psycopg://")
    assert "s3cret" not in lines[0]


def test_a_sqlite_file_in_a_missing_directory_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "billing.db"
    exit_code, lines = run("db", "upgrade", DATABASE_URL=f"sqlite:///{missing}")
    assert_one_error_line(exit_code, lines, str(missing), "directory")


def test_a_setting_of_the_wrong_type_names_the_variable(tmp_path):
    exit_code, lines = run(
        "db",
        "upgrade",
        DATABASE_URL=f"sqlite:///{tmp_path / 'billing.db'}",
        PADDLE_TIMEOUT_SECONDS="ten",
    )
    assert_one_error_line(exit_code, lines, "PADDLE_TIMEOUT_SECONDS")
