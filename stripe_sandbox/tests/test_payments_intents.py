"""PaymentIntents, charges, balance transactions, and collect_payment through
invoice payments (the billing modules' door into payments)."""

import pytest
import stripe


def _customer_with_card(client, test_id="pm_card_visa", *, default=True):
    cus = client.v1.customers.create(params={"email": "payer@example.test", "name": "Payer"})
    pm = client.v1.payment_methods.attach(test_id, params={"customer": cus.id})
    if default:
        client.v1.customers.update(cus.id, params={"invoice_settings": {"default_payment_method": pm.id}})
    return cus, pm


def _event_types(client, **options) -> list[str]:
    return [e.type for e in reversed(client.v1.events.list(params={"limit": 100}, **options).data)]


def _charge_automatically_invoice(client, cus, amount=5000, currency="usd"):
    inv = client.v1.invoices.create(params={"customer": cus.id, "collection_method": "charge_automatically",
                                            "currency": currency, "auto_advance": False})
    client.v1.invoice_items.create(params={"customer": cus.id, "invoice": inv.id, "amount": amount,
                                           "currency": currency, "description": "Consulting"})
    return client.v1.invoices.finalize_invoice(inv.id)


def test_payment_intent_create_confirm_succeeds_with_charge(sandbox):
    client = sandbox.client()
    cus, pm = _customer_with_card(client)
    pi = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "customer": cus.id,
                                                  "metadata": {"order": "7"}})
    assert pi.status == "requires_payment_method" and pi.client_secret.startswith(pi.id + "_secret_")
    pi = client.v1.payment_intents.confirm(pi.id, params={"payment_method": pm.id})
    assert (pi.status, pi.amount_received, pi.payment_method, pi.last_payment_error) == (
        "succeeded", 2000, pm.id, None)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.status, charge.paid, charge.captured, charge.amount_captured) == ("succeeded", True, True, 2000)
    assert (charge.payment_intent, charge.customer, charge.payment_method) == (pi.id, cus.id, pm.id)
    card = charge.payment_method_details.card
    assert (card.brand, card.last4, card.funding, card.country) == ("visa", "4242", "credit", "US")
    assert card.exp_month == pm.card.exp_month and card.exp_year == pm.card.exp_year
    assert charge.receipt_url.startswith(sandbox.base_url + "/hosted/receipts/")
    assert charge.metadata.to_dict() == {"order": "7"} and charge.outcome.type == "authorized"
    assert _event_types(client)[-3:] == ["payment_intent.created", "charge.succeeded", "payment_intent.succeeded"]


@pytest.mark.parametrize("amount, currency, fee", [
    (2000, "usd", 88),      # 2.9% of 20.00 = 0.58, + 0.30
    (10000, "eur", 320),
    (1999, "usd", 88),      # 57.971 rounds half up to 58
    (5000, "jpy", 180),     # zero-decimal: 3.6%, no fixed fee
    (10000, "bhd", 590),    # three-decimal: 2.9% + 0.300
])
def test_balance_transaction_fee_and_net(sandbox, amount, currency, fee):
    client = sandbox.client()
    pi = client.v1.payment_intents.create(params={"amount": amount, "currency": currency,
                                                  "payment_method": "pm_card_visa", "confirm": True})
    charge = client.v1.charges.retrieve(pi.latest_charge)
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert (txn.amount, txn.fee, txn.net, txn.currency) == (amount, fee, amount - fee, currency)
    assert (txn.type, txn.source, txn.reporting_category, txn.status) == ("charge", charge.id, "charge", "pending")
    assert [(f.type, f.amount) for f in txn.fee_details] == [("stripe_fee", fee)]
    assert txn.id.startswith("txn_")


def test_balance_transaction_available_after_two_days(sandbox):
    client = sandbox.client()
    pi = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd",
                                                  "payment_method": "pm_card_visa", "confirm": True})
    txn_id = client.v1.charges.retrieve(pi.latest_charge).balance_transaction
    sandbox.advance_clock(2 * 24 * 3600 + 1)
    assert client.v1.balance_transactions.retrieve(txn_id).status == "available"


