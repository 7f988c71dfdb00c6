"""Invoice status changes (finalize, send, pay, void, mark_uncollectible, delete),
their events and invoice payments, through stripe-python over HTTP."""

import json
import re

import pytest
import stripe

from .spec_check import key_problems


def _events(client, limit=100):
    return list(reversed(client.v1.events.list(params={"limit": limit}).data))


def _types_since(client, mark):
    """Event types emitted after the event with id `mark` (None: all), oldest first."""
    events = _events(client)
    ids = [e.id for e in events]
    start = ids.index(mark) + 1 if mark else 0
    return [e.type for e in events[start:]]


def _last_event_id(client):
    data = client.v1.events.list(params={"limit": 1}).data
    return data[0].id if data else None


@pytest.fixture
def billing(sandbox):
    c = sandbox.client()
    cus = c.v1.customers.create(params={"email": "payer@example.test", "name": "Payer"})
    return c, cus


def _invoice(c, cus, amount=1000, **params):
    inv = c.v1.invoices.create(params={"customer": cus.id, **params})
    if amount:
        inv = c.v1.invoices.add_lines(inv.id, params={"lines": [{"amount": amount, "description": "Work"}]})
    return inv


def _card(c, cus, test_pm="pm_card_visa", default=True):
    pm = c.v1.payment_methods.attach(test_pm, params={"customer": cus.id})
    if default:
        c.v1.customers.update(cus.id, params={"invoice_settings": {"default_payment_method": pm.id}})
    return pm


# --------------------------------------------------------------------- finalize


def test_finalize_numbers_links_and_events(billing, sandbox):
    c, cus = billing
    inv = _invoice(c, cus, collection_method="send_invoice", days_until_due=30)
    mark = _last_event_id(c)
    fin = c.v1.invoices.finalize_invoice(inv.id)
    prefix = c.v1.customers.retrieve(cus.id).invoice_prefix
    assert fin.number == f"{prefix}-0001" and re.fullmatch(r"[A-Z0-9]{8}-0001", fin.number)
    assert fin.status == "open" and fin.status_transitions.finalized_at == fin.effective_at
    assert fin.due_date == fin.status_transitions.finalized_at + 30 * 86400
    token = fin.hosted_invoice_url.rsplit("/", 1)[1]
    assert fin.hosted_invoice_url == f"{sandbox.base_url}/hosted/invoices/{token}"
    assert fin.invoice_pdf == f"{sandbox.base_url}/hosted/invoices/{token}/pdf"
    assert (fin.amount_due, fin.amount_remaining, fin.amount_paid) == (1000, 1000, 0)
    assert _types_since(c, mark) == ["invoice.finalized", "invoice.updated"]
    updated = c.v1.events.list(params={"type": "invoice.updated"}).data[0]
    prev = updated.data.previous_attributes.to_dict()
    assert prev["status"] == "draft" and prev["number"] is None and prev["hosted_invoice_url"] is None
    assert prev["status_transitions"] == {"finalized_at": None}
    assert c.v1.customers.retrieve(cus.id).next_invoice_sequence == 2
    second = c.v1.invoices.finalize_invoice(_invoice(c, cus).id)
    assert second.number == f"{prefix}-0002"


def test_finalize_twice_is_invoice_unexpected_state(billing):
    c, cus = billing
    inv = _invoice(c, cus)
    c.v1.invoices.finalize_invoice(inv.id)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoices.finalize_invoice(inv.id)
    assert exc.value.http_status == 400 and exc.value.code == "invoice_unexpected_state"
    assert "re-finalize" in exc.value.user_message


def test_finalize_zero_total_invoice_is_paid_at_once(billing):
    c, cus = billing
    coupon = c.v1.coupons.create(params={"percent_off": 100})
    inv = _invoice(c, cus, discounts=[{"coupon": coupon.id}])
    mark = _last_event_id(c)
    fin = c.v1.invoices.finalize_invoice(inv.id)
    assert (fin.status, fin.total, fin.amount_due, fin.amount_remaining) == ("paid", 0, 0, 0)
    assert fin.status_transitions.paid_at is not None
    assert _types_since(c, mark) == ["invoice.finalized", "invoice.updated", "invoice.paid",
                                     "invoice.payment_succeeded"]


