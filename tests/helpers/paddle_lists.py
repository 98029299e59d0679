"""Paddle's paginated subscription list, served through `responses` (the HTTP edge)."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from urllib.parse import parse_qs, urlparse

import responses
from werkzeug.serving import make_server

from tests.helpers.config import PADDLE_BASE


def page_start(ordered: list[dict], after: str | None) -> int:
    return 0 if after is None else [entity["id"] for entity in ordered].index(after) + 1


def list_page(ordered: list[dict], after: str | None, per_page: int, base: str) -> dict:
    """The page of Paddle's subscription list after the id `after`, as Paddle answers it
    (`next` on the last page too: `has_more` says when to stop)."""
    start = page_start(ordered, after)
    chunk = ordered[start : start + per_page]
    last = chunk[-1]["id"] if chunk else after
    return {
        "data": chunk,
        "meta": {
            "request_id": "r",
            "pagination": {
                "per_page": per_page,
                "next": f"{base}/subscriptions?per_page={per_page}&after={last}",
                "has_more": start + per_page < len(ordered),
                "estimated_total": len(ordered),
            },
        },
    }


def serve_subscription_list(mock: responses.RequestsMock, entities: list[dict], *, failures=None):
    """Serve `entities` sorted by id, `per_page` at a time, following `after` like Paddle.

    `failures` maps a page number (1-based) to a list of responses given before it succeeds.
    """
    ordered = sorted(entities, key=lambda entity: entity["id"])
    failures = {page: list(answers) for page, answers in (failures or {}).items()}
    calls = {"pages": 0}

    def answer(request):
        query = parse_qs(urlparse(request.url).query)
        per_page = int(query.get("per_page", ["50"])[0])
        after = query.get("after", [None])[0]
        pending = failures.get(page_start(ordered, after) // per_page + 1)
        if pending:
            return pending.pop(0)
        calls["pages"] += 1
        body = list_page(ordered, after, per_page, PADDLE_BASE)
        return (200, {"Content-Type": "application/json"}, json.dumps(body))

    mock.add_callback(responses.GET, f"{PADDLE_BASE}/subscriptions", callback=answer)
    return calls


@contextmanager
def slow_paddle(entities: list[dict], *, per_page: int, seconds_per_page: float):
    """A Paddle stand-in on a real port (for commands run as processes) that lists
    `entities` `per_page` at a time, taking `seconds_per_page` for each page (and no
    transactions)."""
    ordered = sorted(entities, key=lambda entity: entity["id"])

    def app(environ, start_response):
        time.sleep(seconds_per_page)
        after = parse_qs(environ.get("QUERY_STRING", "")).get("after", [None])[0]
        # Reconciliation walks the recent transactions too: none here.
        listed = ordered if environ["PATH_INFO"] == "/subscriptions" else []
        body = list_page(listed, after, per_page, base)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
