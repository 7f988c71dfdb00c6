"""Disputes end to end: an invoice paid on the sandbox's hosted page with Stripe's dispute
test cards, the sandbox opening the dispute, evidence submitted, the sandbox clock moved
until the bank decides; the charge.dispute.* events delivered with the sandbox's webhook
chaos (duplicates, shuffled order, delays), and again late and reversed."""
from decimal import Decimal

import pytest

from finance.models import Dispute, DisputeStatus, Invoice, Payment
from stripe_integration.models import DeliveryStatus, WebhookDelivery
from stripe_integration.tests.test_events_payments import event, post_event
from stripe_integration.tests.webhook_fixtures import (  # noqa: F401  (fixtures)
    app_server, assert_inbox_exact, connected, eager_celery, twin_invoice,
)

pytestmark = pytest.mark.django_db(transaction=True)
HOUR, DAY = 3600, 86400
DISPUTE_CARD, INQUIRY_CARD = "4000000000000259", "4000000000001976"


def pay_disputed(connected, *, card=DISPUTE_CARD, seed=21):
    s = connected.stripe
    connected.platform.chaos(seed=seed)
    _, stripe_invoice, invoice = twin_invoice(connected, items=((5000, "Retainer"),))
    status, error = s.hosted_pay(stripe_invoice["hosted_invoice_url"], card)
    assert status == 303, error
    s.drain()
    payment = Payment.objects.get(invoice=invoice)
    (dispute,) = s.get("/v1/disputes", {"charge": payment.stripe_charge_id})["data"]
    return invoice, payment, dispute


def decide(connected, dispute, evidence):
    s = connected.stripe
    s.post(f"/v1/disputes/{dispute['id']}", {"evidence": {"uncategorized_text": evidence}})
    connected.platform.control("POST", "/clock", {"advance_seconds": HOUR + 1})
    s.drain()


def figures(invoice):
    invoice = Invoice.objects.get(pk=invoice.pk)
    payment = Payment.objects.get(invoice=invoice, stripe_payment_intent_id__isnull=False)
    rows = [(d.status, d.amount, d.fee, d.funds_withdrawn, d.funds_reinstated, d.evidence_submitted)
            for d in Dispute.objects.filter(invoice=invoice)]
    return invoice.disputed, invoice.amount_disputed, invoice.net_paid, payment.amount_disputed, rows


def test_dispute_card_opens_a_dispute_shown_open_with_its_due_date(connected, client):
    invoice, payment, stripe_dispute = pay_disputed(connected)
    dispute = Dispute.objects.get()
    assert (dispute.stripe_id, dispute.status, dispute.reason, dispute.amount, dispute.currency) == (
        stripe_dispute["id"], DisputeStatus.NEEDS_RESPONSE, "fraudulent", Decimal("50.00"), "USD")
    assert int(dispute.evidence_due_by.timestamp()) == stripe_dispute["evidence_details"]["due_by"]
    assert dispute.evidence_due_by > dispute.opened_at
    assert (dispute.fee, dispute.funds_withdrawn) == (Decimal("15.00"), Decimal("50.00"))
    assert (dispute.payment, dispute.invoice, dispute.business) == (payment, invoice, connected.business)
    # Open is not lost: the invoice is flagged, what was paid stays until Stripe decides.
    assert figures(invoice)[:4] == (True, 0, Decimal("50.00"), 0)
    page = client.get("/disputes/").content.decode()
    assert f'data-dispute="{dispute.stripe_id}"' in page and "needs_response" in page
    assert_inbox_exact(connected, since=invoice.created_at)


