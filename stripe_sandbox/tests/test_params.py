"""Parameters are checked against stripe-python's own generated types."""

import pytest
import stripe

from stripe_sandbox.errors import StripeError
from stripe_sandbox.schema import validate


def error_of(client_call):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client_call()
    return exc.value


def test_params_unknown_top_level(sandbox):
    err = error_of(lambda: sandbox.client().v1.customers.create(params={"emial": "x@example.test"}))
    assert (err.http_status, err.code, err.param) == (400, "parameter_unknown", "emial")
    assert err.user_message == "Received unknown parameter: emial"


def test_params_unknown_nested_in_list(sandbox):
    client = sandbox.client()
    product = client.v1.products.create(params={"name": "P"})
    err = error_of(lambda: client.v1.products.create(
        params={"name": "Q", "marketing_features": [{"name": "a"}, {"name": "b", "foo": "x"}]}))
    assert (err.code, err.param) == ("parameter_unknown", "marketing_features[1][foo]")
    err = error_of(lambda: client.v1.prices.create(
        params={"product": product.id, "currency": "usd", "unit_amount": 1, "recurring": {"interval": "month", "bogus": 1}}))
    assert err.param == "recurring[bogus]"


def test_params_request_options_are_not_body_params(sandbox):
    # The SDK's TypedDicts include RequestOptions keys; on the wire they are headers.
    err = error_of(lambda: sandbox.client().v1.customers.create(params={"stripe_account": "acct_x"}))
    assert (err.code, err.param) == ("parameter_unknown", "stripe_account")


def test_params_missing_required(sandbox):
    client = sandbox.client()
    err = error_of(lambda: client.v1.products.create(params={"description": "no name"}))
    assert (err.code, err.param) == ("parameter_missing", "name")
    assert err.user_message == "Missing required param: name."


def test_params_missing_required_nested(sandbox):
    client = sandbox.client()
    product = client.v1.products.create(params={"name": "P"})
    err = error_of(lambda: client.v1.prices.create(
        params={"product": product.id, "currency": "usd", "unit_amount": 1, "recurring": {"interval_count": 2}}))
    assert (err.code, err.param) == ("parameter_missing", "recurring[interval]")
    err = error_of(lambda: client.v1.customers.create(params={"tax_id_data": [{"type": "eu_vat"}]}))
    assert (err.code, err.param) == ("parameter_missing", "tax_id_data[0][value]")


def test_params_invalid_enum(sandbox):
    client = sandbox.client()
    product = client.v1.products.create(params={"name": "P"})
    err = error_of(lambda: client.v1.prices.create(
        params={"product": product.id, "currency": "usd", "unit_amount": 1, "tax_behavior": "sometimes"}))
    assert err.param == "tax_behavior"
    assert err.code.startswith("parameter_invalid")
    assert "exclusive, inclusive, or unspecified" in err.user_message


def test_params_invalid_integer(sandbox):
    err = error_of(lambda: sandbox.client().v1.customers.create(params={"balance": "lots"}))
    assert (err.code, err.param) == ("parameter_invalid_integer", "balance")


def test_params_empty_string_only_where_unsettable(sandbox):
    client = sandbox.client()
    err = error_of(lambda: client.v1.customers.create(params={"email": ""}))
    assert (err.code, err.param) == ("parameter_invalid_empty", "email")
    cus = client.v1.customers.create(params={"address": {"city": "Oslo"}})
    assert cus.address.city == "Oslo"
    assert client.v1.customers.update(cus.id, params={"address": ""}).address is None


def test_params_price_amount_is_immutable(sandbox):
    client = sandbox.client()
    price = client.v1.prices.create(params={"product_data": {"name": "P"}, "currency": "usd", "unit_amount": 100})
    err = error_of(lambda: client.v1.prices.update(price.id, params={"unit_amount": 200}))
    assert (err.code, err.param) == ("parameter_unknown", "unit_amount")


def test_params_coerces_form_strings_to_declared_types():
    out = validate(stripe.params.PriceListParams, {
        "active": "false", "limit": "3", "lookup_keys": {"1": "b", "0": "a"}, "created": {"gte": "10"},
    })
    assert out == {"active": False, "limit": 3, "lookup_keys": ["a", "b"], "created": {"gte": 10}}
    assert validate(stripe.params.PriceListParams, {"created": "7"}) == {"created": 7}


def test_params_list_needs_integer_indexes():
    with pytest.raises(StripeError) as exc:
        validate(stripe.params.PriceListParams, {"lookup_keys": {"a": "x"}})
    assert exc.value.param == "lookup_keys"


def test_params_metadata_keys_may_look_like_indexes():
    out = validate(stripe.params.CustomerCreateParams, {"metadata": {"0": "zero", "1": ""}})
    assert out == {"metadata": {"0": "zero", "1": ""}}
