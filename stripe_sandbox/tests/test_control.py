"""The control plane itself."""

import json

import pytest
import stripe

from stripe_sandbox.testing import http_request


def test_control_reset_empties_state_and_settings(sandbox, webhook_receiver):
    key = "sk_test_controlreset1"
    client = sandbox.client(key)
    client.v1.customers.create(params={})
    sandbox.fault("GET /v1/customers", "500")
    sandbox.control("POST", "/rate_limit", {"per_second": 1})
    sandbox.advance_clock(3600)
    sandbox.control("POST", "/reset")
    assert sandbox.control("GET", "/faults")["data"] == []
    assert abs(sandbox.control("GET", "/clock")["now"] - client.v1.customers.create(params={}).created) <= 2
    for _ in range(3):  # no rate limit, no fault
        assert len(client.v1.customers.list().data) == 1
    assert sandbox.requests()[0]["index"] == 0


def test_control_unknown_endpoint_lists_known_ones(sandbox):
    status, _, body = http_request("GET", sandbox.base_url + "/_sandbox/nope")
    assert status == 404 and "POST /_sandbox/reset" in json.loads(body)["endpoints"]


def test_control_bad_body_is_400(sandbox):
    with pytest.raises(AssertionError, match="400"):
        sandbox.control("POST", "/faults", {"match": "x", "kind": "explode"})


def test_control_webhook_config(sandbox, webhook_receiver):
    settings = sandbox.control("POST", "/webhooks/config", {"max_attempts": 2, "retry_base_ms": 5})
    assert settings["max_attempts"] == 2 and settings["retry_base_ms"] == 5
    client = sandbox.client()
    client.v1.webhook_endpoints.create(params={"url": webhook_receiver.url, "enabled_events": ["*"]})
    webhook_receiver.respond_with(500, 500, 500)
    client.v1.customers.create(params={})
    sandbox.drain()
    assert [d["attempt"] for d in sandbox.deliveries()] == [1, 2]


def test_control_accounts_and_codes_for_app_tests(sandbox):
    key = "sk_test_controlacct01"
    acct = sandbox.connect_account(key, "direct@example.test", business_name="Direct")
    client = sandbox.client(key)
    assert client.v1.accounts.retrieve_current(options={"stripe_account": acct}).business_profile.name == "Direct"
    code = sandbox.oauth_code(key, "direct@example.test")
    assert client.oauth.token(params={"grant_type": "authorization_code", "code": code}).stripe_user_id == acct
    # A code made for one platform is unknown to another.
    other = sandbox.oauth_code(key, "x@example.test")
    with pytest.raises(stripe.oauth_error.InvalidGrantError):
        sandbox.client().oauth.token(params={"grant_type": "authorization_code", "code": other})
