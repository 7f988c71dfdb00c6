"""Checkout Sessions through the API (the hosted page: test_hosted_checkout.py)."""

import pytest
import stripe


def _price(client, amount=1500, currency="eur", **extra):
    return client.v1.prices.create(params={"currency": currency, "unit_amount": amount,
                                           "product_data": {"name": "Consulting hour"}, **extra})


def test_checkout_payment_session_totals_and_url(sandbox):
    client = sandbox.client()
    price = _price(client)
    session = client.v1.checkout.sessions.create(params={
        "mode": "payment", "success_url": "https://app.test/ok?s={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.test/cancel", "metadata": {"crm_invoice": "9"},
        "line_items": [
            {"price": price.id, "quantity": 2},
            {"price_data": {"currency": "eur", "unit_amount": 999, "product_data": {"name": "Setup fee"}},
             "quantity": 1},
        ],
    })
    assert session.id.startswith("cs_test_") and session.url == f"{sandbox.base_url}/hosted/checkout/{session.id}"
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert (session.amount_subtotal, session.amount_total, session.currency) == (3999, 3999, "eur")
    assert session.payment_intent is None  # created when the customer pays (API 2022-08-01+)
    assert session.metadata.to_dict() == {"crm_invoice": "9"}
    items = client.v1.checkout.sessions.line_items.list(session.id).data
    assert [(i.description, i.quantity, i.amount_total) for i in items] == [
        ("Consulting hour", 2, 3000), ("Setup fee", 1, 999)]
    inline = client.v1.prices.retrieve(items[1].price.id)
    assert inline.active is False and inline.unit_amount == 999
    assert session.expires_at - session.created == 24 * 3600


def test_checkout_setup_session_has_setup_intent(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={"email": "s@example.test"})
    session = client.v1.checkout.sessions.create(params={
        "mode": "setup", "customer": cus.id, "currency": "usd", "success_url": "https://app.test/ok",
        "setup_intent_data": {"metadata": {"purpose": "autopay"}},
    })
    assert (session.payment_status, session.amount_total, session.customer) == (
        "no_payment_required", None, cus.id)
    si = client.v1.setup_intents.retrieve(session.setup_intent)
    assert (si.status, si.customer, si.metadata.to_dict()) == ("requires_payment_method", cus.id,
                                                               {"purpose": "autopay"})


@pytest.mark.parametrize("params, param, fragment", [
    ({"mode": "payment", "line_items": [{"price": "RECURRING", "quantity": 1}]}, "line_items[0][price]",
     "recurring price"),
    ({"mode": "payment", "line_items": [{"price": "PRICE"}]}, "line_items[0][quantity]", "Quantity is required"),
    ({"mode": "payment"}, "line_items", "line_items"),
    ({"mode": "setup"}, "currency", "currency"),
    ({"mode": "setup", "currency": "usd", "line_items": [{"price": "PRICE", "quantity": 1}]}, "line_items",
     "setup"),
    ({"mode": "payment", "line_items": [{"price": "CHEAP", "quantity": 1}]}, "line_items", "at least"),
])
def test_checkout_create_validation(sandbox, params, param, fragment):
    client = sandbox.client()
    ids = {"PRICE": _price(client).id, "CHEAP": _price(client, 10, "usd").id,
           "RECURRING": _price(client, recurring={"interval": "month"}).id}
    for item in params.get("line_items", []):
        item["price"] = ids[item["price"]]
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.checkout.sessions.create(params={"success_url": "https://app.test/ok", **params})
    assert exc.value.param == param and fragment in exc.value.user_message


def test_checkout_expire_cancels_intent_and_emits(sandbox):
    client = sandbox.client()
    session = client.v1.checkout.sessions.create(params={"mode": "setup", "currency": "usd",
                                                         "success_url": "https://app.test/ok"})
    expired = client.v1.checkout.sessions.expire(session.id)
    assert (expired.status, expired.url) == ("expired", None)
    assert client.v1.setup_intents.retrieve(session.setup_intent).status == "canceled"
    types = [e.type for e in client.v1.events.list().data]
    assert types[0] == "checkout.session.expired" and "setup_intent.canceled" in types
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)


def test_checkout_session_expires_at_its_time(sandbox):
    client = sandbox.client()
    session = client.v1.checkout.sessions.create(params={
        "mode": "payment", "success_url": "https://app.test/ok",
        "line_items": [{"price": _price(client).id, "quantity": 1}],
    })
    sandbox.advance_clock(24 * 3600 + 5)
    assert [s.status for s in client.v1.checkout.sessions.list(params={"status": "expired"}).data] == ["expired"]
    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    assert len(client.v1.events.list(params={"type": "checkout.session.expired"}).data) == 1


def test_checkout_list_filters_and_metadata_update(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={"email": "l@example.test"})
    mine = client.v1.checkout.sessions.create(params={"mode": "setup", "currency": "usd", "customer": cus.id,
                                                      "success_url": "https://app.test/ok"})
    client.v1.checkout.sessions.create(params={"mode": "setup", "currency": "usd",
                                               "success_url": "https://app.test/ok"})
    assert [s.id for s in client.v1.checkout.sessions.list(params={"customer": cus.id}).data] == [mine.id]
    assert len(client.v1.checkout.sessions.list(params={"status": "open"}).data) == 2
    updated = client.v1.checkout.sessions.update(mine.id, params={"metadata": {"a": "1"}})
    assert updated.metadata.to_dict() == {"a": "1"}
