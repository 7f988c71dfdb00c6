"""Bank debits (ACH `us_bank_account`, `sepa_debit`) with Stripe's test numbers:
processing, then settled or failed when the sandbox clock moves; invoices paid by
them; through stripe-python over HTTP."""

import pytest
import stripe

DAY = 24 * 3600


def _ach(client, account="000123456789", **extra):
    return client.v1.payment_methods.create(params={
        "type": "us_bank_account", "billing_details": {"name": "Ada Lovelace"},
        "us_bank_account": {"routing_number": "110000000", "account_number": account,
                            "account_holder_type": "company"}, **extra})


def _sepa(client, iban="DE89370400440532013000"):
    return client.v1.payment_methods.create(params={
        "type": "sepa_debit", "billing_details": {"name": "Ada", "email": "ada@example.test"},
        "sepa_debit": {"iban": iban}})


def _types(client):
    return [e.type for e in reversed(client.v1.events.list(params={"limit": 100}).data)]


def test_ach_payment_processes_then_succeeds_a_day_later(sandbox):
    client = sandbox.client()
    pm = _ach(client)
    assert (pm.type, pm.us_bank_account.last4, pm.us_bank_account.routing_number) == (
        "us_bank_account", "6789", "110000000")
    pi = client.v1.payment_intents.create(params={"amount": 5000, "currency": "usd", "payment_method": pm.id,
                                                  "payment_method_types": ["us_bank_account"], "confirm": True})
    assert (pi.status, pi.amount_received) == ("processing", 0)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.status, charge.paid, charge.payment_method_details.type) == ("pending", False, "us_bank_account")
    assert _types(client)[-2:] == ["charge.pending", "payment_intent.processing"]
    sandbox.advance_clock(DAY - 60)
    assert client.v1.payment_intents.retrieve(pi.id).status == "processing"
    sandbox.advance_clock(60)
    done = client.v1.payment_intents.retrieve(pi.id)
    assert (done.status, done.amount_received) == ("succeeded", 5000)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.status, charge.paid) == ("succeeded", True)
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert (txn.amount, txn.fee) == (5000, 40)  # 0.8%
    assert _types(client)[-2:] == ["charge.succeeded", "payment_intent.succeeded"]


@pytest.mark.parametrize("account,code", [("000111111113", "account_closed"), ("000222222227", "insufficient_funds"),
                                          ("000333333335", "debit_not_authorized")])
def test_ach_failing_test_accounts_fail_after_processing(sandbox, account, code):
    client = sandbox.client()
    pi = client.v1.payment_intents.create(params={"amount": 5000, "currency": "usd", "payment_method": _ach(
        client, account).id, "payment_method_types": ["us_bank_account"], "confirm": True})
    assert pi.status == "processing"
    sandbox.advance_clock(DAY)
    failed = client.v1.payment_intents.retrieve(pi.id)
    assert (failed.status, failed.last_payment_error.code, failed.payment_method) == (
        "requires_payment_method", code, None)
    assert client.v1.charges.retrieve(pi.latest_charge).failure_code == code
    assert _types(client)[-2:] == ["charge.failed", "payment_intent.payment_failed"]


def test_sepa_debit_in_eur_succeeds_and_fails_by_iban(sandbox):
    client = sandbox.client()
    ok = client.v1.payment_intents.create(params={"amount": 3000, "currency": "eur", "confirm": True,
                                                  "payment_method": _sepa(client).id,
                                                  "payment_method_types": ["sepa_debit"]})
    bad = client.v1.payment_intents.create(params={"amount": 3000, "currency": "eur", "confirm": True,
                                                   "payment_method": _sepa(client, "DE62370400440532013001").id,
                                                   "payment_method_types": ["sepa_debit"]})
    assert (ok.status, bad.status) == ("processing", "processing")
    ran = sandbox.control("POST", "/clock", {"advance_seconds": DAY})["ran"]
    assert [r["kind"] for r in ran] == ["bank_debit_settles"] * 2 and all(r["ok"] for r in ran)
    assert client.v1.payment_intents.retrieve(ok.id).status == "succeeded"
    assert client.v1.payment_intents.retrieve(bad.id).status == "requires_payment_method"


def test_bank_debit_refuses_bad_numbers_and_currencies(sandbox):
    client = sandbox.client()
    with pytest.raises(stripe.InvalidRequestError) as err:
        _ach(client, "123")
    assert err.value.param == "us_bank_account[account_number]"
    with pytest.raises(stripe.InvalidRequestError) as err:
        _sepa(client, "DE00000000000000000000")
    assert err.value.param == "sepa_debit[iban]"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.create(params={"type": "us_bank_account", "us_bank_account": {
            "routing_number": "110000000", "account_number": "000123456789"}})
    assert err.value.param == "billing_details[name]"
    with pytest.raises(stripe.InvalidRequestError):  # ACH is usd only
        client.v1.payment_intents.create(params={"amount": 3000, "currency": "eur", "confirm": True,
                                                 "payment_method": _ach(client).id})
    with pytest.raises(stripe.InvalidRequestError):  # not among the intent's types
        client.v1.payment_intents.create(params={"amount": 3000, "currency": "usd", "confirm": True,
                                                 "payment_method": _ach(client).id,
                                                 "payment_method_types": ["card"]})


def _invoice(client, cus, amount=12000):
    inv = client.v1.invoices.create(params={"customer": cus.id})
    client.v1.invoices.add_lines(inv.id, params={"lines": [{"amount": amount, "description": "Work"}]})
    return client.v1.invoices.finalize_invoice(inv.id)


def test_invoice_paid_by_ach_stays_open_while_processing_then_is_paid(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={"email": "ap@example.test"})
    pm = client.v1.payment_methods.attach(_ach(client).id, params={"customer": cus.id})
    inv = _invoice(client, cus)
    paying = client.v1.invoices.pay(inv.id, params={"payment_method": pm.id})
    assert (paying.status, paying.amount_paid, paying.amount_remaining) == ("open", 0, 12000)
    assert paying.payments.data[0].status == "open"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.invoices.pay(inv.id, params={"payment_method": pm.id})
    assert "processing" in err.value.user_message
    assert "invoice.paid" not in _types(client)
    sandbox.advance_clock(DAY)
    paid = client.v1.invoices.retrieve(inv.id)
    assert (paid.status, paid.amount_paid, paid.payments.data[0].status) == ("paid", 12000, "paid")
    assert {"payment_intent.succeeded", "invoice.paid", "invoice.payment_succeeded"} <= set(_types(client))


def test_invoice_paid_by_failing_ach_stays_open_with_payment_failed(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={})
    pm = client.v1.payment_methods.attach(_ach(client, "000111111116").id, params={"customer": cus.id})
    inv = _invoice(client, cus)
    client.v1.invoices.pay(inv.id, params={"payment_method": pm.id})
    sandbox.advance_clock(DAY)
    after = client.v1.invoices.retrieve(inv.id)
    assert (after.status, after.amount_paid, after.attempted) == ("open", 0, True)
    assert _types(client)[-3:] == ["payment_intent.payment_failed", "invoice.payment_failed", "invoice.updated"]
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    assert client.v1.invoices.pay(inv.id, params={"payment_method": card.id}).status == "paid"
