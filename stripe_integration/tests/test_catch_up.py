"""Catch-up: events Stripe could not deliver are listed from Stripe and processed through
the same inbox. Here the Connect endpoint points at a closed port, so no delivery ever
reaches the app and everything it learns comes from the catch-up."""
import socket
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from finance.models import InvoiceStatus, Payment, PaymentStatus
from stripe_integration.webhooks.catch_up import catch_up, catch_up_all
from stripe_integration.models import DeliverySource, DeliveryStatus, WebhookDelivery
from stripe_integration.tests.webhook_fixtures import connect_business, eager_celery, local_invoice  # noqa: F401
from stripe_integration.webhooks.tasks import stripe_catch_up_task

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def offline(eager_celery, client, finance_a, business_a, stripe_env, settings):
    setup = connect_business(client=client, user=finance_a, business=business_a, stripe_env=stripe_env,
                             webhook_url=f"http://127.0.0.1:{_closed_port()}/stripe/webhook/", settings=settings)
    yield setup
    setup.platform.drain()


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run a catch-up and the processing it queues on commit (the test is one transaction)."""

    def call(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return call


def _paid_invoice(setup):
    s = setup.stripe
    customer = s.customer()
    stripe_invoice = s.open_invoice(customer["id"], items=((4200, "Support"),))
    invoice = local_invoice(setup.business, stripe_invoice)
    card = s.attach_card(customer["id"])
    s.pay(stripe_invoice["id"], card["id"])
    s.drain()
    return stripe_invoice, invoice


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: processed as soon as stored
def test_catch_up_command_processes_missed_events(offline):
    _, invoice = _paid_invoice(offline)
    failed = offline.platform.deliveries(endpoint=offline.endpoint.stripe_id)
    assert failed and not any(d["ok"] for d in failed)  # Stripe never reached the app
    assert WebhookDelivery.objects.count() == 0

    out = StringIO()
    call_command("stripe_catch_up", "--business", "alpha", stdout=out)

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_paid == Decimal("42.00")
    payment = Payment.objects.get()
    assert (payment.status, payment.amount, payment.card_last4) == (PaymentStatus.SUCCEEDED, Decimal("42.00"), "4242")
    rows = WebhookDelivery.objects.all()
    assert rows and all(r.source == DeliverySource.CATCH_UP and r.is_done for r in rows)
    assert all(r.account == offline.connection.stripe_user_id for r in rows)
    assert "invoice.paid" in set(rows.values_list("type", flat=True))
    text = out.getvalue()
    assert f"{len(rows)} new: {len(rows)} processed." in text

    again = StringIO()
    call_command("stripe_catch_up", "--business", "alpha", stdout=again)
    assert "0 new: nothing new" in again.getvalue()
    assert WebhookDelivery.objects.count() == len(rows) and Payment.objects.count() == 1


def test_catch_up_pages_through_every_event(offline, run):
    s = offline.stripe
    for n in range(4):
        s.customer(email=f"c{n}@example.test")
    _paid_invoice(offline)
    listed = s.events()
    handled_types = [e for e in listed if e["type"] in {
        "invoice.finalized", "invoice.updated", "invoice.paid", "invoice.payment_succeeded",
        "payment_intent.succeeded", "charge.succeeded", "customer.updated"}]
    result = run(catch_up, connection=offline.connection, page_size=3)
    assert result.listed == len(listed) > 9  # several pages of three
    assert result.relevant == len(handled_types)
    assert len(result.stored) == result.relevant
    event_pages = [r for r in offline.platform.control("GET", "/requests")["data"]
                   if r["path"] == "/v1/events" and r["account"] == offline.connection.stripe_user_id]
    assert len(event_pages) >= result.listed // 3


def test_catch_up_skips_events_already_in_the_inbox(offline, run):
    _paid_invoice(offline)
    first = run(catch_up, connection=offline.connection)
    WebhookDelivery.objects.filter(pk=first.stored[0]).delete()  # as if that one was never seen
    second = run(catch_up, connection=offline.connection)
    assert len(second.stored) == 1 and second.relevant == first.relevant


def test_catch_up_never_looks_past_stripes_30_days(offline, run):
    result = run(catch_up, connection=offline.connection, since=timezone.now() - timedelta(days=90))
    assert result.since > timezone.now() - timedelta(days=30)


def test_periodic_catch_up_task_covers_every_connection(offline, run):
    _, invoice = _paid_invoice(offline)
    run(stripe_catch_up_task)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.PROCESSED, source=DeliverySource.CATCH_UP).exists()


def test_catch_up_all_survives_a_stripe_outage(offline, stripe_env, run):
    stripe_env.fault(r"GET /v1/events", kind="500", count=100)
    assert run(catch_up_all) == []


def test_catch_up_command_errors_are_clear(offline, business_b):
    with pytest.raises(CommandError, match="No business has the slug"):
        call_command("stripe_catch_up", "--business", "nope")
    with pytest.raises(CommandError, match="not connected"):
        call_command("stripe_catch_up", "--business", business_b.slug)
    with pytest.raises(CommandError, match="--days"):
        call_command("stripe_catch_up", "--business", "alpha", "--days", "31")
