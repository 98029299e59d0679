"""The service and the Paddle simulator as real processes on loopback, and the clients
that drive them as a frontend and a test would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import requests
from werkzeug.serving import make_server

from tests.helpers.config import JWT_SECRET, SERVICE_TOKEN, WEBHOOK_SECRET
from tests.helpers.tokens import user_token
from tests.helpers.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
SIM_KEY = "pdl_sdbx_apikey_e2e"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:  # not listening yet, or still starting up
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Stack:
    def __init__(self, database_url: str) -> None:
        self.service_port, self.sim_port = free_port(), free_port()
        self.service = f"http://127.0.0.1:{self.service_port}"
        self.sim = f"http://127.0.0.1:{self.sim_port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PADDLE_API_KEY": SIM_KEY,
            "PADDLE_API_BASE_URL": self.sim,
            "PADDLE_WEBHOOK_SECRETS": WEBHOOK_SECRET,
            "AUTH_JWT_SECRET": JWT_SECRET,
            "BILLING_SERVICE_TOKEN": SERVICE_TOKEN,
            "RECONCILE_REQUESTS_PER_MINUTE": "0",
            "EVENTS_ALLOW_PRIVATE_URLS": "true",  # endpoints on loopback, as everything here
            "LOG_LEVEL": "WARNING",
        }
        self.processes: list[subprocess.Popen] = []
        self.log_dir = Path(tempfile.mkdtemp(prefix="billing-e2e-"))

    def start(self, workers: int = 2, threads: int = 1) -> Stack:
        sim = self._spawn(
            "simulator",
            [
                sys.executable,
                "-m",
                "paddle_client.simulator",
                "--port",
                str(self.sim_port),
                "--api-key",
                SIM_KEY,
                "--webhook-url",
                f"{self.service}/webhooks/paddle",
                "--webhook-secret",
                WEBHOOK_SECRET,
            ],
        )
        wait_until_up(f"{self.sim}/_sim/clock", sim)
        self.start_service(workers, threads)
        return self

    def start_service(self, workers: int = 2, threads: int = 1) -> None:
        """The service under gunicorn, `workers` processes of `threads` threads."""
        command = ["gunicorn", "--workers", str(workers), "--threads", str(threads)]
        command += ["--bind", f"127.0.0.1:{self.service_port}", "wsgi:app"]
        self.service_process = self._spawn("service", [sys.executable, "-m", *command])
        wait_until_up(f"{self.service}/health", self.service_process)

    def stop_service(self) -> None:
        self.service_process.terminate()
        self.service_process.wait(timeout=30)

    def start_webhook_workers(self, count: int) -> None:
        """`billing worker` processes; web processes started after them apply nothing."""
        self.env["WEBHOOK_WORKER_IN_PROCESS"] = "false"
        for n in range(count):
            command = ["-m", "flask", "--app", "wsgi", "billing", "worker"]
            env = {**self.env, "LOG_LEVEL": "INFO"}  # each batch applied is logged
            self._spawn(f"worker-{n}", [sys.executable, *command], env)

    def _spawn(
        self, name: str, command: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        with (self.log_dir / f"{name}.log").open("w") as log:  # the child keeps its own copy
            process = subprocess.Popen(
                command, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    def log(self, name: str) -> str:
        """What a process printed (shown when a test fails)."""
        return (self.log_dir / f"{name}.log").read_text()

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@contextmanager
def serving(app):
    """`app` on a real port (werkzeug, threaded), for clients that are not Flask's."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


STARTER = "pri_01hsim0startermonth000000"
DAY = 86400


class Api:
    """The frontend: a user token and the service's HTTP API."""

    def __init__(self, stack, account_id: str = "acct_e2e", **claims):
        self.base = f"{stack.service}/api/v1"
        self.headers = {"Authorization": f"Bearer {user_token(account_id, **claims)}"}

    def get(self, path):
        return requests.get(f"{self.base}{path}", headers=self.headers, timeout=10)

    def post(self, path, body=None):
        return requests.post(
            f"{self.base}{path}", json=body or {}, headers=self.headers, timeout=30
        )

    def delete(self, path):
        return requests.delete(f"{self.base}{path}", headers=self.headers, timeout=30)

    def act(self, path, body=None):
        """An action, as a frontend sends it right after checkout: between the payment (and
        access) and Paddle's subscription reaching the service it is asked to retry."""
        answers = []

        def answered():
            answers.append(self.post(path, body))
            return answers[-1].json().get("error") != "checkout_in_progress"

        eventually(answered, timeout=10, pause=0.5)
        return answers[-1]


class Sim:
    def __init__(self, stack):
        self.base = stack.sim
        self.service = stack.service

    def post(self, path, body=None):
        response = requests.post(f"{self.base}/_sim{path}", json=body or {}, timeout=30)
        response.raise_for_status()
        return response.json()

    def settle(self):
        """Until every notification is delivered and the service's workers applied them."""
        requests.get(f"{self.base}/_sim/deliveries", params={"wait": 1}, timeout=40)
        assert eventually(
            lambda: (
                requests.get(f"{self.service}/health/ready", timeout=5).json()["webhook_backlog"]
                == 0
            )
        ), "the service's webhook backlog never drained"

    def deliveries(self):
        return requests.get(f"{self.base}/_sim/deliveries", timeout=10).json()["data"]

    def get_clock(self) -> str:
        return requests.get(f"{self.base}/_sim/clock", timeout=10).json()["now"]

    def count_events(self, event_type: str) -> int:
        """How many events of `event_type` the simulated Paddle has made."""
        listed = self.paddle("GET", f"/events?event_type={event_type}&per_page=200")
        return len(listed.json()["data"])

    def paddle(self, method: str, path: str, body=None) -> requests.Response:
        """The simulator's Paddle API itself, with its key (as an operator's dashboard)."""
        headers = {"Authorization": f"Bearer {SIM_KEY}"}
        return requests.request(
            method, f"{self.base}{path}", json=body, headers=headers, timeout=10
        )


def read(session, statement):
    """Read the service's tables, and end the transaction so the service can write."""
    session.expire_all()
    rows = session.scalars(statement).all()
    session.commit()
    return rows


def status_becomes(api, status, timeout=15.0):
    return eventually(lambda: api.get("/subscription").json()["status"] == status, timeout)
