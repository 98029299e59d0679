"""The request and response bodies of the HTTP API, as the OpenAPI document shows them."""

from datetime import UTC, datetime, timedelta

import marshmallow as ma
from marshmallow import fields, validate

from billing_app.models.subscription import SCHEDULED_ACTIONS, SUBSCRIPTION_STATUSES
from billing_app.models.transaction import TRANSACTION_STATUSES
from billing_app.services.plans.plans_file import METER_NAME, PRICE_ID, SLUG
from paddle_client.resources.subscriptions import PRORATION_MODES

EFFECTIVE_FROM = ("next_billing_period", "immediately")


class MeterSchema(ma.Schema):
    included = fields.Integer(required=True, metadata={"description": "per billing period"})
    hard_limit = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null: no cap"}
    )
    overage_price_id = fields.String(required=True, allow_none=True)
    overage_unit = fields.Integer(required=True)


class PlanSchema(ma.Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True, allow_none=True)
    free = fields.Boolean(required=True, metadata={"description": "the free tier: no price"})
    price_id = fields.String(required=True, allow_none=True)
    amount = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": 'minor units, e.g. "1900"; null until read from Paddle'},
    )
    currency = fields.String(required=True, allow_none=True, metadata={"example": "USD"})
    interval = fields.String(required=True, allow_none=True, metadata={"example": "month"})
    interval_count = fields.Integer(required=True)
    features = fields.List(fields.String(), required=True)
    limits = fields.Dict(keys=fields.String(), required=True)
    meters = fields.Dict(keys=fields.String(), values=fields.Nested(MeterSchema), required=True)


class CatalogItemSchema(ma.Schema):
    type = fields.String(required=True, validate=validate.OneOf(("subscription", "one_time")))
    slug = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True, allow_none=True)
    price_id = fields.String(required=True, allow_none=True)
    amount = fields.String(
        required=True, allow_none=True, metadata={"description": 'minor units, e.g. "1900"'}
    )
    currency = fields.String(required=True, allow_none=True)
    features = fields.List(
        fields.String(), required=True, metadata={"description": "what it grants"}
    )
    interval = fields.String(
        required=True, allow_none=True, metadata={"description": "null for one-time products"}
    )
    interval_count = fields.Integer(required=True, allow_none=True)
    grant_days = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "a product's features last this long; null: for good"},
    )
    credits = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={
            "description": "units per meter one quantity of a product adds to the allowance"
            " of the billing period it is bought in; {} for plans"
        },
    )


class CatalogQuerySchema(ma.Schema):
    type = fields.String(
        validate=validate.OneOf(("subscription", "one_time")),
        metadata={"description": "only this kind; default: both"},
    )


DISCOUNT_CODE = fields.String(
    validate=validate.Regexp(r"^[A-Za-z0-9]{1,32}$", error="1 to 32 letters and digits"),
    metadata={"description": "a Paddle discount code, not case-sensitive"},
)


class PricingQuerySchema(ma.Schema):
    country = fields.String(
        validate=validate.Regexp(r"^[A-Za-z]{2}$", error="ISO 3166-1 alpha-2, e.g. GB"),
        metadata={"description": "the visitor's country; default: located by their address"},
    )
    postal_code = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "with `country`, where Paddle needs it for tax (US, CA)"},
    )
    currency = fields.String(
        validate=validate.Regexp(r"^[A-Za-z]{3}$", error="ISO 4217, e.g. EUR"),
        metadata={"description": "default: the visitor's, as Paddle localizes it"},
    )
    discount_code = DISCOUNT_CODE

    @ma.post_load
    def upper_case(self, data, **kwargs):
        return {
            key: value.upper() if key in ("country", "currency") else value
            for key, value in data.items()
        }


class PriceTotalsSchema(ma.Schema):
    subtotal = fields.String(required=True)
    discount = fields.String(required=True)
    tax = fields.String(required=True)
    total = fields.String(required=True)


