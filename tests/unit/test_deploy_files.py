"""The alert rules and the dashboard speak of metrics the service exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.metrics import MetricWrapperBase

from billing_app import metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
EXPORTED = {
    "billing_webhook_backlog",
    "billing_webhook_oldest_unapplied_seconds",
    "billing_event_deliveries_pending",
    "billing_event_oldest_pending_delivery_seconds",
    "billing_event_endpoints_disabled",
    "billing_reconcile_last_success_timestamp_seconds",
    "billing_reconcile_last_run_started_timestamp_seconds",
    "billing_reconcile_last_run_finished_timestamp_seconds",
    "billing_reconcile_last_run_succeeded",
    "billing_reconcile_last_run_subscriptions",
    "billing_reconcile_last_run_drifts",
} | {
    collector._name
    for collector in vars(metrics).values()
    if isinstance(collector, MetricWrapperBase)
}


def named_metrics(expression: str) -> set[str]:
    names = set(re.findall(r"\bbilling_[a-z_]+", expression))
    return {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in names}


def exported(name: str) -> bool:
    return (
        name in EXPORTED or f"{name}_total" in EXPORTED or name.removesuffix("_total") in EXPORTED
    )


def test_every_alert_expression_names_exported_metrics():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(expressions) >= 8
    for expression in expressions:
        names = named_metrics(expression)
        assert names and all(exported(name) for name in names), (expression, names)


def test_the_dashboard_is_json_whose_panels_query_exported_metrics():
    dashboard = json.loads((DEPLOY / "grafana" / "billing.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert dashboard["title"] and len(expressions) >= 10
    for expression in expressions:
        names = named_metrics(expression)
        assert names and all(exported(name) for name in names), (expression, names)


ROOT = DEPLOY.parent


def _cli_command_exists(arguments: list[str], tmp_path) -> bool:
    from click.testing import CliRunner

    from billing_app.__main__ import main

    environment = {"DATABASE_URL": f"sqlite:///{tmp_path / 'help.db'}"}
    result = CliRunner().invoke(main, [*arguments, "--help"], env=environment)
    return result.exit_code == 0 and "Usage:" in result.output


def _commands_of_the_deploy_files() -> list[list[str]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands = [
        service["command"] for service in compose["services"].values() if "command" in service
    ]
    for line in (ROOT / "Procfile").read_text().splitlines():
        _, command = line.split(":", 1)
        words = [word for word in command.split() if "=" not in word.split("/")[0]]
        commands.append(words)
    return commands


def test_the_compose_file_runs_every_process_kind_on_postgresql_and_redis():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "scheduler"} <= set(services)
    for kind in ("web", "worker", "scheduler"):
        environment = services[kind]["environment"]
        assert environment["DATABASE_URL"].startswith("postgresql+psycopg://")
        assert environment["RATE_LIMIT_STORAGE_URL"].startswith("redis://")
        assert (
            services[kind]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        )
    procfile = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines())
    assert set(procfile) == {"release", "web", "worker", "scheduler"}


def test_every_command_in_the_deploy_files_exists(tmp_path):
    import importlib

    commands = _commands_of_the_deploy_files()
    assert len(commands) >= 8
    for command in commands:
        program, *arguments = command
        if program == "billing-service":
            assert _cli_command_exists(arguments, tmp_path), command
        else:
            assert program == "gunicorn", command
            module, app = arguments[-1].split(":")
            assert module == "wsgi" and app == "app"
            assert (ROOT / "wsgi.py").exists()
            config = arguments[arguments.index("-c") + 1].removeprefix("python:")
            importlib.import_module(config)
