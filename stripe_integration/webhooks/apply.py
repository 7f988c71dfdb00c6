"""Finance state from Stripe objects: the writes behind the webhook handlers.

Each function takes plain Stripe dicts (from the gateway) and a local invoice that the
caller holds locked (`invoice_lock`, inside the delivery's transaction), and is
idempotent: applying the same object twice changes nothing the second time, and two
events about the same change make one effect (rows are keyed by Stripe ids, amounts are
set from Stripe's cumulative figures, never added up).

Statuses only move forward (`finance.models.invoice_status_path`, the one rule the push
uses too): an object older than what the app already knows is ignored as a whole.
Amounts become Decimals through `finance.money.from_minor`, the one place that converts
money. The mapping itself is in query-free halves (`invoice_set_from_stripe`,
`payment_from_intent`, `payment_out_of_band`): these functions save what they compute
one row at a time, the import (`importing/billing.py`) a page of new rows at once.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timezone as dt_timezone
from decimal import Decimal

from django.utils import timezone

from crm.models import Business
from finance.models import (
    BILLABLE_TRANSITIONS, BillableStatus, Invoice, InvoiceStatus, Payment, PaymentMethod, PaymentStatus, Refund,
    invoice_status_path,
)
from finance.money import from_minor

from ..rules.mapping import payment_apply_from_stripe

log = logging.getLogger(__name__)

STRIPE_INVOICE_STATUS = {
    "draft": InvoiceStatus.DRAFT, "open": InvoiceStatus.OPEN, "paid": InvoiceStatus.PAID,
    "void": InvoiceStatus.VOID, "uncollectible": InvoiceStatus.UNCOLLECTIBLE,
}
# A succeeded PaymentIntent is final at Stripe: nothing later makes it pending or failed.
SETTLED = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})
# Payment method types that are bank debits or transfers ("processing" for days).
BANK_METHODS = frozenset({
    "us_bank_account", "sepa_debit", "bacs_debit", "acss_debit", "au_becs_debit", "nz_bank_account",
    "customer_balance", "ach_debit", "ach_credit_transfer", "sofort",
})


def time_of(value) -> datetime | None:
    return datetime.fromtimestamp(value, tz=dt_timezone.utc) if isinstance(value, int) and value > 0 else None


def _day(value) -> date | None:
    moment = time_of(value)
    return moment.date() if moment else None


def id_of(value) -> str | None:
    """An expandable field: the id whether it came as a string or as an object."""
    if isinstance(value, dict):
        return value.get("id")
    return value if isinstance(value, str) and value else None


def money_of(minor, currency: str) -> Decimal:
    return from_minor(int(minor or 0), currency)


# --- invoices -----------------------------------------------------------------------
def invoice_lock(*, business: Business, stripe_invoice_id: str) -> Invoice | None:
    """The business's invoice for a Stripe invoice id, locked for the rest of the
    transaction (handlers of two events about one invoice queue here)."""
    return Invoice.objects.select_for_update().filter(business=business, stripe_invoice_id=stripe_invoice_id).first()


def invoice_apply_stripe(*, invoice: Invoice, stripe_invoice: dict) -> list[str]:
    """Bring the local invoice up to the Stripe invoice: status (forward only), number,
    hosted page and PDF, dates, amounts paid and remaining; billables follow a paid or
    voided invoice. Returns the changed field names."""
    if STRIPE_INVOICE_STATUS.get(stripe_invoice.get("status")) is None:
        return []
    changed = invoice_set_from_stripe(invoice=invoice, stripe_invoice=stripe_invoice)
    if changed:
        invoice.full_clean()
        invoice.save(update_fields=[*dict.fromkeys(changed), "updated_at"])
    # Whoever moved the invoice (this event, an earlier one, the invoice push reading
    # Stripe's answer), its billables follow its final status.
    if _billables_follow(invoice=invoice, status=invoice.status):
        changed.append("billables")
    return changed


def invoice_set_from_stripe(*, invoice: Invoice, stripe_invoice: dict) -> list[str]:
    """The mapping behind `invoice_apply_stripe`, without a query: set on the invoice (in
    memory) what the Stripe invoice says. Returns the changed field names (none for an
    unknown status or one older than the invoice's)."""
    target = STRIPE_INVOICE_STATUS.get(stripe_invoice.get("status"))
    if target is None:
        return []
    if invoice_status_path(invoice.status, target) is None:
        log.info("Invoice %s is %s; ignoring an older Stripe state (%s).", invoice.pk, invoice.status, target)
        return []
    changed = []

    def put(field, value):
        if value is not None and getattr(invoice, field) != value:
            setattr(invoice, field, value)
            changed.append(field)

    put("status", target)
    transitions = stripe_invoice.get("status_transitions") or {}
    put("stripe_number", stripe_invoice.get("number") or None)
    put("hosted_invoice_url", stripe_invoice.get("hosted_invoice_url") or None)
    put("invoice_pdf_url", stripe_invoice.get("invoice_pdf") or None)
    put("stripe_customer_id", id_of(stripe_invoice.get("customer")))
    put("finalized_at", time_of(transitions.get("finalized_at")))
    put("due_date", _day(stripe_invoice.get("due_date")))
    if invoice.status == InvoiceStatus.PAID:
        put("paid_at", time_of(transitions.get("paid_at")))
    if invoice.status == InvoiceStatus.VOID:
        put("voided_at", time_of(transitions.get("voided_at")))
    currency = (stripe_invoice.get("currency") or "").upper()
    if invoice.status != InvoiceStatus.DRAFT and currency == invoice.currency:
        paid = money_of(stripe_invoice.get("amount_paid"), currency)
        # A later payment only adds to amount_paid: a smaller figure is an older object.
        if paid >= invoice.amount_paid:
            put("amount_paid", paid)
            put("amount_remaining", money_of(stripe_invoice.get("amount_remaining"), currency))
        # Credit notes (issue 13): Stripe's current sums, down as well as up (a voided
        # credit note stops counting); the reconcile always reads the invoice as it is now.
        put("credited_pre_payment", money_of(stripe_invoice.get("pre_payment_credit_notes_amount"), currency))
        put("credited_post_payment", money_of(stripe_invoice.get("post_payment_credit_notes_amount"), currency))
    return changed


def _billables_follow(*, invoice: Invoice, status: str) -> int:
    """Paid invoice: its billables are paid. Voided invoice: they are billable again
    (unbilled, off the invoice; the invoice's lines keep the snapshot). Returns how many
    moved (none the second time)."""
    if status == InvoiceStatus.PAID:
        target = BillableStatus.PAID
    elif status == InvoiceStatus.VOID:
        target = BillableStatus.UNBILLED
    else:
        return 0
    moved = 0
    for billable in invoice.billables.select_for_update().filter(status=BillableStatus.INVOICED):
        if target not in BILLABLE_TRANSITIONS[billable.status]:
            continue
        billable.status = target
        if target == BillableStatus.UNBILLED:
            billable.invoice = None
        billable.full_clean()
        billable.save(update_fields=["status", "invoice", "updated_at"])
        moved += 1
    return moved


def invoice_unlink_deleted_draft(*, invoice: Invoice) -> bool:
    """Stripe deleted the draft (invoice.deleted happens to drafts only): the local draft
    stays, without its Stripe link, so pushing it again makes a new Stripe invoice."""
    if invoice.status != InvoiceStatus.DRAFT or not invoice.stripe_invoice_id:
        return False
    invoice.stripe_invoice_id = None
    invoice.hosted_invoice_url = ""
    invoice.invoice_pdf_url = ""
    invoice.last_error = "The Stripe draft of this invoice was deleted in Stripe."
    invoice.full_clean()
    invoice.save(update_fields=["stripe_invoice_id", "hosted_invoice_url", "invoice_pdf_url", "last_error", "updated_at"])
    return True


def invoice_refresh_refunded(*, invoice: Invoice) -> bool:
    """What was given back, from its payments (summed in Python: SQLite sums decimals as
    floats)."""
    refunded = _refunded([invoice.pk])[invoice.pk]
    if refunded == invoice.amount_refunded:
        return False
    invoice.amount_refunded = refunded
    invoice.full_clean()
    invoice.save(update_fields=["amount_refunded", "updated_at"])
    return True


def invoices_refresh_refunded(*, invoices: list[Invoice]) -> list[Invoice]:
    """`invoice_refresh_refunded` for many invoices: one query for their payments, one
    update of those that changed (returned)."""
    if not invoices:
        return []
    refunded = _refunded([invoice.pk for invoice in invoices])
    changed = [invoice for invoice in invoices if refunded[invoice.pk] != invoice.amount_refunded]
    now = timezone.now()
    for invoice in changed:
        invoice.amount_refunded, invoice.updated_at = refunded[invoice.pk], now
    Invoice.objects.bulk_update(changed, ["amount_refunded", "updated_at"])
    return changed


def _refunded(invoice_ids: list[int]) -> dict[int, Decimal]:
    """What was given back per invoice, from its payments (summed in Python: SQLite sums
    decimals as floats)."""
    refunded = dict.fromkeys(invoice_ids, Decimal(0))
    for invoice_id, amount in Payment.objects.filter(invoice_id__in=invoice_ids).values_list("invoice_id", "amount_refunded"):
        refunded[invoice_id] += amount
    return refunded


# --- payments -----------------------------------------------------------------------
def _payment_status(intent: dict, existing: Payment | None) -> str | None:
    status = intent.get("status")
    if status == "succeeded":
        return PaymentStatus.SUCCEEDED
    if status == "processing":
        return PaymentStatus.PROCESSING
    if intent.get("last_payment_error") or (status == "canceled" and existing is not None):
        return PaymentStatus.FAILED
    # requires_payment_method / _confirmation / _action with no attempt yet: nothing to record.
    return existing.status if existing is not None else None


def _method(details: dict) -> str:
    kind = (details or {}).get("type") or ""
    if kind == "card":
        return PaymentMethod.CARD
    return PaymentMethod.BANK if kind in BANK_METHODS else PaymentMethod.OTHER


_PAYMENT_FIELDS = ("status", "amount", "currency", "method", "method_type", "card_brand", "card_last4", "fee", "net",
                   "amount_refunded", "paid_at", "failure_message", "stripe_charge_id")


def _snapshot(obj, fields) -> tuple:
    return tuple(getattr(obj, name) for name in fields)


def payment_apply_intent(*, invoice: Invoice, intent: dict) -> tuple[Payment | None, bool]:
    """Record (or update) the invoice's payment for a PaymentIntent retrieved with its
    latest charge and that charge's balance transaction (`payment_from_intent`). One row
    per PaymentIntent. Returns (the payment or None if there is nothing to record yet,
    whether it changed)."""
    pi_id = intent["id"]
    existing = Payment.objects.select_for_update().filter(stripe_payment_intent_id=pi_id).first()
    if existing is not None and existing.business_id != invoice.business_id:
        raise ValueError(f"PaymentIntent {pi_id} is recorded for another business.")
    before = _snapshot(existing, _PAYMENT_FIELDS) if existing is not None else None
    payment = payment_from_intent(invoice=invoice, intent=intent, existing=existing)
    if payment is None:
        return None, False
    if before is not None and before == _snapshot(payment, _PAYMENT_FIELDS):
        return payment, bool(payment_apply_from_stripe(payment=payment, metadata=intent.get("metadata")))
    payment.full_clean()
    payment.save()
    # Mapped payment custom fields from the PaymentIntent's metadata (rules/mapping.py).
    payment_apply_from_stripe(payment=payment, metadata=intent.get("metadata"))
    return payment, True


def payment_from_intent(*, invoice: Invoice, intent: dict, existing: Payment | None) -> Payment | None:
    """The mapping behind `payment_apply_intent`, without a query: the invoice's payment
    for the PaymentIntent (`existing` brought up to date in memory, else a new unsaved
    row): amount, currency, method, card brand and last4, fee and net, when, failure,
    refunded so far. A settled payment never goes back to pending or failed. None if
    there is nothing to record yet."""
    status = _payment_status(intent, existing)
    if status is None:
        return None
    payment = existing or Payment(business=invoice.business, invoice=invoice, stripe_payment_intent_id=intent["id"],
                                  livemode=_mode_of(intent, invoice.livemode))
    if payment.status in SETTLED and status not in SETTLED:
        status = payment.status
    currency = (intent.get("currency") or invoice.currency).upper()
    charge = intent.get("latest_charge") if isinstance(intent.get("latest_charge"), dict) else {}
    details = charge.get("payment_method_details") or {}
    card = details.get("card") or {}
    payment.currency = currency
    payment.amount = money_of(intent.get("amount_received") or intent.get("amount"), currency)
    if details:
        payment.method = _method(details)
        payment.method_type = (details.get("type") or "")[:40]
        payment.card_brand = (card.get("brand") or "")[:20]
        payment.card_last4 = (card.get("last4") or "")[:4]
    if id_of(charge.get("id")):
        payment.stripe_charge_id = charge["id"]
    txn = charge.get("balance_transaction")
    # Fee and net are in the settlement currency; kept only when it is the charge's.
    if isinstance(txn, dict) and (txn.get("currency") or "").upper() == currency:
        payment.fee = money_of(txn.get("fee"), currency)
        payment.net = money_of(txn.get("net"), currency)
    if status in SETTLED or status == PaymentStatus.PROCESSING:
        payment.failure_message = ""
    if status in SETTLED:
        payment.paid_at = payment.paid_at or time_of(charge.get("created")) or time_of(intent.get("created"))
    elif status == PaymentStatus.FAILED:
        error = intent.get("last_payment_error") or {}
        payment.failure_message = (error.get("message") or "The payment failed.")[:500]
    if isinstance(charge.get("amount_refunded"), int):
        # Stripe's current figure, down as well as up: a refund that fails (or is canceled)
        # is taken off the charge's amount_refunded, and stops counting here too.
        payment.amount_refunded = money_of(charge["amount_refunded"], currency)
    if status in SETTLED:
        if payment.amount_refunded <= 0:
            status = PaymentStatus.SUCCEEDED
        elif payment.amount_refunded >= payment.amount:
            status = PaymentStatus.REFUNDED
        else:
            status = PaymentStatus.PARTIALLY_REFUNDED
    payment.status = status
    return payment


def payment_record_out_of_band(*, invoice: Invoice, amount: Decimal, paid_at: datetime | None = None,
                               out_of_band_method: str = "", reference: str = "") -> Payment | None:
    """Stripe has the invoice paid outside Stripe (paid_out_of_band): one payment row for
    it, without Stripe ids (so one per invoice, under the invoice's lock), for the amount
    Stripe counts as paid outside it. A later reconcile sets that amount again from
    Stripe's objects (a card payment the app had missed makes it smaller), keeping what
    staff said (date, method, reference). Returns the row if it was made or changed."""
    existing = invoice.payments.select_for_update().filter(method=PaymentMethod.OUT_OF_BAND).first()
    before = _snapshot(existing, _OUT_OF_BAND_FIELDS) if existing is not None else None
    payment = payment_out_of_band(invoice=invoice, amount=amount, paid_at=paid_at, existing=existing,
                                  out_of_band_method=out_of_band_method, reference=reference)
    if payment is None or before == _snapshot(payment, _OUT_OF_BAND_FIELDS):
        return None
    payment.full_clean()
    payment.save()
    return payment


def payment_out_of_band(*, invoice: Invoice, amount: Decimal, paid_at: datetime | None, existing: Payment | None,
                        out_of_band_method: str = "", reference: str = "") -> Payment | None:
    """The mapping behind `payment_record_out_of_band`, without a query: the invoice's
    payment made outside Stripe (`existing` brought up to date in memory, else a new
    unsaved row), or None when there is none and nothing was paid."""
    payment = existing
    if payment is None:
        if amount <= 0:
            return None
        payment = Payment(business=invoice.business, invoice=invoice, currency=invoice.currency,
                          status=PaymentStatus.SUCCEEDED, method=PaymentMethod.OUT_OF_BAND, livemode=invoice.livemode)
    payment.amount = payment.net = max(amount, Decimal(0))
    payment.paid_at = paid_at or payment.paid_at or invoice.paid_at
    payment.out_of_band_method = out_of_band_method or payment.out_of_band_method
    payment.reference = reference or payment.reference
    return payment


_OUT_OF_BAND_FIELDS = ("amount", "net", "paid_at", "out_of_band_method", "reference")


def refunds_apply(*, payment: Payment, refunds: list[dict]) -> int:
    """One Refund row per Stripe refund (created or brought up to date); returns how many
    were new. The payment's cumulative refunded amount comes from its charge."""
    created = 0
    for data in refunds:
        refund = Refund.objects.select_for_update().filter(stripe_refund_id=data["id"]).first()
        if refund is not None and refund.business_id != payment.business_id:
            raise ValueError(f"Refund {data['id']} is recorded for another business.")
        before = _snapshot(refund, _REFUND_FIELDS) if refund is not None else None
        if refund is None:
            refund = Refund(business=payment.business, payment=payment, stripe_refund_id=data["id"],
                            livemode=_mode_of(data, payment.livemode))
            created += 1
        currency = (data.get("currency") or payment.currency).upper()
        refund.amount = money_of(data.get("amount"), currency)
        refund.currency = currency
        refund.reason = (data.get("reason") or "")[:200]
        refund.status = (data.get("status") or "succeeded")[:20]
        if before != _snapshot(refund, _REFUND_FIELDS):
            refund.full_clean()
            refund.save()
    return created


_REFUND_FIELDS = ("amount", "currency", "reason", "status")


def _mode_of(obj, fallback):
    """The mode Stripe's object says (`livemode`), else that of what it belongs to."""
    mode = obj.get("livemode") if isinstance(obj, dict) else None
    return mode if isinstance(mode, bool) else fallback
