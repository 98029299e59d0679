"""The service under gunicorn and the Paddle simulator, as real processes on loopback."""

from __future__ import annotations

import pytest
import requests

from tests.helpers.stack import Stack


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
