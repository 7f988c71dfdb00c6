"""Bank debits: ACH Direct Debit (`us_bank_account`, usd) and SEPA Direct Debit
(`sepa_debit`, eur) with Stripe's test account numbers and IBANs
(docs.stripe.com/testing, "Non-card payment methods").

They are delayed-notification payment methods: confirming a PaymentIntent makes a
`pending` charge and the PaymentIntent goes `processing` (`charge.pending`,
`payment_intent.processing`; an invoice it pays stays open). One day of sandbox time
later (job `bank_debit_settles`) the debit succeeds (`charge.succeeded`,
`payment_intent.succeeded`, and for an invoice `invoice.paid`) or fails as the test
number says (`charge.failed`, `payment_intent.payment_failed` back to
`requires_payment_method`, and for an invoice `invoice.payment_failed`, which stays
open). Fee: 0.8% capped at 5.00 (Stripe's US ACH Direct Debit price, used for both).
"""

from __future__ import annotations

from decimal import Decimal

from ..core import copy_json
from ..errors import invalid_request, parameter_missing
from ..scheduler import job, schedule
from ..schema import shape
from .billing_common import base_url, round_half_up
from .payments_charges import new_balance_transaction
from .payments_common import fingerprint, internal

BANK_TYPES = ("us_bank_account", "sepa_debit")
CURRENCY = {"us_bank_account": "usd", "sepa_debit": "eur"}
SETTLES_AFTER_SECONDS = 24 * 3600
ACH_ROUTING = "110000000"
# Test account number / IBAN -> failure code (None: the debit succeeds).
ACH_ACCOUNTS = {
    "000123456789": None,
    "900123456789": None,
    "000111111113": "account_closed",
    "000111111116": "no_account",
    "000222222227": "insufficient_funds",
    "900222222227": "insufficient_funds",
    "000333333335": "debit_not_authorized",
    "000444444440": "invalid_currency",
}
SEPA_IBANS = {
    "DE89370400440532013000": None,
    "DE08370400440532013003": None,
    "AT611904300234573201": None,
    "DE62370400440532013001": "insufficient_funds",
    "DE78370400440532013004": "insufficient_funds",
}
FAILURE_MESSAGES = {
    "account_closed": "The customer's bank account has been closed.",
    "no_account": "The customer's bank account could not be located.",
    "insufficient_funds": "The customer's account has insufficient funds to cover this payment.",
    "debit_not_authorized": "The customer has notified their bank that this payment was unauthorized.",
    "invalid_currency": "The bank account does not support the currency of this payment.",
}


def bank_fee(amount: int) -> int:
    return min(round_half_up(Decimal(amount) * Decimal("0.008")), 500)


def new_bank_payment_method(ctx, params: dict) -> dict:
    """A us_bank_account or sepa_debit PaymentMethod from `POST /v1/payment_methods`."""
    kind = params["type"]
    details = params.get(kind)
    if not details:
        raise parameter_missing(kind)
    billing = dict(params.get("billing_details") or {})
    if not billing.get("name"):
        raise invalid_request(f"Missing required param: billing_details[name] (required for {kind}).",
                              param="billing_details[name]", code="parameter_missing")
    if kind == "us_bank_account":
        routing, account = details.get("routing_number"), details.get("account_number")
        if not routing:
            raise parameter_missing("us_bank_account[routing_number]")
        if not account:
            raise parameter_missing("us_bank_account[account_number]")
        if routing != ACH_ROUTING or account not in ACH_ACCOUNTS:
            raise invalid_request(
                "Your bank account was declined: in test mode use Stripe's test routing number 110000000 with "
                f"one of the test account numbers ({', '.join(ACH_ACCOUNTS)}).",
                param="us_bank_account[account_number]", code="bank_account_declined")
        outcome, secret = ACH_ACCOUNTS[account], routing + account
        data = {"account_holder_type": details.get("account_holder_type", "individual"),
                "account_type": details.get("account_type", "checking"), "bank_name": "STRIPE TEST BANK",
                "financial_connections_account": None, "fingerprint": fingerprint(ctx, secret),
                "last4": account[-4:], "networks": {"preferred": "ach", "supported": ["ach"]},
                "routing_number": routing, "status_details": None}
    else:
        iban = "".join((details.get("iban") or "").split()).upper()
        if not iban:
            raise parameter_missing("sepa_debit[iban]")
        if iban not in SEPA_IBANS:
            raise invalid_request(
                f"The IBAN you provided is not a test IBAN: in test mode use one of {', '.join(SEPA_IBANS)}.",
                param="sepa_debit[iban]", code="invalid_bank_account_iban")
        if not billing.get("email"):
            raise invalid_request("Missing required param: billing_details[email] (required for sepa_debit).",
                                  param="billing_details[email]", code="parameter_missing")
        outcome, secret = SEPA_IBANS[iban], iban
        data = {"bank_code": iban[4:12] if iban.startswith("DE") else iban[4:9], "branch_code": "",
                "country": iban[:2], "fingerprint": fingerprint(ctx, secret),
                "generated_from": {"charge": None, "setup_attempt": None}, "last4": iban[-4:]}
    billing.setdefault("address", {})
    pm = shape("payment_method", id=ctx.new_id("pm"), allow_redisplay=params.get("allow_redisplay", "unspecified"),
               billing_details=billing, created=ctx.now(), customer=None, livemode=False,
               metadata=params.get("metadata") or {}, type=kind, **{kind: data})
    ctx.insert(pm)
    internal(ctx, pm["id"])["bank_failure"] = outcome
    return pm