class PricedItemSchema(ma.Schema):
    type = fields.String(
        required=True, validate=validate.OneOf(("subscription", "one_time", "addon"))
    )
    slug = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True, allow_none=True)
    price_id = fields.String(required=True)
    interval = fields.String(required=True, allow_none=True)
    interval_count = fields.Integer(required=True, allow_none=True)
    plans = fields.List(
        fields.String(),
        required=True,
        allow_none=True,
        metadata={"description": "an add-on's: the plans it may join ([]: any); else null"},
    )
    unit_totals = fields.Nested(
        PriceTotalsSchema,
        required=True,
        metadata={"description": "one unit, in the answer's currency's minor units (strings)"},
    )
    formatted_unit_totals = fields.Nested(
        PriceTotalsSchema,
        required=True,
        metadata={"description": 'Paddle\'s display strings, e.g. "£15.00": show as they are'},
    )
    tax_rate = fields.String(required=True, allow_none=True, metadata={"example": "0.2"})
    tax_included = fields.Boolean(
        required=True,
        allow_none=True,
        metadata={
            "description": "whether `total` is the list price with tax in it (true) or tax "
            "was added to it (false); null when Paddle's answer cannot tell (a price Paddle "
            "converted automatically)"
        },
    )


class PricingLocationSchema(ma.Schema):
    country = fields.String(required=True, allow_none=True)
    postal_code = fields.String(required=True, allow_none=True)
    located_by = fields.String(
        required=True,
        validate=validate.OneOf(("country", "ip_address", "none")),
        metadata={"description": "`none`: a private address; prices without tax"},
    )


class DiscountSummarySchema(ma.Schema):
    code = fields.String(required=True, allow_none=True)
    type = fields.String(
        required=True, validate=validate.OneOf(("flat", "flat_per_seat", "percentage"))
    )
    amount = fields.String(
        required=True, metadata={"description": "a percentage, or minor units for flat types"}
    )
    currency = fields.String(required=True, allow_none=True)
    recurring = fields.Boolean(required=True)
    maximum_recurring_intervals = fields.Integer(required=True, allow_none=True)
    expires_at = fields.String(required=True, allow_none=True)


class PricingPageSchema(ma.Schema):
    location = fields.Nested(PricingLocationSchema, required=True)
    currency = fields.String(required=True, allow_none=True)
    discount = fields.Nested(DiscountSummarySchema, required=True, allow_none=True)
    items = fields.List(fields.Nested(PricedItemSchema), required=True)
    priced_at = fields.String(required=True, metadata={"description": "when Paddle priced it"})
    stale = fields.Boolean(
        required=True,
        metadata={"description": "Paddle could not be reached: the last good answer"},
    )


class PlanChoiceSchema(ma.Schema):
    """A plan by `plan` (slug) or `price_id`, and a quantity."""

    plan = fields.String(validate=SLUG, metadata={"description": "plan slug"})
    price_id = fields.String(validate=PRICE_ID)
    quantity = fields.Integer(strict=True, validate=validate.Range(min=1, max=10_000))

    @ma.validates_schema
    def one_plan(self, data, **kwargs):
        if ("plan" in data) == ("price_id" in data):
            raise ma.ValidationError("Give exactly one of plan or price_id.", "plan")


class CheckoutRequestSchema(ma.Schema):
    """A plan (by `plan` slug or `price_id`) to subscribe to, or a one-time `product`."""

    plan = fields.String(validate=SLUG, metadata={"description": "plan slug"})
    price_id = fields.String(validate=PRICE_ID)
    product = fields.String(
        validate=SLUG, metadata={"description": "one-time product slug (`GET /catalog`)"}
    )
    quantity = fields.Integer(strict=True, validate=validate.Range(min=1, max=10_000))
    discount_code = DISCOUNT_CODE

    @ma.validates_schema
    def one_thing(self, data, **kwargs):
        if sum(key in data for key in ("plan", "price_id", "product")) != 1:
            raise ma.ValidationError("Give exactly one of plan, price_id or product.", "plan")


