"""Writes of invoice and payment custom fields (crm.custom_fields checks the values).

Staff edit them in the admin (crm.custom_fields_admin); the Stripe integration sets the
mapped ones from Stripe's invoice and payment metadata (`*_custom_fields_set`).
"""
from django.db import transaction

from crm.custom_fields import custom_values_clean
from crm.models import CustomFieldTarget
from finance.models import Invoice, Payment


def _set(row, target: str, values: dict):
    merged = {k: v for k, v in {**(row.custom_fields or {}), **values}.items() if v is not None}
    merged = custom_values_clean(business=row.business_id, applies_to=target, values=merged, current=row.custom_fields)
    if merged != row.custom_fields:
        row.custom_fields = merged
        # Only this field changes: its own checks (the row's others were checked when saved).
        row.clean_fields(exclude=[f.name for f in row._meta.fields if f.name != "custom_fields"])
        row.save(update_fields=["custom_fields", "updated_at"])
    return row


@transaction.atomic
def invoice_custom_fields_set(*, invoice: Invoice, values: dict) -> Invoice:
    """Set some custom fields of an invoice (others kept; None removes one)."""
    return _set(invoice, CustomFieldTarget.INVOICE, values)


@transaction.atomic
def payment_custom_fields_set(*, payment: Payment, values: dict) -> Payment:
    """Set some custom fields of a payment (others kept; None removes one)."""
    return _set(payment, CustomFieldTarget.PAYMENT, values)
