"""Finance writes (STYLE.md 1): keyword-only `<entity>_<action>` functions that validate
with full_clean() before save(). Celery tasks in `finance.tasks` only load ids and call these.
"""
from decimal import Decimal

from django.db import transaction

from finance.models import Invoice

TOTAL_FIELDS = ("subtotal", "discount_total", "tax_total", "total", "amount_remaining")


def invoice_line_sums(invoice: Invoice) -> dict[str, Decimal]:
    """Sum the stored amounts of the invoice's lines: subtotal, discount_total, tax_total,
    total. Lines carry their computed figures (signed: a credit line is negative, as in
    `finance.money.LineAmounts`), already rounded to the currency, so plain sums are exact.

    Summed in Python, not with SQL SUM(): SQLite adds decimal columns as floats.
    """
    sums = {"subtotal": Decimal(0), "discount_total": Decimal(0), "tax_total": Decimal(0), "total": Decimal(0)}
    for subtotal, discount, tax, total in invoice.lines.values_list("subtotal", "discount_amount", "tax", "total"):
        sums["subtotal"] += subtotal
        sums["discount_total"] += discount
        sums["tax_total"] += tax
        sums["total"] += total
    return sums


def invoice_recalculate_totals(*, invoice_id: int) -> Invoice:
    """Recompute an invoice's totals and amount remaining from its lines.

    The row lock serialises concurrent recalculations (and payment updates that also lock
    the invoice), so amount_remaining is never computed from a stale amount_paid.
    """
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        for field, value in invoice_line_sums(invoice).items():
            setattr(invoice, field, value)
        invoice.amount_remaining = invoice.total - invoice.amount_paid
        invoice.full_clean()
        invoice.save(update_fields=[*TOTAL_FIELDS, "updated_at"])
    return invoice


def invoice_recalculate_totals_later(*, invoice: Invoice) -> None:
    """Recalculate in a Celery task once the caller's transaction commits (so the worker
    sees the lines just written); nothing is enqueued if the transaction rolls back."""
    # Imported here: finance.tasks imports this module.
    from finance.tasks import invoice_recalculate_totals_task

    invoice_id = invoice.pk
    transaction.on_commit(lambda: invoice_recalculate_totals_task.delay(invoice_id))
