"""The service under gunicorn and the Paddle simulator, as real processes on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import JWT_SECRET, SERVICE_TOKEN, WEBHOOK_SECRET

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
            "LOG_LEVEL": "WARNING",
        }
        self.processes: list[subprocess.Popen] = []
        self.log_dir = Path(tempfile.mkdtemp(prefix="billing-e2e-"))

    def start(self) -> Stack:
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
        self.start_service()
        return self

    def start_service(self, workers: int = 2, threads: int = 1) -> None:
        """The service under gunicorn, `workers` processes of `threads` threads."""
        command = ["gunicorn", "--workers", str(workers), "--threads", str(threads)]
        command += ["--bind", f"127.0.0.1:{self.service_port}", "wsgi:app"]
        service = self._spawn("service", [sys.executable, "-m", *command])
        wait_until_up(f"{self.service}/health", service)

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


@pytest.fixture(scope="package")
def stack(_migrated):
    """Stopped when the e2e tests are done: its webhook workers must not apply the rows
    that later tests put in the same database."""
    running = Stack(_migrated).start()
    yield running
    running.stop()


@pytest.fixture
def e2e(stack, app):
    """A clean simulator for each test (the database is emptied after each test)."""
    requests.post(f"{stack.sim}/_sim/reset", timeout=5).raise_for_status()
    return stack