def test_finalize_auto_advance_send_invoice_is_sent(billing):
    c, cus = billing
    inv = _invoice(c, cus, collection_method="send_invoice", days_until_due=7, auto_advance=True)
    assert inv.automatically_finalizes_at == inv.created + 3600
    mark = _last_event_id(c)
    fin = c.v1.invoices.finalize_invoice(inv.id)
    assert fin.auto_advance is True and fin.automatically_finalizes_at is None
    assert _types_since(c, mark) == ["invoice.finalized", "invoice.updated", "invoice.sent"]


# ------------------------------------------------------------ transition matrix


def _in_status(c, cus, status):
    inv = _invoice(c, cus, collection_method="send_invoice", days_until_due=5)
    if status == "draft":
        return inv
    c.v1.invoices.finalize_invoice(inv.id)
    if status == "paid":
        c.v1.invoices.pay(inv.id, params={"paid_out_of_band": True})
    elif status == "void":
        c.v1.invoices.void_invoice(inv.id)
    elif status == "uncollectible":
        c.v1.invoices.mark_uncollectible(inv.id)
    return inv


_ACTIONS = {
    "finalize": lambda c, i: c.v1.invoices.finalize_invoice(i),
    "void": lambda c, i: c.v1.invoices.void_invoice(i),
    "mark_uncollectible": lambda c, i: c.v1.invoices.mark_uncollectible(i),
    "pay": lambda c, i: c.v1.invoices.pay(i, params={"paid_out_of_band": True}),
    "send": lambda c, i: c.v1.invoices.send_invoice(i),
    "delete": lambda c, i: c.v1.invoices.delete(i),
}
# Stripe's invoice workflow: what each status allows (anything else is a 400).
_ALLOWED = {
    "draft": {"finalize", "pay", "send", "delete"},  # pay and send finalize first
    "open": {"void", "mark_uncollectible", "pay", "send"},
    "uncollectible": {"void", "pay", "send"},
    "paid": {"send"},
    "void": set(),
}


@pytest.mark.parametrize("status", sorted(_ALLOWED))
def test_transition_matrix_illegal_is_400(billing, status):
    c, cus = billing
    for action, call in _ACTIONS.items():
        inv = _in_status(c, cus, status)
        if action in _ALLOWED[status]:
            call(c, inv.id)
            continue
        with pytest.raises(stripe.InvalidRequestError) as exc:
            call(c, inv.id)
        assert exc.value.http_status == 400, (status, action)
        assert exc.value.error.type == "invalid_request_error"
        assert exc.value.code == "invoice_unexpected_state", (status, action)
        after = c.v1.invoices.retrieve(inv.id)
        assert after.status == status, (status, action)


def test_void_open_invoice(billing):
    c, cus = billing
    inv = _invoice(c, cus)
    c.v1.invoices.finalize_invoice(inv.id)
    mark = _last_event_id(c)
    voided = c.v1.invoices.void_invoice(inv.id)
    assert voided.status == "void" and voided.status_transitions.voided_at is not None
    assert _types_since(c, mark) == ["invoice.updated", "invoice.voided"]
    prev = c.v1.events.list(params={"type": "invoice.updated"}).data[0].data.previous_attributes.to_dict()
    assert prev == {"status": "open", "status_transitions": {"voided_at": None}}


def test_void_draft_message_is_stripes(billing):
    c, cus = billing
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoices.void_invoice(_invoice(c, cus).id)
    assert exc.value.user_message == "You can only pass in open invoices. This invoice isn't open."


def test_void_gives_back_applied_customer_credit(billing):
    c, cus = billing
    c.v1.customers.update(cus.id, params={"balance": -400})
    inv = _invoice(c, cus)
    fin = c.v1.invoices.finalize_invoice(inv.id)
    assert fin.amount_due == 600 and c.v1.customers.retrieve(cus.id).balance == 0
    c.v1.invoices.void_invoice(inv.id)
    assert c.v1.customers.retrieve(cus.id).balance == -400


def test_mark_uncollectible_then_pay_out_of_band(billing):
    c, cus = billing
    inv = _invoice(c, cus)
    c.v1.invoices.finalize_invoice(inv.id)
    mark = _last_event_id(c)
    bad = c.v1.invoices.mark_uncollectible(inv.id)
    assert bad.status == "uncollectible" and bad.status_transitions.marked_uncollectible_at is not None
    assert _types_since(c, mark) == ["invoice.updated", "invoice.marked_uncollectible"]
    paid = c.v1.invoices.pay(inv.id, params={"paid_out_of_band": True})
    assert paid.status == "paid"


