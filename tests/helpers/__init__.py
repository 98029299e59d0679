"""What tests build with. One module per kind of help:

- `config`: the test suite's secrets and Paddle's base URL, as the app is configured.
- `samples`: Paddle's real payloads from tests/fixtures/paddle.
- `payloads`: Paddle entities and notifications built from those samples.
- `rows`: rows in our tables (plans, accounts, subscriptions, counters, ledger rows).
- `webhooks`: delivering signed notifications and letting the worker apply them.
- `tokens`: user tokens and their Authorization header.
- `waiting`: `eventually`, for what another thread or process does.
- `paddle_lists`: Paddle's paginated lists served through `responses`.
- `catalogue`: a catalogue of plans and one-time products for purchase tests.
- `stack`: the service under gunicorn and the simulator as real processes, and the
  frontend and simulator clients that drive them.
- `browser`: Debian's Chromium driven by Playwright.
"""
