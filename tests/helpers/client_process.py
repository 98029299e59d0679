"""A product process using the Python client, for tests and benchmarks that need several:
`python -m tests.helpers.client_process BASE_URL TOKEN ACCOUNT FEATURE`.

It reads the account, prints "ready", then asks `allowed` in a loop and prints the wall
time (time.time()) at which the answer first changed, then exits."""

from __future__ import annotations

import sys
import time

from billing_client import BillingClient


def main(base_url: str, token: str, account_id: str, feature: str) -> None:
    billing = BillingClient(base_url, token, feed_wait=5)
    assert billing.wait_until_following(30), "the feed was never followed"
    first = billing.allowed(account_id, feature)
    print("ready", first, flush=True)
    deadline = time.monotonic() + 60
    while billing.allowed(account_id, feature) == first:
        if time.monotonic() > deadline:
            print("unchanged", flush=True)
            return
        time.sleep(0.0005)
    print("changed", repr(time.time()), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