class CheckoutSchema(ma.Schema):
    subscription_id = fields.String(
        required=True, allow_none=True, metadata={"description": "null for a one-time product"}
    )
    transaction_id = fields.String(
        required=True, metadata={"description": "open Paddle.js with it"}
    )
    checkout_url = fields.String(required=True, allow_none=True)


class ScheduledChangeSchema(ma.Schema):
    action = fields.String(
        required=True,
        validate=validate.OneOf((*SCHEDULED_ACTIONS, "change")),
        metadata={
            "description": "cancel, pause, resume (Paddle's); change: a plan or seat change "
            "at the end of the period, which the service carries out"
        },
    )
    effective_at = fields.AwareDateTime(required=True, allow_none=True)
    resume_at = fields.AwareDateTime(required=True, allow_none=True)
    plan = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "change: the plan it switches to (slug); else null"},
    )
    quantity = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "change: the seats it switches to; else null"},
    )


class SubscriptionItemSchema(ma.Schema):
    price_id = fields.String(required=True)
    quantity = fields.Integer(required=True)
    recurring = fields.Boolean(required=True)


class SubscriptionAddonSchema(ma.Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    quantity = fields.Integer(required=True)
    remove_at = fields.AwareDateTime(
        required=True,
        allow_none=True,
        metadata={"description": "its removal waits for the period's end: then; else null"},
    )


class AddonRequestSchema(ma.Schema):
    addon = fields.String(required=True, validate=SLUG, metadata={"description": "slug"})
    quantity = fields.Integer(
        load_default=1,
        strict=True,
        validate=validate.Range(min=0, max=10_000),
        metadata={"description": "its units from now (0 removes it at once)"},
    )
    proration_billing_mode = fields.String(
        load_default="prorated_immediately", validate=validate.OneOf(PRORATION_MODES)
    )


class AddonRemovalQuerySchema(ma.Schema):
    effective_from = fields.String(
        load_default="immediately",
        validate=validate.OneOf(EFFECTIVE_FROM),
        metadata={"description": "next_billing_period: it stays until the period ends"},
    )
    proration_billing_mode = fields.String(
        load_default="prorated_immediately",
        validate=validate.OneOf(PRORATION_MODES),
        metadata={"description": "how a removal made `immediately` is billed"},
    )


class CustomerSchema(ma.Schema):
    id = fields.String(required=True, allow_none=True, metadata={"description": "Paddle's ctm_ id"})
    email = fields.String(
        required=True, allow_none=True, metadata={"description": "as Paddle has it now"}
    )
    name = fields.String(required=True, allow_none=True)


class SubscriptionDiscountSchema(ma.Schema):
    id = fields.String(required=True, metadata={"description": "Paddle's discount id"})
    starts_at = fields.AwareDateTime(
        required=True, allow_none=True, metadata={"description": "first applied"}
    )
    ends_at = fields.AwareDateTime(
        required=True,
        allow_none=True,
        metadata={"description": "the end of the last discounted period; null: for good"},
    )


class SubscriptionSchema(ma.Schema):
    id = fields.String(
        required=True, allow_none=True, metadata={"description": "null on the free tier"}
    )
    status = fields.String(required=True, validate=validate.OneOf((*SUBSCRIPTION_STATUSES, "free")))
    plan = fields.String(required=True, allow_none=True, metadata={"description": "plan slug"})
    price_id = fields.String(required=True, allow_none=True)
    quantity = fields.Integer(required=True, allow_none=True)
    items = fields.List(fields.Nested(SubscriptionItemSchema), required=True)
    current_period_start = fields.AwareDateTime(required=True, allow_none=True)
    current_period_end = fields.AwareDateTime(required=True, allow_none=True)
    next_billed_at = fields.AwareDateTime(required=True, allow_none=True)
    scheduled_change = fields.Nested(ScheduledChangeSchema, required=True, allow_none=True)
    paused_at = fields.AwareDateTime(required=True, allow_none=True)
    canceled_at = fields.AwareDateTime(required=True, allow_none=True)
    trial_ends_at = fields.AwareDateTime(
        required=True,
        allow_none=True,
        metadata={"description": "when the trial ends (or ended); null: none"},
    )
    discount = fields.Nested(
        SubscriptionDiscountSchema,
        required=True,
        allow_none=True,
        metadata={"description": "the discount Paddle applies to its bills; null: none"},
    )
    addons = fields.List(
        fields.Nested(SubscriptionAddonSchema),
        required=True,
        metadata={"description": "the add-ons on it (items whose price is an add-on's)"},
    )
    access = fields.Boolean(required=True)
    customer = fields.Nested(CustomerSchema, required=True, allow_none=True)
    updated_at = fields.AwareDateTime(required=True, allow_none=True)


def _plausible_future(value) -> None:
    now = datetime.now(UTC)
    try:
        moment = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:30:00+01:00 has no UTC time
        raise ma.ValidationError("must be in the future, within five years") from None
    if not now < moment < now + timedelta(days=5 * 366):
        raise ma.ValidationError("must be in the future, within five years")


class NoBodySchema(ma.Schema):
    """An action that takes no options: an empty body or `{}`; any field is refused (422)."""


class PauseRequestSchema(ma.Schema):
    effective_from = fields.String(
        load_default="next_billing_period", validate=validate.OneOf(EFFECTIVE_FROM)
    )
    resume_at = fields.AwareDateTime(validate=_plausible_future)


class CancelRequestSchema(ma.Schema):
    effective_from = fields.String(
        load_default="next_billing_period", validate=validate.OneOf(EFFECTIVE_FROM)
    )


class PaymentMethodSchema(ma.Schema):
    transaction_id = fields.String(required=True)
    checkout_url = fields.String(required=True, allow_none=True)


class ChangeRequestSchema(PlanChoiceSchema):
    """A new plan (`plan` or `price_id`, with an optional `quantity`), or a `quantity`
    alone: a seat change on the current plan."""

    proration_billing_mode = fields.String(
        load_default="prorated_immediately",
        validate=validate.OneOf(PRORATION_MODES),
        metadata={"description": "how a change made `immediately` is billed"},
    )
    effective_from = fields.String(
        load_default="immediately",
        validate=validate.OneOf(EFFECTIVE_FROM),
        metadata={
            "description": "next_billing_period: keep the current plan and seats until the "
            "period ends; the renewal bills the new ones at their full price, with no "
            "proration (`scheduled_change` shows it until then)"
        },
    )
    discount_code = DISCOUNT_CODE

    @ma.validates_schema
    def one_plan(self, data, **kwargs):
        if "plan" in data and "price_id" in data:
            raise ma.ValidationError("Give at most one of plan or price_id.", "plan")
        if "plan" not in data and "price_id" not in data and "quantity" not in data:
            raise ma.ValidationError("Give a plan (plan or price_id), a quantity, or both.", "plan")


class DiscountRequestSchema(ma.Schema):
    code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9]{1,32}$", error="1 to 32 letters and digits"),
        metadata={"description": "a recurring Paddle discount code, not case-sensitive"},
    )
    effective_from = fields.String(
        load_default="next_billing_period",
        validate=validate.OneOf(EFFECTIVE_FROM),
        metadata={"description": "a subscription on trial takes it from its next period"},
    )


