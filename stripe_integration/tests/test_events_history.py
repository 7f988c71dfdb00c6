"""Stripe events on the invoice's history: each processed event that touched an invoice
is recorded with what it changed, once per event however often Stripe delivers it."""
import pytest

from crm.audit import AuditEntry
from finance.models import InvoiceStatus
from stripe_integration.models import WebhookDelivery
from stripe_integration.tests.webhook_fixtures import (  # noqa: F401  (fixtures)
    app_server, connected, eager_celery, twin_invoice,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_events_history_records_what_each_event_changed(connected, client, finance_a):
    connected.platform.chaos(seed=3)  # duplicates and shuffled order
    _, stripe_invoice, invoice = twin_invoice(connected, items=((12345, "Design work"),))
    status, error = connected.stripe.hosted_pay(stripe_invoice["hosted_invoice_url"], "4242 4242 4242 4242")
    assert status == 303, error
    connected.stripe.drain()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    entries = list(AuditEntry.objects.filter(object_type="finance.invoice", object_id=str(invoice.pk),
                                             action="stripe_event").order_by("created_at", "pk"))
    # one entry per processed delivery that touched the invoice, never one per copy
    event_ids = [e.detail.split("(")[1].split(")")[0] for e in entries]
    assert len(event_ids) == len(set(event_ids)) and entries
    processed = set(WebhookDelivery.objects.filter(status="processed").values_list("event_id", flat=True))
    assert set(event_ids) <= processed
    # the move to paid is told exactly once, with the money it moved
    to_paid = [e for e in entries if "→ paid" in e.detail]
    assert len(to_paid) == 1 and "remaining 123.45 USD → 0.00 USD" in to_paid[0].detail
    assert all(e.user is None and e.business == connected.business for e in entries)

    client.force_login(finance_a)
    html = client.get(f"/invoices/{invoice.pk}/").content.decode()
    assert html.count('data-action="stripe_event"') == len(entries)
