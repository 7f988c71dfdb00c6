"""Invoice items, through stripe-python over HTTP."""

from decimal import Decimal

import pytest
import stripe

from .spec_check import key_problems



def _events(client, limit=100):
    return list(reversed(client.v1.events.list(params={"limit": limit}).data))


@pytest.fixture
def billing(sandbox):
    c = sandbox.client()
    cus = c.v1.customers.create(params={"email": "items@example.test", "name": "Items Ltd"})
    return c, cus


def test_invoiceitem_create_pending_with_amount(billing):
    c, cus = billing
    ii = c.v1.invoice_items.create(params={"customer": cus.id, "amount": 2500, "currency": "usd",
                                           "description": "Setup fee", "metadata": {"crm": "42"}})
    assert ii.id.startswith("ii_") and ii.object == "invoiceitem"
    assert (ii.amount, ii.currency, ii.invoice, ii.quantity, ii.discountable) == (2500, "usd", None, 1, True)
    assert ii.pricing.unit_amount_decimal == Decimal("2500") and "price_details" not in ii.pricing
    assert key_problems(ii.to_dict(), "invoiceitem") == []
    assert [e.type for e in _events(c)][-1] == "invoiceitem.created"


def test_invoiceitem_price_data_and_quantity_compute_amount(billing):
    c, cus = billing
    prod = c.v1.products.create(params={"name": "Hours"})
    ii = c.v1.invoice_items.create(params={
        "customer": cus.id, "quantity": 3,
        "price_data": {"currency": "eur", "product": prod.id, "unit_amount_decimal": "1033.5"},
    })
    # 3 x 1033.5 = 3100.5, rounded half up.
    assert (ii.amount, ii.currency, ii.quantity, ii.quantity_decimal) == (3101, "eur", 3, Decimal("3"))
    assert ii.pricing.unit_amount_decimal == Decimal("1033.5")
    price = c.v1.prices.retrieve(ii.pricing.price_details.price)
    assert (price.active, price.product, price.unit_amount_decimal) == (False, prod.id, Decimal("1033.5"))
    assert ii.description == "Hours"


def test_invoiceitem_pricing_price_uses_one_time_price(billing):
    c, cus = billing
    prod = c.v1.products.create(params={"name": "Audit"})
    price = c.v1.prices.create(params={"product": prod.id, "currency": "usd", "unit_amount": 15000})
    ii = c.v1.invoice_items.create(params={"customer": cus.id, "pricing": {"price": price.id}, "quantity": 2})
    assert ii.amount == 30000
    assert ii.pricing.price_details.to_dict() == {"price": price.id, "product": prod.id}
    recurring = c.v1.prices.create(params={"product": prod.id, "currency": "usd", "unit_amount": 100,
                                           "recurring": {"interval": "month"}})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoice_items.create(params={"customer": cus.id, "pricing": {"price": recurring.id}})
    assert exc.value.param == "pricing[price]"


def test_invoiceitem_legacy_price_param_is_unknown(billing):
    c, cus = billing
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoice_items.create(params={"customer": cus.id, "price": "price_123"})
    assert exc.value.code == "parameter_unknown"


def test_invoiceitem_pricing_sources_are_exclusive_and_required(billing):
    c, cus = billing
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoice_items.create(params={"customer": cus.id, "amount": 100, "currency": "usd",
                                          "unit_amount_decimal": "100"})
    assert exc.value.code == "parameters_exclusive"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoice_items.create(params={"customer": cus.id, "currency": "usd"})
    assert exc.value.code == "parameter_missing"


def test_invoiceitem_missing_customer_and_foreign_tax_rate(billing, sandbox):
    c, cus = billing
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoice_items.create(params={"amount": 100, "currency": "usd"})
    assert exc.value.param == "customer"
    foreign = sandbox.client().v1.tax_rates.create(params={"display_name": "X", "percentage": 5, "inclusive": False})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoice_items.create(params={"customer": cus.id, "amount": 100, "currency": "usd",
                                          "tax_rates": [foreign.id]})
    assert exc.value.code == "resource_missing" and exc.value.param == "tax_rates[0]"


def test_invoiceitem_archived_tax_rate_cannot_be_applied(billing):
    c, cus = billing
    rate = c.v1.tax_rates.create(params={"display_name": "Old", "percentage": 7, "inclusive": False,
                                         "active": False})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoice_items.create(params={"customer": cus.id, "amount": 100, "currency": "usd",
                                          "tax_rates": [rate.id]})
    assert exc.value.param == "tax_rates[0]"


def test_invoiceitem_attached_to_draft_updates_invoice(billing):
    c, cus = billing
    rate = c.v1.tax_rates.create(params={"display_name": "VAT", "percentage": 20, "inclusive": False})
    inv = c.v1.invoices.create(params={"customer": cus.id})
    ii = c.v1.invoice_items.create(params={"invoice": inv.id, "amount": 1000, "tax_rates": [rate.id]})
    assert (ii.invoice, ii.customer, ii.currency) == (inv.id, cus.id, "usd")
    assert ii.tax_rates[0].id == rate.id
    inv = c.v1.invoices.retrieve(inv.id)
    assert (inv.subtotal, inv.total, inv.amount_due) == (1000, 1200, 1200)
    line = inv.lines.data[0]
    assert line.parent.invoice_item_details.invoice_item == ii.id
    updated = c.v1.invoice_items.update(ii.id, params={"quantity": 2, "metadata": {"a": "b"}})
    # An amount-priced item keeps its unit amount when its quantity changes.
    assert (updated.amount, updated.quantity) == (2000, 2)
    inv = c.v1.invoices.retrieve(inv.id)
    assert (inv.subtotal, inv.total) == (2000, 2400)
    types = [e.type for e in _events(c)]
    assert types[-4:] == ["invoiceitem.created", "invoice.updated", "invoiceitem.updated", "invoice.updated"]
    item_event = c.v1.events.list(params={"type": "invoiceitem.updated"}).data[0]
    prev = item_event.data.previous_attributes.to_dict()
    assert prev["amount"] == 1000 and prev["quantity"] == 1 and prev["metadata"] == {"a": None}


