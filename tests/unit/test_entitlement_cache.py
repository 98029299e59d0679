"""The cache's own rules: bounded, aged out, and never keeping a read that a change overtook."""

from __future__ import annotations

from prometheus_client import REGISTRY

from billing_app.services.entitlements.cache import EntitlementCache
from billing_app.services.entitlements.facts import NOTHING_HELD, AccessFacts, Grant


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


FACTS = AccessFacts(None, Grant("starter", ("projects",), {}))


def test_the_least_recently_read_account_goes_first_when_full():
    cache = EntitlementCache(2, ttl=60)
    for account in ("a", "b"):
        cache.put(account, FACTS, cache.ticket())
    assert cache.get("a") is FACTS  # "b" is now the least recently read
    cache.put("c", FACTS, cache.ticket())
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (FACTS, None, FACTS)
    assert len(cache) == 2


def test_an_entry_is_forgotten_after_the_ttl_whatever_was_announced():
    clock = Clock()
    cache = EntitlementCache(10, ttl=60, clock=clock)
    cache.put("a", FACTS, cache.ticket())
    clock.now += 59.9
    assert cache.get("a") is FACTS
    clock.now += 0.1
    assert cache.get("a") is None


def test_a_read_overtaken_by_a_change_is_not_kept():
    cache = EntitlementCache(10, ttl=60)
    ticket = cache.ticket()  # the read starts ...
    cache.evict(["a"])  # ... a change to "a" is announced while it reads ...
    cache.put("a", NOTHING_HELD, ticket)  # ... and what it saw is not kept
    assert cache.get("a") is None
    cache.put("a", NOTHING_HELD, cache.ticket())
    assert cache.get("a") is NOTHING_HELD


def test_a_suspended_cache_answers_nothing_and_keeps_nothing_until_resumed():
    cache = EntitlementCache(10, ttl=60)
    cache.put("a", FACTS, cache.ticket())
    cache.suspend()
    assert cache.get("a") is None
    cache.put("b", FACTS, cache.ticket())
    cache.resume()
    assert (cache.get("a"), cache.get("b"), len(cache)) == (None, None, 0)


def test_size_zero_turns_the_cache_off():
    cache = EntitlementCache(0, ttl=60)
    cache.put("a", FACTS, cache.ticket())
    cache.resume()
    assert cache.get("a") is None


def evicted(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("billing_entitlement_cache_evictions_total", {"reason": reason})
        or 0.0
    )


def test_every_way_an_account_leaves_the_cache_is_counted_by_reason():
    clock = Clock()
    cache = EntitlementCache(2, ttl=60, clock=clock)
    before = {reason: evicted(reason) for reason in ("capacity", "expired", "changed", "cleared")}
    for account in ("a", "b", "c"):  # "a" is pushed out
        cache.put(account, FACTS, cache.ticket())
    cache.evict(["b", "never-kept"])  # only "b" was there
    clock.now += 60
    assert cache.get("c") is None  # aged out
    cache.put("d", FACTS, cache.ticket())
    cache.put("e", FACTS, cache.ticket())
    cache.clear()
    counted = {reason: evicted(reason) - before[reason] for reason in before}
    assert counted == {"capacity": 1, "expired": 1, "changed": 1, "cleared": 2}
