"""Local credit notes from Stripe's: one function for the push's answer and the
credit_note.* webhooks alike, so whichever comes first, the other changes nothing.

The caller holds the invoice locked (lock order: invoice, then credit note). A credit note
is found by its Stripe id, else (one made by the CRM whose answer has not been recorded
yet) by the `crm_credit_note_id` + `crm_credit_note_key` metadata the push sends, else it
was made in Stripe (the Dashboard) and a row is created for it. Status only moves forward
(`finance.models.CREDIT_NOTE_TRANSITIONS`: void is final); amounts are set from Stripe's
figures, never added up.
"""
from __future__ import annotations

import datetime

from finance.models import (
    CREDIT_NOTE_TRANSITIONS, CreditNote, CreditNotePushStatus, CreditNoteReason, CreditNoteStatus, Invoice,
)
from finance.money import from_minor

from ..gateway.credit_notes import CreditNoteInfo


def key_prefix(note: CreditNote) -> str:
    """The credit note's idempotency key and `crm_credit_note_key` metadata: from its local
    id and creation time (a restored database never replays another note's answer)."""
    created = int(note.created_at.timestamp() * 1_000_000)
    return f"crm-cn-{note.business_id}-{note.pk}-{created}"


def _moment(timestamp) -> datetime.datetime | None:
    if not isinstance(timestamp, int) or timestamp <= 0:
        return None
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)


def credit_note_find_local(*, invoice: Invoice, info: CreditNoteInfo) -> CreditNote | None:
    note = CreditNote.objects.select_for_update().filter(business=invoice.business, stripe_id=info.id).first()
    if note is not None:
        return note
    local_id = info.metadata.get("crm_credit_note_id", "")
    if local_id.isdigit():
        candidate = CreditNote.objects.select_for_update().filter(
            business=invoice.business, invoice=invoice, pk=int(local_id), stripe_id__isnull=True).first()
        if candidate is not None and key_prefix(candidate) == info.metadata.get("crm_credit_note_key"):
            return candidate
    return None


def credit_note_apply_stripe(*, invoice: Invoice, info: CreditNoteInfo) -> tuple[CreditNote, list[str]]:
    """Make the local credit note match Stripe's `info` (creating it for one made in
    Stripe). Returns the row and the changed field names ([] when already up to date)."""
    if info.invoice != invoice.stripe_invoice_id:
        raise ValueError(f"Credit note {info.id} is for invoice {info.invoice}, not {invoice.stripe_invoice_id}.")
    note = credit_note_find_local(invoice=invoice, info=info)
    made_here = note is None
    if made_here:
        note = CreditNote(business=invoice.business, invoice=invoice, push_status=CreditNotePushStatus.PUSHED,
                          livemode=invoice.livemode)
    currency = info.currency or invoice.currency
    values = {
        "stripe_id": info.id, "number": info.number[:64], "currency": currency,
        "amount": from_minor(info.amount, currency),
        "pre_payment_amount": from_minor(max(info.amount - info.post_payment_amount, 0), currency),
        "refund_amount": from_minor(info.refund_amount, currency),
        "credit_amount": from_minor(info.credit_amount, currency),
        "out_of_band_amount": from_minor(info.out_of_band_amount, currency),
        "memo": info.memo[:500], "push_status": CreditNotePushStatus.PUSHED, "last_error": "",
        "stripe_refund_id": info.refunds[0][0] if info.refunds else "",
        "issued_at": note.issued_at or _moment(info.created),
    }
    if info.reason in CreditNoteReason.values:
        values["reason"] = info.reason
    target = info.status if info.status in CreditNoteStatus.values else note.status
    if target != note.status and target in CREDIT_NOTE_TRANSITIONS[note.status]:
        values["status"] = target
        values["voided_at"] = _moment(info.voided_at) if target == CreditNoteStatus.VOID else None
    changed = [name for name, value in values.items() if getattr(note, name) != value]
    for name in changed:
        setattr(note, name, values[name])
    if made_here or changed:
        # A race on one Stripe id (two deliveries) fails the unique constraint: the
        # delivery's transaction rolls back and its retry finds the row.
        note.full_clean(validate_unique=False)
        note.save()
    return note, (["created"] if made_here else changed)
