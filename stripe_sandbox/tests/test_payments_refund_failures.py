"""Refunds that fail later: the refund-failure test card (4000 0000 0000 5126),
driven by the sandbox clock, through stripe-python over HTTP."""


def _paid(client, card="pm_card_refundFail", amount=10000):
    pi = client.v1.payment_intents.create(params={"amount": amount, "currency": "usd",
                                                  "payment_method": card, "confirm": True})
    return pi, pi.latest_charge


def _types(client):
    return [e.type for e in reversed(client.v1.events.list(params={"limit": 100}).data)]


def test_refund_fail_card_refund_succeeds_then_fails_when_clock_moves(sandbox):
    client = sandbox.client()
    pi, charge_id = _paid(client)
    assert pi.status == "succeeded"
    refund = client.v1.refunds.create(params={"charge": charge_id, "amount": 4000})
    assert refund.status == "succeeded"
    assert client.v1.charges.retrieve(charge_id).amount_refunded == 4000
    jobs = sandbox.control("GET", "/jobs")["data"]
    assert [(j["kind"], j["data"]["refund"]) for j in jobs] == [("refund_fails", refund.id)]
    sandbox.advance_clock(60)  # not yet
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    ran = sandbox.control("POST", "/clock", {"advance_seconds": 3600})["ran"]
    assert [(r["kind"], r["ok"]) for r in ran] == [("refund_fails", True)]
    failed = client.v1.refunds.retrieve(refund.id)
    assert (failed.status, failed.failure_reason) == ("failed", "expired_or_canceled_card")
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    assert charge.refunds.data[0].status == "failed"
    txn = client.v1.balance_transactions.retrieve(failed.failure_balance_transaction)
    assert (txn.type, txn.amount, txn.source) == ("refund_failure", 4000, refund.id)
    types = _types(client)
    assert types[-3:] == ["refund.updated", "charge.refund.updated", "refund.failed"]
    updated = client.v1.events.list(params={"type": "charge.refund.updated"}).data[0]
    assert updated.data.previous_attributes["status"] == "succeeded"
    # Once failed, the money can be refunded again, and nothing runs twice.
    assert client.v1.refunds.create(params={"charge": charge_id}).amount == 10000
    assert sandbox.control("POST", "/jobs/run")["ran"] == []
    assert client.v1.refunds.retrieve(refund.id).status == "failed"


def test_refund_of_an_ordinary_card_never_fails(sandbox):
    client = sandbox.client()
    _, charge_id = _paid(client, card="pm_card_visa")
    refund = client.v1.refunds.create(params={"charge": charge_id, "amount": 100})
    assert sandbox.control("GET", "/jobs")["data"] == []
    sandbox.advance_clock(10 * 24 * 3600)
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"


def test_refund_fails_on_the_connected_account_it_belongs_to(sandbox, webhook_receiver):
    key = "sk_test_" + "c" * 24
    client = sandbox.client(key)
    acct = sandbox.connect_account(key, "shop@example.test")
    client.v1.webhook_endpoints.create(params={"url": webhook_receiver.url, "connect": True,
                                               "enabled_events": ["refund.failed"]})
    opts = {"stripe_account": acct}
    pi = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "confirm": True,
                                                  "payment_method": "pm_card_refundFail"}, options=opts)
    refund = client.v1.refunds.create(params={"payment_intent": pi.id}, options=opts)
    sandbox.advance_clock(3601)
    webhook_receiver.wait_for(1)
    (event,) = webhook_receiver.events()
    assert (event["type"], event["account"], event["data"]["object"]["id"]) == ("refund.failed", acct, refund.id)
    assert client.v1.refunds.retrieve(refund.id, options=opts).status == "failed"


def test_refund_failure_happens_before_the_next_request_once_time_has_passed(sandbox):
    client = sandbox.client()
    _, charge_id = _paid(client)
    refund = client.v1.refunds.create(params={"charge": charge_id, "amount": 500})
    # Time passing without the control plane (as wall time does): the next request
    # sees what Stripe would have done by then.
    sandbox.sandbox.clock.advance(3601)
    assert client.v1.refunds.retrieve(refund.id).status == "failed"
    assert client.v1.charges.retrieve(charge_id).amount_refunded == 0


def test_refund_fail_card_attaches_and_charges_like_any_good_card(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={})
    pm = client.v1.payment_methods.attach("pm_card_refundFail", params={"customer": cus.id})
    assert pm.card.last4 == "5126"
    pi = client.v1.payment_intents.create(params={"amount": 700, "currency": "usd", "customer": cus.id,
                                                  "payment_method": pm.id, "confirm": True})
    assert pi.status == "succeeded"
