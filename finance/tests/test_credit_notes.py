"""finance.CreditNote: the database keeps its amounts non-negative and its split equal to
its amount, whatever code writes it; the invoice page lists credit notes read-only."""
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from finance.models import CreditNote
from finance.tests.factories import InvoiceFactory, RefundFactory

pytestmark = pytest.mark.django_db

D = Decimal


def _note(invoice, **values):
    fields = {"business": invoice.business, "invoice": invoice, "currency": invoice.currency, "amount": D("10"),
              "refund_amount": D("10"), **values}
    return CreditNote(**fields)


@pytest.mark.parametrize("values", [
    {"amount": D("10"), "refund_amount": D("6")},  # the split is short of the amount
    {"amount": D("10"), "refund_amount": D("6"), "credit_amount": D("6")},  # beyond it
    {"amount": D("-5"), "refund_amount": D("-5")},  # negative
    {"amount": D("0"), "refund_amount": D("5"), "credit_amount": D("-5")},
])
def test_credit_note_constraints_refuse_a_bad_split(business_a, values):
    invoice = InvoiceFactory(business=business_a)
    with pytest.raises(ValidationError):
        _note(invoice, **values).full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        _note(invoice, **values).save()


def test_credit_note_stripe_id_unique_per_business(business_a):
    invoice = InvoiceFactory(business=business_a)
    _note(invoice, stripe_id="cn_1").save()
    with pytest.raises(IntegrityError), transaction.atomic():
        _note(invoice, stripe_id="cn_1").save()
    _note(invoice, request_key="").save()
    _note(invoice, request_key="").save()  # no key: no uniqueness to keep
    _note(invoice, request_key="k").save()
    with pytest.raises(IntegrityError), transaction.atomic():
        _note(invoice, request_key="k").save()


def test_invoice_page_lists_credit_notes_with_their_refund(client, staff_a, business_a):
    refund = RefundFactory(payment__invoice__business=business_a, stripe_refund_id="re_1", status="pending")
    invoice = refund.payment.invoice
    note = _note(invoice, number="CN-0001", stripe_id="cn_9", stripe_refund_id="re_1", push_status="pushed")
    note.save()
    client.force_login(staff_a)
    page = client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    assert "CN-0001" in page and 'data-credit-note-refund="pending"' in page
    assert "data-credit-note-form" not in page  # staff see, finance act
