"""The HTTP interface: one blueprint module per resource, the schemas, the error shape."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from billing_app.api import health, webhooks
    from billing_app.extensions import api

    api.register_blueprint(health.blp)
    api.register_blueprint(webhooks.blp)
