"""PaymentIntents (docs.stripe.com/api/payment_intents) and `collect_payment`, the
door through which invoices are paid.

Status machine (card payments, automatic capture):
requires_payment_method -> requires_confirmation (payment method set) -> succeeded;
a declined confirmation goes back to requires_payment_method with
`last_payment_error` and no payment method; canceled from any unfinished status.
A confirmation that charges emits charge.succeeded and payment_intent.succeeded, or
charge.failed and payment_intent.payment_failed with a 402 card error whose body
carries `payment_intent` (the object), `charge` and `payment_method`, as Stripe's does.

Bank debits (`us_bank_account`, `sepa_debit`) go `processing` instead and settle a
day later (payments_bank.py); 3-D Secure cards go `requires_action` on-session
(payments_3ds.py). Not modelled: manual capture.

Interface with the billing modules
----------------------------------
`collect_payment(ctx, *, customer, amount, currency, payment_method, invoice_id,
description, metadata) -> (payment_intent, charge)` charges a customer's card. On a
decline it records the failed PaymentIntent and Charge (with their events) and
raises the card error; the failed PaymentIntent is `exc.extra["payment_intent"]` and
its `last_payment_error` is the error to record. The framework rolls back a request
that raises, so the caller keeps the attempt by answering the error instead of
re-raising it (`core.error_response`; billing's `pay` does so).
"""

from __future__ import annotations

import stripe

from ..core import apply_update, copy_json, metadata_from, random_token, route
from ..errors import StripeError, invalid_request, parameter_missing
from ..schema import shape
from .billing_collect import NO_PAYMENT_METHOD
from .payments_cards import (
    attach, behaviour_of, decline_error, decline_of, error_details, resolve_payment_method,
)
from .payments_charges import record_charge
from .payments_3ds import is_authenticated, require_action
from .payments_bank import BANK_TYPES, confirm_bank
from .payments_disputes import open_dispute_if_test_card
from .payments_common import MINIMUM_CHARGE, answering_declines, format_amount, internal

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action",
              "processing")
MAXIMUM_AMOUNT = 99_999_999  # "Amount must be no more than $999,999.99" (8 digits)

# Fields a PaymentIntent takes as given (create, update, Checkout's payment_intent_data).
INTENT_FIELDS = ("description", "receipt_email", "setup_future_usage", "shipping", "statement_descriptor",
           "statement_descriptor_suffix", "transfer_group", "application_fee_amount", "on_behalf_of",
           "transfer_data")
# What may still change once a PaymentIntent has succeeded or been canceled.
_ALWAYS_UPDATABLE = ("description", "metadata", "receipt_email", "shipping", "expand")

def unexpected_state(message: str) -> StripeError:
    return StripeError(400, message, code="payment_intent_unexpected_state")


def require_status(intent: dict, allowed: tuple, action: str, done: str) -> None:
    """Stripe's 400 for an action (`confirm`/`confirmed`, `cancel`/`canceled`) that the
    PaymentIntent's or SetupIntent's status does not allow."""
    if intent["status"] in allowed:
        return
    kind = "PaymentIntent" if intent["object"] == "payment_intent" else "SetupIntent"
    raise StripeError(
        400,
        f"You cannot {action} this {kind} because it has a status of {intent['status']}. Only a {kind} "
        f"with one of the following statuses may be {done}: {', '.join(allowed)}.",
        code=f"{intent['object']}_unexpected_state",
    )


def check_amount(amount: int, currency: str, param: str = "amount") -> None:
    minimum = MINIMUM_CHARGE.get(currency)
    if minimum is not None and amount < minimum:
        raise invalid_request(f"Amount must be at least {format_amount(minimum, currency)} {currency}",
                              param=param, code="amount_too_small")
    if amount > MAXIMUM_AMOUNT:
        raise invalid_request(f"Amount must be no more than {format_amount(MAXIMUM_AMOUNT, currency)} {currency}",
                              param=param, code="amount_too_large")


