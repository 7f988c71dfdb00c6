"""Refunds that change after they were made: a refund that fails stops counting, and the
refunded figures follow Stripe's current ones down as well as up.

The sandbox cannot fail a refund yet (Stripe does it on its own, later: test card
4000 0000 0000 5126), so `tests_support.stripe_async.refund_fails` plays that on the
sandbox's state, and the events Stripe then sends are hand-made, signed and delivered
through the app's real intake URL. Everything else is the sandbox's own doing."""
import pytest

from finance.models import PaymentStatus, Refund
from stripe_integration.models import DeliveryStatus
from stripe_integration.connect.oauth import WEBHOOK_EVENTS
from stripe_integration.tests.test_events_payments import event, pay, post_event
from stripe_integration.tests.webhook_fixtures import (  # noqa: F401  (fixtures)
    app_server, connected, eager_celery,
)
from tests_support.stripe_async import refund_fails

pytestmark = pytest.mark.django_db(transaction=True)

D = __import__("decimal").Decimal


def test_refund_events_are_subscribed():
    assert {"charge.refund.updated", "refund.updated", "refund.failed"} <= set(WEBHOOK_EVENTS)


def test_refund_failed_stops_counting(connected, stripe_env):
    s = connected.stripe
    _, invoice, payment = pay(connected)
    first = s.refund(payment.stripe_payment_intent_id, 1000)
    second = s.refund(payment.stripe_payment_intent_id, 2000)
    s.drain()
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.amount_refunded == D("30.00") and invoice.net_paid == D("20.00")

    failed = refund_fails(base_url=stripe_env.base_url, refund_id=second["id"])
    delivery = post_event(connected, event(connected, "evt_refund_failed_1", "charge.refund.updated", failed))
    assert delivery.status == DeliveryStatus.PROCESSED, delivery.error

    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.amount_refunded == D("10.00") and payment.status == PaymentStatus.PARTIALLY_REFUNDED
    assert invoice.amount_refunded == D("10.00") and invoice.net_paid == D("40.00")
    assert dict(Refund.objects.values_list("stripe_refund_id", "status")) == {
        first["id"]: "succeeded", second["id"]: "failed"}

    # Stripe's refund.failed about the same change: one effect.
    again = post_event(connected, event(connected, "evt_refund_failed_2", "refund.failed", failed))
    assert again.status == DeliveryStatus.PROCESSED and again.error == "already up to date"


def test_refund_failed_alone_gives_the_payment_back_in_full(connected, stripe_env):
    s = connected.stripe
    _, invoice, payment = pay(connected)
    whole = s.refund(payment.stripe_payment_intent_id)
    s.drain()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED

    failed = refund_fails(base_url=stripe_env.base_url, refund_id=whole["id"])
    post_event(connected, event(connected, "evt_refund_failed_3", "refund.failed", failed))
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.amount_refunded == 0
    assert invoice.amount_refunded == 0 and invoice.net_paid == invoice.amount_paid == D("50.00")
    assert Refund.objects.get().status == "failed"


def test_refund_failed_then_a_late_charge_refunded_reads_stripe_now(connected, stripe_env):
    """The old charge.refunded comes again (late, or catch-up) after the refund failed: the
    figures are Stripe's current ones, not the larger ones the event carries."""
    s = connected.stripe
    _, invoice, payment = pay(connected)
    refund = s.refund(payment.stripe_payment_intent_id, 2500)
    s.drain()
    old_event = s.events(type="charge.refunded")[0]
    refund_fails(base_url=stripe_env.base_url, refund_id=refund["id"])
    late = post_event(connected, {**old_event, "id": "evt_charge_refunded_late"})
    assert late.status == DeliveryStatus.PROCESSED
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.amount_refunded == 0 and payment.status == PaymentStatus.SUCCEEDED
    assert invoice.amount_refunded == 0 and Refund.objects.get().status == "failed"


def test_refund_events_an_endpoint_made_before_is_subscribed_on_connect(client, finance_a, stripe_env):
    """An installation whose Connect endpoint predates these events gets them the next time
    a business connects (the endpoint and its secret are kept)."""
    from stripe_integration.models import ConnectWebhookEndpoint
    from stripe_integration.tests import oauth_helpers as oauth
    from stripe_integration.tests.stripe_http import StripeHTTP

    client.force_login(finance_a)
    oauth.connect(client)
    endpoint = ConnectWebhookEndpoint.objects.get()
    platform = StripeHTTP(stripe_env.base_url, stripe_env.secret_key)
    older = [e for e in WEBHOOK_EVENTS if "refund." not in e or e == "charge.refunded"]
    platform.post(f"/v1/webhook_endpoints/{endpoint.stripe_id}", {"enabled_events": older})

    oauth.connect(client)
    remote = platform.get(f"/v1/webhook_endpoints/{endpoint.stripe_id}")
    assert set(remote["enabled_events"]) == set(WEBHOOK_EVENTS)
    kept = ConnectWebhookEndpoint.objects.get()
    assert kept.stripe_id == endpoint.stripe_id and kept.secret == endpoint.secret
    assert set(kept.enabled_events) == set(WEBHOOK_EVENTS)
