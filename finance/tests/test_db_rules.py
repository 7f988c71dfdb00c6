"""The rules of billables, lines, prices and payments hold in the database too (issue 12,
item 13): `update()`, `bulk_create` and a second process skip the model validators, so
each rule is a CheckConstraint / UniqueConstraint, on SQLite and PostgreSQL alike."""
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from finance.models import Billable, BillableStatus, InvoiceLine, Payment, PaymentMethod
from finance.tests.factories import BillableFactory, InvoiceFactory, InvoiceLineFactory, PaymentFactory
from services.models import ServicePrice
from services.tests.factories import ServicePriceFactory

pytestmark = pytest.mark.django_db
D = Decimal


def _refused(action):
    with pytest.raises(IntegrityError), transaction.atomic():
        action()


@pytest.mark.parametrize("change", [
    {"quantity": D("0")}, {"quantity": D("-1")}, {"unit_price": D("-0.01")}, {"vat_rate": D("-1")},
    {"vat_rate": D("100.01")}, {"discount_percent": D("-5")}, {"discount_percent": D("101")},
    {"discount_amount": D("-1")}, {"status": BillableStatus.INVOICED, "invoice": None},
])
def test_billable_rules_refuse_update_and_bulk_create(business_a, change):
    billable = BillableFactory(business=business_a)
    _refused(lambda: Billable.objects.filter(pk=billable.pk).update(**change))
    row = {"business": business_a, "bill_to": billable.bill_to, "quantity": D("1"), "unit_price": D("10"),
           "currency": "USD", **change}
    _refused(lambda: Billable.objects.bulk_create([Billable(**row)]))


def test_billable_rules_let_valid_rows_through(business_a):
    billable = BillableFactory(business=business_a, unit_price=None, quantity=D("0.001"))
    invoice = InvoiceFactory(business=business_a, bill_to=billable.bill_to)
    assert Billable.objects.filter(pk=billable.pk).update(
        vat_rate=D("100"), discount_percent=D("100"), status=BillableStatus.INVOICED, invoice=invoice) == 1
    assert Billable.objects.filter(pk=billable.pk).update(discount_percent=None, discount_amount=D("0")) == 1


@pytest.mark.parametrize("change", [
    {"quantity": D("0")}, {"unit_price": D("-1")}, {"vat_rate": D("120")}, {"discount_percent": D("-1")},
])
def test_invoice_line_rules_refuse_update(business_a, change):
    line = InvoiceLineFactory(invoice__business=business_a)
    _refused(lambda: InvoiceLine.objects.filter(pk=line.pk).update(**change))


def test_invoice_line_one_line_per_position(business_a):
    first = InvoiceLineFactory(invoice__business=business_a, position=1)
    second = InvoiceLineFactory(invoice=first.invoice, position=2)
    _refused(lambda: InvoiceLine.objects.filter(pk=second.pk).update(position=1))
    copy = InvoiceLine(business=business_a, invoice=first.invoice, position=1, description="again",
                       quantity=D("1"), unit_price=D("1"))
    _refused(lambda: InvoiceLine.objects.bulk_create([copy]))
    # the same position on another invoice is fine
    InvoiceLineFactory(invoice__business=business_a, position=1)


def test_service_price_cannot_be_negative(business_a):
    price = ServicePriceFactory(service__business=business_a)
    _refused(lambda: ServicePrice.objects.filter(pk=price.pk).update(amount=D("-1")))


def test_payment_one_out_of_band_payment_per_invoice(business_a):
    invoice = InvoiceFactory(business=business_a)
    PaymentFactory(invoice=invoice, method=PaymentMethod.OUT_OF_BAND)
    _refused(lambda: Payment.objects.bulk_create([
        Payment(business=business_a, invoice=invoice, amount=D("1"), currency="USD", method=PaymentMethod.OUT_OF_BAND)]))
    card = PaymentFactory(invoice=invoice, method=PaymentMethod.CARD)  # other payments: as many as Stripe reports
    PaymentFactory(invoice=invoice, method=PaymentMethod.CARD)
    _refused(lambda: Payment.objects.filter(pk=card.pk).update(method=PaymentMethod.OUT_OF_BAND))
    PaymentFactory(invoice=InvoiceFactory(business=business_a), method=PaymentMethod.OUT_OF_BAND)  # another invoice
