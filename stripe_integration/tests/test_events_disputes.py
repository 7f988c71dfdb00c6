"""Disputes from Stripe's charge.dispute.* events, end to end through the intake: a real
payment made on the sandbox's hosted invoice page, then the dispute events (signed,
hand-made until the sandbox opens disputes itself), in order, shuffled and duplicated."""
import itertools
import random
import time
from decimal import Decimal

import pytest

from finance.models import Dispute, DisputeStatus, Invoice, Payment
from stripe_integration.models import DeliveryStatus
from stripe_integration.tests.test_events_payments import event, pay, post_event
from stripe_integration.tests.webhook_fixtures import (  # noqa: F401  (fixtures)
    app_server, connected, eager_celery,
)

pytestmark = pytest.mark.django_db(transaction=True)
DUE = int(time.time()) + 7 * 86400


def dispute_obj(payment, *, status, amount=5000, dispute_id="dp_1", txns=(), submissions=0, **extra):
    """A Stripe dispute object (the spec's required fields) on the payment's charge."""
    return {"id": dispute_id, "object": "dispute", "amount": amount, "currency": "usd",
            "charge": payment.stripe_charge_id, "payment_intent": payment.stripe_payment_intent_id,
            "reason": "fraudulent", "status": status, "created": int(time.time()) - 60, "livemode": False,
            "is_charge_refundable": False, "metadata": {}, "evidence": {},
            "evidence_details": {"due_by": DUE, "has_evidence": submissions > 0, "past_due": False,
                                 "submission_count": submissions, "enhanced_eligibility": {}},
            "balance_transactions": [{"id": f"txn_{dispute_id}_{n}", "object": "balance_transaction", "amount": a,
                                      "fee": f, "currency": "usd", "type": "adjustment"} for n, (a, f) in enumerate(txns)],
            **extra}


WITHDRAWN = ((-5000, 1500),)
REINSTATED = ((-5000, 1500), (5000, 0))


def lost_story(payment):
    return [
        ("charge.dispute.created", dispute_obj(payment, status="needs_response")),
        ("charge.dispute.funds_withdrawn", dispute_obj(payment, status="needs_response", txns=WITHDRAWN)),
        ("charge.dispute.updated", dispute_obj(payment, status="under_review", txns=WITHDRAWN, submissions=1)),
        ("charge.dispute.closed", dispute_obj(payment, status="lost", txns=WITHDRAWN, submissions=1)),
    ]


def deliver(connected, story, *, prefix):
    return [post_event(connected, event(connected, f"evt_{prefix}_{n}", type_, obj))
            for n, (type_, obj) in enumerate(story)]


def figures(invoice):
    invoice = Invoice.objects.get(pk=invoice.pk)
    payment = Payment.objects.get(invoice=invoice, stripe_payment_intent_id__isnull=False)
    rows = [(d.stripe_id, d.status, d.amount, d.fee, d.funds_withdrawn, d.funds_reinstated, d.evidence_submitted)
            for d in Dispute.objects.filter(invoice=invoice)]
    return (invoice.disputed, invoice.amount_disputed, invoice.net_paid, payment.amount_disputed, rows)


def test_dispute_opened_shows_open_with_its_due_date_and_keeps_the_money(connected):
    _, invoice, payment = pay(connected)
    [delivery] = deliver(connected, lost_story(payment)[:1], prefix="open")
    assert delivery.status == DeliveryStatus.PROCESSED, delivery.error
    dispute = Dispute.objects.get()
    assert (dispute.status, dispute.reason, dispute.amount, dispute.currency) == ("needs_response", "fraudulent",
                                                                                   Decimal("50.00"), "USD")
    assert dispute.is_open and int(dispute.evidence_due_by.timestamp()) == DUE
    assert dispute.payment == payment and dispute.invoice == invoice and dispute.business == connected.business
    invoice.refresh_from_db()
    assert invoice.disputed and invoice.disputed_at is not None
    assert invoice.amount_disputed == 0 and invoice.net_paid == Decimal("50.00")  # open is not lost


