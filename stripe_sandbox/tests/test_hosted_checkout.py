"""The hosted Checkout page: a person types a test card into a plain HTML form."""

from .test_hosted_invoice import card, get, post_form, text_of


def _types(client):
    return [e.type for e in reversed(client.v1.events.list(params={"limit": 100}).data)]


def test_hosted_checkout_setup_mode_saves_card_and_redirects(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={"email": "ada@example.test"})
    session = client.v1.checkout.sessions.create(params={
        "mode": "setup", "customer": cus.id, "currency": "usd",
        "success_url": "https://app.test/done?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.test/cancel",
    })
    status, _, page = get(session.url)
    html = page.decode()
    assert status == 200 and "name=card_number" in html and text_of(html, "submit") == "Save card"
    assert 'value="ada@example.test"' in html and 'href="https://app.test/cancel"' in html
    status, headers, _ = post_form(session.url, card("4242 4242 4242 4242", email="ada@example.test"))
    assert status == 303 and headers["Location"] == f"https://app.test/done?session={session.id}"
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.payment_status, done.url) == ("complete", "no_payment_required", None)
    assert done.customer_details.email == "ada@example.test"
    si = client.v1.setup_intents.retrieve(done.setup_intent)
    assert si.status == "succeeded"
    saved = client.v1.customers.payment_methods.list(cus.id).data
    assert [p.id for p in saved] == [si.payment_method] and saved[0].card.last4 == "4242"
    assert _types(client)[-3:] == [
        "payment_method.attached", "setup_intent.succeeded", "checkout.session.completed"]
    completed = client.v1.events.list(params={"type": "checkout.session.completed"}).data[0]
    assert completed.data.object.id == session.id and completed.data.object.status == "complete"
    # The finished session's page no longer takes a card.
    assert "name=card_number" not in get(session.url)[2].decode()


def test_hosted_checkout_payment_mode_decline_then_pay(sandbox):
    client = sandbox.client()
    price = client.v1.prices.create(params={"currency": "usd", "unit_amount": 2500,
                                            "product_data": {"name": "Workshop seat"}})
    session = client.v1.checkout.sessions.create(params={
        "mode": "payment", "success_url": "https://app.test/paid?s={CHECKOUT_SESSION_ID}",
        "line_items": [{"price": price.id, "quantity": 2}],
        "payment_intent_data": {"metadata": {"crm_invoice": "INV-7"}, "description": "Workshop"},
    })
    html = get(session.url)[2].decode()
    assert text_of(html, "total") == "$50.00" and text_of(html, "submit") == "Pay $50.00"
    assert "Workshop seat" in html
    status, _, html = post_form(session.url, card("4000000000000002", email="buyer@example.test"))
    assert status == 402 and text_of(html, "error") == "Your card was declined."
    open_session = client.v1.checkout.sessions.retrieve(session.id)
    assert open_session.status == "open" and open_session.payment_intent is not None
    failed = client.v1.payment_intents.retrieve(open_session.payment_intent)
    assert failed.status == "requires_payment_method" and failed.last_payment_error.code == "card_declined"
    status, headers, _ = post_form(session.url, card("4242424242424242", email="buyer@example.test"))
    assert status == 303 and headers["Location"] == f"https://app.test/paid?s={session.id}"
    paid = client.v1.checkout.sessions.retrieve(session.id)
    assert (paid.status, paid.payment_status, paid.payment_intent) == ("complete", "paid", failed.id)
    pi = client.v1.payment_intents.retrieve(paid.payment_intent)
    assert (pi.status, pi.amount, pi.description) == ("succeeded", 5000, "Workshop")
    assert pi.metadata.to_dict() == {"crm_invoice": "INV-7"}
    types = _types(client)
    assert types[-3:] == ["charge.succeeded", "payment_intent.succeeded", "checkout.session.completed"]
    assert types.count("payment_intent.created") == 1 and "charge.failed" in types


def test_hosted_checkout_customer_creation_always(sandbox):
    client = sandbox.client()
    session = client.v1.checkout.sessions.create(params={
        "mode": "payment", "customer_creation": "always", "success_url": "https://app.test/ok",
        "line_items": [{"price_data": {"currency": "gbp", "unit_amount": 900, "product_data": {"name": "Book"}},
                        "quantity": 1}],
    })
    post_form(session.url, card("4000000000009995", email="new@example.test"))
    assert post_form(session.url, card("4242424242424242", email="new@example.test"))[0] == 303
    done = client.v1.checkout.sessions.retrieve(session.id)
    customers = client.v1.customers.list().data
    assert [c.id for c in customers] == [done.customer] and customers[0].email == "new@example.test"
    assert client.v1.payment_intents.retrieve(done.payment_intent).customer == done.customer


def test_hosted_checkout_expired_or_unknown_session(sandbox):
    client = sandbox.client()
    session = client.v1.checkout.sessions.create(params={"mode": "setup", "currency": "usd",
                                                         "success_url": "https://app.test/ok"})
    client.v1.checkout.sessions.expire(session.id)
    assert get(session.url)[0] == 410
    assert post_form(session.url, card("4242424242424242"))[0] == 410
    assert client.v1.payment_methods.list().data == []
    assert get(sandbox.base_url + "/hosted/checkout/cs_test_nope")[0] == 404
