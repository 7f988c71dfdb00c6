"""What staff see: the stored deliveries in the admin (outcome, error, Reprocess), and the
payment history on the invoice and contact pages of the staff UI."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from finance.models import InvoiceStatus, PaymentMethod, PaymentStatus
from finance.tests.factories import InvoiceFactory, PaymentFactory, RefundFactory
from stripe_integration.models import ConnectionStatus, DeliveryStatus, StripeConnection, WebhookDelivery

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:stripe_integration_webhookdelivery_changelist"


def _delivery(business, event_id, *, status=DeliveryStatus.PROCESSED, account="acct_a", **fields):
    return WebhookDelivery.objects.create(
        event_id=event_id, account=account, type=fields.pop("type", "invoice.paid"), business=business, status=status,
        object_id="in_1", received_at=timezone.now(), payload=fields.pop("payload", '{"id": "%s", "object": "event"}' % event_id),
        **fields)


def test_admin_deliveries_are_scoped_to_the_business(client, finance_a, business_a, business_b):
    _delivery(business_a, "evt_mine")
    _delivery(business_b, "evt_theirs", account="acct_b")
    _delivery(None, "evt_nobody", account="acct_x", status=DeliveryStatus.IGNORED)
    client.force_login(finance_a)
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "evt_mine" in page and "evt_theirs" not in page and "evt_nobody" not in page
    theirs = WebhookDelivery.objects.get(event_id="evt_theirs")
    assert client.get(reverse("admin:stripe_integration_webhookdelivery_change", args=[theirs.pk])).status_code in (302, 404)


def test_admin_superuser_sees_every_delivery(client, business_a):
    _delivery(None, "evt_nobody", account="acct_x", status=DeliveryStatus.IGNORED)
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    assert "evt_nobody" in client.get(reverse(CHANGELIST)).content.decode()


def test_admin_deliveries_are_not_for_the_staff_role(client, staff_a, business_a):
    staff_a.is_staff = True
    staff_a.save()
    client.force_login(staff_a)
    assert client.get(reverse(CHANGELIST)).status_code == 403


def test_admin_delivery_page_shows_outcome_error_and_traceback_read_only(client, finance_a, business_a):
    delivery = _delivery(business_a, "evt_failed", status=DeliveryStatus.FAILED, error="Stripe: try again",
                         traceback="Traceback (most recent call last):\n  boom", attempts=3,
                         next_attempt_at=timezone.now() + timedelta(minutes=5))
    client.force_login(finance_a)
    page = client.get(reverse("admin:stripe_integration_webhookdelivery_change", args=[delivery.pk])).content.decode()
    assert "Stripe: try again" in page and "Traceback (most recent call last)" in page and "evt_failed" in page
    assert 'name="_save"' not in page  # evidence: nothing editable
    listing = client.get(reverse(CHANGELIST) + "?status=failed").content.decode()
    assert "evt_failed" in listing and "Stripe: try again" in listing
    assert client.get(reverse("admin:stripe_integration_webhookdelivery_add")).status_code == 403


def test_admin_reprocess_action_runs_the_delivery_again(client, finance_a, business_a, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_admin"
    StripeConnection.objects.create(business=business_a, stripe_user_id="acct_a", status=ConnectionStatus.CONNECTED)
    delivery = _delivery(business_a, "evt_retry", status=DeliveryStatus.FAILED, error="old error",
                         payload='{"id": "evt_retry", "object": "event", "type": "invoice.paid", '
                                 '"data": {"object": {"id": "in_unknown"}}}')
    client.force_login(finance_a)
    resp = client.post(reverse(CHANGELIST), {"action": "reprocess", "_selected_action": [delivery.pk]}, follow=True)
    delivery.refresh_from_db()
    # No local invoice has that Stripe id: parked (kept, retried later), no longer failed.
    assert delivery.status == DeliveryStatus.PARKED and "in_unknown" in delivery.error
    assert "Reprocessed 1 deliveries: 1 parked." in [str(m) for m in resp.context["messages"]]


# --- staff UI -------------------------------------------------------------------------------
@pytest.fixture
def history(business_a):
    invoice = InvoiceFactory(business=business_a, status=InvoiceStatus.PAID, currency="USD", total=Decimal("120.00"),
                             amount_paid=Decimal("120.00"), amount_refunded=Decimal("20.00"), disputed=True,
                             disputed_at=timezone.now(), stripe_invoice_id="in_hist")
    card = PaymentFactory(invoice=invoice, amount=Decimal("120.00"), status=PaymentStatus.PARTIALLY_REFUNDED,
                          method=PaymentMethod.CARD, card_brand="visa", card_last4="4242", fee=Decimal("3.78"),
                          net=Decimal("116.22"), amount_refunded=Decimal("20.00"), paid_at=timezone.now(),
                          stripe_payment_intent_id="pi_hist", stripe_charge_id="ch_hist")
    RefundFactory(payment=card, amount=Decimal("20.00"), reason="requested_by_customer", stripe_refund_id="re_hist")
    return invoice


def test_invoice_page_shows_payment_history(client, staff_a, history):
    client.force_login(staff_a)  # every member sees it; changing it is for finance
    page = client.get(reverse("ui:invoice_detail", args=[history.pk])).content.decode()
    assert "data-payment-history" in page
    for text in ("visa ···· 4242", "120.00 USD", "3.78 USD", "116.22 USD", "re_hist", "requested_by_customer",
                 "Partially refunded", "data-disputed", "data-net-paid"):
        assert text in page, text
    assert "100.00 USD" in page  # net paid


def test_invoice_page_shows_a_processing_bank_payment_apart(client, staff_a, business_a):
    invoice = InvoiceFactory(business=business_a, status=InvoiceStatus.OPEN, total=Decimal("80.00"))
    PaymentFactory(invoice=invoice, amount=Decimal("80.00"), status=PaymentStatus.PROCESSING, method=PaymentMethod.BANK)
    client.force_login(staff_a)
    page = client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    assert "data-processing" in page and "not paid until it clears" in page and 'data-status="open"' in page


def test_contact_page_flags_processing_and_disputed_invoices(client, staff_a, business_a, history):
    processing = InvoiceFactory(business=business_a, bill_to=history.bill_to, status=InvoiceStatus.OPEN)
    PaymentFactory(invoice=processing, status=PaymentStatus.PROCESSING, method=PaymentMethod.BANK)
    client.force_login(staff_a)
    page = client.get(reverse("ui:contact_detail", args=[history.bill_to_id])).content.decode()
    assert page.count("data-processing") == 1 and page.count("data-disputed") == 1
    assert reverse("ui:invoice_detail", args=[history.pk]) in page


def test_invoice_page_of_another_business_is_not_found(client, finance_b, history):
    client.force_login(finance_b)
    assert client.get(reverse("ui:invoice_detail", args=[history.pk])).status_code == 404


def test_invoice_page_payment_history_queries_do_not_grow_with_payments(client, staff_a, history):
    client.force_login(staff_a)
    url = reverse("ui:invoice_detail", args=[history.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as before:
        client.get(url)
    for _ in range(5):
        payment = PaymentFactory(invoice=history, amount=Decimal("1.00"), status=PaymentStatus.SUCCEEDED)
        RefundFactory(payment=payment, amount=Decimal("0.50"))
    with CaptureQueriesContext(connection) as after:
        client.get(url)
    assert len(after) == len(before)
