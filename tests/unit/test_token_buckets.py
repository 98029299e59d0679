"""The in-process token bucket that limits entitlement reads."""

from billing_app.token_buckets import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_refuses_when_empty_and_refills_with_time():
    clock = Clock()
    buckets = TokenBuckets.from_rate("3/minute", clock=clock, wall_clock=clock)
    taken = [buckets.take("acct_1") for _ in range(4)]
    assert [each.allowed for each in taken] == [True, True, True, False]
    assert [each.remaining for each in taken] == [2, 1, 0, 0]
    assert taken[3].retry_after == 20  # one token back every 20 s
    assert taken[3].headers()["Retry-After"] == "20" and "Retry-After" not in taken[0].headers()
    assert buckets.take("acct_2").allowed  # every key its own bucket
    clock.now += 20
    assert buckets.take("acct_1").allowed and not buckets.take("acct_1").allowed
    clock.now += 600
    assert buckets.take("acct_1").remaining == 2  # full again, never more than the capacity


def test_the_least_recently_used_keys_are_forgotten_beyond_the_size():
    clock = Clock()
    buckets = TokenBuckets(1, 60, size=2, clock=clock, wall_clock=clock)
    assert buckets.take("a").allowed and buckets.take("b").allowed
    assert not buckets.take("a").allowed  # "a" used last now
    assert buckets.take("c").allowed  # forgets "b"
    assert buckets.take("b").allowed and not buckets.take("c").allowed
    assert len(buckets._buckets) == 2
