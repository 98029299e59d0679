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
