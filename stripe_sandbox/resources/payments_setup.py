"""SetupIntents and SetupAttempts (docs.stripe.com/api/setup_intents): save a card
for later payments without charging it.

Confirming verifies the card the way attaching does (decline cards fail, except
the charge-time-only `4000000000000341`); success attaches the card to the
SetupIntent's customer (`payment_method.attached`) and emits `setup_intent.succeeded`;
a decline is kept (`setup_intent.setup_failed`) and answered 402 with the SetupIntent
in the error body. Each confirmation is a SetupAttempt (`latest_attempt`).
"""

from __future__ import annotations

import stripe

from ..core import apply_update, copy_json, metadata_from, random_token, route
from ..errors import StripeError
from ..schema import shape
from .payments import CONFIRMABLE, check_owner, check_types, payment_method_param, require_status
from .payments_cards import attach, behaviour_of, decline_error, decline_of, error_details
from .payments_common import answering_declines

# "A SetupIntent can be canceled when it is in one of these statuses:
# requires_payment_method, requires_confirmation, or requires_action" (API reference).
CANCELABLE = CONFIRMABLE


def unexpected_state(message: str) -> StripeError:
    return StripeError(400, message, code="setup_intent_unexpected_state")


def new_setup_intent(ctx, *, customer: str | None, metadata: dict, payment_method_types: list | None = None,
                     **fields) -> dict:
    """Store a SetupIntent (requires_payment_method) and emit setup_intent.created."""
    sid = ctx.new_id("seti")
    si = shape(
        "setup_intent",
        id=sid,
        automatic_payment_methods=None if payment_method_types else {"allow_redirects": "always",
                                                                     "enabled": True},
        client_secret=f"{sid}_secret_{random_token(32)}",
        created=ctx.now(),
        customer=customer,
        livemode=False,
        metadata=metadata,
        payment_method_options={"card": {"mandate_options": None, "network": None,
                                         "request_three_d_secure": "automatic"}},
        payment_method_types=payment_method_types or ["card"],
        status="requires_payment_method",
        usage=fields.pop("usage", None) or "off_session",
        **fields,
    )
    ctx.insert(si)
    ctx.emit("setup_intent.created", si)
    return si


def confirm_setup(ctx, si: dict, pm: dict) -> dict:
    """Verify and save `pm` for `si`; the card error after recording a decline."""
    check_owner(pm, si["customer"])
    decline = decline_of(behaviour_of(ctx, pm), charging=False)
    error = decline_error(decline) if decline else None
    details = error_details(error, decline, pm) if error else None
    card = pm["card"]
    attempt = shape(
        "setup_attempt",
        id=ctx.new_id("setatt"),
        created=ctx.now(),
        customer=si["customer"],
        flow_directions=si["flow_directions"],
        livemode=False,
        on_behalf_of=si["on_behalf_of"],
        payment_method=pm["id"],
        payment_method_details={"card": {k: card[k] for k in ("brand", "checks", "country", "exp_month",
                                                               "exp_year", "fingerprint", "funding",
                                                               "last4")}
                                | {"network": card["brand"]}, "type": "card"},
        setup_error=details,
        setup_intent=si["id"],
        status="failed" if error else "succeeded",
        usage=si["usage"],
    )
    ctx.insert(attempt)
    si["latest_attempt"] = attempt["id"]
    if error:
        si.update(status="requires_payment_method", payment_method=None, last_setup_error=details)
        si.update(shape("setup_intent", **si))  # fills the error's other fields
        ctx.save(si)
        ctx.emit("setup_intent.setup_failed", si)
        error.extra.update(setup_intent=copy_json(si), payment_method=copy_json(pm))
        raise error
    if si["customer"]:
        attach(ctx, pm, si["customer"])
    si.update(status="succeeded", payment_method=pm["id"], last_setup_error=None)
    ctx.save(si)
    ctx.emit("setup_intent.succeeded", si)
    return si


_FIELDS = ("description", "flow_directions", "on_behalf_of")


@route("POST", "/v1/setup_intents", params=stripe.params.SetupIntentCreateParams)
@answering_declines
def create(ctx, params):
    check_types(params)
    customer = params.get("customer")
    if customer is not None:
        ctx.get("customer", customer, param="customer")
    pm = payment_method_param(ctx, params, customer)
    si = new_setup_intent(ctx, customer=customer, metadata=metadata_from(params),
                          payment_method_types=params.get("payment_method_types"), usage=params.get("usage"),
                          **{k: params[k] for k in _FIELDS if k in params})
    if pm is not None:
        si.update(payment_method=pm["id"], status="requires_confirmation")
        ctx.save(si)
    if params.get("confirm"):
        return _confirm_now(ctx, si, pm)
    return si


def _confirm_now(ctx, si: dict, pm: dict | None) -> dict:
    if pm is None:
        if not si["payment_method"]:
            raise unexpected_state(
                "You cannot confirm this SetupIntent because it's missing a payment method. Update the "
                "SetupIntent with a payment method and then confirm it again."
            )
        pm = ctx.get("payment_method", si["payment_method"], param="payment_method")
    return confirm_setup(ctx, si, pm)


@route("GET", "/v1/setup_intents/{intent}", params=stripe.params.SetupIntentRetrieveParams)
def retrieve(ctx, params, intent):
    return ctx.get("setup_intent", intent)


@route("POST", "/v1/setup_intents/{intent}", params=stripe.params.SetupIntentUpdateParams)
def update(ctx, params, intent):
    si = ctx.get("setup_intent", intent)
    if si["status"] not in CONFIRMABLE and any(k not in ("metadata", "description", "expand") for k in params):
        raise unexpected_state(
            f"You cannot update this SetupIntent because it has a status of {si['status']}."
        )
    check_types(params)
    customer = params.get("customer", si["customer"])
    if params.get("customer"):
        ctx.get("customer", customer, param="customer")
    pm = payment_method_param(ctx, params, customer)
    apply_update(si, params, ("customer", "metadata", "payment_method_types") + _FIELDS)
    if pm is not None:
        si.update(payment_method=pm["id"], status="requires_confirmation")
    ctx.save(si)
    return si


@route("POST", "/v1/setup_intents/{intent}/confirm", params=stripe.params.SetupIntentConfirmParams)
@answering_declines
def confirm_route(ctx, params, intent):
    si = ctx.get("setup_intent", intent)
    require_status(si, CONFIRMABLE, "confirm", "confirmed")
    return _confirm_now(ctx, si, payment_method_param(ctx, params, si["customer"]))


@route("POST", "/v1/setup_intents/{intent}/cancel", params=stripe.params.SetupIntentCancelParams)
def cancel(ctx, params, intent):
    si = ctx.get("setup_intent", intent)
    require_status(si, CANCELABLE, "cancel", "canceled")
    si.update(status="canceled", cancellation_reason=params.get("cancellation_reason"))
    ctx.save(si)
    ctx.emit("setup_intent.canceled", si)
    return si


@route("GET", "/v1/setup_intents", params=stripe.params.SetupIntentListParams)
def list_(ctx, params):
    checks = [(k, params[k]) for k in ("customer", "payment_method") if k in params]
    return ctx.list("setup_intent", params, url="/v1/setup_intents",
                    where=lambda s: all(s.get(k) == v for k, v in checks))


@route("GET", "/v1/setup_attempts", params=stripe.params.SetupAttemptListParams)
def list_attempts(ctx, params):
    ctx.get("setup_intent", params["setup_intent"], param="setup_intent")
    return ctx.list("setup_attempt", params, url="/v1/setup_attempts",
                    where=lambda a: a["setup_intent"] == params["setup_intent"])
