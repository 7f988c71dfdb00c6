"""Handlers of invoice events: each one reconciles the invoice with Stripe's current
state (`..context.invoice_reconcile`), so a late `invoice.finalized` after
`invoice.paid` reads a paid invoice and changes nothing."""
from __future__ import annotations

from ...rules.mapping import invoice_apply_from_stripe
from .. import apply as payments
from ..context import EventContext, EventIgnored, invoice_by_stripe_id, invoice_reconcile, obj_id


def _note(notes: list[str]) -> str:
    return "; ".join(notes) if notes else "already up to date"


def on_invoice_changed(ctx: EventContext) -> str:
    invoice = invoice_by_stripe_id(ctx, obj_id(ctx.obj))
    notes = invoice_reconcile(ctx, invoice)
    # Mapped invoice custom fields from the Stripe invoice's metadata (rules/mapping.py).
    if invoice_apply_from_stripe(invoice=invoice, metadata=(ctx.obj or {}).get("metadata")):
        notes.append("custom fields from Stripe's metadata")
    return _note(notes)


def on_invoice_deleted(ctx: EventContext) -> str:
    # Only drafts are deleted, and a deleted invoice can no longer be retrieved: the event
    # is the last word, no reconciliation.
    invoice = payments.invoice_lock(business=ctx.business, stripe_invoice_id=obj_id(ctx.obj))
    if invoice is None:
        raise EventIgnored("No local invoice has this Stripe draft.")
    if payments.invoice_unlink_deleted_draft(invoice=invoice):
        return f"invoice {invoice.number}: Stripe draft deleted, unlinked"
    return f"invoice {invoice.number} is {invoice.status}: nothing to unlink"


HANDLERS = {
    "invoice.finalized": on_invoice_changed,
    "invoice.sent": on_invoice_changed,
    "invoice.updated": on_invoice_changed,
    "invoice.paid": on_invoice_changed,
    "invoice.payment_succeeded": on_invoice_changed,
    "invoice.payment_failed": on_invoice_changed,
    "invoice.voided": on_invoice_changed,
    "invoice.marked_uncollectible": on_invoice_changed,
    "invoice.deleted": on_invoice_deleted,
}
