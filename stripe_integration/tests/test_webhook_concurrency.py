"""Concurrency on PostgreSQL: copies of one event, and different events about one change,
delivered at the same moment from several threads (each with its own database
connection), make one inbox row per event, one transition and no error.

SQLite serializes every write transaction (IMMEDIATE), so there is no race to show there;
CI runs this file on PostgreSQL (DATABASE_URL set, .ci/run stage 3)."""
import json
import socket
import threading
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.db import connections
from django.test import Client

from finance.models import BillableStatus, InvoiceStatus, Payment, PaymentStatus
from stripe_integration.models import DeliveryStatus, WebhookDelivery
from stripe_integration.tests.stripe_http import sign
from stripe_integration.tests.webhook_fixtures import connect_business, eager_celery, local_invoice  # noqa: F401

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(db_connection.vendor != "postgresql",
                       reason="needs PostgreSQL: row locks and truly concurrent connections (CI sets DATABASE_URL)"),
]

THREADS = 5


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def paid_in_stripe(eager_celery, client, finance_a, business_a, stripe_env, settings):
    """A paid Stripe invoice whose events were never delivered (the endpoint's URL is a
    closed port), and its open local twin: the threads deliver them."""
    setup = connect_business(client=client, user=finance_a, business=business_a, stripe_env=stripe_env,
                             webhook_url=f"http://127.0.0.1:{_closed_port()}/stripe/webhook/", settings=settings)
    s = setup.stripe
    customer = s.customer()
    stripe_invoice = s.open_invoice(customer["id"], items=((6000, "Workshop"),))
    invoice = local_invoice(business_a, stripe_invoice, lines=2)
    s.pay(stripe_invoice["id"], s.attach_card(customer["id"])["id"])
    s.drain()
    return setup, invoice


def _deliver_at_once(setup, bodies: list[bytes]) -> list[int]:
    barrier = threading.Barrier(len(bodies))
    statuses, errors = [None] * len(bodies), []

    def run(i, body):
        try:
            signature = sign(body, setup.endpoint.secret)
            barrier.wait(timeout=10)
            resp = Client().post("/stripe/webhook/", data=body, content_type="application/json",
                                 HTTP_STRIPE_SIGNATURE=signature)
            statuses[i] = resp.status_code
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, body)) for i, body in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return statuses


def _assert_paid_once(invoice):
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_paid == Decimal("60.00")
    assert set(invoice.billables.values_list("status", flat=True)) == {BillableStatus.PAID}
    assert Payment.objects.count() == 1 and Payment.objects.get().status == PaymentStatus.SUCCEEDED


def test_five_copies_of_one_event_from_five_threads_make_one_transition(paid_in_stripe):
    setup, invoice = paid_in_stripe
    paid = setup.stripe.events(type="invoice.paid")[0]
    body = json.dumps(paid).encode()

    statuses = _deliver_at_once(setup, [body] * THREADS)

    assert statuses == [200] * THREADS
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_id == paid["id"] and delivery.status == DeliveryStatus.PROCESSED
    # The copies that queued on the row lock found it done: the handler ran once, so the
    # note is that of the run that made the change (a second run would note "already up
    # to date" and count a second attempt).
    assert delivery.attempts == 1 and "status" in delivery.error, delivery.error
    _assert_paid_once(invoice)


def test_different_events_about_one_payment_at_once_make_one_effect(paid_in_stripe):
    setup, invoice = paid_in_stripe
    wanted = ("invoice.paid", "invoice.payment_succeeded", "payment_intent.succeeded", "charge.succeeded", "invoice.updated")
    chosen = {}
    for event in setup.stripe.events():
        if event["type"] in wanted and event["type"] not in chosen:
            chosen[event["type"]] = event
    bodies = [json.dumps(e).encode() for e in chosen.values()]

    statuses = _deliver_at_once(setup, bodies)

    assert statuses == [200] * len(bodies)
    rows = WebhookDelivery.objects.all()
    assert rows.count() == len(bodies) and {r.status for r in rows} == {DeliveryStatus.PROCESSED}
    _assert_paid_once(invoice)
