"""Invoice status and payment history from Stripe's webhooks, end to end: invoices made
and paid in the sandbox (hosted invoice page or POST /v1/invoices/{id}/pay), deliveries
over HTTP to the app with the sandbox's webhook chaos on (duplicates, shuffled order,
delays). Every final state and every count is checked exactly."""
import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from finance.models import BillableStatus, InvoiceStatus, Payment, PaymentMethod, PaymentStatus
from stripe_integration.webhooks.processing import deliveries_retry_due
from stripe_integration.models import DeliveryStatus, WebhookDelivery
from stripe_integration.tests.stripe_http import StripeError, sign
from stripe_integration.tests.webhook_fixtures import (  # noqa: F401  (fixtures)
    app_server, assert_inbox_exact, connected, eager_celery, local_invoice, twin_invoice,
)

pytestmark = pytest.mark.django_db(transaction=True)

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"


def paid_invoice(connected, *, amount=5000, chaos_seed=None):
    """An open Stripe invoice with its local twin, paid on the hosted page."""
    s = connected.stripe
    if chaos_seed is not None:
        connected.platform.chaos(seed=chaos_seed)
    _, stripe_invoice, invoice = twin_invoice(connected, items=((amount, "Design work"),), lines=2)
    assert invoice.status == InvoiceStatus.OPEN
    status, error = s.hosted_pay(stripe_invoice["hosted_invoice_url"], GOOD_CARD)
    assert status == 303, error
    s.drain()
    invoice.refresh_from_db()
    return stripe_invoice, invoice


def test_hosted_page_payment_marks_invoice_paid_and_records_payment(connected):
    stripe_invoice, invoice = paid_invoice(connected, amount=12345, chaos_seed=1)

    assert invoice.status == InvoiceStatus.PAID
    assert invoice.paid_at is not None and invoice.finalized_at is not None
    assert invoice.amount_paid == Decimal("123.45") and invoice.amount_remaining == 0
    assert invoice.stripe_number == stripe_invoice["number"] and invoice.hosted_invoice_url.startswith("http")
    assert list(invoice.billables.values_list("status", flat=True)) == [BillableStatus.PAID] * 2
    payment = Payment.objects.get()
    intent_id = connected.stripe.invoice_payments(stripe_invoice["id"])[0]["payment"]["payment_intent"]
    intent = connected.stripe.get(f"/v1/payment_intents/{intent_id}", {"expand": ["latest_charge.balance_transaction"]})
    txn = intent["latest_charge"]["balance_transaction"]
    assert (payment.invoice, payment.business, payment.status) == (invoice, connected.business, PaymentStatus.SUCCEEDED)
    assert (payment.amount, payment.currency, payment.method) == (Decimal("123.45"), "USD", PaymentMethod.CARD)
    assert (payment.card_brand, payment.card_last4) == ("visa", "4242")
    assert payment.fee == Decimal(txn["fee"]) / 100 and payment.net == Decimal(txn["net"]) / 100 and payment.fee > 0
    assert payment.stripe_payment_intent_id == intent_id and payment.stripe_charge_id == intent["latest_charge"]["id"]
    assert payment.paid_at is not None
    log = assert_inbox_exact(connected, since=invoice.created_at)
    assert any(d["duplicate"] for d in log), "chaos should have delivered some events twice"
    types = set(WebhookDelivery.objects.values_list("type", flat=True))
    assert {"invoice.paid", "invoice.payment_succeeded", "payment_intent.succeeded", "charge.succeeded"} <= types


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_chaotic_delivery_orders_all_end_in_the_same_state(connected, seed):
    _, invoice = paid_invoice(connected, chaos_seed=seed)
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_paid == Decimal("50.00")
    assert Payment.objects.filter(status=PaymentStatus.SUCCEEDED).count() == 1
    assert_inbox_exact(connected, since=invoice.created_at)


