"""Make a credit note (a refund, a customer credit, a correction) exactly once.

What a finance user may ask for, by the invoice's state (`credit_note_modes`):
    open (or uncollectible) invoice
                   pre_payment   lowers what is owed (at most `amount_remaining`)
    paid invoice   refund        Stripe refunds the card payment (`refund_amount`), at most
                                 what its card payments have not had refunded
                   credit        to the customer's credit balance (`credit_amount`)
                   out_of_band   settled outside Stripe (`out_of_band_amount`)
    any post-payment note is at most `amount_paid` minus what earlier ones credited.

Exactly once, as the invoice push (`invoicing/push.py`) does it:
1. the local row is saved first (`pending`), keyed by the confirmation form's one-time
   `request_key`, so a double click finds it rather than making a second;
2. the claim marks it `pushing` before any Stripe call (a second worker leaves it while the
   lease runs); the create carries the idempotency key `crm-cn-<business>-<id>-<µs>`, the
   same on every retry, and the same string as `metadata.crm_credit_note_key`;
3. any attempt after the first looks the credit note up first (the invoice's credit notes,
   by that metadata), so a lost answer never makes a second one, even after Stripe's 24 h.
A Stripe error ends as `failed` with Stripe's message; `credit_note_push` again (Retry)
resumes. Stripe's answer is recorded by `apply.credit_note_apply_stripe`, the function the
webhooks use; the invoice's figures are then read again from Stripe.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from crm.audit import audit_record

from finance.models import CreditNote, CreditNotePushStatus, CreditNoteReason, CreditNoteStatus, Invoice, InvoiceStatus
from finance.money import NotRepresentable, format_money, require_representable, to_minor

from ..connect.oauth import connection_for_invoice, gateway
from ..gateway.client import Gateway, GatewayError, IdempotencyConflict
from ..gateway.credit_notes import CreditNoteInfo
from ..invoicing.push import lease_seconds
from ..runs.disable import integration_require_enabled
from .apply import credit_note_apply_stripe, key_prefix

log = logging.getLogger(__name__)

MODE_LABELS = {
    "pre_payment": "Lower the amount owed",
    "refund": "Refund the payment",
    "credit": "Credit the customer's balance",
    "out_of_band": "Settled outside Stripe",
}
# Which credit note parameter carries the amount, per mode (pre_payment: none of them).
_SPLIT = {"refund": "refund_amount", "credit": "credit_amount", "out_of_band": "out_of_band_amount"}


class CreditNoteError(Exception):
    """The credit note cannot be made; `message` is fit to show, `field` names the form
    field at fault ("" for the whole form)."""

    def __init__(self, message: str, *, field: str = ""):
        self.message, self.field = message, field
        super().__init__(message)


@dataclass
class StripeReadContext:
    """What `webhooks.context.invoice_reconcile` reads with, outside a webhook delivery."""
    account: str
    gw: Gateway
    business: object


# --- what may be asked ---------------------------------------------------------------
def _refundable(invoice: Invoice) -> Decimal:
    """What the invoice's card (Stripe) payments have not had refunded yet."""
    total = Decimal(0)
    for amount, refunded in invoice.payments.filter(stripe_charge_id__isnull=False, status__in=[
            "succeeded", "partially_refunded"]).values_list("amount", "amount_refunded"):
        total += amount - refunded
    return total


def credit_note_modes(invoice: Invoice) -> dict[str, Decimal]:
    """The modes a credit note on this invoice may take now, each with its largest amount
    (0 or less: none is possible). Empty: no credit note (not in Stripe, draft, void...)."""
    if not invoice.stripe_invoice_id:
        return {}
    if invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
        return {"pre_payment": invoice.amount_remaining}
    if invoice.status == InvoiceStatus.PAID:
        creditable = invoice.amount_paid - invoice.credited_post_payment
        return {"refund": min(creditable, _refundable(invoice)), "credit": creditable, "out_of_band": creditable}
    return {}