def test_invoiceitem_currency_must_match_invoice(billing):
    c, cus = billing
    inv = c.v1.invoices.create(params={"customer": cus.id, "currency": "eur"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoice_items.create(params={"invoice": inv.id, "amount": 100, "currency": "usd"})
    assert exc.value.param == "currency"


def test_invoiceitem_cannot_join_or_change_finalized_invoice(billing):
    c, cus = billing
    inv = c.v1.invoices.create(params={"customer": cus.id})
    ii = c.v1.invoice_items.create(params={"invoice": inv.id, "amount": 100})
    c.v1.invoices.finalize_invoice(inv.id)
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.invoice_items.create(params={"invoice": inv.id, "amount": 100})
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.invoice_items.update(ii.id, params={"amount": 5})
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.invoice_items.delete(ii.id)
    assert c.v1.invoice_items.retrieve(ii.id).amount == 100


def test_invoiceitem_delete_removes_line_and_emits(billing):
    c, cus = billing
    inv = c.v1.invoices.create(params={"customer": cus.id})
    keep = c.v1.invoice_items.create(params={"invoice": inv.id, "amount": 300})
    gone = c.v1.invoice_items.create(params={"invoice": inv.id, "amount": 700})
    stub = c.v1.invoice_items.delete(gone.id)
    assert stub.deleted is True and stub.id == gone.id
    inv = c.v1.invoices.retrieve(inv.id)
    assert [ln.parent.invoice_item_details.invoice_item for ln in inv.lines.data] == [keep.id]
    assert inv.total == 300
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoice_items.retrieve(gone.id)
    assert exc.value.http_status == 404
    assert [e.type for e in _events(c)][-2:] == ["invoiceitem.deleted", "invoice.updated"]


def test_invoiceitem_list_filters_pending_invoice_customer(billing):
    c, cus = billing
    other = c.v1.customers.create()
    inv = c.v1.invoices.create(params={"customer": cus.id})
    on_invoice = c.v1.invoice_items.create(params={"invoice": inv.id, "amount": 1})
    pending = c.v1.invoice_items.create(params={"customer": cus.id, "amount": 2, "currency": "usd"})
    elsewhere = c.v1.invoice_items.create(params={"customer": other.id, "amount": 3, "currency": "usd"})
    ids = lambda **p: [x.id for x in c.v1.invoice_items.list(params=p).data]  # noqa: E731
    assert ids() == [elsewhere.id, pending.id, on_invoice.id]
    assert ids(pending=True) == [elsewhere.id, pending.id]
    assert ids(pending=False) == [on_invoice.id]
    assert ids(invoice=inv.id) == [on_invoice.id]
    assert ids(customer=cus.id) == [pending.id, on_invoice.id]


def test_invoiceitem_pending_items_join_invoice_on_include(billing):
    c, cus = billing
    first = c.v1.invoice_items.create(params={"customer": cus.id, "amount": 100, "currency": "usd"})
    second = c.v1.invoice_items.create(params={"customer": cus.id, "amount": 200, "currency": "usd"})
    euro = c.v1.invoice_items.create(params={"customer": cus.id, "amount": 900, "currency": "eur"})
    excluded = c.v1.invoices.create(params={"customer": cus.id})
    assert excluded.lines.data == [] and excluded.total == 0
    inv = c.v1.invoices.create(params={"customer": cus.id, "pending_invoice_items_behavior": "include"})
    assert [ln.parent.invoice_item_details.invoice_item for ln in inv.lines.data] == [first.id, second.id]
    assert inv.total == 300
    assert c.v1.invoice_items.retrieve(euro.id).invoice is None
    updated = c.v1.events.list(params={"type": "invoiceitem.updated"}).data
    assert {e.data.object.id for e in updated} == {first.id, second.id}
    assert all(e.data.previous_attributes.invoice is None for e in updated)


def test_invoiceitem_line_discount_creates_discount_object(billing):
    c, cus = billing
    coupon = c.v1.coupons.create(params={"percent_off": 50})
    ii = c.v1.invoice_items.create(params={"customer": cus.id, "amount": 1000, "currency": "usd",
                                           "discounts": [{"coupon": coupon.id}]})
    assert len(ii.discounts) == 1 and ii.discounts[0].startswith("di_")
    inv = c.v1.invoices.create(params={"customer": cus.id, "pending_invoice_items_behavior": "include",
                                       "expand": ["lines.data.discounts"]})
    discount = inv.lines.data[0].discounts[0]
    assert discount.object == "discount" and discount.invoice_item == ii.id
    assert discount.source.coupon == coupon.id
    assert inv.total == 500 and inv.subtotal == 500
    assert key_problems(discount.to_dict(), "discount") == []
