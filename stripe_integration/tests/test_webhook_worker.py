"""The production path: the intake only stores and queues; a real Celery worker process,
with its own database connection, drains the inbox and applies the payment. Skipped
without CELERY_BROKER_URL (see tests_support/celery_worker.py); .ci/run stage 3 runs it
on PostgreSQL and Redis."""
import json
import socket
from decimal import Decimal

import pytest
from django.test import Client

from finance.models import InvoiceStatus, Payment
from stripe_integration.models import DeliveryStatus, WebhookDelivery
from stripe_integration.tests.stripe_http import sign
from stripe_integration.tests.webhook_fixtures import connect_business, local_invoice

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(request, stripe_env, settings, monkeypatch):
    """The worker gets its settings from the environment: point it at this test's sandbox
    platform before it starts."""
    for name in ("STRIPE_SECRET_KEY", "STRIPE_CONNECT_CLIENT_ID", "STRIPE_API_BASE", "STRIPE_CONNECT_BASE"):
        monkeypatch.setenv(name, getattr(settings, name))
    return request.getfixturevalue("celery_worker")


def test_worker_processes_what_the_intake_queued(worker, client, finance_a, business_a, stripe_env, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    setup = connect_business(client=client, user=finance_a, business=business_a, stripe_env=stripe_env,
                             webhook_url=f"http://127.0.0.1:{closed}/stripe/webhook/", settings=settings)
    s = setup.stripe
    customer = s.customer()
    stripe_invoice = s.open_invoice(customer["id"], items=((3300, "Training"),))
    invoice = local_invoice(business_a, stripe_invoice)
    s.pay(stripe_invoice["id"], s.attach_card(customer["id"])["id"])
    s.drain()
    paid = s.events(type="invoice.paid")[0]
    body = json.dumps(paid).encode()

    resp = Client().post("/stripe/webhook/", data=body, content_type="application/json",
                         HTTP_STRIPE_SIGNATURE=sign(body, setup.endpoint.secret))

    assert resp.status_code == 200
    delivery = WebhookDelivery.objects.get(event_id=paid["id"])
    worker.wait_for(lambda: WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PROCESSED).exists(),
                    what="the worker to process the delivery")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_paid == Decimal("33.00")
    assert Payment.objects.get(invoice=invoice).card_last4 == "4242"