def new_payment_intent(ctx, *, amount: int, currency: str, customer: str | None, metadata: dict,
                       payment_method_types: list | None = None, **fields) -> dict:
    """Store a PaymentIntent (requires_payment_method) and emit payment_intent.created."""
    pid = ctx.new_id("pi")
    automatic = None if payment_method_types else {"allow_redirects": "always", "enabled": True}
    pi = shape(
        "payment_intent",
        id=pid,
        amount=amount,
        amount_capturable=0,
        amount_details={"tip": {}, "line_items": {
            "object": "list", "data": [], "has_more": False,
            "url": f"/v1/payment_intents/{pid}/amount_details_line_items"}},
        amount_received=0,
        automatic_payment_methods=automatic,
        # The default of API versions since 2024-04-10.
        capture_method="automatic_async",
        client_secret=f"{pid}_secret_{random_token(25)}",
        confirmation_method="automatic",
        created=ctx.now(),
        currency=currency,
        customer=customer,
        livemode=False,
        metadata=metadata,
        payment_method_options={"card": {"installments": None, "mandate_options": None, "network": None,
                                         "request_three_d_secure": "automatic"}},
        payment_method_types=payment_method_types or ["card"],
        status="requires_payment_method",
        **fields,
    )
    ctx.insert(pi)
    ctx.emit("payment_intent.created", pi)
    return pi


def check_owner(pm: dict, customer: str | None) -> None:
    """A saved card is used only with its own customer."""
    if pm["customer"] is None or pm["customer"] == customer:
        return
    if customer is None:
        raise invalid_request(
            f"The provided PaymentMethod {pm['id']} is attached to a Customer. Please include the Customer "
            "in the `customer` parameter on the PaymentIntent.",
            param="payment_method",
        )
    raise invalid_request(f"The PaymentMethod {pm['id']} does not belong to the Customer {customer}.",
                          param="payment_method")


def confirm(ctx, pi: dict, pm: dict, *, off_session: bool = False,
            return_url: str | None = None) -> tuple[dict, dict | None]:
    """Charge `pm` for `pi`: (payment_intent, charge), or the card error after the
    failed attempt is recorded (see the module docstring). A 3-D Secure card not yet
    authenticated answers (payment_intent requires_action, None) on-session and is
    declined `authentication_required` off-session (payments_3ds)."""
    check_owner(pm, pi["customer"])
    if pm["type"] in BANK_TYPES:
        return confirm_bank(ctx, pi, pm)
    behaviour = behaviour_of(ctx, pm)
    if behaviour == "three_d_secure_required" and not is_authenticated(ctx, pi):
        if not off_session:
            return require_action(ctx, pi, pm, return_url=return_url), None
        behaviour = "authentication_required"
    decline = decline_of(behaviour, charging=True)
    charge = record_charge(ctx, pi=pi, pm=pm, decline=decline)
    pi["latest_charge"] = charge["id"]
    if decline:
        error = decline_error(decline)
        pi.update(
            status="requires_payment_method",
            payment_method=None,
            last_payment_error=error_details(error, decline, pm, charge=charge["id"]),
        )
        pi.update(shape("payment_intent", **pi))  # fills the error's other fields
        ctx.save(pi)
        ctx.emit("charge.failed", charge)
        ctx.emit("payment_intent.payment_failed", pi)
        error.extra.update(charge=charge["id"], payment_intent=copy_json(pi), payment_method=copy_json(pm))
        raise error
    pi.update(status="succeeded", amount_received=pi["amount"], payment_method=pm["id"], last_payment_error=None)
    ctx.save(pi)
    if pi["setup_future_usage"] and pi["customer"] and pm["customer"] is None:
        # Saving the card for later is part of a successful payment.
        attach(ctx, pm, pi["customer"])
    ctx.emit("charge.succeeded", charge)
    ctx.emit("payment_intent.succeeded", pi)
    open_dispute_if_test_card(ctx, charge, behaviour_of(ctx, pm))
    return pi, charge


