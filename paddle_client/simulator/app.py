"""The simulator's HTTP face: Paddle's paths and envelopes, a hosted checkout page, and the
control API under `/_sim/` (no key needed) that tests and people use to drive it."""

from __future__ import annotations

import hmac
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from paddle_client.simulator.clock import SimClock, stamp
from paddle_client.simulator.delivery import Deliverer, Delivery, notification_body
from paddle_client.simulator.errors import SimError, invalid_field, not_found
from paddle_client.simulator.state import SimState
from paddle_client.timestamps import parse_timestamp

MAX_PER_PAGE = 200

CHECKOUT_PAGE = """<!doctype html><title>Simulated Paddle checkout: {product}</title>
<h1>{product}</h1><p>Transaction {id} ({status})</p>
{outcome}<ul>{lines}</ul>
{actions}
<p>This is the local simulator, for development and tests only.</p>"""

PAYABLE_ACTIONS = """<form method="post" action="/_sim/transactions/{id}/complete">
<button>Pay</button></form>
<form method="post" action="/_sim/transactions/{id}/decline"><button>Decline</button></form>"""

DECLINED = "The card was declined: transaction.payment_failed was sent. You may try again."
AFTER_PAY = {
    "completed": "Paid. The simulator now sends Paddle's webhooks (transaction.paid, "
    "subscription.created, subscription.activated, transaction.completed) to the service: "
    "GET /api/v1/subscription shows the subscription active once they have arrived.",
    "paid": "Paid. The simulator now sends Paddle's webhooks to the service.",
    "past_due": DECLINED,
    "ready": DECLINED,
    "draft": DECLINED,
}


def money(unit_price: dict[str, str]) -> str:
    amount = int(unit_price["amount"])
    return f"{amount // 100}.{amount % 100:02d} {escape(unit_price['currency_code'])}"


def envelope(data: Any, **meta: Any) -> dict[str, Any]:
    return {"data": data, "meta": {"request_id": str(uuid.uuid4()), **meta}}


def error_body(status: int, code: str, detail: str, errors: list | None = None) -> Response:
    error = {
        "type": "api_error" if status >= 500 else "request_error",
        "code": code,
        "detail": detail,
        "documentation_url": f"https://developer.paddle.com/errors/shared/{code}",
    }
    if errors:
        error["errors"] = errors
    return json_response({"error": error, "meta": {"request_id": str(uuid.uuid4())}}, status)


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, headers=headers, content_type="application/json"
    )


