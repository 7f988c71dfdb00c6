"""Charges, balance transactions and refunds (docs.stripe.com/api/charges,
/api/balance_transactions, /api/refunds).

Charges are made by PaymentIntents (payments.py); the legacy `POST /v1/charges` is
not served. A succeeded charge has a balance transaction with Stripe's processing
fee (payments_common.processing_fee), available two days later (Stripe's standard
US payout delay). Card refunds succeed at once; each one has its own balance
transaction (no fee returned, as on Stripe) and emits `refund.created` and
`charge.refunded`, whose object is the charge with the cumulative `amount_refunded`.
A refund of the refund-failure test card (4000 0000 0000 5126, `pm_card_refundFail`)
starts `succeeded` and turns `failed` an hour of sandbox time later (scheduler.py).
"""

from __future__ import annotations

import stripe

from ..core import apply_update, metadata_from, route
from ..errors import StripeError, invalid_request
from ..scheduler import job, schedule
from ..schema import shape
from .payments_cards import DECLINES, outcome
from .billing_common import base_url
from .payments_common import format_amount, internal, processing_fee

AVAILABLE_AFTER_SECONDS = 2 * 24 * 3600
# "Some time later" (docs.stripe.com/testing#refunds): when the sandbox fails the
# refunds of the refund-failure test card.
REFUND_FAILS_AFTER_SECONDS = 3600
REFUND_FAILURE_REASON = "expired_or_canceled_card"


# ------------------------------------------------------- balance transactions


def new_balance_transaction(ctx, *, amount: int, currency: str, source: str, kind: str,
                            description: str | None, fee: int = 0, category: str | None = None,
                            fee_description: str = "Stripe processing fees", created: int | None = None,
                            available_on: int | None = None, paid_out: bool = False) -> dict:
    """A balance transaction in ctx.account. Unless `paid_out` (a payout's own), it waits
    for the account's next automatic payout once available (payouts.py)."""
    created = ctx.now() if created is None else created
    fee_details = [{"amount": fee, "application": None, "currency": currency,
                    "description": fee_description, "type": "stripe_fee"}] if fee else []
    txn = shape(
        "balance_transaction",
        id=ctx.new_id("txn"),
        amount=amount,
        available_on=created + AVAILABLE_AFTER_SECONDS if available_on is None else available_on,
        balance_type="payments",
        created=created,
        currency=currency,
        description=description,
        exchange_rate=None,
        fee=fee,
        fee_details=fee_details,
        net=amount - fee,
        reporting_category=category or kind,
        source=source,
        status="pending",
        type=kind,
    )
    ctx.insert(txn)
    if not paid_out:
        from .payouts import awaiting_payout  # payouts builds on this module

        awaiting_payout(ctx, txn)
    return txn


def _settled(ctx, txn: dict) -> dict:
    """Pending funds become available on `available_on` (derived when read)."""
    if txn["status"] == "pending" and ctx.now() >= txn["available_on"]:
        return dict(txn, status="available")
    return txn


@route("GET", "/v1/balance_transactions/{transaction}", params=stripe.params.BalanceTransactionRetrieveParams)
def retrieve_balance_transaction(ctx, params, transaction):
    return _settled(ctx, ctx.get("balance_transaction", transaction))


@route("GET", "/v1/balance_transactions", params=stripe.params.BalanceTransactionListParams)
def list_balance_transactions(ctx, params):
    checks = [(k, params[k].lower() if k == "currency" else params[k])
              for k in ("currency", "source", "type") if k in params]
    if "payout" in params:
        from .payouts import payout_transaction_ids

        members = payout_transaction_ids(ctx, params["payout"])
        checks.append(("id", members))
    page = ctx.list("balance_transaction", params, url="/v1/balance_transactions",
                    where=lambda t: all(t.get(k) in v if k == "id" else t.get(k) == v for k, v in checks))
    page["data"] = [_settled(ctx, t) for t in page["data"]]
    return page


