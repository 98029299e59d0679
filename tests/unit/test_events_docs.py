"""docs/events.md: an example of every event type, and a receiver that works as written."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from billing_app.services.events.catalogue import EVENT_TYPES
from billing_app.services.events.signing import new_secret, signed_headers

DOC = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()


def test_every_event_type_has_an_example_of_its_own_shape():
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC, re.S)]
    by_type = {example["type"]: example for example in examples if "type" in example}
    assert set(EVENT_TYPES) <= set(by_type), set(EVENT_TYPES) - set(by_type)
    for kind, example in by_type.items():
        assert set(example) == {"id", "type", "timestamp", "account_id", "sequence", "data"}
        assert example["id"].startswith("evt_") and example["sequence"] >= 1, kind


def test_the_ten_line_receiver_verifies_our_signature_and_refuses_another(monkeypatch):
    (code,) = re.findall(r"```python\n(.*?)```", DOC, re.S)
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    secret = new_secret()
    monkeypatch.setenv("BILLING_EVENTS_SECRET", secret)
    handled = []
    namespace = {"handle": handled.append, "__name__": "receiver"}
    exec(compile(code, "docs/events.md", "exec"), namespace)  # noqa: S102 (our own docs)
    client = namespace["app"].test_client()
    body = json.dumps({"id": "evt_1", "type": "entitlements.changed", "data": {}})
    headers = signed_headers("evt_1", int(time.time()), body, [secret])
    assert client.post("/billing-events", data=body, headers=headers).status_code == 204
    assert handled[0]["type"] == "entitlements.changed"
    forged = signed_headers("evt_1", int(time.time()), body, [new_secret()])
    assert client.post("/billing-events", data=body, headers=forged).status_code == 400
