"""The admin as finance sees it: the product's name, money shown as money, lines named
after their invoice, and no add or delete of payments and refunds (they come from Stripe)."""
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils.html import escape

from crm.tests.factories import UserFactory
from finance.models import Payment, Refund
from finance.tests.factories import InvoiceFactory, InvoiceLineFactory, PaymentFactory, RefundFactory

pytestmark = pytest.mark.django_db


def _url(model, view, *args):
    return reverse(f"admin:finance_{model._meta.model_name}_{view}", args=args)


def test_admin_carries_the_product_name(client, finance_a):
    client.force_login(finance_a)
    body = client.get(reverse("admin:index")).content.decode()
    name = escape(settings.PRODUCT_NAME)
    assert f"{name} admin" in body and "Django administration" not in body
    assert f"| {name}</title>" in body


def test_admin_payment_and_refund_names_show_money(client, finance_a, business_a):
    payment = PaymentFactory(invoice__business=business_a, amount=Decimal("33615.000"), currency="USD",
                             status="partially_refunded")
    RefundFactory(payment=payment, amount=Decimal("15.5"), currency="USD")
    kwd = PaymentFactory(invoice__business=business_a, amount=Decimal("12.345"), currency="KWD", status="succeeded")
    assert str(payment) == "Payment of 33,615.00 USD (partially refunded)"
    assert str(kwd) == "Payment of 12.345 KWD (succeeded)"
    client.force_login(finance_a)
    payments = client.get(_url(Payment, "changelist")).content.decode()
    assert "33,615.00 USD" in payments and "33615.000" not in payments and "(partially_refunded)" not in payments
    refunds = client.get(_url(Refund, "changelist")).content.decode()
    assert "Refund of 15.50 USD" in refunds and "Payment of 33,615.00 USD" in refunds and "15.500" not in refunds


def test_admin_invoice_line_is_named_after_its_invoice(client, finance_a, business_a):
    invoice = InvoiceFactory(business=business_a, number="INV-000001")
    line = InvoiceLineFactory(invoice=invoice, position=3)
    assert str(line) == "Line 3 of INV-000001"
    client.force_login(finance_a)
    assert "Line 3 of INV-000001" in client.get(_url(type(invoice), "change", invoice.pk)).content.decode()


@pytest.mark.parametrize("model", [Payment, Refund])
def test_admin_payments_and_refunds_offer_finance_no_add_or_delete(client, model, finance_a, business_a):
    refund = RefundFactory(payment__invoice__business=business_a)
    row = refund if model is Refund else refund.payment
    client.force_login(finance_a)
    changelist = client.get(_url(model, "changelist"))
    body = changelist.content.decode()
    assert changelist.status_code == 200 and _url(model, "add") not in body
    assert "delete_selected" not in body
    assert client.get(_url(model, "add")).status_code == 403
    assert client.get(_url(model, "delete", row.pk)).status_code == 403
    assert client.post(_url(model, "changelist"), {"action": "delete_selected", "_selected_action": [row.pk],
                                                   "post": "yes"}).status_code in (200, 302)
    assert model.objects.filter(pk=row.pk).exists()
    # A superuser (repairs by hand) still can.
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(_url(model, "add")).status_code == 200
    assert client.get(_url(model, "delete", row.pk)).status_code == 200