def check_bank_intent(pi: dict, pm: dict) -> None:
    kind = pm["type"]
    allowed = pi["payment_method_types"] or []
    if kind not in allowed and not (pi["automatic_payment_methods"] or {}).get("enabled"):
        raise invalid_request(
            f"The PaymentMethod provided ({kind}) is not allowed for this PaymentIntent. Allowed types: "
            f"{', '.join(allowed)}.", param="payment_method")
    if pi["currency"] != CURRENCY[kind]:
        raise invalid_request(
            f"{kind} payments must be in {CURRENCY[kind]}; this PaymentIntent is in {pi['currency']}.",
            param="payment_method")


def _details(pm: dict) -> dict:
    kind = pm["type"]
    src = pm[kind]
    if kind == "us_bank_account":
        sub = {k: src[k] for k in ("account_holder_type", "account_type", "bank_name", "fingerprint", "last4",
                                   "routing_number")}
        sub.update(expected_debit_date=None, mandate=None, payment_reference=None)
    else:
        sub = {k: src[k] for k in ("bank_code", "branch_code", "country", "fingerprint", "last4")}
        sub.update(expected_debit_date=None, mandate=None)
    return {"type": kind, kind: sub}


def confirm_bank(ctx, pi: dict, pm: dict) -> tuple[dict, dict]:
    """Start the debit: a pending charge, the PaymentIntent `processing`, the
    settlement scheduled."""
    check_bank_intent(pi, pm)
    cid = ctx.new_id("ch")
    charge = shape(
        "charge", id=cid, amount=pi["amount"], amount_captured=pi["amount"], amount_refunded=0,
        balance_transaction=None, billing_details=pm["billing_details"], captured=True, created=ctx.now(),
        currency=pi["currency"], customer=pi["customer"], description=pi["description"], disputed=False,
        failure_code=None, failure_message=None, fraud_details={}, livemode=False,
        metadata=dict(pi["metadata"]), outcome={"network_status": "approved_by_network", "reason": None,
                                                 "risk_level": "not_assessed", "seller_message": "Payment complete.",
                                                 "type": "authorized"},
        paid=False, payment_intent=pi["id"], payment_method=pm["id"], payment_method_details=_details(pm),
        receipt_email=pi["receipt_email"], receipt_url=f"{base_url(ctx)}/hosted/receipts/{cid}", refunded=False,
        status="pending",
    )
    ctx.insert(charge)
    pi.update(status="processing", latest_charge=cid, payment_method=pm["id"], last_payment_error=None)
    ctx.save(pi)
    ctx.emit("charge.pending", charge)
    ctx.emit("payment_intent.processing", pi)
    schedule(ctx, at=ctx.now() + SETTLES_AFTER_SECONDS, kind="bank_debit_settles", payment_intent=pi["id"])
    return pi, charge


@job("bank_debit_settles")
def settle(ctx, *, payment_intent: str) -> None:
    pi = ctx.get("payment_intent", payment_intent)
    if pi["status"] != "processing":
        return
    charge = ctx.get("charge", pi["latest_charge"])
    pm = ctx.find(charge["payment_method"], "payment_method") or {}
    failure = internal(ctx, pm.get("id") or "", create=False).get("bank_failure")
    invoice_id = internal(ctx, charge["id"], create=False).get("invoice")
    if failure is None:
        txn = new_balance_transaction(ctx, amount=charge["amount"], currency=charge["currency"], source=charge["id"],
                                      kind="charge", description=charge["description"],
                                      fee=bank_fee(charge["amount"]))
        charge.update(status="succeeded", paid=True, balance_transaction=txn["id"])
        ctx.save(charge)
        pi.update(status="succeeded", amount_received=pi["amount"])
        ctx.save(pi)
        ctx.emit("charge.succeeded", charge)
        ctx.emit("payment_intent.succeeded", pi)
        if invoice_id:
            from .billing_collect import invoice_apply_payment
            invoice_apply_payment(ctx, invoice_id, payment_intent=copy_json(pi), charge=charge)
        return
    message = FAILURE_MESSAGES[failure]
    charge.update(status="failed", failure_code=failure, failure_message=message,
                  outcome=dict(charge["outcome"], network_status="declined_by_network", type="issuer_declined",
                               seller_message="The bank returned the payment."))
    ctx.save(charge)
    pi.update(status="requires_payment_method", payment_method=None)
    pi["last_payment_error"] = {"code": failure, "message": message, "payment_method": copy_json(pm),
                                "payment_method_type": pm.get("type"), "type": "invalid_request_error",
                                "charge": charge["id"]}
    pi.update(shape("payment_intent", **pi))
    ctx.save(pi)
    ctx.emit("charge.failed", charge)
    ctx.emit("payment_intent.payment_failed", pi)
    if invoice_id:
        from .billing_collect import invoice_record_failed_attempt
        invoice_record_failed_attempt(ctx, invoice_id, payment_intent=copy_json(pi),
                                      error=pi["last_payment_error"])
