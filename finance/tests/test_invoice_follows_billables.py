"""An invoice's bill-to and currency follow from its billables and cannot drift from them
(issue 12, item 1): read-only in the admin, refused by the models on every other path."""
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from crm.tests.factories import IndividualFactory
from finance.models import BillableStatus, Invoice
from finance.tests.factories import BillableFactory, InvoiceFactory, InvoiceLineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(business_a):
    """A draft invoice made from a 100.00 USD billable, as 'Send to Stripe' leaves it."""
    contact = IndividualFactory(business=business_a, name="Right Customer")
    invoice = InvoiceFactory(business=business_a, bill_to=contact, currency="USD", number="INV-000001")
    billable = BillableFactory(business=business_a, bill_to=contact, currency="USD", unit_price=Decimal("100.00"),
                               status=BillableStatus.INVOICED, invoice=invoice)
    InvoiceLineFactory(invoice=invoice, billable=billable, position=1)
    return invoice


def _post(invoice, **changes):
    data = {"number": invoice.number, "bill_to": invoice.bill_to_id, "currency": invoice.currency,
            "collection_method": invoice.collection_method, "lines-TOTAL_FORMS": 1, "lines-INITIAL_FORMS": 1,
            "lines-MIN_NUM_FORMS": 0, "lines-MAX_NUM_FORMS": 1000, "payments-TOTAL_FORMS": 0,
            "payments-INITIAL_FORMS": 0, "payments-MIN_NUM_FORMS": 0, "payments-MAX_NUM_FORMS": 1000,
            "lines-0-id": invoice.lines.get().pk, "lines-0-invoice": invoice.pk, **changes}
    return data


def test_invoice_admin_draft_bill_to_and_currency_are_read_only(client, finance_a, business_a, draft):
    other = IndividualFactory(business=business_a, name="Someone Else")
    client.force_login(finance_a)
    page = client.get(reverse("admin:finance_invoice_change", args=[draft.pk]))
    assert {"bill_to", "currency"} <= set(page.context["adminform"].readonly_fields)
    client.post(reverse("admin:finance_invoice_change", args=[draft.pk]), _post(draft, bill_to=other.pk, currency="JPY"))
    draft.refresh_from_db()
    assert (draft.bill_to.name, draft.currency) == ("Right Customer", "USD")


def test_invoice_clean_refuses_another_bill_to_or_currency_once_it_has_billables(business_a, draft):
    other = IndividualFactory(business=business_a)
    for change in ({"currency": "JPY"}, {"bill_to": other}):
        invoice = Invoice.objects.get(pk=draft.pk)
        for name, value in change.items():
            setattr(invoice, name, value)
        with pytest.raises(ValidationError) as raised:
            invoice.full_clean()
        assert set(raised.value.message_dict) == set(change) and "follows from its billables" in str(raised.value)


def test_invoice_clean_lets_an_invoice_without_billables_change(business_a):
    invoice = InvoiceFactory(business=business_a, currency="USD")
    invoice.currency = "EUR"
    invoice.full_clean()  # nothing billed on it yet: nothing to drift from


def test_billable_clean_refuses_another_bill_to_or_currency_while_on_an_invoice(business_a, draft):
    billable = draft.billables.get()
    billable.currency = "JPY"
    with pytest.raises(ValidationError, match="is on INV-000001"):
        billable.full_clean()
