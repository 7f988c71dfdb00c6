"""The production path of "Send to Stripe": the request only builds the invoices and
queues their pushes (on commit); a real Celery worker process, with its own database
connection and the Redis rate limiter, pushes them. Skipped without CELERY_BROKER_URL
(tests_support/celery_worker.py); .ci/run stage 3 runs it on PostgreSQL and Redis."""
from decimal import Decimal

import pytest

from finance.models import Invoice, InvoicePushStatus
from stripe_integration.invoicing import push as invoicing
from stripe_integration.tests import invoicing_helpers as h

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(request, stripe_env, settings, monkeypatch):
    """The worker reads its settings from the environment: this test's sandbox platform."""
    for name in ("STRIPE_SECRET_KEY", "STRIPE_CONNECT_CLIENT_ID", "STRIPE_API_BASE", "STRIPE_CONNECT_BASE"):
        monkeypatch.setenv(name, getattr(settings, name))
    return request.getfixturevalue("celery_worker")


def test_worker_pushes_the_invoices_a_request_queued(worker, client, finance_a, business_a, stripe_env):
    conn = h.connect(client, finance_a, business_a)
    contact = h.contact(business_a)
    ids = [h.billable(business_a, contact, description=f"Work {i}", unit_price=Decimal("75.00"),
                      vat_rate=Decimal("20")).pk for i in range(3)]
    result = invoicing.invoices_generate(business=business_a, billable_ids=ids)
    invoice = result.invoices[0]
    worker.wait_for(lambda: Invoice.objects.filter(pk=invoice.pk, push_status=InvoicePushStatus.PUSHED).exists(),
                    timeout=60, what="the worker to push the invoice")
    invoice.refresh_from_db()
    assert invoice.status == "open" and invoice.total == Decimal("270.00")
    assert [r.id for r in h.stripe_invoices(conn, invoice.stripe_customer_id)] == [invoice.stripe_invoice_id]
