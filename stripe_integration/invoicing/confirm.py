"""Which invoice actions ask for confirmation first, and what the confirmation page says.

Void, mark uncollectible and delete draft cannot be taken back (void and delete are
final; uncollectible changes what the business counts as owed), so the staff page and
the admin show what will happen and run the action only on a second, explicit POST
(`confirmed=yes`). Used by `invoicing.views` and `invoicing.admin`.
"""
from __future__ import annotations

from finance.money import format_money
from finance.models import Invoice

CONFIRM_ACTIONS = ("void", "mark_uncollectible", "delete_draft")
CONFIRM_FIELD = "confirmed"


def needs_confirmation(action: str) -> bool:
    return action in CONFIRM_ACTIONS


def action_consequences(invoice: Invoice, action: str) -> list[str]:
    """Plain sentences: what `action` does to this invoice, its billables and Stripe."""
    total = format_money(invoice.total, invoice.currency)
    remaining = format_money(invoice.amount_remaining, invoice.currency)
    billables = invoice.billables.count()
    where = f"Stripe invoice {invoice.stripe_invoice_id}" if invoice.stripe_invoice_id else "no Stripe invoice yet"
    if action == "void":
        return [
            f"Stripe voids {invoice.number} ({where}, total {total}, {remaining} still owed). "
            "The customer can no longer pay it from the payment page.",
            "A void is final: it cannot be reopened. To bill again, make a new invoice.",
            f"Its {billables} billable(s) become unbilled again, so they can go on another invoice.",
            "Nothing is refunded: payments already made stay as they are.",
        ]
    if action == "mark_uncollectible":
        return [
            f"Stripe marks {invoice.number} ({where}) uncollectible: the {remaining} still owed is "
            "counted as bad debt, no longer as outstanding.",
            "It can still be paid later (the customer, or marked paid outside Stripe) or voided.",
            f"Its {billables} billable(s) stay invoiced.",
        ]
    if action == "delete_draft":
        return [
            f"The draft {invoice.number} (total {total}) is deleted here"
            + (f", and its Stripe draft ({where}) in Stripe." if invoice.stripe_invoice_id or invoice.push_attempts else "; nothing was sent to Stripe yet."),
            "Deleting cannot be undone.",
            f"Its {billables} billable(s) become unbilled again.",
        ]
    raise ValueError(f"{action!r} needs no confirmation")
