"""Invoice and payment custom fields: edited in the admin (inputs from the business's
definitions, a bad value is a form error), also on a Stripe-managed payment, and shown on
the invoice page."""
from decimal import Decimal

import pytest
from django.urls import reverse

from crm.models import CustomFieldDefinition, CustomFieldTarget, CustomFieldType
from finance.custom_values import invoice_custom_fields_set
from finance.models import Invoice, Payment
from finance.tests.factories import InvoiceFactory, PaymentFactory
from finance.tests.test_admin import invoice_post, management

pytestmark = pytest.mark.django_db


def define(business, key, applies_to, field_type=CustomFieldType.TEXT):
    return CustomFieldDefinition.objects.create(business=business, key=key, label=key.title(), applies_to=applies_to,
                                                field_type=field_type)


def test_invoice_custom_fields_in_admin_and_on_the_page(client, finance_a, business_a):
    define(business_a, "cost_center", CustomFieldTarget.INVOICE)
    define(business_a, "due_review", CustomFieldTarget.INVOICE, CustomFieldType.DATE)
    invoice = InvoiceFactory(business=business_a, number="INV-CF")
    client.force_login(finance_a)
    url = reverse("admin:finance_invoice_change", args=[invoice.pk])
    assert b'name="cf_cost_center"' in client.get(url).content
    data = invoice_post(number="INV-CF", bill_to=invoice.bill_to_id, cf_cost_center="CC-1", cf_due_review="31/12/2026")
    response = client.post(url, data)
    assert response.status_code == 200 and "YYYY-MM-DD" in response.content.decode()
    data["cf_due_review"] = "2026-12-31"
    assert client.post(url, data).status_code == 302
    assert Invoice.objects.get(pk=invoice.pk).custom_fields == {"cost_center": "CC-1", "due_review": "2026-12-31"}
    page = client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    assert "Cost_Center" in page and "CC-1" in page


def test_payment_custom_fields_editable_on_a_stripe_payment(client, finance_a, business_a):
    define(business_a, "channel", CustomFieldTarget.PAYMENT)
    payment = PaymentFactory(invoice__business=business_a, stripe_payment_intent_id="pi_123", amount=Decimal("10"))
    client.force_login(finance_a)
    url = reverse("admin:finance_payment_change", args=[payment.pk])
    assert b'name="cf_channel"' in client.get(url).content
    response = client.post(url, {"cf_channel": "phone", **management("refunds")})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Payment.objects.get(pk=payment.pk).custom_fields == {"channel": "phone"}
    page = client.get(reverse("ui:invoice_detail", args=[payment.invoice_id])).content.decode()
    assert "Channel: phone" in page


def test_invoice_custom_fields_service_refuses_bad_values(business_a):
    define(business_a, "seats", CustomFieldTarget.INVOICE, CustomFieldType.NUMBER)
    invoice = InvoiceFactory(business=business_a)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        invoice_custom_fields_set(invoice=invoice, values={"seats": "many"})
    assert invoice_custom_fields_set(invoice=invoice, values={"seats": "3"}).custom_fields == {"seats": 3}
