"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

from billing_app import create_app
from billing_app.services.health import warn_about_missing_settings

app = create_app()
warn_about_missing_settings(app.config, "web")
