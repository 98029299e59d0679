"""Metrics under gunicorn with two workers: a scrape sums what every worker counted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import requests

from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.stack import ROOT, free_port, wait_until_up

SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}


def health_requests(text: str) -> int:
    pattern = r'^billing_http_requests_total\{[^}]*route="/health"[^}]*\} ([0-9.e+]+)$'
    return int(sum(float(value) for value in re.findall(pattern, text, re.MULTILINE)))


def test_a_scrape_sums_the_counters_of_every_worker(_migrated, tmp_path: Path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _migrated,
        "BILLING_SERVICE_TOKEN": SERVICE_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "python:billing_app.gunicorn_conf"]
    command += ["--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"]
    service = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/health", service)
        before = health_requests(requests.get(f"{base}/metrics", headers=SERVICE, timeout=10).text)
        for _ in range(60):  # a new connection each: the two workers share them
            assert requests.get(f"{base}/health", headers={"Connection": "close"}, timeout=10).ok
        scraped = requests.get(f"{base}/metrics", headers=SERVICE, timeout=10)
        assert requests.get(f"{base}/metrics", timeout=10).status_code == 401
    finally:
        service.terminate()
        service.wait(10)
    assert scraped.status_code == 200
    assert health_requests(scraped.text) - before == 60
    counted_by = {path.name for path in metrics_dir.glob("counter_*.db")}
    assert len(counted_by) >= 2, counted_by  # both workers counted, and the scrape summed them
    assert "billing_webhook_backlog 0.0" in scraped.text
