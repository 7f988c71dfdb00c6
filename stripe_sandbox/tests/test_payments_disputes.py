"""Disputes from Stripe's test cards: opened after the charge, evidence, the bank's
decision when the sandbox clock moves, balance transactions, events; through
stripe-python over HTTP."""

import pytest
import stripe

HOUR = 3600


def _pay(client, card, amount=10000):
    pi = client.v1.payment_intents.create(params={"amount": amount, "currency": "usd",
                                                  "payment_method": card, "confirm": True})
    return pi, pi.latest_charge


def _types(client, prefix="charge.dispute."):
    return [e.type for e in reversed(client.v1.events.list(params={"limit": 100}).data)
            if e.type.startswith(prefix)]


def _dispute_of(client, charge_id):
    (dispute,) = client.v1.disputes.list(params={"charge": charge_id}).data
    return dispute


def test_dispute_card_opens_a_chargeback_with_amount_and_fee_withdrawn(sandbox):
    client = sandbox.client()
    pi, charge_id = _pay(client, "pm_card_createDispute")
    assert pi.status == "succeeded"
    dispute = _dispute_of(client, charge_id)
    assert (dispute.status, dispute.reason, dispute.amount, dispute.payment_intent) == (
        "needs_response", "fraudulent", 10000, pi.id)
    assert dispute.payment_method_details.card.case_type == "chargeback"
    assert dispute.evidence_details.due_by == dispute.created + 7 * 24 * HOUR
    (txn,) = dispute.balance_transactions
    assert (txn.amount, txn.fee, txn.net, txn.type, txn.reporting_category) == (
        -10000, 1500, -11500, "adjustment", "dispute")
    assert txn.fee_details[0].description == "Dispute fee"
    assert client.v1.balance_transactions.retrieve(txn.id).source == dispute.id
    assert client.v1.charges.retrieve(charge_id).disputed is True
    assert _types(client) == ["charge.dispute.created", "charge.dispute.funds_withdrawn"]
    assert client.v1.disputes.retrieve(dispute.id).id == dispute.id


def test_dispute_winning_evidence_wins_after_the_clock_moves(sandbox):
    client = sandbox.client()
    _, charge_id = _pay(client, "pm_card_createDispute")
    dispute = _dispute_of(client, charge_id)
    updated = client.v1.disputes.update(dispute.id, params={
        "evidence": {"uncategorized_text": "winning_evidence"}, "submit": True})
    assert (updated.status, updated.evidence_details.submission_count) == ("under_review", 1)
    assert updated.evidence.uncategorized_text == "winning_evidence"
    assert client.v1.disputes.retrieve(dispute.id).status == "under_review"  # asynchronous
    sandbox.advance_clock(HOUR)
    won = client.v1.disputes.retrieve(dispute.id)
    assert won.status == "won"
    back = won.balance_transactions[1]
    assert (back.amount, back.fee, back.net, back.reporting_category) == (10000, -1500, 11500, "dispute_reversal")
    assert _types(client) == ["charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.updated",
                              "charge.dispute.closed", "charge.dispute.funds_reinstated"]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "more"}})


def test_dispute_losing_evidence_loses_and_the_money_stays_out(sandbox):
    client = sandbox.client()
    _, charge_id = _pay(client, "pm_card_createDisputeProductNotReceived", amount=2500)
    dispute = _dispute_of(client, charge_id)
    assert dispute.reason == "product_not_received"
    client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "losing_evidence"}})
    sandbox.advance_clock(HOUR)
    lost = client.v1.disputes.retrieve(dispute.id)
    assert lost.status == "lost" and len(lost.balance_transactions) == 1
    closed = client.v1.events.list(params={"type": "charge.dispute.closed"}).data[0]
    assert (closed.data.object.status, closed.data.previous_attributes["status"]) == ("lost", "under_review")
    total = sum(t.net for t in client.v1.balance_transactions.list(params={"limit": 100}).data)
    fee = client.v1.balance_transactions.list(params={"type": "charge"}).data[0].fee
    assert total == 2500 - fee - 2500 - 1500