def test_send_emits_invoice_sent(billing):
    c, cus = billing
    inv = _invoice(c, cus, collection_method="send_invoice", days_until_due=10)
    c.v1.invoices.finalize_invoice(inv.id)
    mark = _last_event_id(c)
    sent = c.v1.invoices.send_invoice(inv.id)
    assert sent.status == "open"
    assert _types_since(c, mark) == ["invoice.sent"]


def test_send_draft_finalizes_then_sends(billing):
    c, cus = billing
    inv = _invoice(c, cus, collection_method="send_invoice", days_until_due=10)
    mark = _last_event_id(c)
    sent = c.v1.invoices.send_invoice(inv.id)
    assert sent.status == "open" and sent.number
    assert _types_since(c, mark) == ["invoice.finalized", "invoice.updated", "invoice.sent"]


def test_send_charge_automatically_is_400(billing):
    c, cus = billing
    inv = _invoice(c, cus)
    c.v1.invoices.finalize_invoice(inv.id)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoices.send_invoice(inv.id)
    assert "collection method is 'send_invoice'" in exc.value.user_message


def test_delete_draft_only(billing):
    c, cus = billing
    inv = _invoice(c, cus)
    mark = _last_event_id(c)
    assert c.v1.invoices.delete(inv.id).deleted is True
    assert _types_since(c, mark) == ["invoiceitem.deleted", "invoice.deleted"]


# ------------------------------------------------------------------------ pay


def test_pay_out_of_band(billing):
    c, cus = billing
    inv = _invoice(c, cus, amount=4200)
    c.v1.invoices.finalize_invoice(inv.id)
    mark = _last_event_id(c)
    paid = c.v1.invoices.pay(inv.id, params={"paid_out_of_band": True})
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 4200, 0)
    assert paid.status_transitions.paid_at is not None
    assert paid.payments.data == []
    assert paid.amount_paid_off_stripe == 4200  # required in the spec: always sent
    shown = c.v1.invoices.retrieve(inv.id, params={"expand": ["amount_paid_off_stripe"]})
    assert shown.amount_paid_off_stripe == 4200
    assert _types_since(c, mark) == ["invoice.updated", "invoice.paid"]
    prev = c.v1.events.list(params={"type": "invoice.updated"}).data[0].data.previous_attributes.to_dict()
    assert prev["status"] == "open" and prev["amount_paid"] == 0 and prev["amount_remaining"] == 4200
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoices.pay(inv.id, params={"paid_out_of_band": True})
    assert exc.value.user_message == "Invoice is already paid"


def test_pay_with_default_card(billing):
    c, cus = billing
    pm = _card(c, cus)
    inv = _invoice(c, cus, amount=2599)
    c.v1.invoices.finalize_invoice(inv.id)
    mark = _last_event_id(c)
    paid = c.v1.invoices.pay(inv.id)
    assert (paid.status, paid.amount_paid, paid.amount_remaining, paid.attempted, paid.attempt_count) == (
        "paid", 2599, 0, True, 1)
    (payment,) = paid.payments.data
    assert payment.id.startswith("inpay_") and payment.object == "invoice_payment"
    assert (payment.amount_paid, payment.amount_requested, payment.status, payment.is_default) == (
        2599, 2599, "paid", True)
    assert payment.payment.type == "payment_intent"
    pi = c.v1.payment_intents.retrieve(payment.payment.payment_intent)
    assert (pi.status, pi.amount, pi.customer, pi.payment_method) == ("succeeded", 2599, cus.id, pm.id)
    types = _types_since(c, mark)
    assert types[-4:] == ["invoice.updated", "invoice.paid", "invoice.payment_succeeded", "invoice_payment.paid"]
    assert "payment_intent.succeeded" in types[:-4]
    listed = c.v1.invoice_payments.list(params={"invoice": inv.id})
    assert [p.id for p in listed.data] == [payment.id]
    by_pi = c.v1.invoice_payments.list(params={"payment": {"type": "payment_intent",
                                                             "payment_intent": pi.id}})
    assert [p.id for p in by_pi.data] == [payment.id]
    got = c.v1.invoice_payments.retrieve(payment.id)
    assert key_problems(got.to_dict(), "invoice_payment") == []
    assert got.status_transitions.paid_at == paid.status_transitions.paid_at


def test_pay_draft_finalizes_and_charges(billing):
    c, cus = billing
    _card(c, cus)
    inv = _invoice(c, cus, amount=500)
    paid = c.v1.invoices.pay(inv.id)
    assert paid.status == "paid" and paid.number and paid.status_transitions.finalized_at


