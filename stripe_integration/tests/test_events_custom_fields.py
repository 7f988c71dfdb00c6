"""Stripe -> CRM custom fields through real webhook deliveries: a metadata edit made in
Stripe (the sandbox emits customer.updated), and a signed customer.updated carrying what
only Stripe sets (delinquent, the tax location)."""
import pytest

from crm.models import CustomFieldDefinition, CustomFieldType
from crm.tests.factories import OrganizationFactory
from stripe_integration.customers import links as customers
from stripe_integration.models import CustomFieldMapping, DeliveryStatus, StripeField
from stripe_integration.tests.test_events_payments import event, post_event
from stripe_integration.tests.webhook_fixtures import app_server, connected, eager_celery  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def _map(business, key, stripe_field, field_type=CustomFieldType.TEXT, metadata_key=""):
    d = CustomFieldDefinition.objects.create(business=business, key=key, label=key, field_type=field_type)
    CustomFieldMapping.objects.create(business=business, field=d, stripe_field=stripe_field, metadata_key=metadata_key)


def test_customer_updated_webhook_sets_mapped_custom_fields(connected):
    business = connected.business
    _map(business, "po", StripeField.METADATA, metadata_key="po_number")
    _map(business, "late", StripeField.DELINQUENT, CustomFieldType.BOOL)
    _map(business, "tax_country", StripeField.TAX_LOCATION_COUNTRY)
    contact = OrganizationFactory(business=business, name="Acme", billing_email="ap@acme.example")
    customer_id = customers.customer_ensure(connection=connected.connection, contact=contact)
    connected.stripe.drain()

    connected.stripe.post(f"/v1/customers/{customer_id}", {"metadata": {"po_number": "PO-55"}})
    connected.stripe.drain()
    contact.refresh_from_db()
    assert contact.custom_fields == {"po": "PO-55", "late": False}

    obj = connected.stripe.get(f"/v1/customers/{customer_id}")
    obj.update(delinquent=True, tax={"automatic_tax": "supported", "ip_address": None,
                                      "location": {"country": "FR", "source": "billing_address", "state": None}})
    delivery = post_event(connected, event(connected, "evt_custom_fields_1", "customer.updated", obj))
    connected.stripe.drain()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED, delivery.error
    contact.refresh_from_db()
    assert contact.custom_fields == {"po": "PO-55", "late": True, "tax_country": "FR"}


def test_invoice_updated_webhook_sets_mapped_invoice_custom_fields(connected):
    from crm.models import CustomFieldTarget
    from stripe_integration.tests.webhook_fixtures import twin_invoice

    business = connected.business
    d = CustomFieldDefinition.objects.create(business=business, key="cost_center", label="Cost center",
                                             applies_to=CustomFieldTarget.INVOICE)
    CustomFieldMapping.objects.create(business=business, field=d, stripe_field=StripeField.METADATA,
                                      metadata_key="cost_center")
    _, stripe_invoice, invoice = twin_invoice(connected)
    connected.stripe.post(f"/v1/invoices/{stripe_invoice['id']}", {"metadata": {"cost_center": "CC-9"}})
    connected.stripe.drain()
    invoice.refresh_from_db()
    assert invoice.custom_fields == {"cost_center": "CC-9"}
