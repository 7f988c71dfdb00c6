"""Customers, products, prices and the account, with Stripe's rules."""

from decimal import Decimal

import pytest
import stripe


def test_customers_crud(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={
        "email": "ada@example.test", "name": "Ada", "address": {"country": "GB", "line1": "1 Road"},
        "invoice_settings": {"footer": "Thanks"}, "preferred_locales": ["en"],
        "tax_id_data": [{"type": "eu_vat", "value": "DE123456789"}],
        "expand": ["tax_ids"],  # includable: sent only when asked for
    })
    assert cus.object == "customer" and cus.livemode is False
    assert cus.address.country == "GB" and cus.address.city is None
    assert cus.invoice_settings.footer == "Thanks"
    assert cus.invoice_settings.default_payment_method is None
    assert cus.balance == 0 and cus.tax_exempt == "none" and cus.next_invoice_sequence == 1
    tax_id = cus.tax_ids.data[0]
    assert tax_id.id.startswith("txi_") and tax_id.country == "DE" and tax_id.customer == cus.id
    assert client.v1.customers.retrieve(cus.id).email == "ada@example.test"
    updated = client.v1.customers.update(cus.id, params={"name": "Ada L.", "invoice_settings": {"footer": "Ta"}})
    assert updated.name == "Ada L." and updated.invoice_settings.footer == "Ta"
    deleted = client.v1.customers.delete(cus.id)
    assert deleted.to_dict() == {"id": cus.id, "object": "customer", "deleted": True}
    # Stripe answers the deleted stub on retrieve, and 404 on update.
    assert client.v1.customers.retrieve(cus.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.customers.update(cus.id, params={"name": "x"})
    assert exc.value.http_status == 404


def test_customers_default_payment_method_must_be_attached(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.customers.update(cus.id, params={"invoice_settings": {"default_payment_method": "pm_nope"}})
    assert exc.value.param == "invoice_settings[default_payment_method]"


def test_customers_update_without_change_emits_nothing(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={"name": "Same"})
    client.v1.customers.update(cus.id, params={"name": "Same"})
    assert [e.type for e in client.v1.events.list().data] == ["customer.created"]


def test_products_create_with_default_price_and_archive(sandbox):
    client = sandbox.client()
    product = client.v1.products.create(params={
        "name": "Consulting", "default_price_data": {"currency": "eur", "unit_amount": 15000}, "metadata": {"sku": "C1"},
    })
    assert product.type == "service" and product.active is True
    price = client.v1.prices.retrieve(product.default_price)
    assert (price.product, price.currency, price.unit_amount) == (product.id, "eur", 15000)
    assert price.unit_amount_decimal == Decimal("15000")  # the SDK reads decimal strings as Decimal
    archived = client.v1.products.update(product.id, params={"active": False})
    assert archived.active is False and archived.updated >= product.updated
    assert client.v1.products.list(params={"active": True}).data == []
    assert [p.id for p in client.v1.products.list(params={"ids": [product.id, "prod_x"]}).data] == [product.id]


def test_products_delete_only_without_prices(sandbox):
    client = sandbox.client()
    bare = client.v1.products.create(params={"name": "Bare"})
    priced = client.v1.products.create(params={"name": "Priced", "default_price_data": {"currency": "usd", "unit_amount": 1}})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.products.delete(priced.id)
    assert "cannot be deleted" in exc.value.user_message
    assert client.v1.products.delete(bare.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.products.retrieve(bare.id)
    assert exc.value.http_status == 404


def test_products_custom_id_and_default_price_rules(sandbox):
    client = sandbox.client()
    product = client.v1.products.create(params={"id": "prod_custom_1", "name": "Custom"})
    assert product.id == "prod_custom_1"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.products.create(params={"id": "prod_custom_1", "name": "Again"})
    other = client.v1.products.create(params={"name": "Other", "default_price_data": {"currency": "usd", "unit_amount": 1}})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.products.update(product.id, params={"default_price": other.default_price})
    assert exc.value.param == "default_price"
    mine = client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 9})
    assert client.v1.products.update(product.id, params={"default_price": mine.id}).default_price == mine.id


def test_prices_decimal_amounts_and_recurring(sandbox):
    client = sandbox.client()
    product = client.v1.products.create(params={"name": "P"})
    frac = client.v1.prices.create(params={"product": product.id, "currency": "USD", "unit_amount_decimal": "12.5"})
    assert (frac.currency, frac.unit_amount, frac.unit_amount_decimal) == ("usd", None, Decimal("12.5"))
    whole = client.v1.prices.create(params={"product": product.id, "currency": "jpy", "unit_amount_decimal": "500"})
    assert whole.unit_amount == 500
    monthly = client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 1000,
                                              "recurring": {"interval": "month"}})
    assert monthly.type == "recurring" and monthly.recurring.interval_count == 1
    assert monthly.recurring.usage_type == "licensed" and frac.type == "one_time"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.prices.create(params={"product": product.id, "currency": "usd"})
    assert exc.value.code == "parameter_missing"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.prices.create(params={"product": "prod_missing", "currency": "usd", "unit_amount": 1})
    assert (exc.value.http_status, exc.value.code, exc.value.param) == (400, "resource_missing", "product")