def pay(ctx, *, customer: str | None, amount: int, currency: str, pm: dict, description: str | None,
        metadata: dict, off_session: bool = True, invoice_id: str | None = None, **fields) -> tuple[dict, dict]:
    """Create a PaymentIntent for `pm` and confirm it at once."""
    pi = new_payment_intent(ctx, amount=amount, currency=currency, customer=customer, metadata=metadata,
                            description=description, **fields)
    pi["payment_method"] = pm["id"]
    pi["status"] = "requires_confirmation"
    if invoice_id:
        # What the PaymentIntent pays, for what happens later (3-D Secure, bank debits).
        internal(ctx, pi["id"])["invoice"] = invoice_id
    return confirm(ctx, pi, pm, off_session=off_session)


def collect_payment(ctx, *, customer: str, amount: int, currency: str, payment_method: str | None,
                    invoice_id: str | None, description: str | None, metadata: dict) -> tuple[dict, dict | None]:
    """Charge `customer` (the billing modules' door; see the module docstring).

    `payment_method=None` uses the customer's invoice_settings.default_payment_method.
    The card must be attached to the customer, as for `POST /v1/invoices/{id}/pay`."""
    cust = ctx.get("customer", customer, param="customer")
    pm_id = payment_method or (cust.get("invoice_settings") or {}).get("default_payment_method")
    if not pm_id:
        raise invalid_request(NO_PAYMENT_METHOD)
    pm = ctx.get("payment_method", pm_id, param="payment_method")
    if pm["customer"] != customer:
        raise invalid_request(f"The PaymentMethod {pm_id} does not belong to the Customer {customer}.",
                              param="payment_method")
    return pay_for_invoice(ctx, customer=customer, amount=amount, currency=currency.lower(), pm=pm,
                           invoice_id=invoice_id, description=description, metadata=metadata)


def pay_for_invoice(ctx, *, customer, amount, currency, pm, invoice_id, description, metadata, off_session=True):
    """The charge behind an invoice payment, by API (off-session, as Stripe's invoice
    payments default to) or on the hosted page (on-session; the card typed in belongs
    to no customer). The charge is None while a 3-D Secure card awaits authentication."""
    if description is None and invoice_id:
        description = "Payment for Invoice"
    pi, charge = pay(ctx, customer=customer, amount=amount, currency=currency, pm=pm,
                     description=description, metadata=dict(metadata or {}), off_session=off_session,
                     invoice_id=invoice_id)
    if invoice_id and charge is not None:
        # Receipts name the invoice they paid.
        internal(ctx, charge["id"])["invoice"] = invoice_id
    return pi, charge


def invoice_of_charge(ctx, charge_id: str) -> str | None:
    return internal(ctx, charge_id, create=False).get("invoice")


# ------------------------------------------------------------------- routes


def payment_method_param(ctx, params: dict, customer: str | None) -> dict | None:
    """The PaymentMethod named by `payment_method` (test ids make a new one), usable
    with `customer`."""
    if "payment_method_data" in params:
        raise invalid_request(
            "stripe_sandbox: pass a payment method id (pm_... or a test id such as pm_card_visa) "
            "instead of payment_method_data.", param="payment_method_data",
        )
    if not params.get("payment_method"):
        return None
    pm = resolve_payment_method(ctx, params["payment_method"])
    check_owner(pm, customer)
    return pm


def check_types(params: dict) -> None:
    for kind in params.get("payment_method_types") or []:
        if kind != "card" and kind not in BANK_TYPES:
            raise invalid_request(f"stripe_sandbox models card, us_bank_account and sepa_debit payments only, "
                                  f"not {kind!r}.", param="payment_method_types")
    if params.get("capture_method") == "manual":
        raise invalid_request("stripe_sandbox does not model manual capture (capture_method=manual).",
                              param="capture_method")


def _confirm_now(ctx, pi: dict, pm: dict | None, params: dict) -> dict:
    if pm is None:
        if not pi["payment_method"]:
            who = f" with {pi['customer']}" if pi["customer"] else ""
            raise unexpected_state(
                f"You cannot confirm this PaymentIntent because it's missing a payment method. To confirm "
                f"the PaymentIntent{who}, specify a payment method attached to this customer along with "
                "the customer ID."
            )
        pm = ctx.get("payment_method", pi["payment_method"], param="payment_method")
    for name in ("receipt_email", "setup_future_usage", "shipping"):
        if name in params:
            pi[name] = params[name] or None
    pi["payment_method"] = pm["id"]
    return confirm(ctx, pi, pm, off_session=bool(params.get("off_session")), return_url=params.get("return_url"))[0]


