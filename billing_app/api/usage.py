"""Usage metering: backend services report usage; users and services read the period's
figures. Past a meter's hard limit a report is refused whole (402 `quota_exceeded`)."""

from collections import Counter
from datetime import datetime, timedelta

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.arguments import ArgumentsMixin

from billing_app.api.common import (
    SERVICE,
    USER,
    USER_READ,
    as_json,
    checked_account_id,
    error_codes,
    operation,
)
from billing_app.api.schemas import (
    MeterUsageSchema,
    UsageBatchRequestSchema,
    UsageBatchSchema,
    UsageReportSchema,
    UsageSchema,
)
from billing_app.auth import current_user, require_service_token
from billing_app.db import utcnow
from billing_app.errors import (
    BillingError,
    IdempotencyKeyConflict,
    PeriodClosed,
    QuotaExceeded,
)
from billing_app.extensions import db
from billing_app.metrics import USAGE_REPORTS
from billing_app.services.entitlements.reads import access_policy
from billing_app.services.plans.plans_file import METER_NAME_PATTERN
from billing_app.services.usage import recording as usage_service

blp = Blueprint(
    "usage",
    __name__,
    url_prefix="/api/v1",
    description="Usage metering: quotas per billing period, overage billed through Paddle",
)

USAGE_CODES = error_codes(QuotaExceeded, IdempotencyKeyConflict, PeriodClosed)


USAGE_OUTCOMES = {200: "recorded", 402: "refused", 409: "conflict", 422: "invalid"}


@blp.after_request
def count_report(response):
    if request.method == "POST" and request.endpoint != f"{blp.name}.UsageBatch":
        USAGE_REPORTS.labels(USAGE_OUTCOMES.get(response.status_code, "error")).inc()
    return response


BATCH_MAX_BYTES = 1_048_576  # 1,000 reports with long keys


@blp.before_request
def service_token_before_the_body() -> None:
    # Another account's usage is for backend services: a 401 whatever the body says.
    if request.view_args and "account_id" in request.view_args:
        require_service_token()
    if request.endpoint == f"{blp.name}.{UsageBatch.__name__}":
        require_service_token()
        request.max_content_length = BATCH_MAX_BYTES


def metering_now(account_id: str, now) -> usage_service.Metering | None:
    """The account's plan and periods, from the facts its entitlements are read from."""
    return meterings_now([account_id], now)[account_id]


def meterings_now(account_ids, now) -> dict[str, usage_service.Metering | None]:
    source = current_app.extensions["billing_entitlements"]
    facts = source.of(list(account_ids))
    free, policy = source.free_plan(), access_policy()
    return {
        account_id: usage_service.metering_of(held, free, now, policy)
        for account_id, held in facts.items()
    }


def _figures(account_id: str) -> dict:
    now = utcnow()
    metering = metering_now(account_id, now)
    usage = usage_service.usage_figures(db.engine, account_id, metering, now)
    return {"meters": [meter.answer() for meter in usage]}


def serve_the_batch_without_the_wrappers(app) -> None:
    """Serve the batch by a function of its own (the document stays as the decorators made
    it): a body that plainly passes the schema is taken as it is (`plain_batch`), any other
    goes through the schema's parser, which answers 422 with the fields as before; and the
    answer is written to JSON once, not dumped through the schema report by report."""
    app.view_functions[f"{blp.name}.{UsageBatch.__name__}"] = _batch_view


def _batch_view():
    data = request.get_json(silent=True)
    body = plain_batch(data)
    if body is None:
        body = ArgumentsMixin.ARGUMENTS_PARSER.parse(
            UsageBatchRequestSchema(), request, location="json"
        )
    answer = _record_batch(body)
    return current_app.response_class(as_json(answer), mimetype="application/json")


_REPORT_FIELDS = {"account_id", "meter", "quantity", "idempotency_key", "occurred_at", "subject"}
_REQUIRED = ("account_id", "meter", "quantity", "idempotency_key")


def plain_batch(data) -> dict | None:
    """The batch as `UsageBatchRequestSchema` would load it, when every report plainly
    passes its checks; None when any needs the schema to judge it (and say why)."""
    if not isinstance(data, dict) or data.keys() != {"reports"}:
        return None
    reports = data["reports"]
    if not isinstance(reports, list) or not 1 <= len(reports) <= 1000:
        return None
    loaded = []
    for report in reports:
        plain = _plain_report(report)
        if plain is None:
            return None
        loaded.append(plain)
    return {"reports": loaded}


def _plain_report(report) -> dict | None:
    if not isinstance(report, dict) or not report.keys() <= _REPORT_FIELDS:
        return None
    if any(name not in report for name in _REQUIRED):
        return None
    quantity = report["quantity"]
    if type(quantity) is not int or not 1 <= quantity <= 1_000_000_000:
        return None
    if not (
        _plain_text(report["account_id"], 128)
        and _plain_text(report["idempotency_key"], 128)
        and isinstance(report["meter"], str)
        and METER_NAME_PATTERN.match(report["meter"])
    ):
        return None
    plain = dict(report)
    if "subject" in report and not _plain_text(report["subject"], 200):
        return None
    if "occurred_at" in report:
        moment = report["occurred_at"]
        try:
            plain["occurred_at"] = datetime.fromisoformat(moment)  # as AwareDateTime reads it
        except (TypeError, ValueError):
            return None
        if plain["occurred_at"].utcoffset() is None:
            return None
    return plain


