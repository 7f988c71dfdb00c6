"""Tax rates and coupons, through stripe-python over HTTP."""

import pytest
import stripe

from .spec_check import key_problems



def _event_types(client):
    return [e.type for e in reversed(client.v1.events.list(params={"limit": 100}).data)]


def test_tax_rate_create_retrieve_and_shape(sandbox):
    c = sandbox.client()
    rate = c.v1.tax_rates.create(params={
        "display_name": "VAT", "percentage": 19.0, "inclusive": False, "country": "DE",
        "jurisdiction": "DE", "description": "VAT Germany", "metadata": {"k": "v"},
    })
    assert rate.id.startswith("txr_")
    assert (rate.percentage, rate.inclusive, rate.active, rate.country) == (19.0, False, True, "DE")
    assert rate.metadata.to_dict() == {"k": "v"}
    assert key_problems(rate.to_dict(), "tax_rate") == []
    assert c.v1.tax_rates.retrieve(rate.id).display_name == "VAT"
    assert _event_types(c) == ["tax_rate.created"]


def test_tax_rate_update_active_and_metadata_emits_previous(sandbox):
    c = sandbox.client()
    rate = c.v1.tax_rates.create(params={"display_name": "GST", "percentage": 10, "inclusive": True})
    updated = c.v1.tax_rates.update(rate.id, params={"active": False, "metadata": {"a": "1"},
                                                     "display_name": "GST 10"})
    assert (updated.active, updated.display_name, updated.metadata.to_dict()) == (False, "GST 10", {"a": "1"})
    event = c.v1.events.list(params={"type": "tax_rate.updated"}).data[0]
    assert event.data.previous_attributes.to_dict() == {
        "active": True, "display_name": "GST", "metadata": {"a": None},
    }


def test_tax_rate_percentage_and_inclusive_are_immutable(sandbox):
    c = sandbox.client()
    rate = c.v1.tax_rates.create(params={"display_name": "VAT", "percentage": 20, "inclusive": False})
    for param in ({"percentage": 21}, {"inclusive": True}):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            c.v1.tax_rates.update(rate.id, params=param)
        assert exc.value.code == "parameter_unknown"


def test_tax_rate_create_validates_percentage_and_required_params(sandbox):
    c = sandbox.client()
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.tax_rates.create(params={"display_name": "X", "percentage": 120, "inclusive": False})
    assert exc.value.param == "percentage"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.tax_rates.create(params={"display_name": "X", "percentage": 5})
    assert exc.value.code == "parameter_missing" and exc.value.param == "inclusive"


def test_tax_rate_list_filters_active_and_inclusive(sandbox):
    c = sandbox.client()
    a = c.v1.tax_rates.create(params={"display_name": "A", "percentage": 5, "inclusive": True})
    b = c.v1.tax_rates.create(params={"display_name": "B", "percentage": 5, "inclusive": False})
    z = c.v1.tax_rates.create(params={"display_name": "Z", "percentage": 5, "inclusive": False, "active": False})
    assert [r.id for r in c.v1.tax_rates.list().data] == [z.id, b.id, a.id]
    assert [r.id for r in c.v1.tax_rates.list(params={"active": True}).data] == [b.id, a.id]
    assert [r.id for r in c.v1.tax_rates.list(params={"inclusive": True}).data] == [a.id]


def test_tax_rate_is_scoped_to_account(sandbox):
    rate = sandbox.client().v1.tax_rates.create(params={"display_name": "A", "percentage": 5, "inclusive": True})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        sandbox.client().v1.tax_rates.retrieve(rate.id)
    assert exc.value.http_status == 404


def test_coupon_percent_off_create_retrieve_update_delete(sandbox):
    c = sandbox.client()
    coupon = c.v1.coupons.create(params={"percent_off": 25.5, "duration": "forever", "name": "Quarter",
                                         "id": "QUARTER", "metadata": {"k": "v"}})
    assert (coupon.id, coupon.percent_off, coupon.amount_off, coupon.valid) == ("QUARTER", 25.5, None, True)
    assert key_problems(coupon.to_dict(), "coupon") == []
    renamed = c.v1.coupons.update("QUARTER", params={"name": "Quarter off"})
    assert renamed.name == "Quarter off"
    deleted = c.v1.coupons.delete("QUARTER")
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.coupons.retrieve("QUARTER")
    assert exc.value.http_status == 404
    assert _event_types(c) == ["coupon.created", "coupon.updated", "coupon.deleted"]


def test_coupon_amount_off_needs_currency_and_one_kind(sandbox):
    c = sandbox.client()
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.coupons.create(params={"amount_off": 500})
    assert exc.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.coupons.create(params={"amount_off": 500, "currency": "usd", "percent_off": 5})
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.coupons.create(params={"duration": "once"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.coupons.create(params={"percent_off": 5, "duration": "repeating"})
    assert exc.value.param == "duration_in_months"
    coupon = c.v1.coupons.create(params={"amount_off": 500, "currency": "EUR"})
    assert (coupon.amount_off, coupon.currency, coupon.duration) == (500, "eur", "once")


def test_coupon_terms_cannot_change_after_creation(sandbox):
    c = sandbox.client()
    coupon = c.v1.coupons.create(params={"percent_off": 10})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.coupons.update(coupon.id, params={"percent_off": 20})
    assert exc.value.code == "parameter_unknown"


def test_coupon_duplicate_id_is_refused(sandbox):
    c = sandbox.client()
    c.v1.coupons.create(params={"percent_off": 10, "id": "DUP"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.coupons.create(params={"percent_off": 10, "id": "DUP"})
    assert exc.value.code == "resource_already_exists"


def test_coupon_max_redemptions_ends_validity(sandbox):
    c = sandbox.client()
    cus = c.v1.customers.create()
    coupon = c.v1.coupons.create(params={"percent_off": 10, "max_redemptions": 1})
    c.v1.invoices.create(params={"customer": cus.id, "discounts": [{"coupon": coupon.id}]})
    again = c.v1.coupons.retrieve(coupon.id)
    assert (again.times_redeemed, again.valid) == (1, False)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        c.v1.invoices.create(params={"customer": cus.id, "discounts": [{"coupon": coupon.id}]})
    assert "Coupon expired" in exc.value.user_message
    assert exc.value.param == "discounts[0][coupon]"


def test_coupon_list_pages_newest_first(sandbox):
    c = sandbox.client()
    ids = [c.v1.coupons.create(params={"percent_off": 5 + i}).id for i in range(3)]
    page = c.v1.coupons.list(params={"limit": 2})
    assert [x.id for x in page.data] == ids[::-1][:2] and page.has_more
    rest = c.v1.coupons.list(params={"starting_after": page.data[-1].id})
    assert [x.id for x in rest.data] == [ids[0]]
