"""Handlers of credit note events (issue 13): credit_note.created / updated / voided.

Each reads the credit note as Stripe has it now (through the gateway), so duplicates and
order do not matter, records it with `credit_notes.apply.credit_note_apply_stripe` (the
function the CRM's own push uses: a credit note made in the CRM is matched by its
metadata, one made in the Dashboard gets a row), then reconciles the invoice: credited
figures, amount remaining, refunds (a refund the credit note made is a finance.Refund).
"""
from __future__ import annotations

from ...credit_notes.apply import credit_note_apply_stripe
from ...gateway.client import NotFound
from ..context import EventContext, EventIgnored, invoice_by_stripe_id, invoice_reconcile, obj_id


def on_credit_note(ctx: EventContext) -> str:
    invoice_id = obj_id(ctx.obj, "invoice")
    invoice = invoice_by_stripe_id(ctx, invoice_id)
    try:
        info = ctx.gw.credit_note_retrieve(account=ctx.account, credit_note_id=obj_id(ctx.obj))
    except NotFound:
        raise EventIgnored("Stripe no longer has this credit note.") from None
    note, changed = credit_note_apply_stripe(invoice=invoice, info=info)
    notes = [f"credit note {note.number or info.id}: {', '.join(changed)}"] if changed else []
    notes += invoice_reconcile(ctx, invoice)
    return "; ".join(notes) if notes else "already up to date"


HANDLERS = {
    "credit_note.created": on_credit_note,
    "credit_note.updated": on_credit_note,
    "credit_note.voided": on_credit_note,
}
