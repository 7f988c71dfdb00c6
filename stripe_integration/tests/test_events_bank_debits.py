"""Bank debits (ACH, SEPA) in `processing`: never paid until Stripe says succeeded, then
paid; a returned debit shows its failure and the invoice open again. The debit is played
on the in-process sandbox's state (tests_support/stripe_async.py, until the sandbox makes
bank debits itself); the invoice events are the sandbox's own, the PaymentIntent events
hand-made and signed through the intake."""
from decimal import Decimal
from html import unescape

import pytest

from finance.models import BillableStatus, InvoiceStatus, Payment, PaymentMethod, PaymentStatus
from stripe_integration.models import DeliveryStatus
from stripe_integration.tests.test_events_payments import event, post_event
from stripe_integration.tests.webhook_fixtures import (  # noqa: F401  (fixtures)
    app_server, connected, eager_celery, twin_invoice,
)
from tests_support import stripe_async

pytestmark = pytest.mark.django_db(transaction=True)


def start_debit(connected, method="us_bank_account"):
    s = connected.stripe
    customer, stripe_invoice, invoice = twin_invoice(connected, items=((5000, "Retainer"),))
    pi = s.post("/v1/payment_intents", {"amount": 5000, "currency": "usd", "customer": customer["id"],
                                        "payment_method": "pm_card_visa", "confirm": True,
                                        "payment_method_types": ["card"]})
    s.drain()
    stripe_async.debit_processing(base_url=s.base_url, account=s.account, invoice_id=stripe_invoice["id"],
                                  payment_intent_id=pi["id"], method=method)
    delivery = post_event(connected, event(connected, f"evt_proc_{pi['id']}", "payment_intent.processing",
                                           s.get(f"/v1/payment_intents/{pi['id']}")))
    assert delivery.status == DeliveryStatus.PROCESSED, delivery.error
    return stripe_invoice, invoice, pi


def _pi_event(connected, pi_id, type_, n=0):
    obj = connected.stripe.get(f"/v1/payment_intents/{pi_id}")
    return post_event(connected, event(connected, f"evt_{type_}_{pi_id}_{n}", type_, obj))


@pytest.mark.parametrize(("method", "label"), [("us_bank_account", "ACH debit"), ("sepa_debit", "SEPA debit")])
def test_bank_debit_processing_is_shown_and_never_paid(connected, client, method, label):
    stripe_invoice, invoice, pi = start_debit(connected, method)
    # A forged or early "invoice.paid" changes nothing: the app reads Stripe's invoice, still open.
    early = post_event(connected, event(connected, "evt_early_paid", "invoice.paid",
                                        {"id": stripe_invoice["id"], "object": "invoice", "status": "paid"}))
    assert early.status == DeliveryStatus.PROCESSED
    invoice.refresh_from_db()
    payment = Payment.objects.get(invoice=invoice)
    assert (invoice.status, invoice.amount_paid, invoice.net_paid) == (InvoiceStatus.OPEN, 0, 0)
    assert (payment.status, payment.method, payment.method_type, payment.amount) == (
        PaymentStatus.PROCESSING, PaymentMethod.BANK, method, Decimal("50.00"))
    assert payment.paid_at is None and not invoice.billables.filter(status=BillableStatus.PAID).exists()
    page = client.get(f"/invoices/{invoice.pk}/").content.decode()
    assert f"{label}, 50.00 USD" in page and "not paid until it clears" in page and 'data-status="open"' in page
    contact_page = client.get(f"/contacts/{invoice.bill_to_id}/").content.decode()
    assert "data-processing" in contact_page and label in contact_page


def test_bank_debit_settles_then_the_invoice_is_paid_whatever_the_order(connected):
    s = connected.stripe
    connected.platform.chaos(seed=41)
    stripe_invoice, invoice, pi = start_debit(connected)
    stripe_async.debit_settles(base_url=s.base_url, payment_intent_id=pi["id"])
    s.post(f"/v1/invoices/{stripe_invoice['id']}/attach_payment", {"payment_intent": pi["id"]})
    s.drain()
    # Stripe's payment_intent.succeeded, and a late copy of payment_intent.processing after it.
    for n, type_ in enumerate(["payment_intent.succeeded", "payment_intent.processing", "payment_intent.succeeded"]):
        assert _pi_event(connected, pi["id"], type_, n=n).status == DeliveryStatus.PROCESSED
    invoice.refresh_from_db()
    payment = Payment.objects.get(invoice=invoice)
    assert (invoice.status, invoice.amount_paid, invoice.net_paid) == (InvoiceStatus.PAID, Decimal("50.00"),
                                                                       Decimal("50.00"))
    assert payment.status == PaymentStatus.SUCCEEDED and payment.paid_at is not None and payment.fee > 0
    assert set(invoice.billables.values_list("status", flat=True)) == {BillableStatus.PAID}


def test_bank_debit_returned_shows_the_failure_and_the_invoice_open(connected, client):
    s = connected.stripe
    stripe_invoice, invoice, pi = start_debit(connected)
    stripe_async.debit_fails(base_url=s.base_url, payment_intent_id=pi["id"])
    assert _pi_event(connected, pi["id"], "payment_intent.payment_failed").status == DeliveryStatus.PROCESSED
    assert _pi_event(connected, pi["id"], "payment_intent.processing", n=1).status == DeliveryStatus.PROCESSED  # late
    invoice.refresh_from_db()
    payment = Payment.objects.get(invoice=invoice)
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.OPEN, 0)
    assert payment.status == PaymentStatus.FAILED and "insufficient funds" in payment.failure_message
    page = unescape(client.get(f"/invoices/{invoice.pk}/").content.decode())
    assert payment.failure_message in page and "data-processing" not in page and 'data-status="open"' in page
