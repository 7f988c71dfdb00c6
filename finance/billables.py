"""Recording billables (issue 14): the service functions staff and finance call from the
staff UI to add, edit and remove UNBILLED billables.

Each write runs the model's full_clean (its validators, constraints and the list-price
rule of `Billable.clean`), and takes the business's row lock first, the lock
finance.invoices.invoices_create_from_billables takes: an edit and an invoice run on the
same billable happen one after the other, so an edit never lands on a billable already
invoiced. Invoiced, paid and void billables are history: changing them is refused with a
ValidationError that says why.
"""
from django.core.exceptions import ValidationError
from django.db import transaction

from crm.models import Business
from finance.models import Billable, BillableStatus

# The fields staff may set; everything else (status, invoice, business) is the app's.
EDITABLE_FIELDS = (
    "bill_to", "opportunity", "ticket", "service", "description", "quantity", "unit_price", "currency",
    "discount_percent", "discount_amount", "vat_rate", "prices_include_vat", "line_type", "service_date",
)


class BillableReadOnly(ValidationError):
    """The billable is on an invoice (or paid, or void): it can no longer change."""


def _lock_business(business: Business) -> None:
    Business.objects.select_for_update().filter(pk=business.pk).values_list("pk", flat=True).get()


def _locked_unbilled(billable: Billable, verb: str) -> Billable:
    current = Billable.objects.select_for_update().get(pk=billable.pk, business_id=billable.business_id)
    if current.status != BillableStatus.UNBILLED:
        where = f" on invoice {current.invoice.number}" if current.invoice_id else ""
        raise BillableReadOnly(
            f"“{current}” is {current.get_status_display().lower()}{where}: only unbilled billables can be {verb}. "
            "Correct an invoiced amount with a credit note.")
    return current


def _unknown(data: dict) -> None:
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"Not editable on a billable: {', '.join(sorted(unknown))}")


def billable_create(*, business: Business, **data) -> Billable:
    """A new unbilled billable. Leave `unit_price` None for the service's list price in
    `currency` (a ValidationError when it has none)."""
    _unknown(data)
    billable = Billable(business=business, **data)
    with transaction.atomic():
        _lock_business(business)
        billable.full_clean()
        billable.save()
    return billable


def billable_update(*, billable: Billable, data: dict) -> Billable:
    """Change an unbilled billable; refused (BillableReadOnly) once it is invoiced."""
    _unknown(data)
    with transaction.atomic():
        _lock_business(billable.business)
        current = _locked_unbilled(billable, "edited")
        for name, value in data.items():
            setattr(current, name, value)
        if "unit_price" in data and data["unit_price"] is None:
            current.uses_list_price = False  # recomputed by clean() from the list price
        current.full_clean()
        current.save()
    return current


def billable_delete(*, billable: Billable) -> None:
    """Remove an unbilled billable; refused (BillableReadOnly) once it is invoiced."""
    with transaction.atomic():
        _lock_business(billable.business)
        _locked_unbilled(billable, "removed").delete()
