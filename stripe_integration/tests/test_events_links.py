"""customer.* and product.updated webhooks reach the customer links and the catalog sync
(issue 5's `customers.customer_changed_in_stripe`, `catalog.product_drift_detected`)."""
from decimal import Decimal

import pytest

from crm.tests.factories import IndividualFactory
from services.services import service_create
from stripe_integration.catalog import sync as catalog
from stripe_integration.customers import links as customers
from stripe_integration.models import CustomerLink, CustomerState, DeliveryStatus, ServiceSync, SyncState, WebhookDelivery
from stripe_integration.tests.webhook_fixtures import app_server, connected, eager_celery  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_customer_deleted_in_stripe_marks_the_link_deleted(connected):
    contact = IndividualFactory(business=connected.business)
    customer_id = customers.customer_ensure(connection=connected.connection, contact=contact)
    connected.stripe.drain()
    connected.stripe.delete(f"/v1/customers/{customer_id}")
    connected.stripe.drain()
    link = CustomerLink.objects.get(contact=contact)
    assert link.state == CustomerState.DELETED
    delivery = WebhookDelivery.objects.get(type="customer.deleted")
    assert delivery.status == DeliveryStatus.PROCESSED and "deleted" in delivery.error


def test_update_of_an_unlinked_customer_is_ignored(connected):
    customer = connected.stripe.customer()
    connected.stripe.post(f"/v1/customers/{customer['id']}", {"name": "Someone else"})
    connected.stripe.drain()
    delivery = WebhookDelivery.objects.get(type="customer.updated")
    assert delivery.status == DeliveryStatus.IGNORED and "not linked" in delivery.error


def test_product_renamed_in_stripe_is_recorded_as_drift(connected):
    audit = service_create(business=connected.business, code="AUDIT", name="Audit", description="Yearly audit",
                           prices={"USD": Decimal("100")})
    catalog.service_sync(connection=connected.connection, service=audit)
    connected.stripe.drain()
    row = ServiceSync.objects.get(service=audit)
    connected.platform.chaos(seed=21)
    connected.stripe.post(f"/v1/products/{row.stripe_product_id}", {"name": "Audit (edited in Stripe)"})
    connected.stripe.drain()
    row.refresh_from_db()
    assert row.state == SyncState.DRIFT
    assert WebhookDelivery.objects.get(type="product.updated").status == DeliveryStatus.PROCESSED