def credit_note_validate(*, invoice: Invoice, amount, reason: str, memo: str, mode: str) -> Decimal:
    """The amount at the currency's precision, or CreditNoteError naming the field."""
    modes = credit_note_modes(invoice)
    if not modes:
        raise CreditNoteError(f"A credit note needs an open, uncollectible or paid invoice in Stripe; {invoice.number} is "
                              f"{invoice.get_status_display().lower()}{'' if invoice.stripe_invoice_id else ' and not in Stripe'}.")
    if mode not in modes:
        raise CreditNoteError("Choose one of: " + ", ".join(MODE_LABELS[m].lower() for m in modes) + ".", field="mode")
    try:
        value = Decimal(str(amount).strip())
        if not value.is_finite():
            raise InvalidOperation
    except (InvalidOperation, ValueError, TypeError):
        raise CreditNoteError("Enter the amount as a number.", field="amount") from None
    if value <= 0:
        raise CreditNoteError("The amount must be more than zero.", field="amount")
    try:
        value = require_representable(value, invoice.currency)
    except NotRepresentable as exc:
        raise CreditNoteError(str(exc), field="amount") from None
    limit = modes[mode]
    if value > limit:
        what = "is owed" if mode == "pre_payment" else "can be refunded" if mode == "refund" else "can be credited"
        raise CreditNoteError(f"At most {format_money(max(limit, Decimal(0)), invoice.currency)} {what} on "
                              f"{invoice.number}.", field="amount")
    if reason and reason not in CreditNoteReason.values:
        raise CreditNoteError("Choose a reason from the list.", field="reason")
    if len(memo or "") > 500:
        raise CreditNoteError("The memo is at most 500 characters.", field="memo")
    return value


def _split(mode: str, amount: Decimal) -> dict[str, Decimal]:
    split = {"pre_payment_amount": Decimal(0), "refund_amount": Decimal(0), "credit_amount": Decimal(0),
             "out_of_band_amount": Decimal(0)}
    split["pre_payment_amount" if mode == "pre_payment" else _SPLIT[mode]] = amount
    return split


def _params(*, invoice: Invoice, amount: Decimal, mode: str, reason: str, memo: str) -> dict:
    params = {"invoice": invoice.stripe_invoice_id, "amount": to_minor(amount, invoice.currency, strict=True)}
    if mode in _SPLIT:
        params[_SPLIT[mode]] = params["amount"]
    if reason:
        params["reason"] = reason
    if memo:
        params["memo"] = memo
    return params


def credit_note_preview(*, invoice: Invoice, amount, reason: str, memo: str, mode: str) -> CreditNoteInfo:
    """Stripe's preview of the credit note (nothing is made). Raises CreditNoteError for
    bad input, GatewayError when Stripe refuses or cannot answer."""
    value = credit_note_validate(invoice=invoice, amount=amount, reason=reason, memo=memo, mode=mode)
    integration_require_enabled(business=invoice.business)
    connection = connection_for_invoice(invoice)
    if connection is None:
        raise CreditNoteError("This business is not connected to Stripe.")
    return gateway(connection.livemode).credit_note_preview(account=connection.stripe_user_id, params=_params(
        invoice=invoice, amount=value, mode=mode, reason=reason, memo=memo))


# --- making it -----------------------------------------------------------------------
def credit_note_create(*, invoice: Invoice, amount, reason: str, memo: str, mode: str, user=None,
                       request_key: str = "", ip: str | None = None) -> CreditNote:
    """Save the credit note locally, then push it to Stripe (`credit_note_push`). With a
    `request_key` already used in this business, the credit note it made is returned and
    nothing else happens. Raises CreditNoteError for bad input; a Stripe failure is on the
    returned row (`push_status` failed, `last_error`)."""
    memo = (memo or "").strip()
    value = credit_note_validate(invoice=invoice, amount=amount, reason=reason, memo=memo, mode=mode)
    integration_require_enabled(business=invoice.business)  # before anything is saved
    request_key = (request_key or "")[:64]
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if request_key:
            existing = CreditNote.objects.filter(business=locked.business, request_key=request_key).first()
            if existing is not None:
                return existing
        note = CreditNote(business=locked.business, invoice=locked, currency=locked.currency, amount=value,
                          reason=reason or "", memo=memo, request_key=request_key, created_by=user,
                          push_status=CreditNotePushStatus.PENDING, livemode=locked.livemode, **_split(mode, value))
        note.full_clean()
        note.save()
        audit_record(business=locked.business, user=user, action="credit_note_create", obj=locked, ip=ip,
                     amount=value, currency=locked.currency,
                     detail=f"{MODE_LABELS.get(mode, mode)}" + (f"; memo: {memo}" if memo else ""))
    return credit_note_push(credit_note_id=note.pk, mode=mode)


