"""`/api/v1/subscription`: read and manage the caller's own subscription."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import (
    ERROR_CODES,
    ONLY_NO_SUBSCRIPTION,
    USER,
    USER_ACTION,
    USER_READ,
    authenticate_first,
    error_codes,
    operation,
)
from billing_app.api.schemas import (
    AddonRemovalQuerySchema,
    AddonRequestSchema,
    CancelRequestSchema,
    ChangePreviewSchema,
    ChangeRequestSchema,
    DiscountRequestSchema,
    NoBodySchema,
    PauseRequestSchema,
    PaymentMethodSchema,
    SubscriptionSchema,
)
from billing_app.auth import current_user
from billing_app.db import utcnow
from billing_app.errors import (
    AddonNotAllowed,
    AddonNotFound,
    DiscountInvalid,
    NoSubscription,
)
from billing_app.extensions import db
from billing_app.models import Account, Subscription
from billing_app.paddle import discount_codes, paddle
from billing_app.services.entitlements.access import has_access, holds_what_was_paid_for
from billing_app.services.entitlements.reads import access_policy
from billing_app.services.plans.catalogue import addons_by_price, find_addon, free_plan
from billing_app.services.selling.discount_codes import GivenCode
from billing_app.services.subscriptions import actions as subscription_service
from billing_app.services.subscriptions import scheduled_changes
from billing_app.services.subscriptions.checkout import find_plan

blp = Blueprint(
    "subscription",
    __name__,
    url_prefix="/api/v1/subscription",
    description="The caller's subscription: read it, pause, cancel, resume, change, pay",
)
authenticate_first(blp)

DISCOUNT_ERRORS = {422: ("validation_error", DiscountInvalid.code)}
CHANGE_ERRORS = {**DISCOUNT_ERRORS, 409: (*ERROR_CODES[409], AddonNotAllowed.code)}

# Every field is always sent, null where empty: generated clients type them as present.
FREE = {
    "id": None,
    "status": "free",
    "plan": None,
    "price_id": None,
    "quantity": None,
    "items": [],
    "current_period_start": None,
    "current_period_end": None,
    "next_billed_at": None,
    "scheduled_change": None,
    "paused_at": None,
    "canceled_at": None,
    "trial_ends_at": None,
    "discount": None,
    "addons": [],
    "access": False,
    "customer": None,
    "updated_at": None,
}


def customer_of(account: Account | None) -> dict | None:
    if account is None or not (account.paddle_customer_id or account.email):
        return None
    return {"id": account.paddle_customer_id, "email": account.email, "name": account.name}


def scheduled_change_of(subscription: Subscription, waiting: list, holding: bool) -> dict | None:
    """Paddle's scheduled pause, cancel or resume; else our change at period end, waiting
    or (sent just before the renewal) held until the new period."""
    if subscription.scheduled_action:
        return {
            "action": subscription.scheduled_action,
            "effective_at": subscription.scheduled_effective_at,
            "resume_at": subscription.scheduled_resume_at,
            "plan": None,
            "quantity": None,
        }
    change = next((change for change in waiting if change.kind == "plan"), None)
    if change is not None:
        plan, quantity, effective_at = change.plan, change.quantity, change.effective_at
    elif holding:
        plan, quantity = subscription.plan, subscription.quantity
        effective_at = subscription.held_until
    else:
        return None
    return {
        "action": "change",
        "effective_at": effective_at,
        "resume_at": None,
        "plan": plan.slug if plan else None,
        "quantity": quantity,
    }


def present(subscription: Subscription | None) -> dict:
    if subscription is None:
        return FREE
    holding = holds_what_was_paid_for(
        subscription.held_until, subscription.current_period_start, utcnow()
    )
    plan = subscription.held_plan if holding else subscription.plan
    waiting = scheduled_changes.open_changes(db.session, subscription.id)
    return {
        "id": str(subscription.id),
        "status": subscription.status,
        "plan": plan.slug if plan else None,
        "price_id": subscription.price_id,
        "quantity": subscription.held_quantity if holding else subscription.quantity,
        "items": subscription.items,
        "current_period_start": subscription.current_period_start,
        "current_period_end": subscription.current_period_end,
        "next_billed_at": subscription.next_billed_at,
        "scheduled_change": scheduled_change_of(subscription, waiting, holding),
        "paused_at": subscription.paused_at,
        "canceled_at": subscription.canceled_at,
        "trial_ends_at": subscription.trial_ends_at,
        "discount": discount_of(subscription),
        "addons": addons_of(subscription, waiting),
        "access": has_access(subscription, utcnow(), access_policy()),
        "customer": customer_of(subscription.account),
        "updated_at": subscription.updated_at,
    }


def addons_of(subscription: Subscription, waiting: list) -> list[dict]:
    quantities = {item.price_id: item.quantity for item in subscription.items}
    addons = addons_by_price(db.session, quantities)
    removals = {
        change.price_id: change.effective_at for change in waiting if change.kind == "remove_addon"
    }
    return [
        {
            "slug": addon.slug,
            "name": addon.name,
            "quantity": quantities[price_id],
            "remove_at": removals.get(price_id),
        }
        for price_id, addon in addons.items()
    ]


def discount_of(subscription: Subscription) -> dict | None:
    if not subscription.discount_id:
        return None
    return {
        "id": subscription.discount_id,
        "starts_at": subscription.discount_starts_at,
        "ends_at": subscription.discount_ends_at,
    }


def _commit_and_present(subscription: Subscription) -> dict:
    db.session.commit()
    return present(subscription)


@blp.route("")
class CurrentSubscription(MethodView):
    @blp.doc(security=USER)
    @blp.response(200, SubscriptionSchema)
    @operation(blp, "getSubscription", *USER_READ)
    def get(self):
        """The caller's subscription from our table (never a live Paddle call); if none,
        status `free`, with `plan` the free plan when the catalogue has one."""
        caller = current_user()
        subscription = subscription_service.current_subscription(db.session, caller.account_id)
        if subscription is None:
            free = free_plan(db.session)
            customer = customer_of(db.session.get(Account, caller.account_id))
            return {**FREE, "plan": free.slug if free else None, "customer": customer}
        return present(subscription)


@blp.route("/pause")
class Pause(MethodView):
    @blp.doc(security=USER)
    @blp.arguments(PauseRequestSchema)
    @blp.response(200, SubscriptionSchema)
    @operation(blp, "pauseSubscription", *USER_ACTION, 404, 409, codes=ONLY_NO_SUBSCRIPTION)
    def post(self, body):
        """Pause now or at the end of the period; Paddle's answer is stored at once."""
        caller = current_user()
        subscription = subscription_service.pause(
            db.session,
            paddle(),
            caller.account_id,
            effective_from=body["effective_from"],
            resume_at=body.get("resume_at"),
        )
        return _commit_and_present(subscription)


