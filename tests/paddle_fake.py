"""Paddle's paginated subscription list, served through `responses` (the HTTP edge)."""

from __future__ import annotations

import copy
import json
from urllib.parse import parse_qs, urlparse

import responses

from tests.conftest import sample

BASE = "https://paddle.test"


def paddle_entity(paddle_id: str, **changes) -> dict:
    """A Paddle subscription entity (from the real API sample) with its own id."""
    data = copy.deepcopy(sample("api-subscription-get.json")["data"])
    for key in ("recurring_transaction_details", "next_transaction", "management_urls"):
        data.pop(key, None)
    data["id"] = paddle_id
    data.update(changes)
    return data


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
        ids = [entity["id"] for entity in ordered]
        start = 0 if after is None else ids.index(after) + 1
        page_number = start // per_page + 1
        pending = failures.get(page_number)
        if pending:
            return pending.pop(0)
        calls["pages"] += 1
        chunk = ordered[start : start + per_page]
        has_more = start + per_page < len(ordered)
        last = chunk[-1]["id"] if chunk else after
        body = {
            "data": chunk,
            "meta": {
                "request_id": "r",
                "pagination": {
                    "per_page": per_page,
                    "next": f"{BASE}/subscriptions?per_page={per_page}&after={last}",
                    "has_more": has_more,
                    "estimated_total": len(ordered),
                },
            },
        }

        return (200, {"Content-Type": "application/json"}, json.dumps(body))

    mock.add_callback(responses.GET, f"{BASE}/subscriptions", callback=answer)
    return calls