def _plain_text(value, longest: int) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= longest and value.isprintable()


@blp.route("/usage/batch")
class UsageBatch(MethodView):
    @blp.doc(security=SERVICE)
    @blp.arguments(UsageBatchRequestSchema)
    @blp.response(200, UsageBatchSchema)
    @operation(blp, "recordUsageBatch", 400, 401, 413, 422, 503)
    def post(self, body):
        """Record up to 1,000 usage reports at once, for any accounts and meters (service
        token). Each is judged on its own exactly as `POST /accounts/{id}/usage` would judge
        it, and `results` gives, in the order sent, what that call would have answered:
        its `usage` (200; `duplicate` when its key was recorded before: the first answer),
        or its `error` with the status (402 `quota_exceeded`, 409
        `idempotency_key_conflict` or `period_closed`, 422 with `errors`). Only a malformed
        body is refused whole (422, nothing recorded)."""
        return _record_batch(body)


def _record_batch(body: dict) -> dict:
    """Record a loaded batch; the answer: one result per report, in order, and counts."""
    now = utcnow()
    reports = [_report(entry["account_id"], entry, now) for entry in body["reports"]]
    late = timedelta(seconds=current_app.config["USAGE_LATE_SECONDS"])
    meterings = meterings_now({report.account_id for report in reports}, now)
    outcomes = usage_service.record_batch(db.session, reports, meterings, now, late)
    db.session.commit()
    results = [_result(outcome) for outcome in outcomes]
    for status, count in Counter(result["status"] for result in results).items():
        USAGE_REPORTS.labels(USAGE_OUTCOMES.get(status, "error")).inc(count)
    counts = Counter(_kind(result) for result in results)
    return {"results": results, "counts": {kind: counts[kind] for kind in BATCH_COUNTS}}


BATCH_COUNTS = ("recorded", "duplicate", "refused", "conflict", "invalid")


def _report(account_id: str, body: dict, now) -> usage_service.Report:
    """A report as the single call and the batch take it (`occurred_at` default: now)."""
    return usage_service.Report(
        account_id=checked_account_id(account_id),
        meter=body["meter"],
        quantity=body["quantity"],
        idempotency_key=body["idempotency_key"],
        occurred_at=body.get("occurred_at", now),
        subject=body.get("subject"),
    )


def _result(outcome) -> dict:
    if isinstance(outcome, BillingError):
        return {
            "status": outcome.status,
            "duplicate": False,
            "usage": None,
            "error": outcome.code,
            "message": outcome.message,
            "errors": outcome.errors,
        }
    return {
        "status": 200,
        "duplicate": outcome.duplicate,
        "usage": outcome.answer(),
        "error": None,
        "message": None,
        "errors": None,
    }


def _kind(result: dict) -> str:
    """How the batch's `counts` tell it: the metrics' outcome, or `duplicate`."""
    return "duplicate" if result["duplicate"] else USAGE_OUTCOMES.get(result["status"], "invalid")


@blp.route("/usage")
class OwnUsage(MethodView):
    @blp.doc(security=USER)
    @blp.response(200, UsageSchema)
    @operation(blp, "getUsage", *USER_READ)
    def get(self):
        """The caller's usage of each meter of its plan in the current billing period."""
        return _figures(current_user().account_id)


@blp.route("/accounts/<string:account_id>/usage")
class AccountUsage(MethodView):
    @blp.doc(security=SERVICE)
    @blp.response(200, UsageSchema)
    @operation(blp, "getAccountUsage", 401, 422, 503)
    def get(self, account_id):
        """Any account's usage in the current billing period (service token)."""
        return _figures(checked_account_id(account_id))

    @blp.doc(security=SERVICE)
    @blp.arguments(UsageReportSchema)
    @blp.response(200, MeterUsageSchema)
    @operation(blp, "recordUsage", 400, 401, 402, 409, 413, 422, 503, codes=USAGE_CODES)
    def post(self, body, account_id):
        """Count usage in the billing period that holds `occurred_at` (default now).

        All of `quantity` or none: past the meter's hard limit nothing is recorded (402).
        The same `idempotency_key` again answers as the first time and counts once; under
        another account, meter or quantity it is a 409. A period takes late reports for
        USAGE_LATE_SECONDS after it ends, then answers 409 `period_closed`."""
        now = utcnow()
        report = _report(account_id, body, now)
        late = timedelta(seconds=current_app.config["USAGE_LATE_SECONDS"])
        metering = metering_now(report.account_id, now)
        usage = usage_service.record_usage(db.session, report, metering, now, late)
        answer = usage.answer()
        db.session.commit()
        return answer
