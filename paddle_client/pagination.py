"""Paddle's cursor pagination as a lazy iterator: one page in memory at a time."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from paddle_client.transport import Transport

MAX_PER_PAGE = 200


class Page(list):
    """One page of entities, with Paddle's `estimated_total` of the whole list (None when
    Paddle did not count: it sends -1)."""

    estimated_total: int | None = None


def iterate(
    transport: Transport, path: str, params: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield each entity of a list endpoint, fetching the next page only when it is needed."""
    for page in iterate_pages(transport, path, params):
        yield from page


def iterate_pages(
    transport: Transport, path: str, params: dict[str, Any] | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Yield each page's list of entities, fetching a page only when the last is used up.

    Follows `meta.pagination.next` (a full URL that keeps the filters) while `has_more`;
    Paddle returns `next` on the last page too, so `has_more` decides when to stop.
    """
    url: str = path
    query: dict[str, Any] | None = _drop_none(params or {})
    while True:
        body = transport.request("GET", url, params=query)
        pagination = (body.get("meta") or {}).get("pagination") or {}
        page = Page(body.get("data") or [])
        total = pagination.get("estimated_total")
        page.estimated_total = total if isinstance(total, int) and total >= 0 else None
        yield page
        if not pagination.get("has_more") or not pagination.get("next"):
            return
        url, query = pagination["next"], None


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def comma_list(values: Any) -> str | None:
    """Paddle takes multi-value filters as `a,b,c`."""
    if values is None:
        return None
    if isinstance(values, str):
        return values
    return ",".join(values)


_DONE = object()


def prefetched(pages: Iterator[Any]) -> Iterator[Any]:
    """Fetch the next page in the background while the caller works on this one.

    At most two pages are in memory (the one in hand and the one fetched ahead); an error
    raised while fetching surfaces to the caller at the page where it happened.
    """
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        handoff.put((page, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put((_DONE, None))
        except BaseException as error:  # handed to the consumer, raised there
            handoff.put((_DONE, error))

    worker = threading.Thread(target=fetch, name="paddle-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            page, error = handoff.get()
            if error is not None:
                raise error
            if page is _DONE:
                return
            yield page
    finally:
        stop.set()
