"""`{% invoice_payment_history invoice %}`: an invoice's payments (amount, method, card,
fee and net, refunds) and its payment state, as Stripe's webhooks recorded them. One tag,
so any page that shows an invoice can show its history (the invoice page fills its
`invoice_extra` block with it)."""
from django import template

from finance import selectors

register = template.Library()


@register.inclusion_tag("ui/_payment_history.html")
def invoice_payment_history(invoice):
    payments = selectors.invoice_payments(invoice=invoice)
    return {
        "invoice": invoice,
        "payments": payments,
        "processing": [p for p in payments if p.status == "processing"],
    }


@register.inclusion_tag("ui/_credit_notes.html")
def invoice_credit_notes(invoice):
    """The invoice's credit notes (issue 13) with their refunds' status, and its credited
    figures, read-only: making one is the Stripe integration's form on the same page."""
    return {"invoice": invoice, "credit_notes": selectors.invoice_credit_notes(invoice=invoice)}
