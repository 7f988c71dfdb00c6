"""What the event handlers share: their context, the outcomes other than "processed", and
the reconciliation of one invoice with Stripe's current state.

Handlers run inside the delivery's transaction (see `processing.delivery_process`): what they
write commits together with the delivery marked processed, or not at all.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from crm.models import Business
from finance.models import Invoice, Payment
from finance.money import format_money

from . import apply as payments
from ..gateway.client import Gateway
from ..models import StripeConnection, WebhookDelivery


class EventIgnored(Exception):
    """Nothing to do for this event (other mode, unknown account, not ours): recorded as
    ignored, never retried."""


class EventParked(Exception):
    """The event is about an object the app does not know yet (a payment before its
    invoice is saved): kept and retried later, never dropped."""


@dataclass
class EventContext:
    delivery: WebhookDelivery
    event: dict
    connection: StripeConnection | None
    gateway_factory: Callable[[], Gateway] | None = field(repr=False, default=None)
    # The invoices the handler locked, with what they were before it ran (the invoice
    # page's history records what the event changed: processing.delivery_process).
    touched: dict[int, tuple[Invoice, dict]] = field(default_factory=dict, repr=False)

    @property
    def type(self) -> str:
        return self.event["type"]

    @property
    def obj(self) -> dict:
        data = self.event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            raise EventIgnored("The event carries no object (a thin event?): nothing to apply.")
        return obj

    @property
    def account(self) -> str:
        return self.delivery.account

    @property
    def business(self) -> Business:
        return self.connection.business

    @cached_property
    def gw(self) -> Gateway:
        return self.gateway_factory()


def obj_id(obj: dict, key: str = "id") -> str:
    value = obj.get(key)
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise EventIgnored(f"The event's object has no {key}.")
    return value


# --- finding the local invoice ----------------------------------------------------------
def invoice_by_stripe_id(ctx: EventContext, stripe_invoice_id: str) -> Invoice:
    """The business's invoice, locked; parked if the app does not know it yet (the
    invoice push saves the Stripe id after Stripe has made the invoice)."""
    invoice = payments.invoice_lock(business=ctx.business, stripe_invoice_id=stripe_invoice_id)
    if invoice is None:
        raise EventParked(f"No invoice of {ctx.business} has the Stripe id {stripe_invoice_id} yet.")
    ctx.touched.setdefault(invoice.pk, (invoice, invoice_snapshot(invoice)))
    return invoice


# What the history says an event changed on an invoice: (field, label, is money).
HISTORY_FIELDS = (
    ("status", "status", False), ("amount_paid", "paid", True), ("amount_remaining", "remaining", True),
    ("amount_refunded", "refunded", True), ("disputed", "disputed", False), ("stripe_number", "Stripe number", False),
)


def invoice_snapshot(invoice: Invoice) -> dict:
    return {name: getattr(invoice, name) for name, _, _ in HISTORY_FIELDS}


def invoice_changes(before: dict, after: dict, currency: str) -> list[str]:
    """["status open → paid", "remaining 100.00 USD → 0.00 USD"] for what differs."""
    changes = []
    for name, label, is_money in HISTORY_FIELDS:
        old, new = before.get(name), after.get(name)
        if old != new:
            if is_money:
                old, new = format_money(old, currency), format_money(new, currency)
            changes.append(f"{label} {old if old not in ('', None) else '—'} → {new}")
    return changes


def invoice_for_intent(ctx: EventContext, payment_intent_id: str) -> Invoice:
    """The invoice a PaymentIntent pays: through the payment the app already recorded, or
    through Stripe's invoice payments (basil and later: PaymentIntents and charges no
    longer name their invoice). Ignored if it pays no invoice (e.g. a Checkout payment)."""
    known = (Payment.objects.filter(business=ctx.business, stripe_payment_intent_id=payment_intent_id)
             .values_list("invoice__stripe_invoice_id", flat=True).first())
    if known:
        return invoice_by_stripe_id(ctx, known)
    links = ctx.gw.invoice_payments_list(account=ctx.account, payment_intent_id=payment_intent_id)
    invoice_ids = [link.get("invoice") for link in links if isinstance(link.get("invoice"), str)]
    if not invoice_ids:
        raise EventIgnored(f"PaymentIntent {payment_intent_id} pays no invoice.")
    return invoice_by_stripe_id(ctx, invoice_ids[0])


# --- reconciling one invoice ----------------------------------------------------------
def invoice_reconcile(ctx: EventContext, invoice: Invoice, *, also_intents: tuple[str, ...] = ()) -> list[str]:
    """Make the locked invoice match Stripe's current state: the invoice itself, each of
    its payments (PaymentIntent, charge, balance transaction, refunds). Every event about
    an invoice or its payments lands here, so their order and number do not matter: the
    last one applied reads the newest state, and the lock makes "last" well defined.
    Returns a short note of what changed."""
    account, gw = ctx.account, ctx.gw
    notes = []
    stripe_invoice = gw.invoice_retrieve(account=account, invoice_id=invoice.stripe_invoice_id)
    changed = payments.invoice_apply_stripe(invoice=invoice, stripe_invoice=stripe_invoice)
    if changed:
        notes.append(f"invoice {invoice.number}: {', '.join(changed)}")
    links = gw.invoice_payments_list(account=account, invoice_id=invoice.stripe_invoice_id)
    intent_ids = [link["payment"].get("payment_intent") for link in links
                  if (link.get("payment") or {}).get("type") == "payment_intent"]
    stripe_paid = 0
    for intent_id in dict.fromkeys([*filter(None, intent_ids), *also_intents]):
        intent = gw.payment_intent_retrieve(account=account, payment_intent_id=intent_id)
        payment, changed = payments.payment_apply_intent(invoice=invoice, intent=intent)
        if payment is None:
            continue
        if changed:
            notes.append(f"payment {intent_id}: {payment.status}")
        charge = intent.get("latest_charge")
        # Refunds are read while the charge has some refunded, and again once it has none
        # left (a refund that failed): the rows the app holds take Stripe's status.
        if isinstance(charge, dict) and (charge.get("amount_refunded") or payment.refunds.exists()):
            created = payments.refunds_apply(payment=payment, refunds=gw.refunds_list(account=account, charge_id=charge["id"]))
            if created:
                notes.append(f"{created} refund(s)")
    for link in links:
        if link.get("status") == "paid":
            stripe_paid += int(link.get("amount_paid") or 0)
    if invoice.status == "paid":
        # amount_paid counts payments made outside Stripe too (paid_out_of_band): what the
        # invoice payments do not explain was paid outside Stripe, as Stripe has it now.
        off_stripe = int(stripe_invoice.get("amount_paid") or 0) - stripe_paid
        if (stripe_invoice.get("currency") or "").upper() == invoice.currency:
            if payments.payment_record_out_of_band(invoice=invoice, amount=payments.money_of(off_stripe, invoice.currency)):
                notes.append("paid out of band")
    if payments.invoice_refresh_refunded(invoice=invoice):
        notes.append(f"refunded {invoice.amount_refunded}")
    return notes
