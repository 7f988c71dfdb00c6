"""Bank debits (ACH, SEPA) end to end: an invoice paid by bank debit on the sandbox's
hosted invoice page is `processing` (shown with its method and amount, never paid) until
the sandbox clock moves a day and the debit settles (paid) or is returned (failed, the
invoice open); webhooks with the sandbox's chaos (duplicates, shuffled order, delays), and
late copies redelivered after the outcome."""
from decimal import Decimal
from html import unescape

import pytest
import requests

from finance.models import BillableStatus, InvoiceStatus, Payment, PaymentMethod, PaymentStatus
from stripe_integration.models import DeliveryStatus
from stripe_integration.tests.test_events_payments import event, post_event
from stripe_integration.tests.webhook_fixtures import (  # noqa: F401  (fixtures)
    app_server, assert_inbox_exact, connected, eager_celery, twin_invoice,
)

pytestmark = pytest.mark.django_db(transaction=True)
DAY = 86400
ACH_OK, ACH_NO_FUNDS = "000123456789", "000222222227"
SEPA_OK = "DE89370400440532013000"


def pay_by_debit(connected, *, method="us_bank_account", number=ACH_OK, seed=51):
    s = connected.stripe
    connected.platform.chaos(seed=seed)
    currency = "usd" if method == "us_bank_account" else "eur"
    _, stripe_invoice, invoice = twin_invoice(connected, items=((5000, "Retainer"),), currency=currency)
    fields = {"method": method, "account_holder": "Ada Lovelace"}
    if method == "us_bank_account":
        fields.update(routing_number="110000000", account_number=number)
    else:
        fields.update(email="ada@example.test", iban=number)
    resp = requests.post(stripe_invoice["hosted_invoice_url"], data=fields, allow_redirects=False, timeout=15)
    assert resp.status_code < 400, resp.text[:500]
    s.drain()
    return stripe_invoice, invoice


def settle(connected):
    connected.platform.control("POST", "/clock", {"advance_seconds": DAY + 1})
    connected.stripe.drain()


def redeliver_late(connected, types):
    """Every event of these types the sandbox sent, again, newest first (so the oldest last)."""
    late = [e for e in connected.stripe.events() if e["type"] in types]
    assert late
    return [post_event(connected, {**e, "id": f"evt_late_{n}"}) for n, e in enumerate(late)]


@pytest.mark.parametrize(("method", "number", "label", "amount"), [
    ("us_bank_account", ACH_OK, "ACH debit", "50.00 USD"), ("sepa_debit", SEPA_OK, "SEPA debit", "50.00 EUR")])
def test_bank_debit_processing_is_shown_and_never_paid(connected, client, method, number, label, amount):
    stripe_invoice, invoice = pay_by_debit(connected, method=method, number=number)
    assert_inbox_exact(connected, since=invoice.created_at)
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
    assert f"{label}, {amount}" in page and "not paid until it clears" in page and 'data-status="open"' in page
    contact_page = client.get(f"/contacts/{invoice.bill_to_id}/").content.decode()
    assert "data-processing" in contact_page and label in contact_page


def test_bank_debit_settles_a_day_later_then_the_invoice_is_paid(connected):
    _, invoice = pay_by_debit(connected, seed=52)
    settle(connected)
    invoice.refresh_from_db()
    payment = Payment.objects.get(invoice=invoice)
    assert (invoice.status, invoice.amount_paid, invoice.net_paid) == (InvoiceStatus.PAID, Decimal("50.00"),
                                                                       Decimal("50.00"))
    assert payment.status == PaymentStatus.SUCCEEDED and payment.paid_at is not None and payment.fee > 0
    assert set(invoice.billables.values_list("status", flat=True)) == {BillableStatus.PAID}
    assert_inbox_exact(connected, since=invoice.created_at)
    # The processing events again, after the outcome: nothing goes back.
    for delivery in redeliver_late(connected, {"payment_intent.processing", "charge.pending", "invoice.updated"}):
        assert delivery.status in (DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED), delivery.error
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert (payment.status, invoice.status) == (PaymentStatus.SUCCEEDED, InvoiceStatus.PAID)


def test_bank_debit_returned_shows_the_failure_and_the_invoice_open(connected, client):
    _, invoice = pay_by_debit(connected, number=ACH_NO_FUNDS, seed=53)
    settle(connected)
    invoice.refresh_from_db()
    payment = Payment.objects.get(invoice=invoice)
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.OPEN, 0)
    assert payment.status == PaymentStatus.FAILED and "insufficient funds" in payment.failure_message
    assert_inbox_exact(connected, since=invoice.created_at)
    for delivery in redeliver_late(connected, {"payment_intent.processing"}):
        assert delivery.status == DeliveryStatus.PROCESSED, delivery.error
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    page = unescape(client.get(f"/invoices/{invoice.pk}/").content.decode())
    assert payment.failure_message in page and "data-processing" not in page and 'data-status="open"' in page
