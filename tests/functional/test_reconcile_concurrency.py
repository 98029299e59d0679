"""Run-once on PostgreSQL: many processes start a reconciliation at the same moment."""

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from billing_app.cli import EXIT_SKIPPED, EXIT_SUCCEEDED
from billing_app.extensions import db
from billing_app.models import ReconcileRun
from billing_app.services.locks import Lease
from tests.helpers.payloads import paddle_entity

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 4


@pytest.fixture
def slow_paddle():
    """A Paddle stand-in on a real port whose list takes a second per page."""
    pages = [[paddle_entity(f"sub_{n:04d}", updated_at="2026-03-01T00:00:00Z") for n in range(3)]]

    def app(environ, start_response):
        time.sleep(1.0)
        body = {"data": pages[0], "meta": {"pagination": {"has_more": False, "next": None}}}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_concurrent_reconcile_commands_run_once(app, session, database_url, slow_paddle):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PADDLE_API_KEY": "pdl_sdbx_apikey_test",
        "PADDLE_API_BASE_URL": slow_paddle,
        "RECONCILE_REQUESTS_PER_MINUTE": "0",
    }
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "billing", "reconcile"]
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(PROCESSES)
    ]
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    statuses = sorted(process.returncode for process in processes)
    assert statuses == [EXIT_SUCCEEDED] + [EXIT_SKIPPED] * (PROCESSES - 1), outputs
    ran = [output for output in outputs if "missing locally" in output]
    held = [output for output in outputs if "Skipped" in output and "held by" in output]
    assert (len(ran), len(held)) == (1, PROCESSES - 1), outputs
    session.expire_all()
    runs = session.scalars(select(ReconcileRun)).all()
    assert [(run.status, run.missing_locally) for run in runs] == [("succeeded", 3)]


def take_at_once(engine, name: str, contenders: int) -> list[bool]:
    barrier = threading.Barrier(contenders)

    def take(_):
        lease = Lease(engine, name, timedelta(minutes=1))
        barrier.wait()
        return lease.acquire()

    with ThreadPoolExecutor(max_workers=contenders) as pool:
        return sorted(pool.map(take, range(contenders)))


def test_only_one_thread_takes_a_lease(app):
    for round_number in range(20):
        assert take_at_once(db.engine, f"job-{round_number}", 8) == [False] * 7 + [True]