def test_dispute_lost_takes_the_money_out_and_keeps_the_invoice_flagged(connected, client):
    invoice, payment, stripe_dispute = pay_disputed(connected, seed=22)
    decide(connected, stripe_dispute, "losing_evidence")
    assert connected.stripe.get(f"/v1/disputes/{stripe_dispute['id']}")["status"] == "lost"
    assert figures(invoice) == (True, Decimal("50.00"), Decimal("0.00"), Decimal("50.00"),
                                [("lost", Decimal("50.00"), Decimal("15.00"), Decimal("50.00"), 0, True)])
    assert Dispute.objects.get().closed_at is not None
    page = client.get(f"/invoices/{invoice.pk}/").content.decode()
    assert "A dispute was lost" in page and 'data-dispute-status="lost"' in page and "data-amount-disputed" in page
    assert f'data-dispute="{stripe_dispute["id"]}"' not in client.get("/disputes/").content.decode()  # not open
    assert_inbox_exact(connected, since=invoice.created_at)


def test_dispute_won_puts_the_money_back_and_clears_the_flag(connected):
    invoice, payment, stripe_dispute = pay_disputed(connected, seed=23)
    decide(connected, stripe_dispute, "winning_evidence")
    # Stripe gives the fee of a won dispute back: it costs nothing in the end.
    assert figures(invoice) == (False, 0, Decimal("50.00"), 0,
                                [("won", Decimal("50.00"), 0, Decimal("50.00"), Decimal("50.00"), True)])
    assert_inbox_exact(connected, since=invoice.created_at)


def test_dispute_unanswered_is_lost_when_due(connected):
    invoice, _, _ = pay_disputed(connected, seed=24)
    connected.platform.control("POST", "/clock", {"advance_seconds": 7 * DAY + 1})
    connected.stripe.drain()
    assert figures(invoice)[:4] == (True, Decimal("50.00"), Decimal("0.00"), Decimal("50.00"))
    assert Dispute.objects.get().status == DisputeStatus.LOST


def test_dispute_inquiry_is_flagged_and_takes_nothing(connected):
    invoice, _, _ = pay_disputed(connected, card=INQUIRY_CARD, seed=25)
    dispute = Dispute.objects.get()
    assert (dispute.status, dispute.funds_withdrawn, dispute.fee) == (DisputeStatus.WARNING_NEEDS_RESPONSE, 0, 0)
    assert figures(invoice)[:3] == (True, 0, Decimal("50.00"))


def test_dispute_events_redelivered_late_and_reversed_change_nothing(connected):
    invoice, _, stripe_dispute = pay_disputed(connected, seed=26)
    decide(connected, stripe_dispute, "losing_evidence")
    expected = figures(invoice)
    stripe_events = [e for e in connected.stripe.events() if e["type"].startswith("charge.dispute.")]
    assert {e["type"] for e in stripe_events} >= {"charge.dispute.created", "charge.dispute.funds_withdrawn",
                                                  "charge.dispute.updated", "charge.dispute.closed"}
    for n, stripe_event in enumerate(stripe_events * 2):  # newest first, twice: the opening last
        delivery = post_event(connected, {**stripe_event, "id": f"evt_late_{n}"})
        assert delivery.status == DeliveryStatus.PROCESSED and "already lost" in delivery.error, delivery.error
    assert figures(invoice) == expected


def test_dispute_hostile_events_are_ignored_not_failed(connected):
    invoice, payment, stripe_dispute = pay_disputed(connected, seed=27)
    before = figures(invoice)
    unknown = {**stripe_dispute, "id": "dp_forged"}
    other_charge = {**stripe_dispute, "charge": "ch_unknown", "payment_intent": None}
    deliveries = [post_event(connected, event(connected, f"evt_bad_{n}", "charge.dispute.closed", obj))
                  for n, obj in enumerate([unknown, other_charge, "not an object", {"object": "dispute"}])]
    assert [d.status for d in deliveries] == [DeliveryStatus.IGNORED] * 4, [d.error for d in deliveries]
    assert "no dispute dp_forged" in deliveries[0].error
    assert figures(invoice) == before and Dispute.objects.count() == 1
    assert not WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED).exists()
