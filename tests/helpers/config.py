"""The test suite's settings: the secrets it signs with, and where Paddle is."""

from __future__ import annotations

import os

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


WEBHOOK_SECRET = "pdl_ntfset_01test_secret_for_the_test_suite"
JWT_SECRET = "test-jwt-secret-that-is-long-enough-for-hs256"
SERVICE_TOKEN = "test-service-token"
PADDLE_API_KEY = "pdl_sdbx_apikey_test"
# Paddle's API as the app under test is configured to call it (faked with `responses`).
PADDLE_BASE = "https://paddle.test"
