"""SetupIntents: save a card for later, with Stripe's test cards."""

import pytest
import stripe


def _customer(client):
    return client.v1.customers.create(params={"email": "setup@example.test"})


def _types(client):
    return [e.type for e in reversed(client.v1.events.list(params={"limit": 100}).data)]


def test_setup_intent_create_then_confirm_attaches_card(sandbox):
    client = sandbox.client()
    cus = _customer(client)
    si = client.v1.setup_intents.create(params={"customer": cus.id, "payment_method_types": ["card"],
                                                "usage": "off_session", "metadata": {"crm": "42"}})
    assert (si.status, si.usage, si.customer, si.payment_method) == ("requires_payment_method", "off_session",
                                                                      cus.id, None)
    assert si.client_secret.startswith(si.id + "_secret_") and si.metadata.to_dict() == {"crm": "42"}
    si = client.v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_visa"})
    assert si.status == "succeeded" and si.payment_method.startswith("pm_")
    pm = client.v1.payment_methods.retrieve(si.payment_method)
    assert pm.customer == cus.id and pm.card.last4 == "4242"
    attempts = client.v1.setup_attempts.list(params={"setup_intent": si.id}).data
    assert [a.id for a in attempts] == [si.latest_attempt] and attempts[0].status == "succeeded"
    assert _types(client)[-3:] == ["setup_intent.created", "payment_method.attached", "setup_intent.succeeded"]


def test_setup_intent_create_with_confirm_true(sandbox):
    client = sandbox.client()
    cus = _customer(client)
    si = client.v1.setup_intents.create(params={"customer": cus.id, "payment_method": "pm_card_mastercard",
                                                "confirm": True})
    assert si.status == "succeeded"
    assert client.v1.customers.payment_methods.list(cus.id).data[0].id == si.payment_method


def test_setup_intent_decline_is_402_and_kept(sandbox):
    client = sandbox.client()
    cus = _customer(client)
    si = client.v1.setup_intents.create(params={"customer": cus.id})
    with pytest.raises(stripe.CardError) as exc:
        client.v1.setup_intents.confirm(
            si.id, params={"payment_method": "pm_card_chargeDeclinedInsufficientFunds"})
    err = exc.value.error
    assert (exc.value.http_status, err.decline_code) == (402, "insufficient_funds")
    assert err.setup_intent.id == si.id and err.setup_intent.status == "requires_payment_method"
    si = client.v1.setup_intents.retrieve(si.id)
    assert si.status == "requires_payment_method" and si.last_setup_error.decline_code == "insufficient_funds"
    assert client.v1.customers.payment_methods.list(cus.id).data == []
    assert _types(client)[-1] == "setup_intent.setup_failed"
    si = client.v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_visa"})
    assert si.status == "succeeded" and si.last_setup_error is None


def test_setup_intent_card_of_other_customer_is_400(sandbox):
    client = sandbox.client()
    cus, other = _customer(client), _customer(client)
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": other.id})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.setup_intents.create(params={"customer": cus.id, "payment_method": pm.id, "confirm": True})
    assert exc.value.param == "payment_method"
    assert client.v1.setup_intents.list(params={"customer": cus.id}).data == []


def test_setup_intent_list_cancel_and_state_rules(sandbox):
    client = sandbox.client()
    cus = _customer(client)
    done = client.v1.setup_intents.create(params={"customer": cus.id, "payment_method": "pm_card_visa",
                                                  "confirm": True})
    pending = client.v1.setup_intents.create(params={"customer": cus.id})
    client.v1.setup_intents.create(params={})
    assert [s.id for s in client.v1.setup_intents.list(params={"customer": cus.id}).data] == [pending.id, done.id]
    assert [s.id for s in client.v1.setup_intents.list(
        params={"payment_method": done.payment_method}).data] == [done.id]
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.setup_intents.confirm(done.id)
    assert exc.value.code == "setup_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.setup_intents.confirm(pending.id)
    assert "missing a payment method" in exc.value.user_message
    canceled = client.v1.setup_intents.cancel(pending.id, params={"cancellation_reason": "abandoned"})
    assert canceled.status == "canceled" and _types(client)[-1] == "setup_intent.canceled"
