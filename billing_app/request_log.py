"""One structured line per request, and a request id on every line logged while it runs.

The id comes from the caller's `X-Request-ID` when it is a plausible one (a load balancer's,
a frontend's), else it is made here; it is echoed in the response. The line tells the
method, the route's template (never the raw path: it can hold an account id), the status,
the duration and the account when a token named one. It never holds a token, a signature,
a body or an email. `LOG_FORMAT=json` writes every log line as one JSON object.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from flask import Flask, g, has_request_context, request

from billing_app.metrics import count_request

log = logging.getLogger("billing_app.requests")

HEADER = "X-Request-ID"
_PLAUSIBLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_FIELDS = ("method", "route", "status", "duration_ms", "account_id")


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request it was logged in (or none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id") if has_request_context() else None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        line.update({field: getattr(record, field) for field in _FIELDS if hasattr(record, field)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{text} request_id={request_id}" if request_id else text


def configure_logging(level: str, log_format: str) -> None:
    root = logging.getLogger()
    root.setLevel(level)
    if not any(getattr(handler, "billing", False) for handler in root.handlers):
        handler = logging.StreamHandler()
        handler.billing = True
        root.addHandler(handler)
    for handler in root.handlers:
        if getattr(handler, "billing", False):
            handler.setFormatter(
                JsonFormatter()
                if log_format == "json"
                else TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
            )
            if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
                handler.addFilter(RequestIdFilter())


def register_request_log(app: Flask) -> None:
    @app.before_request
    def start() -> None:
        offered = request.headers.get(HEADER, "")
        g.request_id = offered if _PLAUSIBLE_ID.match(offered) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def finish(response):
        request_id = g.get("request_id")
        if request_id is None:  # failed before `start` ran
            return response
        response.headers[HEADER] = request_id
        caller = request.environ.get("billing.caller")
        fields = {
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule else "unmatched",
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.request_started) * 1000, 1),
            "account_id": getattr(caller, "account_id", None)
            or (request.view_args or {}).get("account_id"),
            **request.environ.get("billing.log_fields", {}),
        }
        count_request(
            fields["route"], request.method, response.status_code, fields["duration_ms"] / 1000
        )
        said = request.environ.get("billing.log_fields")
        log.info(
            "%s %s %s %.1fms%s",
            fields["method"],
            fields["route"],
            response.status_code,
            fields["duration_ms"],
            "".join(f" {key}={value}" for key, value in said.items()) if said else "",
            extra=fields,
        )
        return response