def test_payment_intent_decline_records_failure_and_402(sandbox):
    client = sandbox.client()
    pm = client.v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4000000000009995", "exp_month": 12, "exp_year": 2040}})
    pi = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "payment_method": pm.id})
    assert pi.status == "requires_confirmation"
    with pytest.raises(stripe.CardError) as exc:
        client.v1.payment_intents.confirm(pi.id)
    err = exc.value.error
    assert (exc.value.http_status, err.code, err.decline_code) == (402, "card_declined", "insufficient_funds")
    assert err.payment_intent.id == pi.id and err.payment_intent.status == "requires_payment_method"
    assert err.charge.startswith("ch_") and err.payment_method.id == pm.id
    pi = client.v1.payment_intents.retrieve(pi.id)
    assert pi.status == "requires_payment_method" and pi.payment_method is None
    assert pi.last_payment_error.decline_code == "insufficient_funds"
    assert pi.last_payment_error.payment_method.id == pm.id
    charge = client.v1.charges.retrieve(err.charge)
    assert (charge.status, charge.paid, charge.failure_code, charge.balance_transaction) == (
        "failed", False, "card_declined", None)
    assert charge.failure_message == "Your card has insufficient funds."
    assert charge.outcome.type == "issuer_declined" and charge.outcome.reason == "insufficient_funds"
    # A declined request still emits what happened (Stripe does, despite the 402).
    assert _event_types(client)[-2:] == ["charge.failed", "payment_intent.payment_failed"]
    pi = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert pi.status == "succeeded" and pi.last_payment_error is None


def test_payment_intent_with_other_customers_card_is_400(sandbox):
    client = sandbox.client()
    _, pm = _customer_with_card(client)
    stranger = client.v1.customers.create(params={"email": "other@example.test"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "customer": stranger.id,
                                                 "payment_method": pm.id, "confirm": True})
    assert exc.value.http_status == 400 and exc.value.param == "payment_method"
    assert f"The PaymentMethod {pm.id} does not belong to the Customer {stranger.id}" in exc.value.user_message
    assert client.v1.payment_intents.list(params={"customer": stranger.id}).data == []


@pytest.mark.parametrize("amount, currency, code", [
    (49, "usd", "amount_too_small"), (49, "jpy", "amount_too_small"), (100_000_000, "usd", "amount_too_large"),
])
def test_payment_intent_amount_limits(sandbox, amount, currency, code):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        sandbox.client().v1.payment_intents.create(params={"amount": amount, "currency": currency})
    assert exc.value.code == code and exc.value.param == "amount"


def test_payment_intent_confirm_twice_and_cancel_rules(sandbox):
    client = sandbox.client()
    pi = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd",
                                                  "payment_method": "pm_card_visa", "confirm": True})
    for call in (lambda: client.v1.payment_intents.confirm(pi.id),
                 lambda: client.v1.payment_intents.cancel(pi.id),
                 lambda: client.v1.payment_intents.update(pi.id, params={"amount": 5000})):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            call()
        assert exc.value.code == "payment_intent_unexpected_state"
    updated = client.v1.payment_intents.update(pi.id, params={"metadata": {"a": "b"}})
    assert updated.metadata.to_dict() == {"a": "b"}
    open_pi = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.payment_intents.confirm(open_pi.id)
    assert "missing a payment method" in exc.value.user_message
    canceled = client.v1.payment_intents.cancel(open_pi.id, params={"cancellation_reason": "abandoned"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned") and canceled.canceled_at
    assert _event_types(client)[-1] == "payment_intent.canceled"


def test_payment_intent_setup_future_usage_saves_card(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={"email": "sfu@example.test"})
    pi = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "customer": cus.id,
                                                  "payment_method": "pm_card_visa", "confirm": True,
                                                  "setup_future_usage": "off_session"})
    assert client.v1.payment_methods.retrieve(pi.payment_method).customer == cus.id


def test_payment_intent_and_charge_lists_filter(sandbox):
    client = sandbox.client()
    cus, pm = _customer_with_card(client)
    mine = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "customer": cus.id,
                                                    "payment_method": pm.id, "confirm": True})
    other = client.v1.payment_intents.create(params={"amount": 3000, "currency": "usd",
                                                     "payment_method": "pm_card_visa", "confirm": True})
    assert [p.id for p in client.v1.payment_intents.list(params={"customer": cus.id}).data] == [mine.id]
    assert [c.id for c in client.v1.charges.list(params={"customer": cus.id}).data] == [mine.latest_charge]
    by_intent = client.v1.charges.list(params={"payment_intent": other.id}).data
    assert [c.id for c in by_intent] == [other.latest_charge]
    assert len(client.v1.charges.list().data) == 2


