"""What the benchmarks share: a load generator, and starting what a benchmark needs
(a PostgreSQL database, the service under gunicorn, the Paddle simulator), then cleaning up.

The load generator is asyncio over raw HTTP/1.1 keep-alive connections: one process, no
per-request client overhead worth speaking of, so it measures the server, and it measures
every workload and its floor (`GET /health`) the same way in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import requests
from psycopg.types.json import Json

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


# Seeding


def seed_subscribed_accounts(database_url: str, accounts: int, meters: dict | None = None) -> None:
    """One plan (`pro`, with `meters`); accounts `acct_000000`... each with an active
    subscription on it, in its first day of a 30-day period (bulk, with COPY)."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    now = datetime.now(UTC) - timedelta(hours=1)
    with psycopg.connect(url) as connection:
        plan_id = connection.execute(
            "INSERT INTO plans (slug, name, price_id, amount, currency, interval, interval_count,"
            " features, limits, meters, active, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                "pro",
                "Pro",
                "pri_bench",
                "1900",
                "USD",
                "month",
                1,
                Json(["projects", "sso"]),
                Json({"seats": 10}),
                Json(meters or {}),
                True,
                now,
                now,
            ),
        ).fetchone()[0]
        with connection.cursor().copy(
            "COPY accounts (id, email, created_at, updated_at) FROM STDIN"
        ) as copy:
            for n in range(accounts):
                copy.write_row((f"acct_{n:06d}", f"user{n}@example.com", now, now))
        columns = (
            "id, account_id, status, plan_id, price_id, quantity, current_period_start,"
            " current_period_end, created_at, updated_at"
        )
        with connection.cursor().copy(f"COPY subscriptions ({columns}) FROM STDIN") as copy:
            for n in range(accounts):
                copy.write_row(
                    (
                        uuid.uuid4(),
                        f"acct_{n:06d}",
                        "active",
                        plan_id,
                        "pri_bench",
                        1,
                        now,
                        now + timedelta(days=30),
                        now,
                        now,
                    )
                )
        connection.execute("ANALYZE")


# Load generation


@dataclass
class LoadResult:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    statuses: Counter
    failures: int  # connection errors and non-2xx answers

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    def row(self) -> str:
        return (
            f"{self.name:<34} {self.requests:>7} {self.rate:>9.0f}/s "
            f"p50 {self.percentile(0.50):>6.1f} ms  p99 {self.percentile(0.99):>6.1f} ms  "
            f"errors {self.failures}"
        )


