"""What every reader of access asks of this app (the API and the console): the access
policy from the configuration, and accounts' entitlements from the process's cache, with
their meters' figures."""

from __future__ import annotations

from flask import current_app

from billing_app.db import utcnow
from billing_app.extensions import db
from billing_app.services.entitlements.access import AccessPolicy
from billing_app.services.entitlements.facts import entitlements_from_facts
from billing_app.services.usage.recording import metering_of, usage_figures


def access_policy() -> AccessPolicy:
    return AccessPolicy.of(current_app.config)


def entitlement_answers(account_ids: list[str], *, fresh: bool = False) -> dict[str, dict]:
    """Each account's entitlements, with its meters' figures for the current period (read
    from the counters, for plans that have meters). `fresh`: the facts read from the
    database, not this process's cache."""
    source = current_app.extensions["billing_entitlements"]
    facts = source.of(account_ids, fresh=fresh)
    free = source.free_plan()
    now, policy = utcnow(), access_policy()
    answers = {}
    for account_id, held in facts.items():
        metering = metering_of(held, free, now, policy)
        answers[account_id] = {
            **vars(entitlements_from_facts(held, now, policy, free)),
            "meters": [
                usage.answer() for usage in usage_figures(db.engine, account_id, metering, now)
            ],
        }
    return answers
