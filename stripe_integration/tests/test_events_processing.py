"""The processing rules on their own: forward-only statuses, payments from PaymentIntents
(bank debits "processing" apart from paid), refunds, and the delivery bookkeeping
(exactly once, all-or-nothing handlers, parking, backoff). No Stripe traffic: the objects
are the dicts the gateway returns."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm.tests.factories import BusinessFactory
from finance.models import (
    BillableStatus, Invoice, InvoiceStatus, Payment, PaymentMethod, PaymentStatus, Refund, invoice_status_path,
)
from finance.tests.factories import BillableFactory, InvoiceFactory
from stripe_integration.webhooks import processing as events
from stripe_integration.webhooks import apply as payments
from stripe_integration.webhooks.context import EventParked
from stripe_integration.models import ConnectionStatus, DeliveryStatus, StripeConnection, WebhookDelivery

pytestmark = pytest.mark.django_db


# --- invoices --------------------------------------------------------------------------
@pytest.mark.parametrize("current, target, path", [
    ("draft", "draft", []),
    ("draft", "open", ["open"]),
    ("draft", "paid", ["open", "paid"]),
    ("open", "uncollectible", ["uncollectible"]),
    ("uncollectible", "paid", ["paid"]),
    ("paid", "open", None),
    ("paid", "void", None),
    ("void", "paid", None),
    ("open", "draft", None),
])
def test_invoice_status_path_moves_forward_only(current, target, path):
    assert invoice_status_path(current, target) == path


def _stripe_invoice(invoice, **fields):
    return {"id": invoice.stripe_invoice_id, "currency": invoice.currency.lower(), "status": "open", "number": "ABC-0001",
            "amount_paid": 0, "amount_remaining": 5000, "hosted_invoice_url": "https://pay.example/i/1",
            "invoice_pdf": "https://pay.example/i/1.pdf", "customer": "cus_1", "due_date": None,
            "status_transitions": {"finalized_at": 1_700_000_000, "paid_at": None, "voided_at": None}, **fields}


@pytest.fixture
def invoice():
    inv = InvoiceFactory(stripe_invoice_id="in_1", status=InvoiceStatus.OPEN, total=Decimal("50.00"),
                         amount_remaining=Decimal("50.00"))
    BillableFactory(business=inv.business, bill_to=inv.bill_to, invoice=inv, status=BillableStatus.INVOICED)
    return inv


def test_invoice_apply_stripe_paid_draft_goes_through_open_and_pays_billables(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.DRAFT)
    invoice.refresh_from_db()
    changed = payments.invoice_apply_stripe(invoice=invoice, stripe_invoice=_stripe_invoice(
        invoice, status="paid", amount_paid=5000, amount_remaining=0,
        status_transitions={"finalized_at": 1_700_000_000, "paid_at": 1_700_000_100, "voided_at": None}))
    invoice.refresh_from_db()
    assert "status" in changed and invoice.status == InvoiceStatus.PAID
    assert (invoice.amount_paid, invoice.amount_remaining) == (Decimal("50.00"), Decimal("0"))
    assert invoice.paid_at is not None and invoice.stripe_number == "ABC-0001"
    assert list(invoice.billables.values_list("status", flat=True)) == [BillableStatus.PAID]


def test_invoice_apply_stripe_ignores_an_older_state_entirely(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.PAID, amount_paid=Decimal("50.00"),
                                                 amount_remaining=0)
    invoice.refresh_from_db()
    # Only the billables follow the (local) paid status; nothing of the stale object is taken.
    assert payments.invoice_apply_stripe(invoice=invoice, stripe_invoice=_stripe_invoice(invoice)) == ["billables"]
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_paid == Decimal("50.00")
    assert invoice.stripe_number == ""
    assert payments.invoice_apply_stripe(invoice=invoice, stripe_invoice=_stripe_invoice(invoice)) == []


def test_invoice_apply_stripe_same_object_twice_changes_nothing_the_second_time(invoice):
    obj = _stripe_invoice(invoice)
    assert payments.invoice_apply_stripe(invoice=invoice, stripe_invoice=obj)
    assert payments.invoice_apply_stripe(invoice=invoice, stripe_invoice=obj) == []


def test_invoice_apply_stripe_amount_paid_never_shrinks(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.OPEN, amount_paid=Decimal("20.00"))
    invoice.refresh_from_db()
    payments.invoice_apply_stripe(invoice=invoice, stripe_invoice=_stripe_invoice(invoice, amount_paid=1000))
    invoice.refresh_from_db()
    assert invoice.amount_paid == Decimal("20.00")


def test_invoice_apply_stripe_uses_the_currency_exponent(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(currency="JPY")
    invoice.refresh_from_db()
    payments.invoice_apply_stripe(invoice=invoice, stripe_invoice=_stripe_invoice(invoice, amount_remaining=5000))
    invoice.refresh_from_db()
    assert invoice.amount_remaining == Decimal("5000")


# --- payments --------------------------------------------------------------------------
def _intent(status, *, method="card", amount=5000, refunded=0, error=None, currency="usd", txn_currency=None):
    details = {"type": method}
    if method == "card":
        details["card"] = {"brand": "visa", "last4": "4242"}
    charge = {"id": "ch_1", "created": 1_700_000_000, "amount_refunded": refunded, "payment_method_details": details,
              "balance_transaction": {"id": "txn_1", "currency": txn_currency or currency, "fee": 175, "net": amount - 175}}
    return {"id": "pi_1", "status": status, "amount": amount, "amount_received": amount if status == "succeeded" else 0,
            "currency": currency, "created": 1_699_999_999, "latest_charge": charge, "last_payment_error": error}


def test_bank_debit_processing_is_recorded_apart_from_paid(invoice):
    payment, changed = payments.payment_apply_intent(invoice=invoice, intent=_intent("processing", method="us_bank_account"))
    assert changed and payment.status == PaymentStatus.PROCESSING and payment.method == PaymentMethod.BANK
    assert payment.paid_at is None and payment.card_last4 == ""
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN  # processing is not paid

    payment, changed = payments.payment_apply_intent(invoice=invoice, intent=_intent("succeeded", method="us_bank_account"))
    assert changed and payment.status == PaymentStatus.SUCCEEDED and payment.paid_at is not None
    # A late "processing" never takes a settled payment back.
    payment, changed = payments.payment_apply_intent(invoice=invoice, intent=_intent("processing", method="us_bank_account"))
    assert not changed and payment.status == PaymentStatus.SUCCEEDED
    assert Payment.objects.count() == 1


def test_failed_attempt_then_success_on_the_same_intent(invoice):
    error = {"message": "Your card was declined.", "code": "card_declined"}
    payment, _ = payments.payment_apply_intent(invoice=invoice, intent=_intent("requires_payment_method", error=error))
    assert payment.status == PaymentStatus.FAILED and payment.failure_message == "Your card was declined."
    payment, _ = payments.payment_apply_intent(invoice=invoice, intent=_intent("succeeded"))
    assert payment.status == PaymentStatus.SUCCEEDED and payment.failure_message == ""
    assert (payment.fee, payment.net, payment.card_brand) == (Decimal("1.75"), Decimal("48.25"), "visa")


def test_intent_without_an_attempt_records_nothing(invoice):
    assert payments.payment_apply_intent(invoice=invoice, intent=_intent("requires_payment_method")) == (None, False)
    assert Payment.objects.count() == 0


def test_fee_and_net_kept_only_in_the_charge_currency(invoice):
    payment, _ = payments.payment_apply_intent(invoice=invoice, intent=_intent("succeeded", txn_currency="eur"))
    assert payment.fee == 0 and payment.net == 0 and payment.amount == Decimal("50.00")


def test_refunded_status_follows_the_cumulative_amount(invoice):
    payment, _ = payments.payment_apply_intent(invoice=invoice, intent=_intent("succeeded", refunded=1000))
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED and payment.amount_refunded == Decimal("10.00")
    payment, _ = payments.payment_apply_intent(invoice=invoice, intent=_intent("succeeded", refunded=5000))
    assert payment.status == PaymentStatus.REFUNDED
    # The charge is read from Stripe as it is now (under the invoice's lock): less refunded
    # means a refund failed or was canceled, and the payment follows it down.
    payment, changed = payments.payment_apply_intent(invoice=invoice, intent=_intent("succeeded", refunded=1000))
    assert changed and payment.amount_refunded == Decimal("10.00") and payment.status == PaymentStatus.PARTIALLY_REFUNDED
    payment, changed = payments.payment_apply_intent(invoice=invoice, intent=_intent("succeeded", refunded=0))
    assert changed and payment.amount_refunded == 0 and payment.status == PaymentStatus.SUCCEEDED


def test_refunds_apply_is_idempotent(invoice):
    payment, _ = payments.payment_apply_intent(invoice=invoice, intent=_intent("succeeded", refunded=1500))
    rows = [{"id": "re_1", "amount": 1000, "currency": "usd", "status": "succeeded", "reason": "requested_by_customer"},
            {"id": "re_2", "amount": 500, "currency": "usd", "status": "succeeded", "reason": None}]
    assert payments.refunds_apply(payment=payment, refunds=rows) == 2
    assert payments.refunds_apply(payment=payment, refunds=rows) == 0
    assert sorted(Refund.objects.values_list("amount", flat=True)) == [Decimal("5.00"), Decimal("10.00")]
    assert payments.invoice_refresh_refunded(invoice=invoice) and invoice.amount_refunded == Decimal("15.00")


def test_payment_of_another_business_is_refused(invoice):
    payments.payment_apply_intent(invoice=invoice, intent=_intent("succeeded"))
    other = InvoiceFactory(business=BusinessFactory(), stripe_invoice_id="in_other")
    with pytest.raises(ValueError, match="another business"):
        payments.payment_apply_intent(invoice=other, intent=_intent("succeeded"))


# --- delivery bookkeeping -----------------------------------------------------------------
@pytest.fixture
def delivery(invoice, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_processing"
    StripeConnection.objects.create(business=invoice.business, stripe_user_id="acct_p", status=ConnectionStatus.CONNECTED)
    return WebhookDelivery.objects.create(
        event_id="evt_p1", account="acct_p", type="invoice.paid", object_id="in_1", received_at=timezone.now(),
        payload='{"id": "evt_p1", "object": "event", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}}')


def test_delivery_is_handled_once(delivery, monkeypatch):
    calls = []
    monkeypatch.setitem(events.HANDLERS, "invoice.paid", lambda ctx: calls.append(ctx.event["id"]) or "done")
    for _ in range(3):
        events.delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert calls == ["evt_p1"] and delivery.status == DeliveryStatus.PROCESSED and delivery.error == "done"
    assert delivery.attempts == 1 and delivery.processed_at and delivery.business_id == delivery_business(delivery)
    events.delivery_reprocess(delivery=delivery)  # staff's Reprocess runs it again
    assert calls == ["evt_p1", "evt_p1"]


def delivery_business(delivery):
    return StripeConnection.objects.get(stripe_user_id=delivery.account).business_id


def test_handler_failing_half_way_leaves_nothing_done(delivery, invoice, monkeypatch):
    def half_way(ctx):
        Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.PAID)
        raise RuntimeError("boom after a write")

    monkeypatch.setitem(events.HANDLERS, "invoice.paid", half_way)
    events.delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN  # the write rolled back with the failure
    assert delivery.status == DeliveryStatus.FAILED and "RuntimeError: boom" in delivery.error
    assert "half_way" in delivery.traceback and delivery.next_attempt_at > timezone.now()

    monkeypatch.setitem(events.HANDLERS, "invoice.paid", lambda ctx: "fixed")
    assert events.delivery_process(delivery_id=delivery.pk).status == DeliveryStatus.PROCESSED
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.error == "fixed" and delivery.traceback == ""


def test_failed_delivery_backs_off_then_waits_for_staff(delivery, monkeypatch):
    def fail(ctx):
        raise RuntimeError("still broken")

    monkeypatch.setitem(events.HANDLERS, "invoice.paid", fail)
    delays = []
    for _ in range(events.MAX_FAILED_ATTEMPTS):
        events.delivery_process(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        if delivery.next_attempt_at:
            delays.append((delivery.next_attempt_at - timezone.now()).total_seconds())
    assert all(later >= earlier - 1 for earlier, later in zip(delays, delays[1:]))
    assert delays[0] <= 31 and delays[-1] > 3000
    assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
    assert events.deliveries_due(now=timezone.now() + timedelta(days=10)) == []


def test_parked_delivery_is_due_after_its_backoff(delivery, monkeypatch):
    def park(ctx):
        raise EventParked("not yet")

    monkeypatch.setitem(events.HANDLERS, "invoice.paid", park)
    events.delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PARKED and delivery.error == "not yet"
    assert events.deliveries_due() == []
    assert events.deliveries_due(now=timezone.now() + timedelta(minutes=1)) == [delivery.pk]


def test_received_delivery_never_queued_is_picked_up(delivery):
    assert events.deliveries_due() == []
    WebhookDelivery.objects.filter(pk=delivery.pk).update(received_at=timezone.now() - timedelta(minutes=5))
    assert events.deliveries_due() == [delivery.pk]


def test_every_subscribed_event_type_has_a_handler():
    from stripe_integration.connect.oauth import WEBHOOK_EVENTS

    assert set(events.HANDLERS) == set(WEBHOOK_EVENTS)


def test_billables_follow_an_invoice_someone_else_marked_paid(invoice):
    # The invoice push may record "paid" from Stripe's answer before the webhook runs.
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.PAID)
    invoice.refresh_from_db()
    paid = _stripe_invoice(invoice, status="paid", amount_paid=5000, amount_remaining=0)
    assert "billables" in payments.invoice_apply_stripe(invoice=invoice, stripe_invoice=paid)
    assert list(invoice.billables.values_list("status", flat=True)) == [BillableStatus.PAID]
    assert "billables" not in payments.invoice_apply_stripe(invoice=invoice, stripe_invoice=paid)