class TransactionTotalsSchema(ma.Schema):
    billing_period = fields.Dict(required=True, allow_none=True)
    currency_code = fields.String(required=True, allow_none=True)
    subtotal = fields.String(required=True, allow_none=True)
    discount = fields.String(required=True, allow_none=True)
    tax = fields.String(required=True, allow_none=True)
    total = fields.String(required=True, allow_none=True)


class ChangePreviewSchema(ma.Schema):
    immediate_transaction = fields.Nested(TransactionTotalsSchema, required=True, allow_none=True)
    next_transaction = fields.Nested(TransactionTotalsSchema, required=True, allow_none=True)
    update_summary = fields.Dict(
        required=True, allow_none=True, metadata={"description": "Paddle's credit/charge/result"}
    )
    next_billed_at = fields.String(required=True, allow_none=True)


class PortalSessionSchema(ma.Schema):
    url = fields.String(required=True)


class PurchasedGrantSchema(ma.Schema):
    product = fields.String(required=True, metadata={"description": "the product's slug"})
    features = fields.List(fields.String(), required=True)
    until = fields.AwareDateTime(
        required=True, allow_none=True, metadata={"description": "null: for good"}
    )


class EntitlementsSchema(ma.Schema):
    access = fields.Boolean(
        required=True, metadata={"description": "paid access now (false on the free plan)"}
    )
    plan = fields.String(
        required=True, allow_none=True, metadata={"description": "the plan in effect"}
    )
    status = fields.String(required=True)
    features = fields.List(fields.String(), required=True)
    limits = fields.Dict(keys=fields.String(), required=True)
    seats = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "the subscription's quantity, while paid"},
    )
    meters = fields.List(
        fields.Nested(lambda: MeterUsageSchema()),
        required=True,
        metadata={"description": "each meter of the plan in effect, this period"},
    )
    grants = fields.List(
        fields.Nested(PurchasedGrantSchema),
        required=True,
        metadata={"description": "what one-time purchases grant (in `features` too)"},
    )
    recheck_at = fields.AwareDateTime(
        required=True,
        allow_none=True,
        metadata={
            "description": "when this answer may next change by the clock alone, with no"
            " event (a scheduled cancellation or pause taking effect, a grace period ending,"
            " a purchase's grant running out): a cache of it reads the account again then;"
            " null: not by the clock"
        },
    )