@blp.route("/cancel")
class Cancel(MethodView):
    @blp.doc(security=USER)
    @blp.arguments(CancelRequestSchema)
    @blp.response(200, SubscriptionSchema)
    @operation(blp, "cancelSubscription", *USER_ACTION, 404, 409, codes=ONLY_NO_SUBSCRIPTION)
    def post(self, body):
        """Cancel now or at the end of the period; Paddle's answer is stored at once."""
        caller = current_user()
        subscription = subscription_service.cancel(
            db.session, paddle(), caller.account_id, effective_from=body["effective_from"]
        )
        return _commit_and_present(subscription)


@blp.route("/resume")
class Resume(MethodView):
    @blp.doc(security=USER)
    @blp.response(200, SubscriptionSchema)
    @blp.arguments(NoBodySchema, required=False)
    @operation(blp, "resumeSubscription", *USER_ACTION, 404, 409, codes=ONLY_NO_SUBSCRIPTION)
    def post(self, body):
        """Resume a paused subscription, or remove a scheduled pause or cancellation."""
        caller = current_user()
        return _commit_and_present(
            subscription_service.resume(db.session, paddle(), caller.account_id)
        )


@blp.route("/activate")
class Activate(MethodView):
    @blp.doc(security=USER)
    @blp.response(200, SubscriptionSchema)
    @blp.arguments(NoBodySchema, required=False)
    @operation(blp, "activateSubscription", *USER_ACTION, 404, 409, codes=ONLY_NO_SUBSCRIPTION)
    def post(self, body):
        """End the trial now: Paddle bills at once (the card on file) and the subscription
        turns active; Paddle's answer is stored at once. 409 unless it is trialing."""
        caller = current_user()
        return _commit_and_present(
            subscription_service.activate(db.session, paddle(), caller.account_id)
        )


@blp.route("/payment-method")
class PaymentMethod(MethodView):
    @blp.doc(security=USER)
    @blp.response(200, PaymentMethodSchema)
    @blp.arguments(NoBodySchema, required=False)
    @operation(blp, "createPaymentMethodUpdate", *USER_ACTION, 404, 409, codes=ONLY_NO_SUBSCRIPTION)
    def post(self, body):
        """A Paddle transaction to open in Paddle.js so the customer can enter a new card."""
        caller = current_user()
        return subscription_service.payment_method_update(db.session, paddle(), caller.account_id)


def _plan_change(body) -> subscription_service.PlanChange:
    plan = None  # a quantity alone changes the seats of the current plan
    if body.get("plan") or body.get("price_id"):
        plan = find_plan(db.session, slug=body.get("plan"), price_id=body.get("price_id"))
    return subscription_service.PlanChange(
        plan=plan,
        quantity=body.get("quantity"),
        proration_billing_mode=body["proration_billing_mode"],
        effective_from=body["effective_from"],
        discount=_given(body.get("discount_code")),
    )