# ------------------------------------------------------------------ charges


def _statement_descriptor(ctx) -> str:
    account = ctx.store.objects.get(ctx.account) or {}
    name = (account.get("business_profile") or {}).get("name") or "STRIPE SANDBOX"
    return name.upper()[:22]


def record_charge(ctx, *, pi: dict, pm: dict, decline: str | None) -> dict:
    """Store the charge of one confirmation of `pi` with card `pm`."""
    cid = ctx.new_id("ch")
    ok = decline is None
    amount, currency = pi["amount"], pi["currency"]
    txn = None
    if ok:
        txn = new_balance_transaction(ctx, amount=amount, currency=currency, source=cid, kind="charge",
                                      description=pi["description"], fee=processing_fee(amount, currency))
    card = pm["card"]
    error = DECLINES[decline] if decline else None
    charge = shape(
        "charge",
        id=cid,
        amount=amount,
        amount_captured=amount if ok else 0,
        amount_refunded=0,
        balance_transaction=txn["id"] if txn else None,
        billing_details=pm["billing_details"],
        calculated_statement_descriptor=_statement_descriptor(ctx),
        captured=ok,
        created=ctx.now(),
        currency=currency,
        customer=pi["customer"],
        description=pi["description"],
        disputed=False,
        failure_code=error[0] if error else None,
        failure_message=error[1] if error else None,
        fraud_details={},
        livemode=False,
        metadata=dict(pi["metadata"]),
        outcome=outcome(decline),
        paid=ok,
        payment_intent=pi["id"],
        payment_method=pm["id"],
        payment_method_details={
            "card": {
                "amount_authorized": amount if ok else None,
                "brand": card["brand"],
                "checks": card["checks"],
                "country": card["country"],
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
                "extended_authorization": {"status": "disabled"},
                "fingerprint": card["fingerprint"],
                "funding": card["funding"],
                "incremental_authorization": {"status": "unavailable"},
                "last4": card["last4"],
                "multicapture": {"status": "unavailable"},
                "network": card["brand"],
                "network_token": {"used": False},
                "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
                "regulated_status": card["regulated_status"],
            },
            "type": "card",
        },
        receipt_email=pi["receipt_email"],
        receipt_url=f"{base_url(ctx)}/hosted/receipts/{cid}" if ok else None,
        refunded=False,
        status="succeeded" if ok else "failed",
    )
    return ctx.insert(charge)


@route("GET", "/v1/charges/{charge}", params=stripe.params.ChargeRetrieveParams)
def retrieve_charge(ctx, params, charge):
    return ctx.get("charge", charge)


@route("POST", "/v1/charges/{charge}", params=stripe.params.ChargeUpdateParams)
def update_charge(ctx, params, charge):
    obj = ctx.get("charge", charge)
    if "customer" in params and obj["customer"] and params["customer"] != obj["customer"]:
        raise invalid_request("This charge already has a customer; it cannot be changed.", param="customer")
    if params.get("customer"):
        ctx.get("customer", params["customer"], param="customer")
    previous = apply_update(obj, params, ("customer", "description", "fraud_details", "metadata",
                                          "receipt_email", "shipping", "transfer_group"))
    if previous:
        ctx.save(obj)
        ctx.emit("charge.updated", obj, previous)
    return obj


@route("GET", "/v1/charges", params=stripe.params.ChargeListParams)
def list_charges(ctx, params):
    checks = [(k, params[k]) for k in ("customer", "payment_intent", "transfer_group") if k in params]
    return ctx.list("charge", params, url="/v1/charges",
                    where=lambda c: all(c.get(k) == v for k, v in checks))


@route("GET", "/v1/charges/{charge}/refunds", params=stripe.params.ChargeListRefundsParams)
def list_charge_refunds(ctx, params, charge):
    ctx.get("charge", charge)
    return ctx.list("refund", params, url=f"/v1/charges/{charge}/refunds",
                    where=lambda r: r["charge"] == charge)


