"""Stripe's wire conventions: auth, form encoding, errors, headers, ids, metadata."""

import base64
import json
import re

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from stripe_sandbox import forms
from stripe_sandbox.errors import StripeError
from stripe_sandbox.testing import http_request

def raw_request(base, method, path, *, key=None, body=None, headers=None, basic=False):
    """A request stripe-python would not make, answered as (status, headers, JSON)."""
    h = dict(headers or {})
    if key and basic:
        h["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    elif key:
        h["Authorization"] = f"Bearer {key}"
    if body is not None:
        h.setdefault("Content-Type", "application/x-www-form-urlencoded")
    status, answer_headers, answer = http_request(method, base + path, body=body, headers=h)
    return status, answer_headers, json.loads(answer or b"null")


def test_auth_missing_key_is_401(sandbox):
    status, _, body = raw_request(sandbox.base_url, "GET", "/v1/customers")
    assert status == 401
    assert "You did not provide an API key" in body["error"]["message"]


def test_auth_invalid_key_is_authentication_error(sandbox):
    client = sandbox.client("sk_nope_123")
    with pytest.raises(stripe.AuthenticationError) as exc:
        client.v1.customers.list()
    assert exc.value.http_status == 401
    assert "Invalid API Key provided" in exc.value.user_message


def test_auth_live_key_is_refused(sandbox):
    live_key = "sk" + "_live_" + "0123456789abcdef"  # never spelled out in the repo
    with pytest.raises(stripe.AuthenticationError) as exc:
        sandbox.client(live_key).v1.customers.list()
    assert "test mode only" in exc.value.user_message
    assert live_key not in exc.value.user_message


def test_auth_basic_auth_with_key_as_user(sandbox):
    key = "sk_test_basicauth1234"
    status, _, body = raw_request(sandbox.base_url, "POST", "/v1/customers", key=key, basic=True,
                                  body="email=basic%40example.test")
    assert status == 200
    listed = sandbox.client(key).v1.customers.list()
    assert [c.id for c in listed.data] == [body["id"]]


def test_auth_each_key_is_its_own_platform(sandbox):
    a, b = sandbox.client(), sandbox.client()
    cus = a.v1.customers.create(params={"email": "a@example.test"})
    assert a.v1.accounts.retrieve_current().id != b.v1.accounts.retrieve_current().id
    assert b.v1.customers.list().data == []
    with pytest.raises(stripe.InvalidRequestError) as exc:
        b.v1.customers.retrieve(cus.id)
    assert exc.value.http_status == 404 and exc.value.code == "resource_missing"


def test_forms_decode_nested_brackets():
    raw = "metadata[a]=b&items[0][price]=p1&items[1][price]=p2&expand[]=x&expand[]=y&name=a+b&e="
    assert forms.decode(raw) == {
        "metadata": {"a": "b"},
        "items": {"0": {"price": "p1"}, "1": {"price": "p2"}},
        "expand": ["x", "y"],
        "name": "a b",
        "e": "",
    }


def test_forms_decode_roundtrips_encode():
    params = {"a": {"b": {"c": "1"}}, "l": ["x", "y"], "t": True, "n": 3}
    decoded = forms.decode(forms.encode(params))
    assert decoded == {"a": {"b": {"c": "1"}}, "l": {"0": "x", "1": "y"}, "t": "true", "n": "3"}


@pytest.mark.parametrize("raw", ["a=1&a[b]=2", "a[b]=1&a=2", "a[b=1"])
def test_forms_decode_rejects_conflicts(raw):
    with pytest.raises(StripeError) as exc:
        forms.decode(raw)
    assert exc.value.status == 400


def test_forms_expand_with_empty_brackets_over_http(sandbox):
    key = "sk_test_brackets0001"
    client = sandbox.client(key)
    product = client.v1.products.create(params={"name": "P", "default_price_data": {"currency": "usd", "unit_amount": 5}})
    status, _, body = raw_request(sandbox.base_url, "GET", f"/v1/products/{product.id}?expand[]=default_price", key=key)
    assert status == 200
    assert body["default_price"]["object"] == "price"


def test_errors_have_stripe_shape_and_request_id(sandbox):
    status, headers, body = raw_request(sandbox.base_url, "GET", "/v1/customers/cus_missing", key="sk_test_errs0001")
    assert status == 404
    err = body["error"]
    assert err["type"] == "invalid_request_error"
    assert err["code"] == "resource_missing"
    assert err["param"] == "id"
    assert err["message"] == "No such customer: 'cus_missing'"
    assert err["doc_url"].endswith("/resource-missing")
    assert re.fullmatch(r"req_[A-Za-z0-9]{14}", headers["Request-Id"])
    assert headers["Request-Id"] in err["request_log_url"]


def test_errors_unknown_url_is_404(sandbox):
    status, _, body = raw_request(sandbox.base_url, "GET", "/v1/nothing_here", key="sk_test_errs0002")
    assert status == 404
    assert body["error"]["message"].startswith("Unrecognized request URL (GET: /v1/nothing_here)")


def test_headers_request_id_and_stripe_version_echo(sandbox):
    status, headers, _ = raw_request(sandbox.base_url, "GET", "/v1/customers", key="sk_test_hdrs0001",
                                     headers={"Stripe-Version": "2024-06-20"})
    assert status == 200
    assert headers["Stripe-Version"] == "2024-06-20"
    assert headers["Request-Id"].startswith("req_")
    client = sandbox.client()
    cus = client.v1.customers.create(params={})
    assert cus.last_response.request_id.startswith("req_")
    assert cus.last_response.headers["Stripe-Version"] == client._requestor._options.stripe_version


def test_ids_have_stripe_prefixes(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={})
    prod = client.v1.products.create(params={"name": "P"})
    price = client.v1.prices.create(params={"product": prod.id, "currency": "usd", "unit_amount": 100})
    we = client.v1.webhook_endpoints.create(params={"url": "http://127.0.0.1:9/x", "enabled_events": ["*"]})
    evt = client.v1.events.list().data[0]
    acct = client.v1.accounts.retrieve_current()
    for obj, prefix in ((cus, "cus_"), (prod, "prod_"), (price, "price_"), (we, "we_"), (evt, "evt_"), (acct, "acct_")):
        assert obj.id.startswith(prefix)
        assert re.fullmatch(r"[A-Za-z0-9]{14,24}", obj.id[len(prefix):])
    assert len({client.v1.customers.create(params={}).id for _ in range(20)}) == 20


def test_metadata_is_set_merged_and_unset(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={"metadata": {"a": "1", "b": "2"}})
    assert cus.metadata.to_dict() == {"a": "1", "b": "2"}
    cus = client.v1.customers.update(cus.id, params={"metadata": {"b": "", "c": "3"}})
    assert cus.metadata.to_dict() == {"a": "1", "c": "3"}
    cus = client.v1.customers.update(cus.id, params={"metadata": ""})
    assert cus.metadata.to_dict() == {}


@pytest.mark.parametrize(
    ("metadata", "param"),
    [
        ({f"k{i}": "v" for i in range(51)}, "metadata"),
        ({"k" * 41: "v"}, "metadata[" + "k" * 41 + "]"),
        ({"k": "v" * 501}, "metadata[k]"),
    ],
    ids=["too-many-keys", "key-too-long", "value-too-long"],
)
def test_metadata_limits(sandbox, metadata, param):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        sandbox.client().v1.customers.create(params={"metadata": metadata})
    assert exc.value.http_status == 400
    assert exc.value.param == param


def test_metadata_limit_counts_keys_after_merge(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={"metadata": {f"a{i}": "v" for i in range(50)}})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(cus.id, params={"metadata": {"one_more": "v"}})
    ok = client.v1.customers.update(cus.id, params={"metadata": {"a0": "", "one_more": "v"}})
    assert len(ok.metadata.to_dict()) == 50


# Characters that need escaping in forms (space, %, +, /, non-ASCII) but no brackets.
_keys = st.text(alphabet="ab_Z09 .-%+/é€", min_size=1, max_size=6)
_values = st.text(alphabet="ab_Z09 .-%+/é€&=[]", max_size=8)
_forms = st.recursive(_values, lambda inner: st.dictionaries(_keys, inner, min_size=1, max_size=3), max_leaves=8)


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(_keys, _forms, max_size=5))
def test_forms_decode_inverts_encode(params):
    assert forms.decode(forms.encode(params)) == params
