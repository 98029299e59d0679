"""scripts/demo as a newcomer runs it: twice in a row, stopped by SIGTERM, on ports taken
by someone else, and the commands it prints, run as printed in a shell of their own. Its
database goes to a temporary directory (DEMO_DATA_DIR): the suite never touches the demo
database a developer keeps in instance/."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.helpers.stack import free_port
from tests.helpers.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("demo-data")


def start_demo(
    service_port: int, sim_port: int, data_dir: Path, events_port: int | None = None
) -> subprocess.Popen:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "PADDLE_", "TEST_"))
    }
    env.update(
        DEMO_SERVICE_PORT=str(service_port),
        DEMO_SIM_PORT=str(sim_port),
        DEMO_DATA_DIR=str(data_dir),
        DEMO_EVENTS_PORT=str(events_port or free_port()),
    )
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_banner(demo: subprocess.Popen, timeout: float = 60) -> str:
    try:
        return "".join(read_until(demo, "Ctrl-C stops both", timeout))
    except AssertionError:
        demo.kill()
        raise


def read_until(demo: subprocess.Popen, text: str, timeout: float = 30) -> list[str]:
    """The demo's lines up to the first one holding `text`."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"the demo never printed {text!r}:\n" + "".join(lines))


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # only a listener counts
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stop(demo: subprocess.Popen) -> str:
    demo.send_signal(signal.SIGTERM)
    rest = demo.communicate(timeout=30)[0]
    return rest


@pytest.mark.parametrize("run", [1, 2])
def test_the_demo_runs_afresh_each_time_and_stops_on_sigterm(run, data_dir):
    kept = ROOT / "instance" / "demo.db"
    kept_before = kept.stat().st_mtime_ns if kept.exists() else None
    service_port, sim_port = free_port(), free_port()
    demo = start_demo(service_port, sim_port, data_dir)
    banner = read_banner(demo)
    try:
        plans = requests.get(f"http://127.0.0.1:{service_port}/api/v1/plans", timeout=10).json()
        assert plans, "the demo loads its plans"
        console = requests.get(f"http://127.0.0.1:{service_port}/admin/", timeout=10)
        assert console.url.endswith("/admin/sign-in?next=/admin/")  # on, and behind its sign-in
        assert "Operator console" in banner
        token = re.search(r"export TOKEN=(\S+)", banner).group(1)
        started = requests.post(
            f"http://127.0.0.1:{service_port}/api/v1/checkout",
            json={"plan": plans[0]["slug"]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert started.status_code == 201, started.text  # a fresh database: no 409 on run 2

        # Paying: the demo's receiver prints the product's news, signed and verified.
        transaction = started.json()["transaction_id"]
        sim = f"http://127.0.0.1:{sim_port}"
        requests.post(f"{sim}/_sim/transactions/{transaction}/complete", timeout=10)
        paid = read_until(demo, "demo: event entitlements.changed for acct_demo")
        assert "access False -> True" in paid[-1], paid

        def cancel():  # once Paddle has made the subscription (409 until then)
            return requests.post(
                f"http://127.0.0.1:{service_port}/api/v1/subscription/cancel",
                json={"effective_from": "immediately"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )

        canceled = eventually(lambda: (answer := cancel()).status_code != 409 and answer, 30)
        assert canceled and canceled.status_code == 200, canceled
        lost = read_until(demo, "demo: event entitlements.changed for acct_demo")
        assert "access True -> False" in lost[-1], lost

        # The reconcile command, as printed, in a shell that knows nothing of the demo.
        (command,) = [line.strip() for line in banner.splitlines() if "billing reconcile" in line]
        reconciled = subprocess.run(
            shlex.split(command),
            cwd="/",
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
        assert "Traceback" not in reconciled.stdout + reconciled.stderr
        assert "succeeded" in reconciled.stdout
    finally:
        rest = stop(demo)
    assert demo.returncode == 0, rest
    assert "Traceback" not in rest
    assert port_is_free(service_port) and port_is_free(sim_port)  # both children stopped
    assert (data_dir / "demo.db").exists()
    assert (kept.stat().st_mtime_ns if kept.exists() else None) == kept_before
    before_banner = banner.split("Billing service:")[0]
    assert "Running upgrade" not in before_banner  # no migration chatter
    assert len(before_banner.splitlines()) <= 20, before_banner  # the processes starting


def test_the_demo_refuses_ports_someone_else_holds(data_dir):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        demo = start_demo(taken, free_port(), data_dir)
        output = demo.communicate(timeout=60)[0]
    assert demo.returncode != 0
    assert f"port {taken} is taken" in output
    assert "Billing service:" not in output  # no banner against someone else's server