def test_pay_with_explicit_payment_method(billing):
    c, cus = billing
    pm = _card(c, cus, "pm_card_mastercard", default=False)
    inv = _invoice(c, cus)
    c.v1.invoices.finalize_invoice(inv.id)
    paid = c.v1.invoices.pay(inv.id, params={"payment_method": pm.id})
    pi = c.v1.payment_intents.retrieve(paid.payments.data[0].payment.payment_intent)
    assert pi.payment_method == pm.id


def test_pay_without_payment_method_is_400(billing):
    c, cus = billing
    inv = _invoice(c, cus)
    c.v1.invoices.finalize_invoice(inv.id)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoices.pay(inv.id)
    assert "no attached payment source or default payment method" in exc.value.user_message
    assert c.v1.invoices.retrieve(inv.id).status == "open"


def test_pay_with_another_customers_card_is_400(billing):
    c, cus = billing
    other = c.v1.customers.create()
    pm = _card(c, other, default=False)
    inv = _invoice(c, cus)
    c.v1.invoices.finalize_invoice(inv.id)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoices.pay(inv.id, params={"payment_method": pm.id})
    assert exc.value.http_status == 400
    assert c.v1.invoices.retrieve(inv.id).status == "open"


def test_pay_declined_card_is_402_and_records_attempt(billing):
    c, cus = billing
    _card(c, cus, "pm_card_chargeCustomerFail")
    inv = _invoice(c, cus, amount=3000)
    c.v1.invoices.finalize_invoice(inv.id)
    mark = _last_event_id(c)
    with pytest.raises(stripe.CardError) as exc:
        c.v1.invoices.pay(inv.id)
    assert exc.value.http_status == 402 and exc.value.code == "card_declined"
    body = exc.value.json_body["error"]
    assert body["payment_intent"]["status"] == "requires_payment_method"
    after = c.v1.invoices.retrieve(inv.id)
    assert (after.status, after.attempted, after.attempt_count, after.amount_paid) == ("open", True, 1, 0)
    assert after.last_finalization_error is None
    # The failed attempt is an `open` invoice payment of the declined PaymentIntent.
    [attempt] = after.payments.data
    assert (attempt.status, attempt.amount_paid) == ("open", 0)
    assert attempt.payment.payment_intent == body["payment_intent"]["id"]
    types = _types_since(c, mark)
    assert "payment_intent.payment_failed" in types
    assert types[-2:] == ["invoice.payment_failed", "invoice.updated"]
    prev = c.v1.events.list(params={"type": "invoice.updated"}).data[0].data.previous_attributes.to_dict()
    assert prev == {"attempted": False, "attempt_count": 0}
    good = _card(c, cus, "pm_card_visa", default=False)
    paid = c.v1.invoices.pay(inv.id, params={"payment_method": good.id})
    assert paid.status == "paid" and paid.attempt_count == 1


def test_attach_payment_applies_a_succeeded_intent_once(billing):
    c, cus = billing
    pm = _card(c, cus, default=False)
    inv = _invoice(c, cus, amount=1500)
    c.v1.invoices.finalize_invoice(inv.id)
    pi = c.v1.payment_intents.create(params={"amount": 1500, "currency": "usd", "customer": cus.id,
                                             "payment_method": pm.id, "confirm": True})
    paid = c.v1.invoices.attach_payment(inv.id, params={"payment_intent": pi.id})
    assert paid.status == "paid" and paid.payments.data[0].payment.payment_intent == pi.id
    # Applying the same PaymentIntent again changes nothing (webhooks and retries may repeat).
    again = c.v1.invoices.attach_payment(inv.id, params={"payment_intent": pi.id})
    assert len(again.payments.data) == 1 and again.amount_paid == 1500


def test_invoice_events_reach_webhooks_without_internal_fields(billing, webhook_receiver, sandbox):
    c, cus = billing
    c.v1.webhook_endpoints.create(params={"url": webhook_receiver.url,
                                          "enabled_events": ["invoice.finalized", "invoice.paid"]})
    inv = _invoice(c, cus)
    c.v1.invoices.finalize_invoice(inv.id)
    c.v1.invoices.pay(inv.id, params={"paid_out_of_band": True})
    deliveries = webhook_receiver.wait_for(2)
    events = sorted((json.loads(d["body"]) for d in deliveries), key=lambda e: e["type"])
    assert [e["type"] for e in events] == ["invoice.finalized", "invoice.paid"]
    for event in events:
        obj = event["data"]["object"]
        assert obj["id"] == inv.id and "_hosted_token" not in obj and "_lines" not in obj
        assert key_problems(obj, "invoice") == []