def test_declined_card_then_good_card(connected):
    s = connected.stripe
    connected.platform.chaos(seed=5)
    customer, stripe_invoice, invoice = twin_invoice(connected)

    status, error = s.hosted_pay(stripe_invoice["hosted_invoice_url"], DECLINED_CARD)
    assert status == 402 and "declined" in error
    declining = s.attach_card(customer["id"], "pm_card_chargeCustomerFail")
    with pytest.raises(StripeError) as declined:
        s.pay(stripe_invoice["id"], declining["id"])
    assert declined.value.status == 402
    s.drain()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN and invoice.amount_paid == 0
    assert not Payment.objects.filter(status=PaymentStatus.SUCCEEDED).exists()
    # Staff see both failed attempts (the hosted page's and the saved card's), with why.
    failed = Payment.objects.filter(invoice=invoice, status=PaymentStatus.FAILED)
    assert failed.count() == 2
    assert all("declined" in p.failure_message.lower() for p in failed)
    assert set(invoice.billables.values_list("status", flat=True)) == {BillableStatus.INVOICED}
    assert WebhookDelivery.objects.filter(type="invoice.payment_failed", status=DeliveryStatus.PROCESSED).exists()

    good = s.attach_card(customer["id"], "pm_card_mastercard")
    assert s.pay(stripe_invoice["id"], good["id"])["status"] == "paid"
    s.drain()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    payment = Payment.objects.get(status=PaymentStatus.SUCCEEDED)
    assert (payment.card_brand, payment.card_last4, payment.amount) == ("mastercard", "4444", Decimal("50.00"))
    assert Payment.objects.filter(invoice=invoice, status=PaymentStatus.FAILED).count() == 2
    assert_inbox_exact(connected, since=invoice.created_at)


def test_void_makes_invoice_void_and_billables_billable_again(connected):
    s = connected.stripe
    connected.platform.chaos(seed=6)
    _, stripe_invoice, invoice = twin_invoice(connected, lines=3)
    billables = list(invoice.billables.all())
    s.void(stripe_invoice["id"])
    s.drain()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.VOID and invoice.voided_at is not None
    assert invoice.billables.count() == 0
    for billable in billables:
        billable.refresh_from_db()
        assert (billable.status, billable.invoice) == (BillableStatus.UNBILLED, None)
    assert invoice.lines.count() == 3  # the snapshot stays
    assert Payment.objects.count() == 0
    assert_inbox_exact(connected, since=invoice.created_at)


def test_mark_uncollectible_then_paid_out_of_band(connected):
    s = connected.stripe
    connected.platform.chaos(seed=8)
    _, stripe_invoice, invoice = twin_invoice(connected, items=((7000, "Audit"),))
    s.mark_uncollectible(stripe_invoice["id"])
    s.drain()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNCOLLECTIBLE

    s.post(f"/v1/invoices/{stripe_invoice['id']}/pay", {"paid_out_of_band": True})
    s.drain()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_paid == Decimal("70.00")
    payment = Payment.objects.get()
    assert (payment.method, payment.amount, payment.status) == (PaymentMethod.OUT_OF_BAND, Decimal("70.00"), PaymentStatus.SUCCEEDED)
    assert payment.stripe_payment_intent_id is None
    assert_inbox_exact(connected, since=invoice.created_at)


def test_deleted_stripe_draft_unlinks_the_local_draft(connected):
    s = connected.stripe
    _, draft, invoice = twin_invoice(connected, finalize=False)
    assert invoice.status == InvoiceStatus.DRAFT and invoice.stripe_invoice_id == draft["id"]
    s.delete_invoice(draft["id"])
    s.drain()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.DRAFT and invoice.stripe_invoice_id is None
    assert "deleted in Stripe" in invoice.last_error
    assert WebhookDelivery.objects.get(type="invoice.deleted").status == DeliveryStatus.PROCESSED