class AccountEntitlementsSchema(EntitlementsSchema):
    account_id = fields.String(required=True)


def printable(value: str) -> None:
    if not value.isprintable():
        raise ma.ValidationError("must be printable")


PADDLE_CUSTOMER_ID = validate.Regexp(r"^ctm_[a-z0-9]{1,60}$", error="not a Paddle customer id")


class AccountRequestSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    email = fields.Email(allow_none=True, validate=validate.Length(max=320))
    name = fields.String(allow_none=True, validate=[validate.Length(max=320), printable])
    paddle_customer_id = fields.String(
        allow_none=True,
        validate=PADDLE_CUSTOMER_ID,
        metadata={"description": "the Paddle customer that already pays for it, if any"},
    )


class AccountSchema(ma.Schema):
    account_id = fields.String(required=True, attribute="id")
    email = fields.String(required=True, allow_none=True)
    name = fields.String(required=True, allow_none=True)
    paddle_customer_id = fields.String(required=True, allow_none=True)


def _rows(description: str):
    return fields.List(fields.Dict(), required=True, metadata={"description": description})


class AccountExportSchema(ma.Schema):
    """Everything held about an account (docs/operations.md, Data requests): each row is its
    table's columns, times in ISO 8601 UTC."""

    format = fields.String(required=True, metadata={"example": "billing-account-export"})
    version = fields.Integer(required=True, metadata={"example": 1})
    exported_at = fields.AwareDateTime(required=True)
    account_id = fields.String(required=True)
    account = fields.Dict(required=True, allow_none=True)
    subscriptions = _rows("the account's subscriptions")
    subscription_items = _rows("their Paddle items")
    subscription_changes = _rows("changes asked for at a period's end")
    transactions = _rows("its transactions (amounts in minor units)")
    adjustments = _rows("refunds, credits and chargebacks of those transactions")
    purchases = _rows("one-time purchases and what they grant")
    usage_counters = _rows("usage per meter and billing period")
    usage_charges = _rows("overage charges")
    usage_subjects = _rows("the subjects unique_count meters saw")
    usage_events = _rows("every usage report kept")
    webhook_events = _rows("Paddle's webhooks about the account, payloads as JSON")
    events = _rows("the outbound events told about the account, bodies as JSON")
    event_account = fields.Dict(required=True, allow_none=True)
    audit = _rows("console actions about the account")