@route("POST", "/v1/payment_intents", params=stripe.params.PaymentIntentCreateParams)
@answering_declines
def create(ctx, params):
    for name in ("amount", "currency"):
        if name not in params:
            raise parameter_missing(name)
    check_types(params)
    currency = params["currency"].lower()
    check_amount(params["amount"], currency)
    customer = params.get("customer")
    if customer is not None:
        ctx.get("customer", customer, param="customer")
    if params.get("off_session") and not params.get("confirm"):
        raise invalid_request("off_session can only be used when confirm=true.", param="off_session")
    pm = payment_method_param(ctx, params, customer)
    pi = new_payment_intent(
        ctx, amount=params["amount"], currency=currency, customer=customer, metadata=metadata_from(params),
        payment_method_types=params.get("payment_method_types"),
        **{k: params[k] for k in INTENT_FIELDS if k in params},
    )
    if pm is not None:
        pi.update(payment_method=pm["id"], status="requires_confirmation")
        ctx.save(pi)
    if params.get("confirm"):
        return _confirm_now(ctx, pi, pm, params)
    return pi


@route("GET", "/v1/payment_intents/{intent}", params=stripe.params.PaymentIntentRetrieveParams)
def retrieve(ctx, params, intent):
    return ctx.get("payment_intent", intent)


@route("POST", "/v1/payment_intents/{intent}", params=stripe.params.PaymentIntentUpdateParams)
def update(ctx, params, intent):
    pi = ctx.get("payment_intent", intent)
    if pi["status"] not in CONFIRMABLE:
        for key in params:
            if key not in _ALWAYS_UPDATABLE:
                raise unexpected_state(
                    f"This PaymentIntent's {key} could not be updated because it has a status of "
                    f"{pi['status']}. You may only update the {key} of a PaymentIntent with one of the "
                    f"following statuses: {', '.join(CONFIRMABLE)}."
                )
    check_types(params)
    customer = params.get("customer", pi["customer"]) or None
    if customer is not None:
        ctx.get("customer", customer, param="customer")
    currency = params.get("currency", pi["currency"]).lower()
    if "amount" in params or "currency" in params:
        check_amount(params.get("amount", pi["amount"]), currency)
    pm = payment_method_param(ctx, params, customer)
    changes = {k: v for k, v in params.items() if k not in ("payment_method", "expand")}
    if "currency" in changes:
        changes["currency"] = currency
    apply_update(pi, changes,
                 ("amount", "currency", "customer", "metadata", "payment_method_types") + INTENT_FIELDS)
    if pm is not None:
        pi.update(payment_method=pm["id"], status="requires_confirmation")
    ctx.save(pi)
    return pi


@route("POST", "/v1/payment_intents/{intent}/confirm", params=stripe.params.PaymentIntentConfirmParams)
@answering_declines
def confirm_route(ctx, params, intent):
    pi = ctx.get("payment_intent", intent)
    require_status(pi, CONFIRMABLE, "confirm", "confirmed")
    check_types(params)
    return _confirm_now(ctx, pi, payment_method_param(ctx, params, pi["customer"]), params)


@route("POST", "/v1/payment_intents/{intent}/cancel", params=stripe.params.PaymentIntentCancelParams)
def cancel(ctx, params, intent):
    pi = ctx.get("payment_intent", intent)
    require_status(pi, CANCELABLE, "cancel", "canceled")
    pi.update(status="canceled", canceled_at=ctx.now(), cancellation_reason=params.get("cancellation_reason"))
    ctx.save(pi)
    ctx.emit("payment_intent.canceled", pi)
    return pi


@route("GET", "/v1/payment_intents", params=stripe.params.PaymentIntentListParams)
def list_(ctx, params):
    customer = params.get("customer")
    return ctx.list("payment_intent", params, url="/v1/payment_intents",
                    where=(lambda p: p["customer"] == customer) if customer else None)
