"""Payment methods and Stripe's test cards, through stripe-python over HTTP."""

import pytest
import stripe


def _customer(client, **params):
    return client.v1.customers.create(params={"email": "pay@example.test", **params})


def _event_types(client) -> list[str]:
    return [e.type for e in reversed(client.v1.events.list(params={"limit": 100}).data)]


@pytest.mark.parametrize("test_id, brand, last4", [
    ("pm_card_visa", "visa", "4242"),
    ("pm_card_mastercard", "mastercard", "4444"),
    ("pm_card_amex", "amex", "8431"),
])
def test_payment_method_attach_test_id_makes_new_card(sandbox, test_id, brand, last4):
    client = sandbox.client()
    cus = _customer(client)
    pm = client.v1.payment_methods.attach(test_id, params={"customer": cus.id})
    assert pm.id.startswith("pm_") and pm.id != test_id
    assert (pm.card.brand, pm.card.last4, pm.customer, pm.type) == (brand, last4, cus.id, "card")
    assert pm.card.exp_year > 2000 and pm.card.funding == "credit"
    assert client.v1.payment_methods.retrieve(pm.id).customer == cus.id
    assert _event_types(client)[-1] == "payment_method.attached"


@pytest.mark.parametrize("test_id, decline_code, message", [
    ("pm_card_chargeDeclined", "generic_decline", "Your card was declined."),
    ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds", "Your card has insufficient funds."),
])
def test_payment_method_attach_decline_card_is_402(sandbox, test_id, decline_code, message):
    client = sandbox.client()
    cus = _customer(client)
    with pytest.raises(stripe.CardError) as exc:
        client.v1.payment_methods.attach(test_id, params={"customer": cus.id})
    err = exc.value
    assert (err.http_status, err.code, err.error.decline_code, err.user_message) == (
        402, "card_declined", decline_code, message)
    assert err.error.type == "card_error"
    assert client.v1.customers.payment_methods.list(cus.id).data == []
    assert "payment_method.attached" not in _event_types(client)


def test_payment_method_charge_customer_fail_attaches_then_declines(sandbox):
    client = sandbox.client()
    cus = _customer(client)
    pm = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", params={"customer": cus.id})
    assert pm.card.last4 == "0341"
    with pytest.raises(stripe.CardError) as exc:
        client.v1.payment_intents.create(params={
            "amount": 1000, "currency": "usd", "customer": cus.id, "payment_method": pm.id,
            "confirm": True, "off_session": True,
        })
    assert exc.value.error.decline_code == "generic_decline"


@pytest.mark.parametrize("number, last4", [
    ("4242424242424242", "4242"),
    ("4000000000000002", "0002"),
    ("4000000000009995", "9995"),
    ("4000000000000341", "0341"),
])
def test_payment_method_create_from_test_number(sandbox, number, last4):
    client = sandbox.client()
    pm = client.v1.payment_methods.create(params={
        "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"},
        "billing_details": {"name": "Jenny Rosen"}, "metadata": {"k": "v"},
    })
    assert (pm.card.last4, pm.card.exp_month, pm.card.exp_year) == (last4, 12, 2040)
    assert pm.customer is None and pm.billing_details.name == "Jenny Rosen" and pm.metadata.to_dict() == {"k": "v"}
    assert pm.billing_details.address.country is None  # Stripe's empty address, not null


def test_payment_method_create_same_number_same_fingerprint(sandbox):
    client = sandbox.client()
    card = {"number": "4242424242424242", "exp_month": 1, "exp_year": 2041}
    a = client.v1.payment_methods.create(params={"type": "card", "card": card})
    b = client.v1.payment_methods.create(params={"type": "card", "card": card})
    c = client.v1.payment_methods.create(params={"type": "card", "card": dict(card, number="5555555555554444")})
    assert a.card.fingerprint == b.card.fingerprint != c.card.fingerprint


def test_payment_method_create_declined_number_fails_at_attach(sandbox):
    client = sandbox.client()
    cus = _customer(client)
    pm = client.v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4000000000000002", "exp_month": 12, "exp_year": 2040}})
    with pytest.raises(stripe.CardError) as exc:
        client.v1.payment_methods.attach(pm.id, params={"customer": cus.id})
    assert exc.value.error.decline_code == "generic_decline"
    assert client.v1.payment_methods.retrieve(pm.id).customer is None


