"""`POST /api/v1/checkout`: start paying for a plan."""

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import USER, USER_ACTION, authenticate_first, error_codes, operation
from billing_app.api.schemas import CheckoutRequestSchema, CheckoutSchema
from billing_app.auth import current_user
from billing_app.errors import DiscountInvalid, PlanNotFound, ProductNotFound
from billing_app.extensions import db
from billing_app.paddle import discount_codes, paddle
from billing_app.services.selling.discount_codes import GivenCode
from billing_app.services.subscriptions import checkout as checkout_service

blp = Blueprint("checkout", __name__, url_prefix="/api/v1/checkout", description="Checkout")
authenticate_first(blp)


@blp.route("")
class Checkout(MethodView):
    @blp.doc(security=USER)
    @blp.arguments(CheckoutRequestSchema)
    @blp.response(201, CheckoutSchema)
    @operation(
        blp,
        "createCheckout",
        *USER_ACTION,
        404,
        409,
        codes={
            **error_codes(PlanNotFound, ProductNotFound),
            422: ("validation_error", DiscountInvalid.code),
        },
    )
    def post(self, body):
        """Create (or reuse) a pending subscription and the Paddle transaction that pays it;
        or, with `product`, a transaction for a one-time product.

        Open Paddle.js with `transaction_id`; the subscription turns `active` when Paddle's
        webhook arrives. A second call while the checkout is pending reuses it. A product
        may be bought again and again (`subscription_id` is null): its purchase shows in
        entitlements' `grants` once Paddle reports the transaction completed.

        With `discount_code`, the code is looked up at Paddle and the transaction carries
        its discount; a code that is unknown, expired, used up, withdrawn, not for checkout
        or not for this plan is a 422 `discount_invalid`, and nothing is made at Paddle.
        """
        caller = current_user()
        code = body.get("discount_code")
        options = {
            "quantity": body.get("quantity", 1),
            "checkout_url": current_app.config["CHECKOUT_URL"],
            "discount": GivenCode(code, discount_codes()) if code else None,
        }
        if "product" in body:
            product = checkout_service.find_product(db.session, body["product"])
            started = checkout_service.start_purchase(
                db.session, paddle(), caller, product, **options
            )
        else:
            plan = checkout_service.find_plan(
                db.session, slug=body.get("plan"), price_id=body.get("price_id")
            )
            started = checkout_service.start_checkout(db.session, paddle(), caller, plan, **options)
        db.session.commit()
        return started
