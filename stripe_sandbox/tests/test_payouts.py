"""Daily automatic payouts when the sandbox clock passes midnight, the balance
transactions each payout carried (`payout=` filter), the balance; through
stripe-python over HTTP, answers and events checked against the spec (conftest)."""

from stripe_sandbox.testing import new_secret_key

DAY = 86400


def _connected(sandbox):
    key = new_secret_key()
    acct = sandbox.connect_account(key, "payouts@example.test", business_name="Shop")
    return sandbox.client(key), {"stripe_account": acct}


def _pay(client, opts, amount, currency="usd", card="pm_card_visa"):
    pi = client.v1.payment_intents.create(
        params={"amount": amount, "currency": currency, "payment_method": card, "confirm": True}, options=opts)
    return client.v1.charges.retrieve(pi.latest_charge, params={"expand": ["balance_transaction"]}, options=opts)


def test_charges_wait_until_available_then_one_payout_per_currency(sandbox):
    client, opts = _connected(sandbox)
    a = _pay(client, opts, 10000)
    b = _pay(client, opts, 2550)
    jpy = _pay(client, opts, 5000, "jpy")
    refund = client.v1.refunds.create(params={"charge": a.id, "amount": 1000}, options=opts)
    assert a.balance_transaction.type == "charge" and a.balance_transaction.fee == 320  # 2.9 % + 30
    assert jpy.balance_transaction.fee == 180  # 3.6 %, zero-decimal
    sandbox.advance_clock(DAY)
    assert client.v1.payouts.list(options=opts).data == []  # nothing available yet
    sandbox.advance_clock(3 * DAY)  # past the first midnight after available_on, and the next
    payouts = {p.currency: p for p in client.v1.payouts.list(options=opts).data}
    assert set(payouts) == {"usd", "jpy"}
    usd_nets = a.balance_transaction.net + b.balance_transaction.net - 1000
    assert payouts["usd"].amount == usd_nets == (10000 - 320) + (2550 - 104) - 1000
    assert payouts["jpy"].amount == 5000 - 180
    po = payouts["usd"]
    assert (po.automatic, po.method, po.type, po.object) == (True, "standard", "bank_account", "payout")
    assert po.arrival_date == po.created + DAY and po.created % DAY == 0
    assert po.status == "paid"  # the clock passed its arrival date too

    carried = client.v1.balance_transactions.list(
        params={"payout": po.id, "limit": 100, "expand": ["data.source"]}, options=opts).data
    by_type = {}
    for txn in carried:
        by_type.setdefault(txn.type, []).append(txn)
    assert sorted(by_type) == ["charge", "payout", "refund"]
    assert {t.source.id for t in by_type["charge"]} == {a.id, b.id}
    assert by_type["refund"][0].source.id == refund.id and by_type["refund"][0].amount == -1000
    (own,) = by_type["payout"]
    assert (own.id, own.amount, own.source.id) == (po.balance_transaction, -po.amount, po.id)
    assert sum(t.net for t in carried if t.type != "payout") == po.amount
    assert client.v1.payouts.retrieve(po.id, options=opts).id == po.id

    events = [e.type for e in reversed(client.v1.events.list(params={"limit": 100}, options=opts).data)
              if e.type.startswith("payout.")]
    assert events == ["payout.created", "payout.created", "payout.updated", "payout.paid",
                      "payout.updated", "payout.paid"]
    assert client.v1.payouts.list(params={"status": "paid"}, options=opts).data[0].status == "paid"
    balance = client.v1.balance.retrieve(options=opts)
    assert {x.currency: x.amount for x in balance.available} == {"usd": 0, "jpy": 0}


def test_payout_made_and_paid_one_midnight_apart_and_nothing_twice(sandbox):
    client, opts = _connected(sandbox)
    _pay(client, opts, 4000)
    now = sandbox.control("GET", "/clock")["now"]
    first_midnight_after_available = -(-(now + 2 * DAY) // DAY) * DAY
    sandbox.advance_clock(first_midnight_after_available - now)
    (po,) = client.v1.payouts.list(options=opts).data
    assert po.status == "pending" and po.reconciliation_status == "in_progress"
    sandbox.advance_clock(DAY)
    assert client.v1.payouts.retrieve(po.id, options=opts).status == "paid"
    sandbox.advance_clock(5 * DAY)
    assert len(client.v1.payouts.list(options=opts).data) == 1  # carried once


def test_negative_balance_waits_for_funds(sandbox):
    client, opts = _connected(sandbox)
    _pay(client, opts, 10000, card="pm_card_createDispute")  # amount and fee withdrawn: net negative
    sandbox.advance_clock(4 * DAY)
    assert client.v1.payouts.list(options=opts).data == []
    _pay(client, opts, 50000)
    sandbox.advance_clock(4 * DAY)
    (po,) = client.v1.payouts.list(options=opts).data
    carried = client.v1.balance_transactions.list(params={"payout": po.id, "limit": 100}, options=opts).data
    assert sorted(t.type for t in carried) == ["adjustment", "charge", "charge", "payout"]
    assert po.amount == sum(t.net for t in carried if t.type != "payout")


def test_payout_filter_names_a_payout_of_this_account(sandbox):
    client, opts = _connected(sandbox)
    import pytest
    import stripe

    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.balance_transactions.list(params={"payout": "po_missing"}, options=opts)
    assert err.value.param == "payout"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payouts.retrieve("po_missing", options=opts)


def test_failed_payout_gives_the_amount_back_and_the_next_payout_carries_it(sandbox):
    client, opts = _connected(sandbox)
    _pay(client, opts, 4000)
    assert sandbox.control("POST", "/payouts/failures", {"account": opts["stripe_account"],
                                                         "failure_code": "no_account"})["failure_code"] == "no_account"
    sandbox.advance_clock(4 * DAY)
    (failed,) = client.v1.payouts.list(options=opts).data
    assert (failed.status, failed.failure_code) == ("failed", "no_account")
    assert "No bank account" in failed.failure_message
    back = client.v1.balance_transactions.retrieve(failed.failure_balance_transaction, options=opts)
    assert (back.type, back.amount, back.source) == ("payout_failure", failed.amount, failed.id)
    events = [e.type for e in reversed(client.v1.events.list(params={"limit": 100}, options=opts).data)
              if e.type.startswith("payout.")]
    assert events == ["payout.created", "payout.updated", "payout.failed"]
    sandbox.control("POST", "/payouts/failures", {"account": opts["stripe_account"], "failure_code": None})
    sandbox.advance_clock(2 * DAY)
    again = [p for p in client.v1.payouts.list(options=opts).data if p.id != failed.id]
    assert [(p.amount, p.status) for p in again] == [(failed.amount, "paid")]
    carried = client.v1.balance_transactions.list(params={"payout": again[0].id}, options=opts).data
    assert sorted(t.type for t in carried) == ["payout", "payout_failure"]


def test_payout_failures_refuses_an_unknown_code(sandbox):
    _, opts = _connected(sandbox)
    import pytest

    from stripe_sandbox.testing import http_request

    status, _, body = http_request("POST", sandbox.base_url + "/_sandbox/payouts/failures",
                                   body='{"account": "%s", "failure_code": "bogus"}' % opts["stripe_account"])
    assert status == 400 and b"failure_code" in body
    with pytest.raises(Exception):
        sandbox.control("POST", "/payouts/failures", {"account": "acct_nope", "failure_code": "no_account"})
