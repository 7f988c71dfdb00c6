"""Credit notes: pre-payment (open invoice) and post-payment (paid invoice) rules,
the exact split into refund / balance credit / out of band, preview, void, events,
through stripe-python over HTTP."""

import pytest
import stripe


def _types(c):
    return [e.type for e in reversed(c.v1.events.list(params={"limit": 100}).data)]


@pytest.fixture
def billing(sandbox):
    c = sandbox.client()
    cus = c.v1.customers.create(params={"email": "payer@example.test", "name": "Payer"})
    return c, cus


def _open_invoice(c, cus, amounts=(6000, 4000)):
    inv = c.v1.invoices.create(params={"customer": cus.id, "collection_method": "send_invoice",
                                       "days_until_due": 30})
    c.v1.invoices.add_lines(inv.id, params={"lines": [{"amount": a, "description": f"Work {a}"} for a in amounts]})
    return c.v1.invoices.finalize_invoice(inv.id)


def _paid_invoice(c, cus, amounts=(6000, 4000), card="pm_card_visa"):
    inv = _open_invoice(c, cus, amounts)
    pm = c.v1.payment_methods.attach(card, params={"customer": cus.id})
    return c.v1.invoices.pay(inv.id, params={"payment_method": pm.id})


def test_credit_note_on_open_invoice_lowers_amount_due(billing):
    c, cus = billing
    inv = _open_invoice(c, cus)
    cn = c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 2500, "reason": "order_change",
                                          "memo": "Goodwill"})
    assert (cn.status, cn.type, cn.amount, cn.total) == ("issued", "pre_payment", 2500, 2500)
    assert (cn.pre_payment_amount, cn.post_payment_amount) == (2500, 0)
    assert cn.number == f"{inv.number}-CN-01" and cn.memo == "Goodwill" and cn.reason == "order_change"
    after = c.v1.invoices.retrieve(inv.id)
    assert (after.status, after.amount_due, after.amount_remaining, after.total) == ("open", 7500, 7500, 10000)
    assert (after.pre_payment_credit_notes_amount, after.post_payment_credit_notes_amount) == (2500, 0)
    assert "credit_note.created" in _types(c)


def test_credit_note_by_lines_sums_the_lines_and_limits_each_line(billing):
    c, cus = billing
    inv = _open_invoice(c, cus)
    first, second = c.v1.invoices.line_items.list(inv.id).data
    cn = c.v1.credit_notes.create(params={"invoice": inv.id, "lines": [
        {"type": "invoice_line_item", "invoice_line_item": first.id, "amount": 1000},
        {"type": "custom_line_item", "unit_amount": 250, "quantity": 2, "description": "Late fee waived"},
    ]})
    assert cn.amount == 1500 and [ln.amount for ln in cn.lines.data] == [1000, 500]
    assert cn.lines.data[0].invoice_line_item == first.id
    assert [ln.id for ln in c.v1.credit_notes.line_items.list(cn.id).data] == [ln.id for ln in cn.lines.data]
    with pytest.raises(stripe.InvalidRequestError) as err:  # 5,000 of 6,000 left on that line
        c.v1.credit_notes.create(params={"invoice": inv.id, "lines": [
            {"type": "invoice_line_item", "invoice_line_item": first.id, "amount": 5001}]})
    assert err.value.http_status == 400 and "exceeds what remains creditable" in err.value.user_message
    with pytest.raises(stripe.InvalidRequestError):  # amount disagrees with the lines
        c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 99, "lines": [
            {"type": "invoice_line_item", "invoice_line_item": second.id, "quantity": 1}]})


def test_credit_note_on_paid_invoice_needs_an_exact_split(billing):
    c, cus = billing
    inv = _paid_invoice(c, cus)
    with pytest.raises(stripe.InvalidRequestError) as err:
        c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 3000, "refund_amount": 1000})
    assert err.value.user_message == ("The sum of refunds, credit amount, and out of band amount ($10.00) must "
                                      "equal the credit note post_payment_amount ($30.00).")
    assert c.v1.credit_notes.list(params={"invoice": inv.id}).data == []
    cn = c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 3000, "refund_amount": 1500,
                                          "credit_amount": 1000, "out_of_band_amount": 500})
    assert (cn.type, cn.pre_payment_amount, cn.post_payment_amount, cn.out_of_band_amount) == (
        "post_payment", 0, 3000, 500)
    refund = c.v1.refunds.retrieve(cn.refunds[0].refund)
    assert (refund.amount, refund.status, cn.refunds[0].amount_refunded) == (1500, "succeeded", 1500)
    assert c.v1.charges.retrieve(refund.charge).amount_refunded == 1500
    assert c.v1.customers.retrieve(cus.id).balance == -1000
    assert cn.customer_balance_transaction.startswith("cbtxn_")
    after = c.v1.invoices.retrieve(inv.id)
    assert (after.status, after.amount_due, after.amount_paid) == ("paid", 10000, 10000)
    assert (after.pre_payment_credit_notes_amount, after.post_payment_credit_notes_amount) == (0, 3000)
    assert {"credit_note.created", "refund.created", "charge.refunded"} <= set(_types(c))


def test_credit_note_never_exceeds_the_invoice_total(billing):
    c, cus = billing
    inv = _paid_invoice(c, cus)
    c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 8000, "out_of_band_amount": 8000})
    with pytest.raises(stripe.InvalidRequestError) as err:
        c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 2001, "out_of_band_amount": 2001})
    assert "exceeds what remains creditable" in err.value.user_message
    c.v1.refunds.create(params={"charge": c.v1.charges.list().data[0].id, "amount": 9000})
    with pytest.raises(stripe.InvalidRequestError) as err:  # the refund can't exceed the charge either
        c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 2000, "refund_amount": 2000})
    assert (err.value.code, err.value.param) == ("amount_too_large", "refund_amount")
    assert len(c.v1.credit_notes.list(params={"invoice": inv.id}).data) == 1