def test_dispute_lost_takes_the_money_out_and_keeps_the_flag(connected):
    _, invoice, payment = pay(connected)
    deliveries = deliver(connected, lost_story(payment), prefix="lost")
    assert all(d.status == DeliveryStatus.PROCESSED for d in deliveries), [d.error for d in deliveries]
    disputed, amount_disputed, net_paid, payment_disputed, [row] = figures(invoice)
    assert (disputed, amount_disputed, net_paid, payment_disputed) == (True, Decimal("50.00"), Decimal("0.00"),
                                                                       Decimal("50.00"))
    assert row == ("dp_1", "lost", Decimal("50.00"), Decimal("15.00"), Decimal("50.00"), Decimal("0"), True)
    assert Dispute.objects.get().closed_at is not None


def test_dispute_won_puts_the_money_back_and_clears_the_flag(connected):
    _, invoice, payment = pay(connected)
    story = lost_story(payment)[:3] + [
        ("charge.dispute.funds_reinstated", dispute_obj(payment, status="won", txns=REINSTATED, submissions=1)),
        ("charge.dispute.closed", dispute_obj(payment, status="won", txns=REINSTATED, submissions=1))]
    deliver(connected, story, prefix="won")
    disputed, amount_disputed, net_paid, payment_disputed, [row] = figures(invoice)
    assert (disputed, amount_disputed, net_paid, payment_disputed) == (False, 0, Decimal("50.00"), 0)
    assert row[1:] == ("won", Decimal("50.00"), Decimal("15.00"), Decimal("50.00"), Decimal("50.00"), True)


def test_dispute_events_shuffled_and_duplicated_give_the_same_figures(connected):
    _, invoice, payment = pay(connected)
    story = lost_story(payment)
    deliver(connected, story, prefix="ref")
    expected = figures(invoice)
    orders = list(itertools.permutations(story))
    for n, order in enumerate(random.Random(5).sample(orders, 6) + [tuple(reversed(story))]):
        Dispute.objects.all().delete()
        Invoice.objects.filter(pk=invoice.pk).update(disputed=False, disputed_at=None, amount_disputed=0)
        Payment.objects.filter(pk=payment.pk).update(amount_disputed=0)
        doubled = [item for item in order for _ in range(2)]  # every event twice, as Stripe may
        deliveries = deliver(connected, doubled, prefix=f"shuffle{n}")
        assert all(d.status == DeliveryStatus.PROCESSED for d in deliveries)
        assert figures(invoice) == expected, order


def test_dispute_late_copy_of_an_open_state_never_reopens_a_lost_one(connected):
    _, invoice, payment = pay(connected)
    deliver(connected, lost_story(payment), prefix="final")
    [late] = deliver(connected, [("charge.dispute.updated", dispute_obj(payment, status="needs_response"))],
                     prefix="late")
    assert late.status == DeliveryStatus.PROCESSED and "already lost" in late.error
    assert Dispute.objects.get().status == DisputeStatus.LOST
    assert figures(invoice)[:3] == (True, Decimal("50.00"), Decimal("0.00"))


def test_dispute_hostile_objects_are_ignored_not_failed(connected):
    _, invoice, payment = pay(connected)
    unknown_status = deliver(connected, [("charge.dispute.created", dispute_obj(payment, status="exploded"))],
                             prefix="bad")[0]
    unknown_charge = deliver(connected, [("charge.dispute.created",
                                          {**dispute_obj(payment, status="needs_response", dispute_id="dp_x"),
                                           "charge": "ch_unknown", "payment_intent": None})], prefix="unk")[0]
    no_object = deliver(connected, [("charge.dispute.updated", "not an object")], prefix="thin")[0]
    assert [d.status for d in (unknown_status, unknown_charge, no_object)] == [DeliveryStatus.IGNORED] * 3
    assert "Unknown dispute status" in unknown_status.error
    assert not Dispute.objects.exists()
    assert figures(invoice)[:3] == (False, 0, Decimal("50.00"))