def test_prices_lookup_keys_unique_unless_transferred(sandbox):
    client = sandbox.client()
    product = client.v1.products.create(params={"name": "P"})
    first = client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 1, "lookup_key": "std"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 2, "lookup_key": "std"})
    assert exc.value.param == "lookup_key"
    second = client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 2,
                                             "lookup_key": "std", "transfer_lookup_key": True})
    assert client.v1.prices.retrieve(first.id).lookup_key is None
    found = client.v1.prices.list(params={"lookup_keys": ["std"]})
    assert [p.id for p in found.data] == [second.id]
    # The same key is free in another platform.
    sandbox.client().v1.prices.create(params={"product_data": {"name": "Q"}, "currency": "usd", "unit_amount": 1,
                                              "lookup_key": "std"})


def test_prices_update_and_filters(sandbox):
    client = sandbox.client()
    product = client.v1.products.create(params={"name": "P"})
    usd = client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 1})
    eur = client.v1.prices.create(params={"product": product.id, "currency": "eur", "unit_amount": 1,
                                          "tax_behavior": "exclusive"})
    client.v1.prices.update(usd.id, params={"active": False, "nickname": "old", "metadata": {"v": "1"}})
    assert [p.id for p in client.v1.prices.list(params={"active": True}).data] == [eur.id]
    assert [p.id for p in client.v1.prices.list(params={"currency": "usd"}).data] == [usd.id]
    assert len(client.v1.prices.list(params={"product": product.id}).data) == 2
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.update(eur.id, params={"tax_behavior": "inclusive"})


def test_failed_request_changes_nothing(sandbox):
    # default_price_data is checked after the product is written: the failure
    # must take the product back out.
    client = sandbox.client()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.products.create(params={"name": "Half", "default_price_data": {"currency": "usd"}})
    assert client.v1.products.list().data == []
    assert client.v1.events.list().data == []


def test_account_retrieve_platform_and_connected(sandbox):
    key = "sk_test_accountinfo01"
    client = sandbox.client(key)
    platform = client.v1.accounts.retrieve_current()
    assert platform.object == "account" and platform.type == "standard"
    assert platform.charges_enabled is True and platform.country == "US" and platform.default_currency == "usd"
    acct = sandbox.connect_account(key, "shop@example.test", business_name="Shop Ltd")
    connected = client.v1.accounts.retrieve_current(options={"stripe_account": acct})
    assert connected.id == acct and connected.email == "shop@example.test"
    assert connected.business_profile.name == "Shop Ltd"
    assert connected.settings.dashboard.display_name == "Shop Ltd"
    assert client.v1.accounts.retrieve(acct).id == acct


def test_customer_tax_ids_create_list_delete(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={"name": "Acme", "tax_id_data": [{"type": "eu_vat", "value": "DE123456789"}]})
    added = client.v1.customers.tax_ids.create(cus.id, params={"type": "gb_vat", "value": "GB123456789"})
    assert added.id.startswith("txi_") and added.country == "GB" and added.customer == cus.id
    listed = client.v1.customers.tax_ids.list(cus.id)
    assert [t.value for t in listed.data] == ["GB123456789", "DE123456789"]
    first = listed.data[1].id
    assert client.v1.customers.tax_ids.delete(cus.id, first).deleted is True
    again = client.v1.customers.retrieve(cus.id, params={"expand": ["tax_ids"]})
    assert [t.value for t in again.tax_ids.data] == ["GB123456789"]
    import stripe
    try:
        client.v1.customers.tax_ids.retrieve(cus.id, first)
        raise AssertionError("deleted tax id still retrievable")
    except stripe.InvalidRequestError as exc:
        assert exc.http_status == 404