def test_credit_note_for_all_that_remains_pays_the_invoice(billing):
    c, cus = billing
    inv = _open_invoice(c, cus)
    c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 2500})
    cn = c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 7500})
    assert (cn.pre_payment_amount, cn.post_payment_amount, cn.number) == (7500, 0, f"{inv.number}-CN-02")
    after = c.v1.invoices.retrieve(inv.id)
    assert (after.status, after.amount_due, after.amount_remaining) == ("paid", 0, 0)
    assert after.pre_payment_credit_notes_amount == 10000
    assert "invoice.paid" in _types(c)


def test_credit_note_after_a_pre_payment_one_is_post_payment(billing):
    c, cus = billing
    inv = _open_invoice(c, cus)
    c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 2500})
    pm = c.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    paid = c.v1.invoices.pay(inv.id, params={"payment_method": pm.id})
    assert (paid.status, paid.amount_paid) == ("paid", 7500)
    assert c.v1.charges.list().data[0].amount == 7500
    cn = c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 7500, "refund_amount": 7500})
    assert (cn.pre_payment_amount, cn.post_payment_amount) == (0, 7500)
    with pytest.raises(stripe.InvalidRequestError):  # 10,000 credited in all
        c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 1, "out_of_band_amount": 1})


def test_credit_note_preview_stores_nothing(billing):
    c, cus = billing
    inv = _open_invoice(c, cus)
    pv = c.v1.credit_notes.preview(params={"invoice": inv.id, "amount": 700})
    assert (pv.amount, pv.pre_payment_amount, pv.status) == (700, 700, "issued")
    assert c.v1.credit_notes.list().data == []
    assert c.v1.invoices.retrieve(inv.id).amount_due == 10000
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.credit_notes.preview(params={"invoice": inv.id, "amount": 10001})


def test_credit_note_void_restores_invoice_and_balance(billing):
    c, cus = billing
    inv = _open_invoice(c, cus)
    cn = c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 2500})
    voided = c.v1.credit_notes.void_credit_note(cn.id)
    assert voided.status == "void" and voided.voided_at
    after = c.v1.invoices.retrieve(inv.id)
    assert (after.amount_due, after.amount_remaining, after.pre_payment_credit_notes_amount) == (10000, 10000, 0)
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.credit_notes.void_credit_note(cn.id)
    paid = _paid_invoice(c, cus, amounts=(2000,))
    credit = c.v1.credit_notes.create(params={"invoice": paid.id, "amount": 800, "credit_amount": 800})
    assert c.v1.customers.retrieve(cus.id).balance == -800
    c.v1.credit_notes.void_credit_note(credit.id)
    assert c.v1.customers.retrieve(cus.id).balance == 0
    assert c.v1.invoices.retrieve(paid.id).post_payment_credit_notes_amount == 0
    refunded = c.v1.credit_notes.create(params={"invoice": paid.id, "amount": 500, "refund_amount": 500})
    with pytest.raises(stripe.InvalidRequestError) as err:
        c.v1.credit_notes.void_credit_note(refunded.id)
    assert "refunds can't be reversed" in err.value.user_message
    types = _types(c)
    assert types.count("credit_note.voided") == 2


def test_credit_note_update_emits_updated(billing):
    c, cus = billing
    inv = _open_invoice(c, cus)
    cn = c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 100})
    c.v1.credit_notes.update(cn.id, params={"memo": "Corrected", "metadata": {"crm": "7"}})
    got = c.v1.credit_notes.retrieve(cn.id)
    assert got.memo == "Corrected" and got.metadata["crm"] == "7"
    ev = c.v1.events.list(params={"type": "credit_note.updated"}).data[0]
    assert ev.data.previous_attributes["memo"] is None


def test_credit_note_refused_on_draft_and_void_invoices(billing):
    c, cus = billing
    draft = c.v1.invoices.create(params={"customer": cus.id})
    c.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": 500, "description": "x"}]})
    with pytest.raises(stripe.InvalidRequestError) as err:
        c.v1.credit_notes.create(params={"invoice": draft.id, "amount": 100})
    assert err.value.code == "invoice_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as err:
        c.v1.credit_notes.create(params={"invoice": draft.id})
    assert err.value.http_status == 400


def test_credit_note_on_partly_paid_open_invoice_splits_pre_and_post(billing):
    c, cus = billing
    inv = _open_invoice(c, cus)
    pm = c.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    part = c.v1.payment_intents.create(params={"amount": 4000, "currency": "usd", "customer": cus.id,
                                               "payment_method": pm.id, "confirm": True})
    partly = c.v1.invoices.attach_payment(inv.id, params={"payment_intent": part.id})
    assert (partly.status, partly.amount_remaining) == ("open", 6000)
    with pytest.raises(stripe.InvalidRequestError) as err:
        c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 8000})
    assert "post_payment_amount ($20.00)" in err.value.user_message
    cn = c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 8000, "out_of_band_amount": 2000})
    assert (cn.type, cn.pre_payment_amount, cn.post_payment_amount) == ("pre_payment", 6000, 2000)
    after = c.v1.invoices.retrieve(inv.id)
    assert (after.status, after.amount_due, after.amount_remaining) == ("paid", 4000, 0)
    assert (after.pre_payment_credit_notes_amount, after.post_payment_credit_notes_amount) == (6000, 2000)
