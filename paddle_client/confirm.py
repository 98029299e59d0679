"""Writes whose answer may be lost: read back what Paddle now holds before sending again.

A pause that reached Paddle but whose answer timed out is applied there; sending it again
is refused (`subscription_locked_pending_changes`) and would turn Paddle's success into an
error of ours. So after a lost answer, or a refusal that follows one, the caller's
`read_back` asks Paddle for the entity and `landed` says whether the change is in it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paddle_client.errors import ApiError, Unavailable

Entity = dict[str, Any]


def confirmed_write(
    send: Callable[[], Entity],
    read_back: Callable[[], Entity],
    landed: Callable[[Entity], bool],
    *,
    attempts: int = 2,
) -> Entity:
    """`send()`'s answer; or, when its answer was lost, Paddle's entity once it shows the
    change landed. Sends at most `attempts` times, and never again once it landed."""
    answer_lost = False
    for attempt in range(1, attempts + 1):
        try:
            return send()
        except Unavailable as error:
            if not error.may_have_applied:
                raise  # it never reached Paddle (the transport retried where it could)
            answer_lost = True
            current = read_back()
            if landed(current):
                return current
            if attempt == attempts:
                raise
        except ApiError:
            if not answer_lost:
                raise
            current = read_back()  # refused because the lost one landed meanwhile?
            if landed(current):
                return current
            raise
    raise AssertionError("unreachable")  # pragma: no cover