class SimulatorApp:
    """A WSGI app; `state`, `events` and `deliverer` are there for tests to look at."""

    def __init__(
        self,
        api_key: str,
        webhook_url: str | None,
        webhook_secret: str | None,
        public_url: str = "http://127.0.0.1:8090",
    ) -> None:
        self.api_key = api_key
        self.clock = SimClock()
        self.events: list[dict[str, Any]] = []
        self.notifications: dict[str, dict[str, Any]] = {}
        self._events_lock = threading.Lock()
        self.deliverer = Deliverer(webhook_url, webhook_secret)
        self.state = SimState(self.clock, self._record_event, public_url)
        self.url_map = Map(
            [Rule(path, endpoint=name, methods=methods) for path, name, methods in ROUTES]
        )

    # Events and notifications

    def _record_event(self, event_type: str, data: dict[str, Any], occurred_at: datetime) -> None:
        with self._events_lock:
            event = {
                "event_id": self.state.new_id("evt"),
                "event_type": event_type,
                "occurred_at": stamp(occurred_at),
                "data": data,
            }
            self.events.append(event)
        self._notify(event, origin="event")

    def _notify(self, event: dict[str, Any], origin: str) -> str:
        notification_id = self.state.new_id("ntf")
        body = notification_body(event, notification_id)
        delivery = Delivery(notification_id, event["event_id"], event["event_type"], body)
        self.notifications[notification_id] = {
            "id": notification_id,
            "origin": origin,
            "delivery": delivery,
            "event": event,
        }
        self.deliverer.submit(delivery)
        return notification_id

    # WSGI

    def __call__(self, environ, start_response):
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except NotFound:
            return error_body(404, "not_found", f"No route for {request.method} {request.path}")
        except MethodNotAllowed:
            return error_body(405, "method_not_allowed", f"{request.method} is not allowed here")
        except HTTPException as error:
            return error_body(error.code or 400, "bad_request", str(error.description))
        public = endpoint.startswith(("sim_", "page_"))
        if not public:
            refusal = self._refuse(request)
            if refusal is not None:
                return refusal
        try:
            body = request.get_json(silent=True) if request.data else {}
            if request.data and body is None:
                raise invalid_field("body", "must be JSON")
            answer = getattr(self, endpoint)(request, body or {}, **args)
        except SimError as error:
            return error_body(error.status, error.code, error.detail, error.errors)
        faults = self.deliverer.faults
        if not public and request.method != "GET" and faults.lose_answer_next > 0:
            faults.lose_answer_next -= 1  # carried out, but the caller never hears so
            return error_body(503, "service_unavailable", "Simulated lost answer.")
        return answer

    def _refuse(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return error_body(403, "authentication_missing", "Send an API key as a Bearer token.")
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not hmac.compare_digest(token.encode(), self.api_key.encode()):
            return error_body(403, "invalid_token", "The API key is not valid.")
        faults = self.deliverer.faults
        if faults.rate_limit_next > 0:
            faults.rate_limit_next -= 1
            response = error_body(
                429, "too_many_requests", "IP address exceeded the allowed rate limit."
            )
            response.headers["Retry-After"] = "1"
            return response
        if faults.fail_api_next > 0:
            faults.fail_api_next -= 1
            return error_body(503, "service_unavailable", "Simulated outage.")
        return None

    # Listing

    def _page(
        self,
        request: Request,
        items,
        path: str,
        key: Callable[[dict], str] = lambda e: e["id"],
        total: int = -1,
    ):
        per_page = min(int(request.args.get("per_page", 50)), MAX_PER_PAGE)
        page, more = [], False
        for item in items:
            if len(page) == per_page:
                more = True
                break
            page.append(item)
        query = {k: v for k, v in request.args.items() if k != "after"}
        query["after"] = key(page[-1]) if page else request.args.get("after", "")
        pagination = {
            "per_page": per_page,
            "next": f"{request.host_url.rstrip('/')}{path}?{urlencode(query)}",
            "has_more": more,
            "estimated_total": total,
        }
        return json_response(envelope(page, pagination=pagination))

    @staticmethod
    def _after(
        items: list[dict], after: str | None, key: Callable[[dict], str] = lambda e: e["id"]
    ):
        if not after:
            return iter(items)
        ids = [key(item) for item in items]
        return iter(items[ids.index(after) + 1 :] if after in ids else [])

    @staticmethod
    def _filter(items, request: Request, *fields: str) -> Iterator[dict]:
        """The items that match every filter given (`field=a,b`: one of those values),
        lazily (a list of subscriptions is paged, not read whole)."""
        wanted = {
            field: set(request.args[field].split(","))
            for field in fields
            if request.args.get(field)
        }
        return (
            item
            for item in items
            if all(item.get(field) in allowed for field, allowed in wanted.items())
        )

    # Catalogue

    def products_list(self, request, body):
        include = "prices" in request.args.get("include", "")
        products = [
            {
                **product,
                **(
                    {
                        "prices": [
                            p
                            for p in self.state.prices.values()
                            if p["product_id"] == product["id"]
                        ]
                    }
                    if include
                    else {}
                ),
            }
            for product in self.state.products.values()
        ]
        return self._page(request, self._after(products, request.args.get("after")), "/products")

    def prices_list(self, request, body):
        prices = list(self._filter(self.state.prices.values(), request, "product_id", "status"))
        return self._page(request, self._after(prices, request.args.get("after")), "/prices")

    def prices_get(self, request, body, price_id):
        price = dict(self.state.price(price_id))
        if "product" in request.args.get("include", ""):
            price["product"] = self.state.products[price["product_id"]]
        return json_response(envelope(price))

    def pricing_preview(self, request, body):
        return json_response(envelope(self.state.pricing_preview(body)))

    # Discounts

    def discounts_list(self, request, body):
        def listed(name: str) -> list[str] | None:
            value = request.args.get(name)
            return value.split(",") if value else None

        statuses = listed("status") or ["active"]
        found = self.state.list_discounts(listed("code"), listed("id"), statuses)
        return self._page(request, self._after(found, request.args.get("after")), "/discounts")

    def discounts_create(self, request, body):
        return json_response(envelope(self.state.create_discount(body)), 201)

    def discounts_get(self, request, body, discount_id):
        return json_response(envelope(self.state.discount(discount_id)))

    def discounts_update(self, request, body, discount_id):
        return json_response(envelope(self.state.update_discount(discount_id, body)))

    # Customers

    def customers_create(self, request, body):
        customer = self.state.create_customer(
            body.get("email", ""), body.get("name"), body.get("locale"), body.get("custom_data")
        )
        return json_response(envelope(customer), 201)

    def customers_list(self, request, body):
        customers = list(self.state.customers.values())
        emails = request.args.get("email")
        if emails:
            wanted = {email.lower() for email in emails.split(",")}
            customers = [c for c in customers if c["email"].lower() in wanted]
        return self._page(request, self._after(customers, request.args.get("after")), "/customers")

    def customers_get(self, request, body, customer_id):
        return json_response(envelope(self.state.customer(customer_id)))

    def portal_sessions_create(self, request, body, customer_id):
        session = self.state.portal_session(customer_id, list(body.get("subscription_ids") or []))
        return json_response(envelope(session), 201)

    # Transactions

    def transactions_create(self, request, body):
        return json_response(envelope(self.state.create_transaction(body)), 201)

    def transactions_get(self, request, body, transaction_id):
        return json_response(envelope(self.state.transaction(transaction_id)))

    def transactions_list(self, request, body):
        transactions = list(
            self._filter(
                self.state.transactions.values(),
                request,
                "subscription_id",
                "customer_id",
                "status",
                "origin",
            )
        )
        since = parse_timestamp(request.args.get("updated_at[GTE]"))
        if since is not None:
            transactions = [t for t in transactions if parse_timestamp(t["updated_at"]) >= since]
        return self._page(
            request, self._after(transactions, request.args.get("after")), "/transactions"
        )

    def transactions_invoice(self, request, body, transaction_id):
        return json_response(envelope({"url": self.state.invoice_url(transaction_id)}))

    # Subscriptions

    def subscriptions_list(self, request, body):
        descending = request.args.get("order_by", "id[DESC]").lower() == "id[desc]"
        with self.state.lock:
            items = self.state.subscriptions_after(request.args.get("after"), descending)
            filtered = any(request.args.get(name) for name in ("status", "customer_id"))
            items = self._filter(items, request, "status", "customer_id")
            total = -1 if filtered else len(self.state.subscription_order)
            return self._page(request, items, "/subscriptions", total=total)

    def subscriptions_get(self, request, body, subscription_id):
        if "next_transaction" in request.args.get("include", ""):
            return json_response(
                envelope(self.state.subscription_with_next_transaction(subscription_id))
            )
        return json_response(envelope(self.state.subscription(subscription_id)))

    def subscriptions_update(self, request, body, subscription_id):
        return json_response(envelope(self.state.update(subscription_id, body)))

    def subscriptions_preview(self, request, body, subscription_id):
        return json_response(envelope(self.state.update(subscription_id, body, preview=True)))

    def subscriptions_pause(self, request, body, subscription_id):
        return json_response(envelope(self.state.pause(subscription_id, body)))

    def subscriptions_resume(self, request, body, subscription_id):
        return json_response(envelope(self.state.resume(subscription_id, body)))

    def subscriptions_cancel(self, request, body, subscription_id):
        return json_response(envelope(self.state.cancel(subscription_id, body)))

    def subscriptions_activate(self, request, body, subscription_id):
        return json_response(envelope(self.state.activate(subscription_id)))

    def subscriptions_payment_method(self, request, body, subscription_id):
        return json_response(envelope(self.state.payment_method_transaction(subscription_id)))

    def subscriptions_charge(self, request, body, subscription_id):
        return json_response(envelope(self.state.charge(subscription_id, body)), 201)

    # Events and notifications

    def events_list(self, request, body):
        with self._events_lock:
            events = list(self.events)
        types = request.args.get("event_type")
        if types:
            wanted = set(types.split(","))
            events = [event for event in events if event["event_type"] in wanted]
        if request.args.get("order_by", "id[ASC]").lower() == "id[desc]":
            events.reverse()
        key = lambda event: event["event_id"]  # noqa: E731
        return self._page(
            request, self._after(events, request.args.get("after"), key), "/events", key
        )

    def notifications_list(self, request, body):
        rows = [self._notification(n) for n in self.notifications.values()]
        return self._page(request, self._after(rows, request.args.get("after")), "/notifications")

    def _notification(self, notification: dict) -> dict:
        delivery = notification["delivery"]
        return {
            "id": notification["id"],
            "type": delivery.event_type,
            "status": {"pending": "needs_retry", "dropped": "not_attempted"}.get(
                delivery.status, delivery.status
            ),
            "payload": json.loads(delivery.body),
            "occurred_at": notification["event"]["occurred_at"],
            "origin": notification["origin"],
            "times_attempted": len(delivery.attempts),
        }

    def notifications_replay(self, request, body, notification_id):
        notification = self.notifications.get(notification_id)
        if notification is None:
            raise not_found("notification", notification_id)
        if notification["origin"] != "event":
            raise SimError(400, "notification_cannot_be_replayed", "A replay cannot be replayed.")
        new_id = self._notify(notification["event"], origin="replay")
        return json_response(envelope({"notification_id": new_id}), 202)

    # The hosted checkout page

    def page_checkout(self, request, body):
        transaction_id = request.args.get("_ptxn", "")
        try:
            transaction = self.state.transaction(transaction_id)
        except SimError:
            return Response("Unknown transaction", status=404)
        names = [self._product_name(item) for item in transaction["items"]]
        lines = "".join(
            f"<li>{escape(name)}: {escape(item['price']['description'] or '')} "
            f"x {item['quantity']}: {money(item['price']['unit_price'])}</li>"
            for name, item in zip(names, transaction["items"], strict=True)
        )
        status = transaction["status"]
        if status in {"draft", "ready", "past_due"}:
            actions = PAYABLE_ACTIONS.format(id=escape(transaction_id))
        else:
            actions = f"<p>This transaction is {escape(status)}: there is nothing to pay.</p>"
        # After Pay or Decline (redirected here, so a reload asks again rather than posts).
        said = AFTER_PAY.get(status) if request.args.get("done") else None
        html = CHECKOUT_PAGE.format(
            outcome=f'<p id="outcome">{escape(said)}</p>' if said else "",
            product=escape(", ".join(names) or "Checkout"),
            id=escape(transaction_id),
            status=escape(status),
            lines=lines,
            actions=actions,
        )
        return Response(html, content_type="text/html")

    def page_invoice(self, request, body, transaction_id):
        """The invoice PDF an invoice link points at (a one-page PDF naming the transaction)."""
        transaction = self.state.transaction(transaction_id)
        return Response(invoice_pdf(transaction), content_type="application/pdf")

    def _product_name(self, item: dict) -> str:
        product = self.state.products.get(item["price"].get("product_id") or "")
        return (product or {}).get("name") or item["price"].get("description") or "Item"

    # Control API

    def sim_complete(self, request, body, transaction_id):
        transaction = self.state.complete_checkout(transaction_id, body.get("email"))
        return self._after_form(request, transaction)

    def sim_decline(self, request, body, transaction_id):
        return self._after_form(request, self.state.decline_checkout(transaction_id))

    def _after_form(self, request, transaction):
        """The Pay and Decline buttons go back to the checkout page (redirect after POST:
        reloading it pays nothing twice); the control API gets JSON."""
        if request.mimetype == "application/x-www-form-urlencoded":
            query = urlencode({"_ptxn": transaction["id"], "done": "1"})
            return Response(status=303, headers={"Location": f"/checkout?{query}"})
        return json_response({"data": transaction})

    def sim_clock(self, request, body):
        return json_response({"now": stamp(self.clock.now())})

    def sim_clock_advance(self, request, body):
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or seconds < 0:
            raise invalid_field("seconds", "a number of seconds, at least 0")
        return json_response({"now": stamp(self.state.advance(seconds))})

    def sim_fail_renewal(self, request, body, subscription_id):
        with self.state.lock:
            self.state.subscription(subscription_id)
            self.state.fail_next_renewal.add(subscription_id)
        return json_response({"subscription_id": subscription_id, "fail_next_renewal": True})

    def sim_faults(self, request, body):
        if request.method == "POST":
            try:
                self.deliverer.faults.update(body)
            except (ValueError, TypeError) as error:
                raise invalid_field("faults", str(error)) from None
        return json_response(vars(self.deliverer.faults))

    def sim_deliveries(self, request, body):
        if request.args.get("wait"):
            self.deliverer.wait_idle(float(request.args.get("timeout", 30)))
        return json_response({"data": [d.summary() for d in self.deliverer.deliveries]})

    def sim_release(self, request, body):
        self.deliverer.release_held()
        return json_response({"released": True})

    def sim_reset(self, request, body):
        self.deliverer.reset()
        self.clock.reset()
        self.state.reset()
        with self._events_lock:
            self.events.clear()
        self.notifications.clear()
        return json_response({"reset": True})

    def sim_seed(self, request, body):
        count = body.get("count")
        if not isinstance(count, int) or count < 1:
            raise invalid_field("count", "a positive whole number")
        price_id = body.get("price_id", "pri_01hsim0startermonth000000")
        ids = self.state.seed_subscriptions(
            count,
            price_id,
            body.get("custom_data_prefix"),
            body.get("custom_data_key") or "app_account_id",
            bool(body.get("with_customers")),
        )
        return json_response({"created": len(ids), "first": ids[0], "last": ids[-1]}, 201)


ROUTES = [
    ("/products", "products_list", ["GET"]),
    ("/prices", "prices_list", ["GET"]),
    ("/prices/<price_id>", "prices_get", ["GET"]),
    ("/pricing-preview", "pricing_preview", ["POST"]),
    ("/discounts", "discounts_list", ["GET"]),
    ("/discounts", "discounts_create", ["POST"]),
    ("/discounts/<discount_id>", "discounts_get", ["GET"]),
    ("/discounts/<discount_id>", "discounts_update", ["PATCH"]),
    ("/customers", "customers_create", ["POST"]),
    ("/customers", "customers_list", ["GET"]),
    ("/customers/<customer_id>", "customers_get", ["GET"]),
    ("/customers/<customer_id>/portal-sessions", "portal_sessions_create", ["POST"]),
    ("/transactions", "transactions_create", ["POST"]),
    ("/transactions", "transactions_list", ["GET"]),
    ("/transactions/<transaction_id>", "transactions_get", ["GET"]),
    ("/transactions/<transaction_id>/invoice", "transactions_invoice", ["GET"]),
    ("/subscriptions", "subscriptions_list", ["GET"]),
    ("/subscriptions/<subscription_id>", "subscriptions_get", ["GET"]),
    ("/subscriptions/<subscription_id>", "subscriptions_update", ["PATCH"]),
    ("/subscriptions/<subscription_id>/preview", "subscriptions_preview", ["PATCH"]),
    ("/subscriptions/<subscription_id>/pause", "subscriptions_pause", ["POST"]),
    ("/subscriptions/<subscription_id>/resume", "subscriptions_resume", ["POST"]),
    ("/subscriptions/<subscription_id>/cancel", "subscriptions_cancel", ["POST"]),
    ("/subscriptions/<subscription_id>/activate", "subscriptions_activate", ["POST"]),
    (
        "/subscriptions/<subscription_id>/update-payment-method-transaction",
        "subscriptions_payment_method",
        ["GET"],
    ),
    ("/subscriptions/<subscription_id>/charge", "subscriptions_charge", ["POST"]),
    ("/events", "events_list", ["GET"]),
    ("/notifications", "notifications_list", ["GET"]),
    ("/notifications/<notification_id>/replay", "notifications_replay", ["POST"]),
    ("/checkout", "page_checkout", ["GET"]),
    ("/invoices/<transaction_id>.pdf", "page_invoice", ["GET"]),
    ("/_sim/transactions/<transaction_id>/complete", "sim_complete", ["POST"]),
    ("/_sim/transactions/<transaction_id>/decline", "sim_decline", ["POST"]),
    ("/_sim/clock", "sim_clock", ["GET"]),
    ("/_sim/clock/advance", "sim_clock_advance", ["POST"]),
    ("/_sim/subscriptions/<subscription_id>/fail-next-renewal", "sim_fail_renewal", ["POST"]),
    ("/_sim/faults", "sim_faults", ["GET", "POST"]),
    ("/_sim/deliveries", "sim_deliveries", ["GET"]),
    ("/_sim/deliveries/release", "sim_release", ["POST"]),
    ("/_sim/reset", "sim_reset", ["POST"]),
    ("/_sim/seed", "sim_seed", ["POST"]),
]


def invoice_pdf(transaction: dict) -> bytes:
    """A minimal, valid one-page PDF: the invoice number, transaction and total."""
    totals = transaction["details"]["totals"]
    text = (
        f"Invoice {transaction.get('invoice_number') or ''} for {transaction['id']}: "
        f"{totals['grand_total']} {transaction['currency_code']} (minor units)"
    )
    text = text.replace("\\", "").replace("(", "").replace(")", "")
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return pdf


def create_simulator(
    api_key: str,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    public_url: str = "http://127.0.0.1:8090",
) -> SimulatorApp:
    return SimulatorApp(api_key, webhook_url, webhook_secret, public_url)
