"""Refunds: partial and full, cumulative amount_refunded, limits, events."""

import pytest
import stripe


def _paid(client, amount=10000, currency="usd"):
    pi = client.v1.payment_intents.create(params={"amount": amount, "currency": currency,
                                                  "payment_method": "pm_card_visa", "confirm": True})
    return pi, pi.latest_charge


def _events(client, event_type):
    return list(reversed(client.v1.events.list(params={"type": event_type, "limit": 100}).data))


def test_refund_partial_twice_then_rest_is_cumulative(sandbox):
    client = sandbox.client()
    pi, charge_id = _paid(client, 10000)
    first = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 2500,
                                             "reason": "requested_by_customer", "metadata": {"crm": "r1"}})
    assert (first.amount, first.charge, first.payment_intent, first.status) == (
        2500, charge_id, pi.id, "succeeded")
    assert first.reason == "requested_by_customer" and first.metadata.to_dict() == {"crm": "r1"}
    second = client.v1.refunds.create(params={"charge": charge_id, "amount": 1500})
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (4000, False)
    rest = client.v1.refunds.create(params={"charge": charge_id})
    assert rest.amount == 6000
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (10000, True)
    assert [r.id for r in charge.refunds.data] == [rest.id, second.id, first.id]
    # charge.refunded carries the charge itself (current API versions), cumulative.
    refunded = _events(client, "charge.refunded")
    assert [e.data.object.object for e in refunded] == ["charge"] * 3
    assert [e.data.object.amount_refunded for e in refunded] == [2500, 4000, 10000]
    assert refunded[-1].data.previous_attributes["refunded"] is False
    assert [e.data.object.id for e in _events(client, "refund.created")] == [first.id, second.id, rest.id]
    # The PaymentIntent is still the succeeded payment it was.
    assert client.v1.payment_intents.retrieve(pi.id).amount_received == 10000


def test_refund_more_than_remains_is_400(sandbox):
    client = sandbox.client()
    _, charge_id = _paid(client, 5000)
    client.v1.refunds.create(params={"charge": charge_id, "amount": 3000})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create(params={"charge": charge_id, "amount": 2001})
    assert exc.value.http_status == 400 and exc.value.param == "amount"
    assert "greater than unrefunded amount on charge ($20.00)" in exc.value.user_message
    client.v1.refunds.create(params={"charge": charge_id})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create(params={"charge": charge_id, "amount": 1})
    assert exc.value.code == "charge_already_refunded"
    assert client.v1.charges.retrieve(charge_id).amount_refunded == 5000


def test_refund_balance_transaction_is_negative_without_fee(sandbox):
    client = sandbox.client()
    _, charge_id = _paid(client, 2000, "eur")
    refund = client.v1.refunds.create(params={"charge": charge_id, "amount": 700})
    txn = client.v1.balance_transactions.retrieve(refund.balance_transaction)
    assert (txn.type, txn.amount, txn.fee, txn.net, txn.currency, txn.source) == (
        "refund", -700, 0, -700, "eur", refund.id)
    listed = client.v1.balance_transactions.list(params={"type": "refund"}).data
    assert [t.id for t in listed] == [txn.id]


def test_refund_needs_a_successful_payment(sandbox):
    client = sandbox.client()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"amount": 100})
    open_pi = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create(params={"payment_intent": open_pi.id})
    assert "does not have a successful charge" in exc.value.user_message
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "confirm": True,
                                                 "payment_method": "pm_card_chargeDeclined"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"charge": declined.value.error.charge})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create(params={"charge": "ch_missing"})
    assert exc.value.code == "resource_missing" and exc.value.param == "charge"


def test_refund_retrieve_list_update(sandbox):
    client = sandbox.client()
    pi_a, charge_a = _paid(client)
    _, charge_b = _paid(client)
    ra = client.v1.refunds.create(params={"charge": charge_a, "amount": 100})
    rb = client.v1.refunds.create(params={"charge": charge_b, "amount": 200})
    assert client.v1.refunds.retrieve(ra.id).amount == 100
    assert [r.id for r in client.v1.refunds.list(params={"charge": charge_a}).data] == [ra.id]
    assert [r.id for r in client.v1.refunds.list(params={"payment_intent": pi_a.id}).data] == [ra.id]
    assert [r.id for r in client.v1.refunds.list().data] == [rb.id, ra.id]
    # stripe-python 15 has no service for the charge's refund sub-list.
    sub = client.deserialize(client.raw_request("get", f"/v1/charges/{charge_b}/refunds"), api_mode="V1")
    assert [r.id for r in sub.data] == [rb.id]
    updated = client.v1.refunds.update(ra.id, params={"metadata": {"note": "x"}})
    assert updated.metadata.to_dict() == {"note": "x"}
    assert client.v1.charges.retrieve(charge_a).refunds.data[0].metadata.to_dict() == {"note": "x"}
    assert _events(client, "refund.updated")[0].data.previous_attributes["metadata"]["note"] is None


def test_refund_zero_decimal_currency_message(sandbox):
    client = sandbox.client()
    _, charge_id = _paid(client, 5000, "jpy")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create(params={"charge": charge_id, "amount": 5001})
    assert "(¥5,001)" in exc.value.user_message and "(¥5,000)" in exc.value.user_message