def _given(code: str | None) -> GivenCode | None:
    return GivenCode(code, discount_codes()) if code else None


@blp.route("/discount")
class Discount(MethodView):
    @blp.doc(security=USER)
    @blp.arguments(DiscountRequestSchema)
    @blp.response(200, SubscriptionSchema)
    @operation(blp, "applySubscriptionDiscount", *USER_ACTION, 404, 409, codes=DISCOUNT_ERRORS)
    def post(self, body):
        """Apply a recurring discount code to the subscription, now or from its next
        billing period (a trial: from its next period only). 422 `discount_invalid` for a
        code that is unknown, expired, used up, withdrawn, one-off or not for this plan."""
        caller = current_user()
        subscription = subscription_service.apply_discount(
            db.session, paddle(), caller.account_id, _given(body["code"]), body["effective_from"]
        )
        return _commit_and_present(subscription)


def _addon_change(slug: str, quantity: int, **options) -> subscription_service.AddonChange:
    return subscription_service.AddonChange(find_addon(db.session, slug), quantity, **options)


ADDON_ERRORS = {**error_codes(NoSubscription, AddonNotFound), 409: CHANGE_ERRORS[409]}


@blp.route("/addons")
class Addons(MethodView):
    @blp.doc(security=USER)
    @blp.arguments(AddonRequestSchema)
    @blp.response(200, SubscriptionSchema)
    @operation(blp, "setSubscriptionAddon", *USER_ACTION, 404, 409, codes=ADDON_ERRORS)
    def post(self, body):
        """Add an add-on to the subscription (or set its units; 0 removes it), billed by
        `proration_billing_mode`: Paddle's subscription is sent its complete item list.
        404 `addon_not_found`; 409 `addon_not_allowed` when it may not join the plan;
        422 for units of an add-on not sold in a quantity."""
        change = _addon_change(body.pop("addon"), **body)
        caller = current_user()
        return _commit_and_present(
            subscription_service.change_addon(db.session, paddle(), caller.account_id, change)
        )


@blp.route("/addons/preview")
class AddonPreview(MethodView):
    @blp.doc(security=USER)
    @blp.arguments(AddonRequestSchema)
    @blp.response(200, ChangePreviewSchema)
    @operation(blp, "previewSubscriptionAddon", *USER_ACTION, 404, 409, codes=ADDON_ERRORS)
    def post(self, body):
        """What adding the add-on (or setting its units; 0: removing it at once) would
        bill now and next time. Changes nothing."""
        change = _addon_change(body.pop("addon"), **body)
        caller = current_user()
        return subscription_service.preview_addon_change(
            db.session, paddle(), caller.account_id, change
        )


@blp.route("/addons/<string:slug>")
class Addon(MethodView):
    @blp.doc(security=USER)
    @blp.arguments(AddonRemovalQuerySchema, location="query", unknown="raise")
    @blp.response(200, SubscriptionSchema)
    @operation(blp, "removeSubscriptionAddon", *USER_ACTION, 404, 409, codes=ADDON_ERRORS)
    def delete(self, query, slug):
        """Remove an add-on: at once (billed by `proration_billing_mode`), or with
        `effective_from=next_billing_period` at the end of the period (`addons[].remove_at`
        shows when; it is sent to Paddle just before the renewal, which then bills without
        it)."""
        change = _addon_change(slug, 0, **query)
        caller = current_user()
        return _commit_and_present(
            subscription_service.change_addon(db.session, paddle(), caller.account_id, change)
        )


@blp.route("/change")
class Change(MethodView):
    @blp.doc(security=USER)
    @blp.arguments(ChangeRequestSchema)
    @blp.response(200, SubscriptionSchema)
    @operation(blp, "changeSubscription", *USER_ACTION, 404, 409, codes=CHANGE_ERRORS)
    def post(self, body):
        """Change plan or quantity: at once, billed by `proration_billing_mode`; or with
        `effective_from: next_billing_period`, at the end of the period (a downgrade keeps
        what was paid for until then; the renewal bills the new plan in full, with no
        proration). A waiting change shows in `scheduled_change` (`action: change`);
        another change replaces it, `/resume` withdraws it, a cancellation or pause ends
        it."""
        caller = current_user()
        change = _plan_change(body)
        return _commit_and_present(
            subscription_service.change_plan(db.session, paddle(), caller.account_id, change)
        )


@blp.route("/change/preview")
class ChangePreview(MethodView):
    @blp.doc(security=USER)
    @blp.arguments(ChangeRequestSchema)
    @blp.response(200, ChangePreviewSchema)
    @operation(blp, "previewSubscriptionChange", *USER_ACTION, 404, 409, codes=CHANGE_ERRORS)
    def post(self, body):
        """What a change would charge now and next time. Changes nothing."""
        caller = current_user()
        change = _plan_change(body)
        return subscription_service.preview_plan_change(
            db.session, paddle(), caller.account_id, change
        )
