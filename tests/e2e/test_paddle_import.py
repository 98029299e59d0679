"""`billing import paddle` against the simulator: 1,000 existing subscribers whose
custom_data names the old integration's user ids, brought over in one run that is killed
half-way and resumed; a second run changes nothing; conflicts are reported, not guessed."""

from __future__ import annotations

import signal
import subprocess
import sys

import requests
from sqlalchemy import func, select

from billing_app.db import single_statement
from billing_app.extensions import db
from billing_app.models import Account, ImportCursor, Subscription
from tests.helpers.rows import make_account, make_plan, make_subscription
from tests.helpers.stack import ROOT, SIM_KEY, STARTER
from tests.helpers.waiting import eventually

COMMAND = ["billing", "import", "paddle", "--account-key", "user_id", "--transaction-days", "0"]


def count(session, statement) -> int:
    value = session.scalar(statement)
    session.commit()
    return value


def cursor_of(walk: str) -> str | None:
    """Read outside any transaction: on SQLite a transaction would wait its turn for the
    write lock the import holds while it works on a page."""
    with single_statement(db.engine) as connection:
        return connection.scalar(select(ImportCursor.after).where(ImportCursor.name == walk))


def test_existing_subscribers_are_brought_over_resumably_and_once(e2e, session, monkeypatch):
    # The killed import's lease lapses in two seconds, not a minute.
    monkeypatch.setitem(e2e.env, "JOB_LEASE_SECONDS", "2")
    make_plan(session, slug="starter", price_id=STARTER, amount="1900")
    # An account that already pays through this service: its old subscription conflicts.
    make_account(session, "user_5")
    make_subscription(session, account_id="user_5", status="active", paddle_subscription_id="sub_x")
    seeded = requests.post(
        f"{e2e.sim}/_sim/seed",
        json={
            "count": 1000,
            "price_id": STARTER,
            "custom_data_prefix": "user_",
            "custom_data_key": "user_id",
            "with_customers": True,
        },
        timeout=60,
    )
    assert seeded.status_code == 201, seeded.text
    requests.post(f"{e2e.sim}/_sim/seed", json={"count": 1, "price_id": STARTER}, timeout=10)
    # A second customer naming user_7: which one pays for it is not guessed.
    requests.post(
        f"{e2e.sim}/customers",
        json={"email": "another7@example.com", "custom_data": {"user_id": "user_7"}},
        headers={"Authorization": f"Bearer {SIM_KEY}"},
        timeout=10,
    ).raise_for_status()

    dry = e2e.cli(*COMMAND, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: nothing was written." in dry.stdout
    assert count(session, select(func.count()).select_from(Account)) == 1

    # Killed once the subscriptions' walk has finished a page.
    first = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", *COMMAND],
        cwd=ROOT,
        env=e2e.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert eventually(lambda: cursor_of("subscriptions"), 60, pause=0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    stopped_after = cursor_of("subscriptions")
    assert stopped_after is not None

    runs = []
    assert eventually(lambda: runs.append(e2e.cli(*COMMAND)) or runs[-1].returncode != 75, 30)
    resumed = runs[-1]  # once the dead run's lease lapsed (75: skipped until then)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed the subscriptions after {stopped_after}" in resumed.stdout
    linked = count(
        session,
        select(func.count())
        .select_from(Subscription)
        .where(
            Subscription.account_id.like("user_%"), Subscription.paddle_subscription_id != "sub_x"
        ),
    )
    assert linked == 999  # every one but user_5's, whose account has a live one already
    assert count(session, select(func.count()).select_from(Account)) == 1000
    assert count(session, select(func.count()).where(Subscription.account_id.is_(None))) == 2

    again = e2e.cli(*COMMAND)
    assert again.returncode == 0, again.stderr
    assert "Nothing changed: everything was imported already." in again.stdout
    # What it could not decide, it says again each time, and leaves as it was.
    assert "conflict: account user_7 is named by customers" in again.stdout
    assert "account user_5 already has a live subscription" in again.stdout
    assert "the mapping names no account for it" in again.stdout
