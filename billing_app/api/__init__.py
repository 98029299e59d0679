"""The HTTP interface: one blueprint module per resource, the schemas, the error shape."""

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from billing_app.api import health
    from billing_app.extensions import api

    api.register_blueprint(health.blp)
