"""docs/client.md's Flask and FastAPI services run as written: a route gated, requests
metered, in about ten lines each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"


def example(heading: str) -> str:
    section = DOC.read_text().split(f"## {heading}", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


EXAMPLES = ["Flask: gate a route, meter every request", "FastAPI: the same"]


@pytest.mark.parametrize("heading", EXAMPLES)
def test_the_examples_build_their_service(heading, monkeypatch):
    monkeypatch.setenv("BILLING_URL", "http://127.0.0.1:9")  # never asked: nothing is read
    monkeypatch.setenv("BILLING_SERVICE_TOKEN", "token")
    code = example(heading)
    assert len([line for line in code.splitlines() if line.strip()]) <= 14
    namespace: dict = {"__name__": "client_example"}  # as a module of its own
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 (our own documentation)
    app, billing = namespace["app"], namespace["billing"]
    paths = (
        [rule.rule for rule in app.url_map.iter_rules()]
        if hasattr(app, "url_map")
        else [route.path for route in app.routes]
    )
    assert "/exports" in paths
    billing.close(timeout=0)
