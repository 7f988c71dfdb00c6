"""Stripe Billing in the sandbox: tax rates, coupons and discounts, invoice items,
invoices and invoice payments. The code lives in the billing_* modules:

* billing_tax.py      tax rates, coupons, discount objects
* billing_items.py    invoice items
* billing_lines.py    invoice line items; refreshing a draft's lines and totals
* billing_totals.py   the arithmetic (discounts, taxes, totals), documented there
* billing_invoices.py invoices: create, read, update, delete, list, lines
* billing_collect.py  finalize, send, pay, void, mark_uncollectible, invoice payments
* billing_common.py   internal fields, answers, expansion, rounding

This module is the billing side of the interface with payments.py (which calls it
lazily, as billing calls `payments.collect_payment`):

    invoice_get(ctx, invoice_id) -> dict
    invoice_apply_payment(ctx, invoice_id, *, payment_intent, charge) -> dict
    invoice_record_failed_attempt(ctx, invoice_id, *, payment_intent, error) -> dict
    invoice_record_processing(ctx, invoice_id, *, payment_intent) -> dict

Each returns the invoice as a copy without internal fields. The hosted invoice page
finds an invoice by its internal `_hosted_token` (set at finalization).
"""

from .billing_collect import (
    invoice_apply_payment, invoice_get, invoice_record_failed_attempt, invoice_record_processing,
)

__all__ = ["invoice_apply_payment", "invoice_get", "invoice_record_failed_attempt", "invoice_record_processing"]
