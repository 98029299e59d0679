"""Billing history: the account's transactions with their refunds and credits, and their
invoice PDFs. Users read their own; backend services any account's (service token)."""

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import (
    SERVICE,
    USER,
    USER_READ,
    checked_account_id,
    error_codes,
    operation,
)
from billing_app.api.schemas import (
    InvoiceQuerySchema,
    InvoiceSchema,
    TransactionPageSchema,
    TransactionQuerySchema,
)
from billing_app.auth import current_user, require_service_token
from billing_app.errors import (
    InvoiceUnavailable,
    TransactionNotFound,
    ValidationFailed,
)
from billing_app.extensions import db
from billing_app.paddle import paddle
from billing_app.services.billing_history import transactions as transaction_service

blp = Blueprint(
    "transactions",
    __name__,
    url_prefix="/api/v1",
    description="Billing history: transactions, refunds and credits, invoice PDFs",
)

HISTORY_CODES = error_codes(ValidationFailed)
INVOICE_CODES = error_codes(TransactionNotFound, InvoiceUnavailable)
INVOICE_ERRORS = (401, 404, 409, 422, 429, 502, 503)


@blp.before_request
def authenticate_first() -> None:
    if request.view_args and "account_id" in request.view_args:
        require_service_token()
    else:
        current_user()


def _history(account_id: str, query: dict) -> dict:
    page = transaction_service.history(
        db.session,
        account_id,
        statuses=query.get("status"),
        limit=query["limit"],
        cursor=query.get("cursor"),
    )
    data = [
        {
            **{column: getattr(row, column) for column in _TRANSACTION_FIELDS},
            "invoice_available": transaction_service.has_invoice(row),
            "adjustments": page.adjustments[row.paddle_transaction_id],
        }
        for row in page.transactions
    ]
    return {"data": data, "next_cursor": page.next_cursor}


_TRANSACTION_FIELDS = (
    "paddle_transaction_id",
    "status",
    "origin",
    "paddle_subscription_id",
    "invoice_number",
    "currency",
    "subtotal",
    "discount",
    "paddle_discount_id",
    "tax",
    "total",
    "billing_period_start",
    "billing_period_end",
    "items",
    "paddle_created_at",
    "billed_at",
    "completed_at",
)


def _invoice(account_id: str, transaction_id: str, query: dict) -> dict:
    return transaction_service.invoice_link(
        db.session, paddle(), account_id, transaction_id, disposition=query["disposition"]
    )


@blp.route("/transactions")
class OwnTransactions(MethodView):
    @blp.doc(security=USER)
    @blp.arguments(TransactionQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, TransactionPageSchema)
    @operation(blp, "listTransactions", *USER_READ, 422, codes=HISTORY_CODES)
    def get(self, query):
        """The caller's billing history, newest first, a page at a time: each transaction
        with its totals (integer minor units), invoice number and adjustments."""
        return _history(current_user().account_id, query)


@blp.route("/transactions/<string:transaction_id>/invoice")
class OwnInvoice(MethodView):
    @blp.doc(security=USER)
    @blp.arguments(InvoiceQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, InvoiceSchema)
    @operation(blp, "getTransactionInvoice", *INVOICE_ERRORS, codes=INVOICE_CODES)
    def get(self, query, transaction_id):
        """A link to the transaction's invoice PDF, fresh from Paddle; it works for an
        hour, so fetch it when the customer asks and do not store it."""
        return _invoice(current_user().account_id, transaction_id, query)


@blp.route("/accounts/<string:account_id>/transactions")
class AccountTransactions(MethodView):
    @blp.doc(security=SERVICE)
    @blp.arguments(TransactionQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, TransactionPageSchema)
    @operation(blp, "listAccountTransactions", 401, 422, 503, codes=HISTORY_CODES)
    def get(self, query, account_id):
        """Any account's billing history (service token)."""
        return _history(checked_account_id(account_id), query)


@blp.route("/accounts/<string:account_id>/transactions/<string:transaction_id>/invoice")
class AccountInvoice(MethodView):
    @blp.doc(security=SERVICE)
    @blp.arguments(InvoiceQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, InvoiceSchema)
    @operation(blp, "getAccountTransactionInvoice", *INVOICE_ERRORS, codes=INVOICE_CODES)
    def get(self, query, account_id, transaction_id):
        """A link to the invoice PDF of any account's transaction (service token)."""
        return _invoice(checked_account_id(account_id), transaction_id, query)