class ErasureRequestSchema(ma.Schema):
    dry_run = fields.Boolean(load_default=False, metadata={"description": "count, change nothing"})
    requested_by = fields.String(
        load_default="service",
        validate=[validate.Length(min=1, max=128), printable],
        metadata={"description": "who asked for it (audited)"},
    )


class ErasureSchema(ma.Schema):
    account_id = fields.String(required=True)
    dry_run = fields.Boolean(required=True)
    changed = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "rows changed (or that would change), by kind"},
    )
    total = fields.Integer(required=True)


class EntitlementsBatchRequestSchema(ma.Schema):
    account_ids = fields.List(
        fields.String(validate=[validate.Length(min=1, max=128), printable]),
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "at most 500 account ids"},
    )


class EntitlementsBatchSchema(ma.Schema):
    entitlements = fields.List(fields.Nested(AccountEntitlementsSchema), required=True)


class UsageReportSchema(ma.Schema):
    meter = fields.String(required=True, validate=METER_NAME)
    quantity = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=1_000_000_000)
    )
    idempotency_key = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=128), printable],
        metadata={"description": "the same key again gets the first answer, counted once"},
    )
    occurred_at = fields.AwareDateTime(
        metadata={"description": "when the usage happened (default now): picks the period"}
    )
    subject = fields.String(
        validate=[validate.Length(min=1, max=200), printable],
        metadata={
            "description": "who or what used it (a user id): a unique_count meter counts "
            "distinct subjects"
        },
    )


class BatchedUsageReportSchema(UsageReportSchema):
    account_id = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=128), printable],
        metadata={"description": "whose usage"},
    )


class UsageBatchRequestSchema(ma.Schema):
    reports = fields.List(
        fields.Nested(BatchedUsageReportSchema),
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "1 to 1,000 reports, for any accounts and meters"},
    )


class MeterUsageSchema(ma.Schema):
    meter = fields.String(required=True)
    period_start = fields.AwareDateTime(required=True)
    period_end = fields.AwareDateTime(required=True)
    used = fields.Integer(required=True)
    included = fields.Integer(
        required=True, metadata={"description": "the plan's allowance plus `credits`"}
    )
    credits = fields.Integer(
        required=True,
        metadata={"description": "units bought for this period (one-time products' credits)"},
    )
    hard_limit = fields.Integer(
        required=True, allow_none=True, metadata={"description": "with `credits` added"}
    )
    remaining = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null: no hard limit"}
    )
    overage = fields.Integer(required=True, metadata={"description": "used beyond included"})


class UsageSchema(ma.Schema):
    meters = fields.List(fields.Nested(MeterUsageSchema), required=True)


class UsageBatchResultSchema(ma.Schema):
    status = fields.Integer(
        required=True,
        metadata={
            "description": "what a single report would have been answered: 200, 402, 409, 422"
        },
    )
    duplicate = fields.Boolean(
        required=True, metadata={"description": "its key was recorded before: the first answer"}
    )
    usage = fields.Nested(MeterUsageSchema, required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True, metadata={"description": "its code"})
    message = fields.String(required=True, allow_none=True)
    errors = fields.Dict(required=True, allow_none=True)


class UsageBatchCountsSchema(ma.Schema):
    recorded = fields.Integer(required=True)
    duplicate = fields.Integer(required=True)
    refused = fields.Integer(required=True, metadata={"description": "402 quota_exceeded"})
    conflict = fields.Integer(
        required=True, metadata={"description": "409 idempotency_key_conflict, period_closed"}
    )
    invalid = fields.Integer(required=True, metadata={"description": "422"})