def test_charge_update_metadata_emits_charge_updated(sandbox):
    client = sandbox.client()
    pi = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd",
                                                  "payment_method": "pm_card_visa", "confirm": True})
    charge = client.v1.charges.update(pi.latest_charge, params={"metadata": {"crm": "inv-1"}})
    assert charge.metadata.to_dict() == {"crm": "inv-1"}
    assert _event_types(client)[-1] == "charge.updated"


# ------------------------------------------------------ collect_payment via invoices


def test_collect_payment_invoice_pay_with_default_card(sandbox):
    client = sandbox.client()
    cus, pm = _customer_with_card(client)
    inv = _charge_automatically_invoice(client, cus, amount=5000)
    paid = client.v1.invoices.pay(inv.id)
    assert paid.status == "paid" and paid.amount_paid == 5000
    pi_id = paid.payments.data[0].payment.payment_intent
    pi = client.v1.payment_intents.retrieve(pi_id)
    assert (pi.status, pi.customer, pi.payment_method, pi.amount_received) == ("succeeded", cus.id, pm.id, 5000)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert (txn.fee, txn.net) == (175, 4825)
    types = _event_types(client)
    assert types.index("payment_intent.succeeded") < types.index("invoice.paid")


def test_collect_payment_declined_keeps_invoice_open(sandbox):
    client = sandbox.client()
    cus, pm = _customer_with_card(client, "pm_card_chargeCustomerFail")
    inv = _charge_automatically_invoice(client, cus)
    with pytest.raises(stripe.CardError) as exc:
        client.v1.invoices.pay(inv.id)
    assert exc.value.error.decline_code == "generic_decline"
    inv = client.v1.invoices.retrieve(inv.id)
    assert inv.status == "open" and inv.attempted and inv.amount_paid == 0
    types = _event_types(client)
    for expected in ("charge.failed", "payment_intent.payment_failed", "invoice.payment_failed"):
        assert expected in types


def test_collect_payment_without_any_card_is_400(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={"email": "nocard@example.test"})
    inv = _charge_automatically_invoice(client, cus)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.invoices.pay(inv.id)
    assert "no attached payment source or default payment method" in exc.value.user_message


def test_collect_payment_with_other_customers_card_is_400(sandbox):
    client = sandbox.client()
    cus, _ = _customer_with_card(client)
    _, foreign = _customer_with_card(client)
    inv = _charge_automatically_invoice(client, cus)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.invoices.pay(inv.id, params={"payment_method": foreign.id})
    assert exc.value.http_status == 400
    assert f"The PaymentMethod {foreign.id} does not belong to the Customer {cus.id}" in exc.value.user_message
    assert client.v1.invoices.retrieve(inv.id).status == "open"


def test_collect_payment_connected_account_events_carry_account(sandbox):
    key = "sk_test_" + "collectconnect" + "0" * 6
    platform = sandbox.client(key)
    acct = sandbox.connect_account(key, "shop@example.test")
    opts = {"stripe_account": acct}
    cus = platform.v1.customers.create(params={"email": "c@example.test"}, options=opts)
    pm = platform.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id}, options=opts)
    inv = platform.v1.invoices.create(params={"customer": cus.id, "currency": "eur", "auto_advance": False},
                                      options=opts)
    platform.v1.invoice_items.create(params={"customer": cus.id, "invoice": inv.id, "amount": 1234,
                                             "currency": "eur"}, options=opts)
    paid = platform.v1.invoices.pay(inv.id, params={"payment_method": pm.id}, options=opts)
    assert paid.status == "paid"
    events = platform.v1.events.list(params={"type": "charge.succeeded"}, options=opts).data
    assert events[0].account == acct
    assert platform.v1.charges.list().data == []  # the platform's own account has none


def test_payment_intent_declined_answer_replays_under_idempotency_key(sandbox):
    client = sandbox.client()
    params = {"amount": 2000, "currency": "usd", "payment_method": "pm_card_chargeDeclined", "confirm": True}
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as exc:
            client.v1.payment_intents.create(params=params, options={"idempotency_key": "order-42-attempt-1"})
        errors.append(exc.value.error)
    assert errors[0].payment_intent.id == errors[1].payment_intent.id
    assert len(client.v1.payment_intents.list().data) == 1
    assert _event_types(client).count("payment_intent.payment_failed") == 1
