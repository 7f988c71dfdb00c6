"""The integration-health panel of finance's dashboard: this business's connection, failed
pushes and webhook deliveries waiting or failed (with their lag), nobody else's."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from finance.models import InvoicePushStatus
from finance.tests.factories import InvoiceFactory
from stripe_integration.dashboard_health import integration_health
from stripe_integration.models import StripeConnection, WebhookDelivery

pytestmark = pytest.mark.django_db


def _delivery(account, status, minutes_ago, n=[0]):
    n[0] += 1
    return WebhookDelivery.objects.create(event_id=f"evt_h{n[0]}", account=account, type="invoice.paid", payload="{}",
                                          status=status, received_at=timezone.now() - timedelta(minutes=minutes_ago))


@pytest.fixture
def health_data(business_a, business_b):
    StripeConnection.objects.create(business=business_a, stripe_user_id="acct_a", access_token="t")
    StripeConnection.objects.create(business=business_b, stripe_user_id="acct_b", access_token="t")
    _delivery("acct_a", "received", 5)
    _delivery("acct_a", "parked", 30)
    _delivery("acct_a", "failed", 90)
    _delivery("acct_a", "processed", 600)
    _delivery("acct_b", "received", 999)
    InvoiceFactory(business=business_a, push_status=InvoicePushStatus.FAILED)
    InvoiceFactory(business=business_a, push_status=InvoicePushStatus.MISMATCH)
    InvoiceFactory(business=business_b, push_status=InvoicePushStatus.FAILED)


def test_integration_health_counts_this_business_only(business_a, health_data):
    h = integration_health(business=business_a)
    assert (h["deliveries_waiting"], h["deliveries_failed"]) == (2, 1)
    assert 30 * 60 <= h["lag_seconds"] < 31 * 60  # the oldest waiting one, not acct_b's
    assert (h["pushes_failed"], h["pushes_mismatch"]) == (1, 1)
    assert h["state"] == "connected"


def test_integration_health_nothing_waiting_has_no_lag(business_b):
    h = integration_health(business=business_b)
    assert (h["deliveries_waiting"], h["lag_seconds"], h["state"]) == (0, 0, "not_connected")


def test_dashboard_page_shows_integration_health(client, finance_a, health_data):
    client.force_login(finance_a)
    body = client.get(reverse("ui:dashboard")).content.decode()
    assert 'data-health="connected"' in body
    assert 'data-health-figure="deliveries_waiting">2<' in body and 'data-health-figure="deliveries_failed">1<' in body
    assert 'data-health-figure="pushes_failed">1<' in body and "acct_a" in body and "acct_b" not in body