class UsageBatchSchema(ma.Schema):
    results = fields.List(
        fields.Nested(UsageBatchResultSchema),
        required=True,
        metadata={"description": "one per report, in the order sent"},
    )
    counts = fields.Nested(UsageBatchCountsSchema, required=True)


def money(description: str = 'integer minor units of `currency`, as a string: "1900"'):
    # Kept as integers; a String field writes them as Paddle does, digits in a string.
    return fields.String(required=True, allow_none=True, metadata={"description": description})


class AdjustmentSchema(ma.Schema):
    id = fields.String(required=True, attribute="paddle_adjustment_id")
    action = fields.String(
        required=True, metadata={"description": "refund, credit, chargeback, ..."}
    )
    type = fields.String(required=True, allow_none=True, metadata={"description": "full, partial"})
    status = fields.String(
        required=True, metadata={"description": "pending_approval, approved, rejected, reversed"}
    )
    reason = fields.String(required=True, allow_none=True)
    currency = fields.String(required=True, allow_none=True)
    subtotal = money()
    tax = money()
    total = money()
    created_at = fields.AwareDateTime(required=True, allow_none=True, attribute="paddle_created_at")


class TransactionItemSchema(ma.Schema):
    price_id = fields.String(required=True, allow_none=True)
    product_id = fields.String(required=True, allow_none=True)
    quantity = fields.Integer(required=True)
    recurring = fields.Boolean(required=True)


class TransactionSchema(ma.Schema):
    id = fields.String(required=True, attribute="paddle_transaction_id")
    status = fields.String(required=True)
    origin = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "web, api, subscription_recurring, subscription_charge, ..."},
    )
    subscription_id = fields.String(
        required=True, allow_none=True, attribute="paddle_subscription_id"
    )
    invoice_number = fields.String(required=True, allow_none=True)
    currency = fields.String(required=True, allow_none=True)
    subtotal = money()
    discount = money()
    discount_id = fields.String(
        required=True,
        allow_none=True,
        attribute="paddle_discount_id",
        metadata={"description": "the Paddle discount it carried (dsc_...); null: none"},
    )
    tax = money()
    total = money()
    billing_period_start = fields.AwareDateTime(required=True, allow_none=True)
    billing_period_end = fields.AwareDateTime(required=True, allow_none=True)
    items = fields.List(fields.Nested(TransactionItemSchema), required=True)
    created_at = fields.AwareDateTime(required=True, allow_none=True, attribute="paddle_created_at")
    billed_at = fields.AwareDateTime(required=True, allow_none=True)
    completed_at = fields.AwareDateTime(required=True, allow_none=True)
    invoice_available = fields.Boolean(
        required=True, metadata={"description": "`GET .../invoice` has a PDF for it"}
    )
    adjustments = fields.List(fields.Nested(AdjustmentSchema), required=True)


class TransactionPageSchema(ma.Schema):
    data = fields.List(fields.Nested(TransactionSchema), required=True)
    next_cursor = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "pass as `cursor` for the next page; null: the last page"},
    )


class TransactionQuerySchema(ma.Schema):
    status = fields.List(
        fields.String(validate=validate.OneOf(TRANSACTION_STATUSES)),
        metadata={"description": "repeat to give several; default: all but draft and ready"},
    )
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(validate=validate.Length(max=200))


class InvoiceQuerySchema(ma.Schema):
    disposition = fields.String(
        load_default="attachment",
        validate=validate.OneOf(("attachment", "inline")),
        metadata={"description": "attachment: a download; inline: shown in the browser"},
    )


class InvoiceSchema(ma.Schema):
    url = fields.String(required=True, metadata={"description": "Paddle's link to the PDF"})
    expires_at = fields.AwareDateTime(
        required=True, metadata={"description": "the link stops working then: ask again"}
    )
