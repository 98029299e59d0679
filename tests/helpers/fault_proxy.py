"""A proxy in front of the service that can fail on cue, per path: answer 503 without
forwarding ("down"), or forward and then lose the answer ("lose_answer": the service did
the work, the caller hears 503)."""

from __future__ import annotations

import requests
from flask import Flask, Response, request

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
UNAVAILABLE = b'{"error": "service_unavailable", "message": "proxy fault"}'


class FaultProxy:
    def __init__(self, target: str) -> None:
        self.target = target
        self.faults: dict[str, str] = {}  # path prefix -> "down" | "lose_answer"
        self.seen: list[tuple[str, str, int]] = []  # path, fault or "", status given
        self.app = Flask("fault_proxy")
        self.app.add_url_rule(
            "/<path:path>", "forward", self.forward, methods=["GET", "POST", "PUT", "DELETE"]
        )

    def fault_of(self, path: str) -> str:
        return next((f for prefix, f in self.faults.items() if path.startswith(prefix)), "")

    def forward(self, path: str) -> Response:
        full = "/" + path
        fault = self.fault_of(full)
        if fault == "down":
            self.seen.append((full, fault, 503))
            return Response(UNAVAILABLE, 503, mimetype="application/json")
        headers = {k: v for k, v in request.headers if k.lower() not in HOP_BY_HOP}
        answer = requests.request(
            request.method,
            self.target + full,
            params=request.args,
            data=request.get_data(),
            headers=headers,
            timeout=90,
        )
        if fault == "lose_answer":
            self.seen.append((full, fault, 503))
            return Response(UNAVAILABLE, 503, mimetype="application/json")
        self.seen.append((full, "", answer.status_code))
        kept = [(k, v) for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP]
        return Response(answer.content, answer.status_code, headers=kept)