@route("GET", "/v1/charges/{charge}/refunds/{refund}", params=stripe.params.ChargeRetrieveRefundParams)
def retrieve_charge_refund(ctx, params, charge, refund):
    ctx.get("charge", charge)
    obj = ctx.get("refund", refund)
    if obj["charge"] != charge:
        raise StripeError(404, f"No such refund: '{refund}'", code="resource_missing", param="id")
    return obj


# ------------------------------------------------------------------ refunds


def _refundable_charge(ctx, params) -> dict:
    charge_id, pi_id = params.get("charge"), params.get("payment_intent")
    if charge_id is None and pi_id is None:
        raise invalid_request(
            "One of the following params should be provided for this request: payment_intent or charge."
        )
    if pi_id is not None:
        pi = ctx.get("payment_intent", pi_id, param="payment_intent")
        latest = ctx.get("charge", pi["latest_charge"]) if pi["latest_charge"] else None
        if pi["status"] != "succeeded" or latest is None or latest["status"] != "succeeded":
            raise invalid_request(
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        if charge_id is not None and charge_id != latest["id"]:
            raise invalid_request(
                f"The charge {charge_id} does not belong to the PaymentIntent {pi_id}.", param="charge"
            )
        return latest
    charge = ctx.get("charge", charge_id, param="charge")
    if charge["status"] != "succeeded":
        raise invalid_request(f"Charge {charge_id} has not succeeded and cannot be refunded.", param="charge")
    return charge


def check_refund_amount(charge: dict, amount: int) -> None:
    """Stripe's 400s for a refund of `amount` on `charge`."""
    remaining = charge["amount_captured"] - charge["amount_refunded"]
    if remaining <= 0:
        raise invalid_request(f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
    if amount <= 0:
        raise invalid_request("Invalid positive integer", param="amount")
    if amount > remaining:
        cur = charge["currency"]
        raise invalid_request(
            f"Refund amount ({format_amount(amount, cur)}) is greater than unrefunded amount on charge "
            f"({format_amount(remaining, cur)})",
            param="amount",
            code="amount_too_large",
        )


def new_refund(ctx, charge: dict, amount: int, *, reason: str | None = None, metadata: dict | None = None) -> dict:
    """Refund `amount` of `charge` (taken with ctx.get, amount checked): the refund,
    its balance transaction, the charge's `amount_refunded`, `refund.created` and
    `charge.refunded`. A charge of the refund-failure test card schedules the
    refund's failure (payments_async)."""
    rid = ctx.new_id("re")
    txn = new_balance_transaction(
        ctx, amount=-amount, currency=charge["currency"], source=rid, kind="refund",
        description=f"REFUND FOR CHARGE ({charge['description'] or 'Payment'})",
    )
    refund = shape(
        "refund",
        id=rid,
        amount=amount,
        balance_transaction=txn["id"],
        charge=charge["id"],
        created=ctx.now(),
        currency=charge["currency"],
        destination_details={
            "card": {"reference": None, "reference_status": "pending",
                     "reference_type": "acquirer_reference_number", "type": "refund"},
            "type": "card",
        },
        metadata=metadata or {},
        payment_intent=charge["payment_intent"],
        reason=reason,
        status="succeeded",
    )
    ctx.insert(refund)
    previous = {"amount_refunded": charge["amount_refunded"]}
    charge["amount_refunded"] += amount
    if charge["amount_refunded"] == charge["amount"]:
        previous["refunded"] = False
        charge["refunded"] = True
    charge["refunds"]["data"].insert(0, refund)
    ctx.save(charge)
    ctx.emit("refund.created", refund)
    ctx.emit("charge.refunded", charge, previous)
    if internal(ctx, charge["payment_method"] or "", create=False).get("behaviour") == "refund_fail":
        schedule(ctx, at=ctx.now() + REFUND_FAILS_AFTER_SECONDS, kind="refund_fails", refund=rid)
    return refund


@job("refund_fails")
def refund_fails(ctx, *, refund: str) -> None:
    """The refund of a refund-failure card turns `failed`: Stripe returns the money to
    the balance (a `refund_failure` balance transaction), takes the amount off the
    charge's `amount_refunded`, and sends refund.updated, charge.refund.updated and
    refund.failed."""
    obj = ctx.get("refund", refund)
    if obj["status"] != "succeeded":
        return
    charge = ctx.get("charge", obj["charge"])
    txn = new_balance_transaction(ctx, amount=obj["amount"], currency=obj["currency"], source=refund,
                                  kind="refund_failure", description="REFUND FAILURE")
    previous = {"status": obj["status"], "failure_reason": None, "failure_balance_transaction": None}
    obj.update(status="failed", failure_reason=REFUND_FAILURE_REASON, failure_balance_transaction=txn["id"])
    ctx.save(obj)
    charge["amount_refunded"] -= obj["amount"]
    charge["refunded"] = False
    charge["refunds"]["data"] = [obj if r["id"] == refund else r for r in charge["refunds"]["data"]]
    ctx.save(charge)
    ctx.emit("refund.updated", obj, previous)
    ctx.emit("charge.refund.updated", obj, previous)
    ctx.emit("refund.failed", obj)


@route("POST", "/v1/refunds", params=stripe.params.RefundCreateParams)
def create_refund(ctx, params):
    for unmodelled in ("customer", "origin", "instructions_email"):
        if unmodelled in params:
            raise invalid_request(
                f"stripe_sandbox refunds card charges only; `{unmodelled}` (customer balance "
                "refunds) is not modelled.", param=unmodelled,
            )
    charge = _refundable_charge(ctx, params)
    if "currency" in params and params["currency"].lower() != charge["currency"]:
        raise invalid_request(
            f"The currency of the refund must match the charge's currency ({charge['currency']}).",
            param="currency",
        )
    amount = params.get("amount", charge["amount_captured"] - charge["amount_refunded"])
    check_refund_amount(charge, amount)
    return new_refund(ctx, charge, amount, reason=params.get("reason"), metadata=metadata_from(params))


@route("GET", "/v1/refunds/{refund}", params=stripe.params.RefundRetrieveParams)
def retrieve_refund(ctx, params, refund):
    return ctx.get("refund", refund)


@route("POST", "/v1/refunds/{refund}", params=stripe.params.RefundUpdateParams)
def update_refund(ctx, params, refund):
    obj = ctx.get("refund", refund)
    previous = apply_update(obj, params, ("metadata",))
    if previous:
        ctx.save(obj)
        if ctx.find(obj["charge"], "charge") is not None:
            charge = ctx.get("charge", obj["charge"])
            # The charge embeds its refunds: keep the copy current.
            charge["refunds"]["data"] = [obj if r["id"] == refund else r for r in charge["refunds"]["data"]]
            ctx.save(charge)
        ctx.emit("refund.updated", obj, previous)
        ctx.emit("charge.refund.updated", obj, previous)
    return obj


@route("POST", "/v1/refunds/{refund}/cancel", params=stripe.params.RefundCancelParams)
def cancel_refund(ctx, params, refund):
    obj = ctx.get("refund", refund)
    # Card refunds succeed at once; only pending ones could be canceled.
    raise invalid_request(
        f"Refund {refund} cannot be canceled because it has a status of {obj['status']}. "
        "Only refunds with a status of requires_action can be canceled."
    )


@route("GET", "/v1/refunds", params=stripe.params.RefundListParams)
def list_refunds(ctx, params):
    checks = [(k, params[k]) for k in ("charge", "payment_intent") if k in params]
    return ctx.list("refund", params, url="/v1/refunds", where=lambda r: all(r.get(k) == v for k, v in checks))