def _claim(credit_note_id: int, *, takeover: bool) -> CreditNote | None:
    now = timezone.now()
    with transaction.atomic():
        note = CreditNote.objects.select_for_update().select_related("invoice", "business").get(pk=credit_note_id)
        if note.push_status == CreditNotePushStatus.PUSHED:
            return None
        live = note.push_claimed_at and (now - note.push_claimed_at).total_seconds() < lease_seconds()
        if note.push_status == CreditNotePushStatus.PUSHING and live and not takeover:
            return None
        note.push_status, note.push_claimed_at, note.last_error = CreditNotePushStatus.PUSHING, now, ""
        note.push_attempts += 1
        note.save(update_fields=["push_status", "push_claimed_at", "last_error", "push_attempts", "updated_at"])
    return note


def _mode_of(note: CreditNote) -> str:
    for mode, name in _SPLIT.items():
        if getattr(note, name):
            return mode
    return "pre_payment"


def _find_remote(gw: Gateway, account: str, note: CreditNote) -> CreditNoteInfo | None:
    key = key_prefix(note)
    found = [cn for cn in gw.credit_notes_list(account=account, invoice_id=note.invoice.stripe_invoice_id)
             if cn.metadata.get("crm_credit_note_key") == key]
    if len(found) > 1:
        log.error("Credit note %s has %d Stripe credit notes: %s", note.pk, len(found), [f.id for f in found])
    return min(found, key=lambda f: (f.created, f.id)) if found else None


def credit_note_push(*, credit_note_id: int, mode: str | None = None, takeover: bool = False) -> CreditNote:
    """Send one local credit note to Stripe, or finish one whose answer was lost. Safe to
    call any number of times: see the module doc. Returns the row as it ends. Refused
    (IntegrationDisabled) while the integration is disabled: it stays as it was, for Retry."""
    integration_require_enabled(
        business=CreditNote.objects.filter(pk=credit_note_id).values_list("business_id", flat=True).first())
    note = _claim(credit_note_id, takeover=takeover)
    if note is None:
        return CreditNote.objects.get(pk=credit_note_id)
    invoice = note.invoice
    connection = connection_for_invoice(invoice)
    if connection is None:
        return _fail(note, "This business is not connected to Stripe: connect it, then retry.")
    account, gw = connection.stripe_user_id, gateway(connection.livemode)
    try:
        info = _find_remote(gw, account, note) if note.push_attempts > 1 else None
        if info is None:
            params = _params(invoice=invoice, amount=note.amount, mode=mode or _mode_of(note), reason=note.reason,
                             memo=note.memo)
            params["metadata"] = {"crm_credit_note_id": str(note.pk), "crm_credit_note_key": key_prefix(note),
                                  "crm_invoice_id": str(invoice.pk), "crm_business_id": str(note.business_id)}
            try:
                info = gw.credit_note_create(account=account, params=params, idempotency_key=key_prefix(note))
            except IdempotencyConflict:
                info = _find_remote(gw, account, note)
                if info is None:
                    raise
        with transaction.atomic():
            locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
            note, _ = credit_note_apply_stripe(invoice=locked, info=info)
    except GatewayError as exc:
        rid = f" (Stripe request {exc.request_id})" if exc.request_id else ""
        return _fail(note, exc.user_message + rid)
    except Exception:
        _fail(note, "Making the credit note stopped on an internal error; it was logged. Retry resumes it safely.")
        raise
    invoice_figures_refresh(invoice=invoice, account=account, gw=gw)
    return CreditNote.objects.get(pk=note.pk)