def test_dispute_staged_evidence_is_not_submitted(sandbox):
    client = sandbox.client()
    _, charge_id = _pay(client, "pm_card_createDispute")
    dispute = _dispute_of(client, charge_id)
    staged = client.v1.disputes.update(dispute.id, params={
        "evidence": {"uncategorized_text": "winning_evidence", "customer_name": "Ada"}, "submit": False})
    assert (staged.status, staged.evidence_details.has_evidence, staged.evidence_details.submission_count) == (
        "needs_response", True, 0)
    sandbox.advance_clock(2 * HOUR)
    assert client.v1.disputes.retrieve(dispute.id).status == "needs_response"
    client.v1.disputes.update(dispute.id, params={"submit": True})
    sandbox.advance_clock(HOUR)
    assert client.v1.disputes.retrieve(dispute.id).status == "won"


def test_dispute_unanswered_is_lost_when_evidence_is_due(sandbox):
    client = sandbox.client()
    _, charge_id = _pay(client, "pm_card_createDispute")
    dispute = _dispute_of(client, charge_id)
    sandbox.advance_clock(7 * 24 * HOUR - 10)
    assert client.v1.disputes.retrieve(dispute.id).status == "needs_response"
    sandbox.advance_clock(10)
    lost = client.v1.disputes.retrieve(dispute.id)
    assert (lost.status, lost.evidence_details.past_due) == ("lost", True)


def test_dispute_inquiry_withdraws_nothing_and_closes_as_warning(sandbox):
    client = sandbox.client()
    _, charge_id = _pay(client, "pm_card_createDisputeInquiry")
    dispute = _dispute_of(client, charge_id)
    assert (dispute.status, dispute.balance_transactions, dispute.is_charge_refundable) == (
        "warning_needs_response", [], True)
    assert dispute.payment_method_details.card.case_type == "inquiry"
    client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "winning_evidence"}})
    assert client.v1.disputes.retrieve(dispute.id).status == "warning_under_review"
    sandbox.advance_clock(HOUR)
    assert client.v1.disputes.retrieve(dispute.id).status == "warning_closed"
    assert "charge.dispute.funds_withdrawn" not in _types(client)


def test_dispute_close_accepts_it(sandbox):
    client = sandbox.client()
    _, charge_id = _pay(client, "pm_card_createDispute")
    dispute = _dispute_of(client, charge_id)
    assert client.v1.disputes.close(dispute.id).status == "lost"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.close(dispute.id)
    sandbox.advance_clock(8 * 24 * HOUR)  # the due date passes: nothing more happens
    assert _types(client)[-1] == "charge.dispute.closed" and _types(client).count("charge.dispute.closed") == 1


def test_dispute_card_paying_an_invoice_leaves_it_paid(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={})
    inv = client.v1.invoices.create(params={"customer": cus.id})
    client.v1.invoices.add_lines(inv.id, params={"lines": [{"amount": 4000, "description": "Work"}]})
    pm = client.v1.payment_methods.attach("pm_card_createDispute", params={"customer": cus.id})
    paid = client.v1.invoices.pay(inv.id, params={"payment_method": pm.id})
    assert paid.status == "paid"
    (dispute,) = client.v1.disputes.list().data
    assert dispute.amount == 4000 and dispute.status == "needs_response"


def test_ordinary_cards_open_no_dispute(sandbox):
    client = sandbox.client()
    _pay(client, "pm_card_visa")
    assert client.v1.disputes.list().data == []


def test_dispute_card_number_typed_in_opens_a_dispute(sandbox):
    client = sandbox.client()
    pm = client.v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4000 0000 0000 0259", "exp_month": 12, "exp_year": 2040, "cvc": "123"}})
    _, charge_id = _pay(client, pm.id, amount=900)
    assert _dispute_of(client, charge_id).amount == 900


def test_dispute_created_event_already_shows_the_withdrawal(sandbox):
    client = sandbox.client()
    _pay(client, "pm_card_createDispute", amount=3000)
    created = client.v1.events.list(params={"type": "charge.dispute.created"}).data[0]
    (txn,) = created.data.object.balance_transactions
    assert (txn.amount, txn.fee) == (-3000, 1500)
