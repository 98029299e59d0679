"""The simulator's fixtures: the simulator as a WSGI app, its webhooks caught at the edge."""

import pytest
import responses
from werkzeug.test import Client as WsgiClient

from paddle_client.simulator import create_simulator
from tests.helpers.simulated_paddle import HOOK, KEY, SECRET


@pytest.fixture
def hooks():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(HOOK, json={"status": "processed"})
        yield mock


@pytest.fixture
def sim(hooks):
    simulator = create_simulator(KEY, HOOK, SECRET)
    yield simulator
    simulator.deliverer.stop()


@pytest.fixture
def http(sim):
    return WsgiClient(sim)
