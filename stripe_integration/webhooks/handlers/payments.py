"""Handlers of payment events: PaymentIntents and charges (payment history, refunds)
and saved cards (the customer's default payment method)."""
from __future__ import annotations

from finance.models import Payment

from .. import apply as payments
from ..context import EventContext, EventIgnored, invoice_for_intent, invoice_reconcile, obj_id
from ...customers.cards import customer_card_record
from ...gateway.cards import card_info
from ...gateway.client import NotFound


def _note(notes: list[str]) -> str:
    return "; ".join(notes) if notes else "already up to date"


def on_payment_intent(ctx: EventContext) -> str:
    """payment_intent.processing / succeeded / payment_failed: the invoice it pays is
    reconciled, this PaymentIntent included even if Stripe lists it nowhere else."""
    intent_id = obj_id(ctx.obj)
    invoice = invoice_for_intent(ctx, intent_id)
    return _note(invoice_reconcile(ctx, invoice, also_intents=(intent_id,)))


def on_charge(ctx: EventContext) -> str:
    """charge.succeeded / charge.refunded (partial or full: the charge's cumulative
    amount_refunded is what counts)."""
    intent_id = ctx.obj.get("payment_intent")
    intent_id = intent_id.get("id") if isinstance(intent_id, dict) else intent_id
    if not intent_id:
        raise EventIgnored("A charge without a PaymentIntent pays no invoice.")
    invoice = invoice_for_intent(ctx, intent_id)
    return _note(invoice_reconcile(ctx, invoice, also_intents=(intent_id,)))


def on_refund(ctx: EventContext) -> str:
    """charge.refund.updated / refund.updated / refund.failed: a refund changed (failed,
    canceled...). The invoice its payment paid is reconciled: the refund rows and the
    payment's refunded amount are read again from Stripe's current charge and refunds."""
    refund = ctx.obj
    intent_id = payments.id_of(refund.get("payment_intent"))
    if not intent_id:
        charge_id = payments.id_of(refund.get("charge"))
        intent_id = (Payment.objects.filter(business=ctx.business, stripe_charge_id=charge_id)
                     .values_list("stripe_payment_intent_id", flat=True).first()) if charge_id else None
    if not intent_id:
        raise EventIgnored("The refund names no PaymentIntent the app knows.")
    invoice = invoice_for_intent(ctx, intent_id)
    return _note(invoice_reconcile(ctx, invoice, also_intents=(intent_id,)))


# --- saved cards ----------------------------------------------------------------------
def on_setup_intent_succeeded(ctx: EventContext) -> str:
    setup = ctx.obj
    customer_id, pm_id = payments.id_of(setup.get("customer")), payments.id_of(setup.get("payment_method"))
    if not customer_id or not pm_id:
        raise EventIgnored("The SetupIntent saved no card for a customer.")
    return default_payment_method_set(ctx, customer_id=customer_id, payment_method_id=pm_id)


def on_checkout_session_completed(ctx: EventContext) -> str:
    """A Checkout session that saved a card: setup mode, or payment mode with
    setup_future_usage."""
    session = ctx.obj
    customer_id = payments.id_of(session.get("customer"))
    if session.get("mode") == "setup" and session.get("setup_intent"):
        setup = ctx.gw.setup_intent_retrieve(account=ctx.account, setup_intent_id=payments.id_of(session["setup_intent"]))
        if setup.get("status") != "succeeded":
            raise EventIgnored("The session's SetupIntent has not succeeded.")
        customer_id = customer_id or payments.id_of(setup.get("customer"))
        pm_id = payments.id_of(setup.get("payment_method"))
    elif session.get("mode") == "payment" and session.get("payment_intent"):
        intent = ctx.gw.payment_intent_retrieve(account=ctx.account, payment_intent_id=payments.id_of(session["payment_intent"]))
        if not intent.get("setup_future_usage"):
            raise EventIgnored("The session paid without saving the card.")
        customer_id = customer_id or payments.id_of(intent.get("customer"))
        pm_id = payments.id_of(intent.get("payment_method"))
    else:
        raise EventIgnored("The session saved no card.")
    if not customer_id or not pm_id:
        raise EventIgnored("The session saved no card for a customer.")
    return default_payment_method_set(ctx, customer_id=customer_id, payment_method_id=pm_id)


def default_payment_method_set(ctx: EventContext, *, customer_id: str, payment_method_id: str) -> str:
    """Make the saved card the customer's default (invoice_settings), unless a card saved
    later already is: events may come in any order, so the cards' own creation times
    decide, read from Stripe. The default card, whichever it is, is then kept on the
    contact's customer link (brand, last4, expiry) for the contact page."""
    note, default_card = _default_choose(ctx, customer_id=customer_id, payment_method_id=payment_method_id)
    if customer_card_record(connection=ctx.connection, customer_id=customer_id, card=card_info(default_card)):
        note += "; contact's card updated"
    return note


def _default_choose(ctx: EventContext, *, customer_id: str, payment_method_id: str) -> tuple[str, dict]:
    gw, account = ctx.gw, ctx.account
    try:
        customer = gw.customer_retrieve(account=account, customer_id=customer_id)
        card = gw.payment_method_retrieve(account=account, payment_method_id=payment_method_id)
    except NotFound:
        raise EventIgnored("The customer or the card no longer exists.") from None
    if customer.get("deleted"):
        raise EventIgnored(f"Customer {customer_id} was deleted.")
    if payments.id_of(card.get("customer")) != customer_id:
        raise EventIgnored(f"Card {payment_method_id} is not attached to {customer_id} (any more).")
    current = payments.id_of((customer.get("invoice_settings") or {}).get("default_payment_method"))
    if current == payment_method_id:
        return f"{payment_method_id} is already the default of {customer_id}", card
    if current:
        try:
            current_card = gw.payment_method_retrieve(account=account, payment_method_id=current)
        except NotFound:
            current_card = {}
        if payments.id_of(current_card.get("customer")) == customer_id and (current_card.get("created") or 0) >= (card.get("created") or 0):
            return f"kept {current}: saved no earlier than {payment_method_id}", current_card
    gw.customer_default_payment_method_set(
        account=account, customer_id=customer_id, payment_method_id=payment_method_id,
        idempotency_key=f"crm-default-pm-{customer_id}-{payment_method_id}",
    )
    return f"{payment_method_id} is now the default of {customer_id}", card


HANDLERS = {
    "payment_intent.processing": on_payment_intent,
    "payment_intent.succeeded": on_payment_intent,
    "payment_intent.payment_failed": on_payment_intent,
    "charge.succeeded": on_charge,
    "charge.refunded": on_charge,
    "charge.refund.updated": on_refund,
    "refund.updated": on_refund,
    "refund.failed": on_refund,
    "checkout.session.completed": on_checkout_session_completed,
    "setup_intent.succeeded": on_setup_intent_succeeded,
}
