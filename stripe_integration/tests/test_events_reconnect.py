"""Disconnected in Stripe, the same account connected again, and the events in between: what came while no
business had the account connected is kept and applied once it is connected again, and
a late deauthorization never ends the newer connection. End to end against the sandbox:
the deauthorization in Stripe, the consent page, the hosted invoice page, the admin's
Reprocess."""
import pytest
from django.urls import reverse

from finance.models import InvoiceStatus, Payment, PaymentStatus
from stripe_integration.models import ConnectionStatus, DeliveryStatus, StripeConnection, WebhookDelivery
from stripe_integration.tests import oauth_helpers as oauth
from stripe_integration.tests.webhook_fixtures import (  # noqa: F401  (fixtures)
    app_server, connected, eager_celery, twin_invoice,
)

pytestmark = pytest.mark.django_db(transaction=True)

DELIVERIES = "admin:stripe_integration_webhookdelivery_changelist"


def _disconnected(connected):
    """The account disconnects the app in Stripe; its deauthorization event revokes the
    connection. (Stripe's side, not the staff page's Disconnect: the app server of these
    tests answers one request at a time on the test's own database connection, so no
    request of the test itself may run while Stripe delivers.)"""
    account = connected.connection.stripe_user_id
    connected.platform.post("/oauth/deauthorize", {"client_id": connected.client_id, "stripe_user_id": account})
    connected.stripe.drain()
    old = WebhookDelivery.objects.get(type="account.application.deauthorized", account=account)
    assert old.status == DeliveryStatus.PROCESSED and "revoked 1" in old.error
    return account, old


def test_deauthorization_events_while_disconnected_are_applied_on_reconnect(connected, client):
    _, stripe_invoice, invoice = twin_invoice(connected, items=((4200, "Audit"),))
    account, _ = _disconnected(connected)

    # The customer pays while the business is disconnected: Stripe still sends the events.
    status, error = connected.stripe.hosted_pay(stripe_invoice["hosted_invoice_url"], "4242424242424242")
    assert status == 303, error
    connected.stripe.drain()
    waiting = WebhookDelivery.objects.filter(account=account, type="invoice.paid").get()
    assert waiting.status == DeliveryStatus.PARKED and "connected" in waiting.error
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN

    oauth.connect(client)  # the same account again
    connected.stripe.drain()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert Payment.objects.get(invoice=invoice).status == PaymentStatus.SUCCEEDED
    waiting.refresh_from_db()
    assert waiting.status == DeliveryStatus.PROCESSED
    assert not WebhookDelivery.objects.filter(account=account, status__in=[DeliveryStatus.PARKED, DeliveryStatus.IGNORED])


def test_deauthorization_reprocessed_after_reconnect_leaves_the_new_connection(connected, client):
    _, stripe_invoice, invoice = twin_invoice(connected, items=((3000, "Review"),))
    account, old = _disconnected(connected)
    oauth.connect(client)
    new = StripeConnection.objects.get(stripe_user_id=account, status=ConnectionStatus.CONNECTED)

    # The old deauthorization comes again (staff's Reprocess; catch-up or a late
    # redelivery land in the same handler).
    resp = client.post(reverse(DELIVERIES), {"action": "reprocess", "_selected_action": [old.pk]}, follow=True)
    assert resp.status_code == 200
    old.refresh_from_db()
    assert old.status == DeliveryStatus.PROCESSED and "nothing revoked" in old.error
    new.refresh_from_db()
    assert new.status == ConnectionStatus.CONNECTED and new.access_token

    # Later events of the account are still the business's.
    status, error = connected.stripe.hosted_pay(stripe_invoice["hosted_invoice_url"], "4242424242424242")
    assert status == 303, error
    connected.stripe.drain()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    paid = WebhookDelivery.objects.get(account=account, type="invoice.paid")
    assert paid.status == DeliveryStatus.PROCESSED


def test_deauthorization_after_reconnect_still_revokes(connected, client):
    account, _ = _disconnected(connected)
    oauth.connect(client)
    connected.platform.post("/oauth/deauthorize", {"client_id": connected.client_id, "stripe_user_id": account})
    connected.stripe.drain()
    assert not StripeConnection.objects.filter(stripe_user_id=account, status=ConnectionStatus.CONNECTED).exists()
    assert StripeConnection.objects.filter(stripe_user_id=account, status=ConnectionStatus.REVOKED).count() == 2  # both
