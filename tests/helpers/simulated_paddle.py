"""The simulator driven in-process, as the unit tests drive it: its key, where it sends
webhooks, and a paid checkout; and the simulator answering at Paddle's address for the
`responses` mock of a functional test."""

import re
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit

from werkzeug.test import Client as WsgiClient

KEY = "pdl_sdbx_apikey_sim"
HOOK = "http://service.test/webhooks/paddle"
SECRET = "pdl_ntfset_sim_secret"
STARTER = "pri_01hsim0startermonth000000"
AUTH = {"Authorization": f"Bearer {KEY}"}


def checkout(http, **custom):
    created = http.post(
        "/transactions",
        json={"items": [{"price_id": STARTER, "quantity": 1}], "custom_data": custom or None},
        headers=AUTH,
    ).json["data"]
    return http.post(f"/_sim/transactions/{created['id']}/complete", json={}).json["data"]


class SimulatedPaddle:
    """The simulator answering at Paddle's address for the `responses` mock of a functional
    test: each route forwarded to it is counted in `calls` by (method, path)."""

    def __init__(self, mock, base: str, simulator) -> None:
        self.mock, self.base, self.simulator = mock, base, simulator
        self.http = WsgiClient(simulator)
        self.calls: Counter = Counter()
        self.before: dict[tuple[str, str], Callable[[], None]] = {}

    def route(self, method: str, path: str) -> None:
        """Forward `method` `path` (a prefix: ids and queries follow) to the simulator."""
        pattern = re.compile(re.escape(f"{self.base}{path}") + r"([/?].*)?$")
        self.mock.add_callback(method, pattern, callback=self._forward)

    def _forward(self, request):
        split = urlsplit(request.url)
        self.calls[(request.method, split.path)] += 1
        hook = self.before.get((request.method, split.path))
        if hook is not None:
            hook()
        answer = self.http.open(
            split.path,
            method=request.method,
            query_string=split.query,
            data=request.body,
            headers={"Authorization": request.headers.get("Authorization", "")},
            content_type="application/json",
        )
        return answer.status_code, {"Content-Type": "application/json"}, answer.get_data()