def _redeliver(connected, event: dict, new_id: str):
    """Stripe delivering (a copy of) an old event now, signed with the endpoint's secret."""
    body = json.dumps({**event, "id": new_id}).encode()
    resp = requests.post(connected.endpoint.url, data=body, timeout=30,
                         headers={"Stripe-Signature": sign(body, connected.endpoint.secret),
                                  "Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    return WebhookDelivery.objects.get(event_id=new_id)


def test_late_finalized_event_never_reopens_a_paid_invoice(connected):
    stripe_invoice, invoice = paid_invoice(connected)
    finalized = [e for e in connected.stripe.events(type="invoice.finalized")
                 if e["data"]["object"]["id"] == stripe_invoice["id"]][0]
    assert finalized["data"]["object"]["status"] == "open"

    delivery = _redeliver(connected, finalized, "evt_late_finalized")

    assert delivery.status == DeliveryStatus.PROCESSED and delivery.error == "already up to date"
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_paid == Decimal("50.00")
    assert Payment.objects.count() == 1


def test_two_event_ids_for_the_same_change_make_one_effect(connected):
    stripe_invoice, invoice = paid_invoice(connected)
    paid_event = [e for e in connected.stripe.events(type="invoice.paid")][0]
    updated_at = invoice.updated_at
    for n in range(3):
        _redeliver(connected, paid_event, f"evt_copy_{n}")
    invoice.refresh_from_db()
    assert invoice.updated_at == updated_at  # nothing written again
    assert Payment.objects.count() == 1 and invoice.billables.filter(status=BillableStatus.PAID).count() == 2


def test_payment_before_its_invoice_is_saved_is_parked_then_applied(connected):
    s = connected.stripe
    connected.platform.chaos(seed=9)
    stripe_invoice = s.open_invoice(s.customer()["id"])
    status, _ = s.hosted_pay(stripe_invoice["hosted_invoice_url"], GOOD_CARD)
    assert status == 303
    s.drain()
    parked = WebhookDelivery.objects.filter(status=DeliveryStatus.PARKED)
    assert {"invoice.paid", "payment_intent.succeeded", "charge.succeeded"} <= set(parked.values_list("type", flat=True))
    assert all(d.next_attempt_at is not None and stripe_invoice["id"] in d.error for d in parked)
    assert Payment.objects.count() == 0
    waiting = parked.count()

    invoice = local_invoice(connected.business, stripe_invoice)  # the push saves it now
    assert deliveries_retry_due() == 0  # not due yet: backoff
    assert deliveries_retry_due(now=timezone.now() + timedelta(hours=1)) == waiting

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and Payment.objects.count() == 1
    assert not WebhookDelivery.objects.filter(status__in=[DeliveryStatus.PARKED, DeliveryStatus.FAILED]).exists()


def test_parked_delivery_stops_retrying_after_three_days(connected, settings):
    s = connected.stripe
    stripe_invoice = s.open_invoice(s.customer()["id"])
    s.drain()
    delivery = WebhookDelivery.objects.filter(type="invoice.finalized").get()
    assert delivery.status == DeliveryStatus.PARKED
    WebhookDelivery.objects.filter(pk=delivery.pk).update(received_at=timezone.now() - timedelta(days=4))
    deliveries_retry_due(now=timezone.now() + timedelta(hours=2))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PARKED and delivery.next_attempt_at is None  # kept for staff
    assert stripe_invoice["id"] in delivery.error


def test_stripe_failure_during_processing_is_recorded_and_retried(connected, stripe_env):
    s = connected.stripe
    _, stripe_invoice, invoice = twin_invoice(connected)
    stripe_env.fault(r"GET /v1/invoice_payments", kind="500", count=50)
    status, _ = s.hosted_pay(stripe_invoice["hosted_invoice_url"], GOOD_CARD)
    assert status == 303
    s.drain()
    failed = WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED)
    assert failed.exists() and all("Stripe" in d.error and d.traceback for d in failed)
    invoice.refresh_from_db()
    # A handler that failed half-way left nothing: the invoice retrieve succeeded, but its
    # writes rolled back with the failure.
    assert invoice.status == InvoiceStatus.OPEN and Payment.objects.count() == 0

    stripe_env.clear_faults()
    deliveries_retry_due(now=timezone.now() + timedelta(hours=1))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and Payment.objects.count() == 1
    assert not WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED).exists()


def test_event_of_an_account_connected_to_another_business_never_touches_this_one(
        connected, client, finance_b, business_b, stripe_env, settings, app_server):
    from stripe_integration.tests.webhook_fixtures import connect_business

    other = connect_business(client=client, user=finance_b, business=business_b, stripe_env=stripe_env,
                             webhook_url=connected.endpoint.url, settings=settings)
    assert other.connection.stripe_user_id != connected.connection.stripe_user_id
    _, invoice_a = paid_invoice(connected)
    _, stripe_b, invoice_b = twin_invoice(other, items=((999, "B work"),))
    other.stripe.hosted_pay(stripe_b["hosted_invoice_url"], GOOD_CARD)
    other.stripe.drain()
    invoice_a.refresh_from_db()
    invoice_b.refresh_from_db()
    assert invoice_b.status == InvoiceStatus.PAID and invoice_b.amount_paid == Decimal("9.99")
    assert invoice_a.amount_paid == Decimal("50.00")
    assert Payment.objects.get(invoice=invoice_b).business == business_b
    assert set(WebhookDelivery.objects.filter(account=other.connection.stripe_user_id)
               .values_list("business", flat=True)) == {business_b.pk}
    assert set(WebhookDelivery.objects.filter(account=connected.connection.stripe_user_id)
               .values_list("business", flat=True)) == {connected.business.pk}