def _fail(note: CreditNote, message: str) -> CreditNote:
    log.warning("Credit note %s on invoice %s failed: %s", note.pk, note.invoice_id, message)
    with transaction.atomic():
        row = CreditNote.objects.select_for_update().get(pk=note.pk)
        if row.push_status != CreditNotePushStatus.PUSHED:  # a webhook may have recorded it meanwhile
            row.push_status, row.last_error = CreditNotePushStatus.FAILED, message[:2000]
            row.save(update_fields=["push_status", "last_error", "updated_at"])
    return row


def invoice_figures_refresh(*, invoice: Invoice, account: str, gw: Gateway) -> None:
    """The invoice's figures (credited, remaining, refunds) from Stripe now, so the page
    shows them without waiting for the webhooks (which do the same, in any order). A
    failure here is only logged: the webhooks and the catch-up bring the figures."""
    from ..webhooks.context import invoice_reconcile

    try:
        with transaction.atomic():
            locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
            invoice_reconcile(StripeReadContext(account=account, gw=gw, business=locked.business), locked)
    except GatewayError as exc:
        log.warning("Invoice %s: figures not refreshed after a credit note (%s); the webhooks will.", invoice.pk,
                    exc.user_message)


def credit_note_void(*, credit_note: CreditNote, user=None, ip: str | None = None) -> CreditNote:
    """Void an issued credit note in Stripe (Stripe decides whether it still may), then
    record Stripe's answer (and who asked, in the audit log). Raises CreditNoteError with
    Stripe's reason."""
    if credit_note.status != CreditNoteStatus.ISSUED or not credit_note.stripe_id:
        raise CreditNoteError(f"{credit_note} is not an issued credit note in Stripe.")
    integration_require_enabled(business=credit_note.business_id)
    connection = connection_for_invoice(credit_note.invoice)
    if connection is None:
        raise CreditNoteError("This business is not connected to Stripe.")
    account, gw = connection.stripe_user_id, gateway(connection.livemode)
    try:
        info = gw.credit_note_void(account=account, credit_note_id=credit_note.stripe_id,
                                   idempotency_key=f"crm-cn-void-{credit_note.business_id}-{credit_note.stripe_id}")
    except GatewayError as exc:
        raise CreditNoteError(exc.user_message) from None
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=credit_note.invoice_id)
        note, _ = credit_note_apply_stripe(invoice=locked, info=info)
        audit_record(business=locked.business, user=user, action="credit_note_void", obj=locked, ip=ip,
                     amount=note.amount, currency=note.currency, detail=f"Credit note {note.number or note.stripe_id} voided")
    invoice_figures_refresh(invoice=locked, account=account, gw=gw)
    return note


def describe(*, invoice: Invoice, amount: Decimal, mode: str) -> str:
    """What confirming will do, in a sentence for the confirmation step."""
    money = format_money(amount, invoice.currency)
    return {
        "pre_payment": f"A credit note of {money} on {invoice.number}: the customer owes "
                       f"{format_money(invoice.amount_remaining - amount, invoice.currency)} instead of "
                       f"{format_money(invoice.amount_remaining, invoice.currency)}.",
        "refund": f"A credit note of {money} on {invoice.number}, and Stripe refunds {money} to the customer's card.",
        "credit": f"A credit note of {money} on {invoice.number}, added to the customer's credit balance in Stripe "
                  "(it pays their next invoices).",
        "out_of_band": f"A credit note of {money} on {invoice.number}, settled outside Stripe (no money moves in Stripe).",
    }[mode]


__all__ = ["MODE_LABELS", "CreditNoteError", "credit_note_create", "credit_note_modes", "credit_note_preview",
           "credit_note_push", "credit_note_validate", "credit_note_void", "describe"]