@pytest.mark.parametrize("card, code, param", [
    ({"number": "4242424242424241", "exp_month": 12, "exp_year": 2040}, "incorrect_number", "card[number]"),
    ({"number": "4242424242424242", "exp_month": 13, "exp_year": 2040}, "invalid_expiry_month", "card[exp_month]"),
    ({"number": "4242424242424242", "exp_month": 12, "exp_year": 2001}, "invalid_expiry_year", "card[exp_year]"),
    ({"number": "4111111111111111", "exp_month": 12, "exp_year": 2040}, "card_declined", None),
])
def test_payment_method_create_bad_card_is_card_error(sandbox, card, code, param):
    with pytest.raises(stripe.CardError) as exc:
        sandbox.client().v1.payment_methods.create(params={"type": "card", "card": card})
    assert exc.value.code == code and exc.value.error.param == param
    if code == "card_declined":
        # A real card number in test mode, as Stripe answers it.
        assert exc.value.error.decline_code == "test_mode_live_card"


def test_payment_method_create_requires_type_and_number(sandbox):
    client = sandbox.client()
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_methods.create(params={"card": {"number": "4242424242424242"}})
    assert exc.value.param == "type"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_methods.create(params={"type": "card", "card": {"exp_month": 1, "exp_year": 2040}})
    assert exc.value.param == "card[number]" and exc.value.code == "parameter_missing"


def test_payment_method_create_from_token(sandbox):
    pm = sandbox.client().v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_mastercard"}})
    assert pm.card.brand == "mastercard" and pm.card.last4 == "4444"


def test_payment_method_list_for_customer_and_by_param(sandbox):
    client = sandbox.client()
    cus, other = _customer(client), _customer(client)
    first = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    second = client.v1.payment_methods.attach("pm_card_mastercard", params={"customer": cus.id})
    client.v1.payment_methods.attach("pm_card_amex", params={"customer": other.id})
    listed = client.v1.customers.payment_methods.list(cus.id, params={"type": "card"})
    assert [p.id for p in listed.data] == [second.id, first.id]
    by_param = client.v1.payment_methods.list(params={"customer": cus.id}).data
    assert [p.id for p in by_param] == [second.id, first.id]
    assert client.v1.customers.payment_methods.retrieve(cus.id, first.id).id == first.id
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.payment_methods.retrieve(other.id, first.id)


def test_payment_method_attach_to_second_customer_is_400(sandbox):
    client = sandbox.client()
    cus, other = _customer(client), _customer(client)
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_methods.attach(pm.id, params={"customer": other.id})
    assert "already been attached" in exc.value.user_message


def test_payment_method_default_then_detach_clears_default(sandbox):
    client = sandbox.client()
    cus = _customer(client)
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    cus = client.v1.customers.update(cus.id, params={"invoice_settings": {"default_payment_method": pm.id}})
    assert cus.invoice_settings.default_payment_method == pm.id
    detached = client.v1.payment_methods.detach(pm.id)
    assert detached.customer is None
    assert client.v1.customers.retrieve(cus.id).invoice_settings.default_payment_method is None
    events = client.v1.events.list(params={"type": "payment_method.detached"}).data
    assert events[0].data.previous_attributes["customer"] == cus.id
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_methods.detach(pm.id)
    assert "not attached" in exc.value.user_message


def test_payment_method_default_of_other_customer_refused_by_customers(sandbox):
    client = sandbox.client()
    cus, other = _customer(client), _customer(client)
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": other.id})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.customers.update(cus.id, params={"invoice_settings": {"default_payment_method": pm.id}})
    assert exc.value.param == "invoice_settings[default_payment_method]"


def test_payment_method_update_needs_customer_and_emits(sandbox):
    client = sandbox.client()
    loose = client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_visa"}})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.update(loose.id, params={"metadata": {"a": "b"}})
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": _customer(client).id})
    pm = client.v1.payment_methods.update(pm.id, params={
        "card": {"exp_month": 3, "exp_year": 2045}, "billing_details": {"name": "Ada"}})
    assert (pm.card.exp_month, pm.card.exp_year, pm.billing_details.name) == (3, 2045, "Ada")
    assert pm.card.last4 == "4242"
    event = client.v1.events.list(params={"type": "payment_method.updated"}).data[0]
    assert event.data.previous_attributes["billing_details"]["name"] is None


def test_payment_method_connect_scoped_with_account_on_events(sandbox):
    key = "sk_test_" + "connectpm" + "0" * 8
    platform = sandbox.client(key)
    acct = sandbox.connect_account(key, "connected@example.test")
    cus = platform.v1.customers.create(params={"email": "x@example.test"}, options={"stripe_account": acct})
    pm = platform.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id},
                                           options={"stripe_account": acct})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        platform.v1.payment_methods.retrieve(pm.id)
    assert exc.value.http_status == 404
    event = platform.v1.events.list(params={"type": "payment_method.attached"},
                                    options={"stripe_account": acct}).data[0]
    assert event.account == acct and event.data.object.id == pm.id
