"""Waiting for what another thread or process does, never for a fixed time."""

from __future__ import annotations

import time


def eventually(check, timeout: float = 15.0, pause: float = 0.1):
    """`check()`'s first truthy result within `timeout` seconds, else its last one."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(pause)
