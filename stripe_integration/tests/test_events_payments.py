"""Refunds, saved cards and deauthorization from Stripe's webhooks, end to end
against the sandbox with its webhook chaos on."""
import json
import time
from decimal import Decimal

import pytest
import requests

from finance.models import InvoiceStatus, Payment, PaymentStatus, Refund
from stripe_integration.models import ConnectionStatus, DeliveryStatus, StripeConnection, WebhookDelivery
from stripe_integration.tests.stripe_http import sign
from stripe_integration.tests.webhook_fixtures import (  # noqa: F401  (fixtures)
    app_server, assert_inbox_exact, connected, eager_celery, twin_invoice,
)

pytestmark = pytest.mark.django_db(transaction=True)


def pay(connected, *, amount=5000, seed=11):
    connected.platform.chaos(seed=seed)
    _, stripe_invoice, invoice = twin_invoice(connected, items=((amount, "Retainer"),))
    status, error = connected.stripe.hosted_pay(stripe_invoice["hosted_invoice_url"], "4242424242424242")
    assert status == 303, error
    connected.stripe.drain()
    payment = Payment.objects.get(invoice=invoice)
    return stripe_invoice, invoice, payment


def post_event(connected, event: dict) -> WebhookDelivery:
    """A signed delivery of an event the sandbox cannot make (disputes, processing)."""
    body = json.dumps(event).encode()
    resp = requests.post(connected.endpoint.url, data=body, timeout=30,
                         headers={"Stripe-Signature": sign(body, connected.endpoint.secret),
                                  "Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    return WebhookDelivery.objects.get(event_id=event["id"])


def event(connected, event_id, type_, obj):
    return {"id": event_id, "object": "event", "type": type_, "account": connected.connection.stripe_user_id,
            "livemode": False, "api_version": "2026-08-26.dahlia", "created": int(time.time()),
            "data": {"object": obj}, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}}


def test_partial_refunds_twice_then_the_rest(connected):
    s = connected.stripe
    _, invoice, payment = pay(connected)
    s.refund(payment.stripe_payment_intent_id, 1000)
    s.refund(payment.stripe_payment_intent_id, 1500)
    s.drain()

    payment.refresh_from_db()
    invoice.refresh_from_db()
    refunds = Refund.objects.order_by("amount")
    assert [(r.amount, r.currency, r.status, r.payment) for r in refunds] == [
        (Decimal("10.00"), "USD", "succeeded", payment), (Decimal("15.00"), "USD", "succeeded", payment)]
    assert all(r.stripe_refund_id.startswith("re_") and r.business == connected.business for r in refunds)
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED and payment.amount_refunded == Decimal("25.00")
    assert invoice.status == InvoiceStatus.PAID  # paid stays paid; what was paid is adjusted beside it
    assert invoice.amount_paid == Decimal("50.00") and invoice.amount_refunded == Decimal("25.00")
    assert invoice.net_paid == Decimal("25.00")

    s.refund(payment.stripe_payment_intent_id)
    s.drain()
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert Refund.objects.count() == 3 and Payment.objects.count() == 1
    assert payment.status == PaymentStatus.REFUNDED and payment.amount_refunded == Decimal("50.00")
    assert invoice.amount_refunded == Decimal("50.00") and invoice.net_paid == 0
    assert WebhookDelivery.objects.filter(type="charge.refunded").count() == 3
    assert_inbox_exact(connected, since=invoice.created_at)


def test_refund_events_redelivered_make_no_second_refund(connected):
    s = connected.stripe
    _, invoice, payment = pay(connected)
    s.refund(payment.stripe_payment_intent_id, 2000)
    s.drain()
    refunded = [e for e in s.events(type="charge.refunded")][0]
    for n in range(2):
        delivery = post_event(connected, {**refunded, "id": f"evt_refund_copy_{n}"})
        assert delivery.status == DeliveryStatus.PROCESSED and delivery.error == "already up to date"
    assert Refund.objects.count() == 1
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("20.00")


# Disputes: test_events_disputes.py.


def _default_pm(s, customer_id):
    return s.get(f"/v1/customers/{customer_id}")["invoice_settings"]["default_payment_method"]


def test_saved_card_becomes_the_customers_default(connected):
    s = connected.stripe
    connected.platform.chaos(seed=12)
    customer = s.customer()
    setup = s.save_card(customer["id"])
    s.drain()
    assert _default_pm(s, customer["id"]) == setup["payment_method"]
    handled = WebhookDelivery.objects.get(type="setup_intent.succeeded")
    assert handled.status == DeliveryStatus.PROCESSED and "is now the default" in handled.error
    updates = s.get("/v1/events", {"type": "customer.updated"})["data"]
    assert len(updates) == 1  # one write to Stripe, however many copies came


def test_newest_saved_card_wins_whatever_the_delivery_order(connected):
    s = connected.stripe
    connected.platform.chaos(seed=13, delay_ms=(0, 400))
    customer = s.customer()
    first = s.save_card(customer["id"], "pm_card_visa")
    connected.platform.control("POST", "/clock", {"advance_seconds": 5})
    second = s.save_card(customer["id"], "pm_card_mastercard")
    s.drain()
    assert _default_pm(s, customer["id"]) == second["payment_method"] != first["payment_method"]


def test_checkout_setup_session_saves_the_default_card(connected):
    s = connected.stripe
    connected.platform.chaos(seed=14)
    customer = s.customer()
    session = s.post("/v1/checkout/sessions", {"mode": "setup", "customer": customer["id"], "currency": "usd",
                                               "success_url": "https://crm.example/done?s={CHECKOUT_SESSION_ID}"})
    resp = requests.post(session["url"], data={"card_number": "5555 5555 5555 4444", "exp": "12 / 34", "cvc": "123",
                                                "name": "Ada"}, allow_redirects=False, timeout=15)
    assert resp.status_code == 303
    s.drain()
    setup = s.get(f"/v1/setup_intents/{session['setup_intent']}")
    assert _default_pm(s, customer["id"]) == setup["payment_method"]
    statuses = dict(WebhookDelivery.objects.filter(type__in=["checkout.session.completed", "setup_intent.succeeded"])
                    .values_list("type", "status"))
    assert statuses == {"checkout.session.completed": DeliveryStatus.PROCESSED,
                        "setup_intent.succeeded": DeliveryStatus.PROCESSED}


def test_deauthorization_revokes_the_connection_and_later_events_are_kept(connected):
    _, invoice, _ = pay(connected)
    connected.platform.chaos(seed=15)
    connected.platform.post("/oauth/deauthorize", {"client_id": connected.client_id,
                                                   "stripe_user_id": connected.connection.stripe_user_id})
    connected.stripe.drain()
    connection = StripeConnection.objects.get(pk=connected.connection.pk)
    assert connection.status == ConnectionStatus.REVOKED and connection.access_token == ""
    handled = WebhookDelivery.objects.get(type="account.application.deauthorized")
    assert handled.status == DeliveryStatus.PROCESSED and handled.business == connected.business

    late = post_event(connected, event(connected, "evt_after_revoke", "invoice.paid",
                                       {"id": invoice.stripe_invoice_id, "object": "invoice"}))
    # Kept for when the account is connected again (test_events_reconnect.py), not dropped.
    assert late.status == DeliveryStatus.PARKED and "No business has" in late.error
    assert late.business == connected.business  # still shown to that business's staff
