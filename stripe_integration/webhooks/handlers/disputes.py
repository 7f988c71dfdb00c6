"""Handlers of dispute events (charge.dispute.created / updated / closed /
funds_withdrawn / funds_reinstated): the dispute row on the disputed payment, and the
payment's and invoice's disputed figures and flag (writes in `apply_disputes.py`).
Each event applies the dispute as Stripe has it now (retrieved through the gateway), forward
only, so their order and copies do not matter."""
from __future__ import annotations

from django.db.models import Q

from finance.models import Invoice, Payment

from .. import apply as payments
from ..apply_disputes import UnknownDisputeStatus, dispute_apply, invoice_refresh_disputes, payment_refresh_disputed
from ...gateway.client import NotFound
from ...gateway.disputes import dispute_retrieve
from ..context import EventContext, EventIgnored, EventParked, invoice_for_intent, invoice_reconcile, obj_id


def _disputed_payment(ctx: EventContext, dispute: dict) -> Payment:
    """The local payment the dispute is about, its invoice locked first (as every handler
    of the invoice's events does, so they queue in one order). A payment the app has not
    recorded yet is read from Stripe through its invoice's reconcile."""
    charge_id = payments.id_of(dispute.get("charge"))
    intent_id = payments.id_of(dispute.get("payment_intent"))
    match = Q(pk__in=[])
    if charge_id:
        match |= Q(stripe_charge_id=charge_id)
    if intent_id:
        match |= Q(stripe_payment_intent_id=intent_id)
    invoice_id = Payment.objects.filter(match, business=ctx.business).values_list("invoice_id", flat=True).first()
    if invoice_id is not None:
        Invoice.objects.select_for_update().get(pk=invoice_id)
    elif intent_id:
        invoice_reconcile(ctx, invoice_for_intent(ctx, intent_id), also_intents=(intent_id,))
    else:
        raise EventIgnored("The dispute names no payment the app knows.")
    payment = Payment.objects.select_related("invoice").filter(match, business=ctx.business).first()
    if payment is None:
        raise EventParked(f"The disputed payment {intent_id or charge_id} is not recorded yet.")
    return payment


def on_dispute(ctx: EventContext) -> str:
    dispute_id = obj_id(ctx.obj)
    payment = _disputed_payment(ctx, ctx.obj)  # its invoice locked: the next handler waits for this one
    try:
        dispute = dispute_retrieve(ctx.gw, account=ctx.account, dispute_id=dispute_id)
    except NotFound:
        raise EventIgnored(f"Stripe has no dispute {dispute_id}.") from None
    if payments.id_of(dispute.get("charge")) not in (None, payment.stripe_charge_id):
        raise EventIgnored(f"Dispute {dispute_id} is about another charge than the event said.")
    try:
        row, changed = dispute_apply(payment=payment, dispute=dispute, seen_at=payments.time_of(ctx.event.get("created")))
    except UnknownDisputeStatus as exc:
        raise EventIgnored(str(exc)) from None
    notes = [f"dispute {row.stripe_id}: {row.status}" if changed else f"dispute {row.stripe_id} already {row.status}"]
    if payment_refresh_disputed(payment=payment):
        notes.append(f"payment disputed {payment.amount_disputed}")
    invoice = payment.invoice
    invoice.refresh_from_db()
    if invoice_refresh_disputes(invoice=invoice):
        notes.append(f"invoice {invoice.number}: {'flagged' if invoice.disputed else 'not flagged'}, "
                     f"net paid {invoice.net_paid}")
    return "; ".join(notes)


HANDLERS = {
    "charge.dispute.created": on_dispute,
    "charge.dispute.updated": on_dispute,
    "charge.dispute.closed": on_dispute,
    "charge.dispute.funds_withdrawn": on_dispute,
    "charge.dispute.funds_reinstated": on_dispute,
}
