"""The import's listing (gateway/listing.py): pages read from the answer's JSON through
stripe-python's raw request are the same plain dicts the SDK's objects gave, with the
same parameter encoding, and go through the same limiter, retries and error mapping."""
import pytest

from stripe_integration.gateway import request_ids
from stripe_integration.gateway.client import AccessRevoked, AuthenticationFailed, Gateway, NotFound, RateLimited
from stripe_integration.gateway.types import _plain
from stripe_integration.tests.import_fixtures import account_with_history


@pytest.fixture
def listed(stripe_env):
    account = account_with_history(stripe_env, "listing@example.test", customers=3, invoices=12)
    return Gateway.from_settings(), account


def _sdk_page(gw, account, resource, params):
    """The page as the SDK's objects made plain (what list_page returned before)."""
    service = getattr(gw._client.v1, resource)
    page = gw._call(service.list, params=params, options=gw._options(account))
    return [_plain(obj) for obj in page.data], bool(page.has_more)


@pytest.mark.parametrize("resource, params", [
    ("customers", {}),
    ("invoices", {}),
    ("products", {"expand": ["data.default_price"]}),
    ("payment_intents", {"expand": ["data.latest_charge.balance_transaction"]}),
    ("invoice_payments", {}),
])
def test_listed_page_equals_the_sdk_objects_made_plain(listed, resource, params):
    gw, account = listed
    raw = gw.list_page(account=account, resource=resource, params=params, limit=5)
    assert raw == _sdk_page(gw, account, resource, {**params, "limit": 5})
    objects, has_more = raw
    assert objects and all(type(o) is dict for o in objects)
    after = gw.list_page(account=account, resource=resource, params=params, limit=5, starting_after=objects[-1]["id"])
    assert after == _sdk_page(gw, account, resource, {**params, "limit": 5, "starting_after": objects[-1]["id"]})
    assert not {o["id"] for o in objects} & {o["id"] for o in after[0]}


def test_nested_parameters_are_encoded_as_the_sdk_does(listed):
    gw, account = listed
    products, _ = gw.list_page(account=account, resource="products", params={"expand": ["data.default_price"]})
    assert products and all(isinstance(p["default_price"], dict) for p in products if p.get("default_price"))
    assert any(p.get("default_price") for p in products)
    newest = gw.list_page(account=account, resource="invoices", limit=1)[0][0]["created"]
    later, has_more = gw.list_page(account=account, resource="invoices", params={"created": {"gte": newest + 1}})
    assert (later, has_more) == ([], False)
    assert gw.list_page(account=account, resource="invoices", params={"created": {"gte": newest}})[0]


def test_invoice_lines_page_equals_the_sdk_objects(listed):
    gw, account = listed
    invoice = gw.list_page(account=account, resource="invoices", limit=1)[0][0]
    lines = gw.invoice_lines_page(account=account, invoice_id=invoice["id"])
    page = gw._call(gw._client.v1.invoices.line_items.list, invoice["id"], params={"limit": 100},
                    options=gw._options(account))
    assert lines == ([_plain(o) for o in page.data], bool(page.has_more))
    assert lines[0] == invoice["lines"]["data"][:len(lines[0])]


def test_listing_errors_map_to_the_same_gateway_errors(listed, stripe_env, settings):
    gw, account = listed
    with pytest.raises(NotFound):
        gw.invoice_lines_page(account=account, invoice_id="in_missing")
    for key, error, status in (("sk_bogus", AuthenticationFailed, 401), ("sk_test_other_platform", AccessRevoked, 403)):
        wrong = Gateway(secret_key=key, api_base=stripe_env.base_url)
        with pytest.raises(error) as raw_error:
            wrong.list_page(account=account, resource="customers")
        with pytest.raises(error) as sdk_error:
            _sdk_page(wrong, account, "customers", {})
        assert raw_error.value.http_status == sdk_error.value.http_status == status
        assert raw_error.value.user_message == sdk_error.value.user_message
    settings.STRIPE_MAX_RETRIES = 0
    stripe_env.fault("GET /v1/customers", kind="429")
    with pytest.raises(RateLimited) as limited:
        Gateway.from_settings().list_page(account=account, resource="customers")
    assert limited.value.http_status == 429 and limited.value.request_id
    with pytest.raises(ValueError):
        gw.list_page(account=account, resource="accounts")
    with pytest.raises(ValueError):  # raw_request would take it as a request option, not send it
        gw.list_page(account=account, resource="customers", params={"stripe_account": "acct_other"})


def test_listing_retries_and_records_request_ids(listed, stripe_env):
    gw, account = listed
    stripe_env.mark()
    stripe_env.fault("GET /v1/customers", kind="429", count=1)
    with request_ids.collect() as ids:
        objects, _ = gw.list_page(account=account, resource="customers")
    assert len(objects) == 3
    served = stripe_env.requests(method="GET", path="/v1/customers")
    assert [r["status"] for r in served] == [429, 200]
    assert ids == [r["request_id"] for r in served]