def http_request(
    method: str, path: str, *, body: bytes = b"", headers: dict | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: bench", f"Content-Length: {len(body)}"]
    lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length, close = 0, False
    for line in lines[1:]:
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "content-length":
            length = int(value)
        elif key == "connection" and value.strip().lower() == "close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


async def _load(host: str, port: int, payloads: Sequence[bytes], concurrency: int):
    latencies: list[float] = []
    statuses: Counter = Counter()
    failures = 0
    cursor = iter(range(len(payloads)))

    async def worker() -> None:
        nonlocal failures
        reader = writer = None
        for index in cursor:
            for _attempt in range(3):
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                    started = time.perf_counter()
                    writer.write(payloads[index])
                    status, close = await _read_response(reader)
                    latencies.append(time.perf_counter() - started)
                    statuses[status] += 1
                    failures += not 200 <= status < 300
                    if close:
                        writer.close()
                        reader = writer = None
                    break
                except (ConnectionError, asyncio.IncompleteReadError, OSError):
                    if writer is not None:
                        writer.close()
                    reader = writer = None
            else:
                failures += 1
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses, failures


def load(name: str, url: str, payloads: Sequence[bytes], concurrency: int = 50) -> LoadResult:
    host, port = url.removeprefix("http://").split(":")
    seconds, latencies, statuses, failures = asyncio.run(
        _load(host, int(port), payloads, concurrency)
    )
    return LoadResult(name, len(payloads), seconds, latencies, statuses, failures)


# Processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, migrated, dropped afterwards."""
    name = f"billing_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Processes:
    """Child processes that are stopped, whatever happens, when the block ends."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []
        self.log_dir = Path(tempfile.mkdtemp(prefix="billing-bench-"))

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        with (self.log_dir / f"{name}.log").open("w") as log:
            child = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.children.append(child)
        return child

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc) -> None:
        for child in self.children:
            child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()


GUNICORN_WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
GUNICORN_THREADS = int(os.environ.get("BENCH_THREADS", "4"))


def start_service(processes: Processes, env: dict[str, str]) -> str:
    """The billing service under gunicorn, as `service_setup()` describes it."""
    return _start_gunicorn(processes, "service", "wsgi:app", env)


def start_feed_service(processes: Processes, env: dict[str, str], threads: int) -> str:
    """The service again, for the events feed's long polls: two processes with a thread per
    waiting poll (docs/operations.md routes /api/v1/events to such processes)."""
    return _start_gunicorn(processes, "feed", "wsgi:app", env, workers=2, threads=threads)


def start_bound_app(processes: Processes, env: dict[str, str], database_url: str) -> str:
    """`bound_app` (the least any design has to do) under the same gunicorn settings."""
    raw_url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw_url) as connection:
        connection.execute(
            "CREATE TABLE bound_events (event_id text PRIMARY KEY, payload text NOT NULL)"
        )
    env = {**env, "BOUND_DATABASE_URL": raw_url}
    return _start_gunicorn(processes, "bound", "bound_app:app", env, chdir=Path(__file__).parent)


def measure_bound(
    processes: Processes,
    env: dict[str, str],
    database_url: str,
    name: str,
    payloads: Sequence[bytes],
    concurrency: int,
) -> LoadResult:
    """Measure `bound_app` doing the same workload as the service, and print how close to
    its own /health the least possible work comes: how far the target is reachable at all."""
    url = start_bound_app(processes, env, database_url)
    health = [http_request("GET", "/health")] * len(payloads)
    load("warm-up", url, health[:2000], concurrency)
    floor = load("GET /health (bound app)", url, health, concurrency)
    result = load(f"{name} (bound app)", url, payloads, concurrency)
    print(floor.row())
    print(result.row())
    print(f"  {result.rate / floor.rate:6.1%} of /health: the most any design gets on this machine")
    return result


def _start_gunicorn(
    processes: Processes,
    name: str,
    app: str,
    env: dict[str, str],
    chdir: Path = ROOT,
    workers: int = GUNICORN_WORKERS,
    threads: int = GUNICORN_THREADS,
) -> str:
    port = free_port()
    processes.start(
        name,
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--chdir",
            str(chdir),
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--worker-connections",
            str(max(1000, 2 * threads)),
            "--keep-alive",
            "30",
            "--backlog",
            "2048",
            "--bind",
            f"127.0.0.1:{port}",
            app,
        ],
        env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/health")
    return url


def start_simulator(
    processes: Processes, env: dict[str, str], api_key: str, webhook_url: str = ""
) -> str:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "paddle_client.simulator",
        "--port",
        str(port),
        "--api-key",
        api_key,
    ]
    if webhook_url:
        command += ["--webhook-url", webhook_url]
    processes.start("simulator", command, env)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/_sim/clock")
    return url


def machine() -> str:
    python = platform.python_version()
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {python}, {platform.system()}"


def service_setup() -> str:
    workers = f"{GUNICORN_WORKERS} workers x {GUNICORN_THREADS} threads (gthread)"
    return f"gunicorn {workers}, PostgreSQL on 127.0.0.1"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


SERVICE_TOKEN = "bench-service-token-long-enough-for-the-check"  # noqa: S105 (throwaway)


def usage_counted(database_url: str, hard_limit: int | None = None) -> dict[str, int]:
    """What the usage tables hold: events, their sum, the counters' sum, and how many
    counters are not at `hard_limit` (when given)."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as connection:
        one = lambda sql: connection.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "events": one("SELECT count(*) FROM usage_events"),
            "sum_of_events": one("SELECT coalesce(sum(quantity), 0) FROM usage_events"),
            "sum_of_counters": one("SELECT coalesce(sum(used), 0) FROM usage_counters"),
            "counters_not_at_the_limit": one(
                f"SELECT count(*) FROM usage_counters WHERE used <> {hard_limit}"  # noqa: S608
            )
            if hard_limit is not None
            else 0,
        }


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run a command as its own process: wall seconds, peak RSS in MB, what it printed.

    The peak is the process's own high-water mark (VmHWM), read while it runs: the
    `ru_maxrss` that wait4 reports keeps the forking parent's size across exec, and this
    script holds the seeded rows."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as printed:
        child = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=printed, stderr=subprocess.STDOUT
        )
        peak_kb = 0
        while child.poll() is None:
            peak_kb = max(peak_kb, high_water_kb(child.pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        printed.seek(0)
        output = printed.read()
    if child.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{output}")
    return seconds, peak_kb / 1024, output


def high_water_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0  # it has just ended
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0
