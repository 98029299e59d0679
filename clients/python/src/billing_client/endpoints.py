"""The service's endpoints this client calls: its major version is the API's (`/api/v1`).
A test holds each to the service's OpenAPI document."""

from __future__ import annotations

API = "/api/v1"

ENTITLEMENTS_BATCH = f"{API}/entitlements/batch"  # POST
ACCOUNT_USAGE = API + "/accounts/{account_id}/usage"  # POST
USAGE_BATCH = f"{API}/usage/batch"  # POST
EVENTS = f"{API}/events"  # GET
EVENTS_CURSOR = f"{API}/events/cursor"  # GET

ENDPOINTS = (
    ("post", ENTITLEMENTS_BATCH),
    ("post", ACCOUNT_USAGE),
    ("post", USAGE_BATCH),
    ("get", EVENTS),
    ("get", EVENTS_CURSOR),
)
