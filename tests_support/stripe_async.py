"""What Stripe does on its own, later, that no API call of ours can make the sandbox do
(yet): played on the in-process sandbox's state, the way Stripe documents it. The events
Stripe would send about it are hand-made and delivered signed through the app's intake
(see the tests that use these).

`refund_fails(...)`: a card refund that Stripe accepted fails afterwards (Stripe's test
card 4000 0000 0000 5126: "the refund's status begins as succeeded; some time later it
transitions to failed and a charge.refund.updated event is sent"). Stripe then takes the
amount off the charge's `amount_refunded` and sets the refund's `failure_reason`.

`debit_processing(...)`, `debit_settles(...)`, `debit_fails(...)`: a bank debit (ACH,
SEPA) in flight on an open invoice, then cleared or returned by the bank.
"""
from __future__ import annotations

from tests_support.sandbox import SERVERS


def refund_fails(*, base_url: str, refund_id: str, reason: str = "expired_or_canceled_card") -> dict:
    """Fail a succeeded refund in the sandbox's state; returns the refund as it now is."""
    store = SERVERS[base_url].sandbox.store
    with store.lock:
        refund = store.objects[refund_id]
        assert refund["status"] == "succeeded", refund["status"]
        refund["status"] = "failed"
        refund["failure_reason"] = reason
        charge = store.objects[refund["charge"]]
        charge["amount_refunded"] -= refund["amount"]
        charge["refunded"] = False
        charge["refunds"]["data"] = [dict(refund) if r["id"] == refund_id else r for r in charge["refunds"]["data"]]
        store.dirty = True
        return dict(refund)


# --- bank debits (ACH / SEPA): `processing` for days, then succeeded or failed ---------------
# Stripe documents (docs.stripe.com/payments/ach-direct-debit/accept-a-payment): a confirmed
# us_bank_account PaymentIntent is `processing` until the debit settles (up to 4 business
# days), then `succeeded`, or back to `requires_payment_method` with last_payment_error
# when the bank returns it. The invoice stays open meanwhile; its invoice payment is open.
# Played here on a PaymentIntent that the sandbox made and confirmed with a test card
# (its charge and ledger are then real), retyped as the bank debit.
BANK_DETAILS = {
    "us_bank_account": {"account_holder_type": "individual", "account_type": "checking", "bank_name": "STRIPE TEST BANK",
                        "fingerprint": "FFDMA0xfhBjWSZLu", "last4": "6789", "routing_number": "110000000"},
    "sepa_debit": {"bank_code": "37040044", "branch_code": None, "country": "DE", "fingerprint": "vifs0Ho7vwRn1Miu",
                   "last4": "3000"},
}
_SETTLEMENT: dict[str, str] = {}  # PaymentIntent -> the balance transaction it gets when it settles


def debit_processing(*, base_url: str, account: str, invoice_id: str, payment_intent_id: str,
                     method: str = "us_bank_account") -> None:
    """The PaymentIntent becomes a bank debit in flight on the open invoice: processing,
    nothing received yet, its charge pending; the invoice gets an open invoice payment."""
    from stripe_sandbox.schema import shape

    store = SERVERS[base_url].sandbox.store
    with store.lock:
        pi, invoice = store.objects[payment_intent_id], store.objects[invoice_id]
        assert invoice["status"] == "open", invoice["status"]
        charge = store.objects[pi["latest_charge"]]
        _SETTLEMENT[payment_intent_id] = charge["balance_transaction"]
        pi.update(status="processing", amount_received=0, payment_method_types=[method])
        charge.update(status="pending", paid=False, captured=True, balance_transaction=None, outcome=None,
                      payment_method_details={"type": method, method: dict(BANK_DETAILS[method])})
        inpay = shape("invoice_payment", id="inpay_debit_" + payment_intent_id[3:], amount_paid=0,
                      amount_requested=pi["amount"], created=pi["created"], currency=invoice["currency"],
                      invoice=invoice_id, is_default=not invoice["payments"]["data"], livemode=False,
                      payment={"type": "payment_intent", "payment_intent": payment_intent_id}, status="open",
                      status_transitions={"paid_at": None, "canceled_at": None})
        store.insert(inpay, account)
        invoice["payments"]["data"].append(dict(inpay))
        store.dirty = True


def debit_settles(*, base_url: str, payment_intent_id: str) -> None:
    """The debit cleared: the PaymentIntent succeeded (the caller then attaches it to the
    invoice through the API, which pays the invoice and sends Stripe's invoice events)."""
    store = SERVERS[base_url].sandbox.store
    with store.lock:
        pi = store.objects[payment_intent_id]
        charge = store.objects[pi["latest_charge"]]
        pi.update(status="succeeded", amount_received=pi["amount"])
        charge.update(status="succeeded", paid=True, balance_transaction=_SETTLEMENT.pop(payment_intent_id))
        store.dirty = True


def debit_fails(*, base_url: str, payment_intent_id: str, code: str = "insufficient_funds",
                message: str = "The customer's account has insufficient funds to cover this payment.") -> None:
    """The bank returned the debit: the PaymentIntent needs a payment method again, with
    the failure as last_payment_error; the charge failed."""
    store = SERVERS[base_url].sandbox.store
    with store.lock:
        pi = store.objects[payment_intent_id]
        charge = store.objects[pi["latest_charge"]]
        pi.update(status="requires_payment_method", amount_received=0,
                  last_payment_error={"type": "invalid_request_error", "code": code,
                                      "message": message, "payment_method": None})
        charge.update(status="failed", paid=False, failure_code=code, failure_message=message)
        store.dirty = True
