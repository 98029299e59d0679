"""The HTTP interface: one blueprint module per resource, the schemas, the error shape."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from billing_app.api import (
        accounts,
        checkout,
        entitlements,
        events,
        health,
        metrics,
        plans,
        portal,
        pricing,
        subscription,
        transactions,
        usage,
        webhooks,
    )
    from billing_app.api.openapi import shape_one_of_bodies
    from billing_app.extensions import api

    api.spec.components.security_scheme(
        "userToken", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    api.spec.components.security_scheme(
        "serviceToken",
        {"type": "http", "scheme": "bearer", "description": "BILLING_SERVICE_TOKEN"},
    )
    for module in (
        health,
        plans,
        pricing,
        accounts,
        checkout,
        subscription,
        portal,
        transactions,
        entitlements,
        usage,
        events,
        webhooks,
        metrics,
    ):
        api.register_blueprint(module.blp)
    shape_one_of_bodies(api.spec)
    events.document_webhooks(api.spec)
    events.register_feed(app)
    pricing.register_pricing(app)
    entitlements.serve_without_the_wrappers(app)
    usage.serve_the_batch_without_the_wrappers(app)
