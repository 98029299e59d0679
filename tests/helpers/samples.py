"""Paddle's real payloads, copied from ../shared/paddle/samples (see SOURCES.md there)."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SAMPLES = FIXTURES / "paddle"


PAYLOADS = sorted(
    p
    for p in SAMPLES.glob("webhook-*.json")
    if "signature" not in p.name and ".data." not in p.name
)


def sample(name: str):
    """A real Paddle payload from tests/fixtures/paddle, parsed."""
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()
