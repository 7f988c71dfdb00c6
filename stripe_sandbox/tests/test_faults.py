"""Injected faults, the rate limit and the request log."""

import time

import pytest
import stripe
from stripe import RequestsClient

from stripe_sandbox.errors import StripeError
from stripe_sandbox.faults import RateLimiter


def test_faults_500_does_not_perform_and_retry_succeeds(sandbox):
    client = sandbox.client()
    sandbox.fault(r"^POST /v1/customers$", "500", count=1)
    with pytest.raises(stripe.APIError) as exc:
        client.v1.customers.create(params={"email": "f@example.test"}, options={"idempotency_key": "f500"})
    assert exc.value.http_status == 500 and exc.value.error.type == "api_error"
    assert client.v1.customers.list().data == []
    cus = client.v1.customers.create(params={"email": "f@example.test"}, options={"idempotency_key": "f500"})
    assert [c.id for c in client.v1.customers.list().data] == [cus.id]


def test_faults_500_retried_by_the_sdk(sandbox):
    client = sandbox.client(max_network_retries=2)
    sandbox.fault(r"^POST /v1/customers$", "500", count=1)
    client.v1.customers.create(params={})
    log = [r for r in sandbox.requests() if r["path"] == "/v1/customers"]
    assert [r["status"] for r in log] == [500, 200]
    assert log[0]["idempotency_key"] == log[1]["idempotency_key"]  # the SDK reuses its key


def test_faults_429_rate_limit_body(sandbox):
    client = sandbox.client(max_network_retries=2)
    sandbox.fault("GET /v1/customers", "429", count=1)
    with pytest.raises(stripe.RateLimitError) as exc:
        client.v1.customers.list()
    assert exc.value.error.code == "rate_limit" and exc.value.http_status == 429
    assert exc.value.headers["Stripe-Should-Retry"] == "false"  # so the SDK does not retry


def test_faults_429_lock_timeout_is_retried_by_the_sdk(sandbox):
    client = sandbox.client(max_network_retries=2)
    sandbox.fault("POST /v1/customers", "429", code="lock_timeout", count=1)
    cus = client.v1.customers.create(params={})
    assert cus.id.startswith("cus_")
    assert [r["status"] for r in sandbox.requests() if r["path"] == "/v1/customers"] == [429, 200]
    sandbox.fault("POST /v1/products", "429", code="lock_timeout", count=1)
    with pytest.raises(stripe.RateLimitError) as exc:
        sandbox.client().v1.products.create(params={"name": "P"})
    assert exc.value.error.code == "lock_timeout" and exc.value.headers["Stripe-Should-Retry"] == "true"


def test_faults_timeout_commits_then_answers_late(sandbox):
    key = "sk_test_faulttimeout1"
    impatient = sandbox.client(key, http_client=RequestsClient(timeout=0.5))
    sandbox.fault("POST /v1/customers", "timeout", delay_ms=1500, count=1)
    with pytest.raises(stripe.APIConnectionError):
        impatient.v1.customers.create(params={"email": "t@example.test"}, options={"idempotency_key": "tmo"})
    # The change happened; a retry with the same key gets the same customer.
    client = sandbox.client(key)
    (stored,) = client.v1.customers.list().data
    again = client.v1.customers.create(params={"email": "t@example.test"}, options={"idempotency_key": "tmo"})
    assert again.id == stored.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"


def test_faults_drop_commits_without_answer(sandbox):
    client = sandbox.client()
    sandbox.fault("POST /v1/customers", "drop", count=1)
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.create(params={}, options={"idempotency_key": "dropped"})
    (stored,) = client.v1.customers.list().data
    assert client.v1.customers.create(params={}, options={"idempotency_key": "dropped"}).id == stored.id


def test_faults_drop_with_sdk_retries_makes_one_object(sandbox):
    client = sandbox.client(max_network_retries=2)
    sandbox.fault("POST /v1/customers", "drop", count=1)
    cus = client.v1.customers.create(params={})
    assert [c.id for c in client.v1.customers.list().data] == [cus.id]


def test_faults_match_oauth_token(sandbox):
    key = "sk_test_faultoauth001"
    client = sandbox.client(key)
    code = sandbox.oauth_code(key, "f@example.test")
    sandbox.fault("POST /oauth/token", "500", count=1)
    with pytest.raises(stripe.APIError):
        client.oauth.token(params={"grant_type": "authorization_code", "code": code})
    assert client.oauth.token(params={"grant_type": "authorization_code", "code": code}).stripe_user_id


def test_faults_rate_is_seeded_and_count_bounded(sandbox):
    client = sandbox.client()
    sandbox.fault("GET /v1/customers", "500", rate=0.5, seed=3)
    outcomes = []
    for _ in range(20):
        try:
            client.v1.customers.list()
            outcomes.append(True)
        except stripe.APIError:
            outcomes.append(False)
    assert 0 < outcomes.count(False) < 20
    sandbox.control("DELETE", "/faults")
    sandbox.fault("GET /v1/customers", "500", rate=0.5, seed=3)
    replay = []
    for _ in range(20):
        try:
            client.v1.customers.list()
            replay.append(True)
        except stripe.APIError:
            replay.append(False)
    assert replay == outcomes
    sandbox.control("DELETE", "/faults")
    sandbox.fault("GET /v1/customers", "500", count=2)
    assert sandbox.control("GET", "/faults")["data"][0]["count"] == 2
    for expected in (False, False, True):
        try:
            client.v1.customers.list()
            assert expected
        except stripe.APIError:
            assert not expected


def test_rate_limit_sliding_window_per_key(sandbox):
    sandbox.control("POST", "/rate_limit", {"per_second": 5})
    client, other = sandbox.client(), sandbox.client()
    started, outcomes = time.monotonic(), []
    for _ in range(8):
        try:
            client.v1.customers.list()
            outcomes.append("ok")
        except stripe.RateLimitError as exc:
            assert exc.error.code == "rate_limit"
            outcomes.append("429")
    if time.monotonic() - started < 1:  # all in one window (not on a crawling machine)
        assert outcomes == ["ok"] * 5 + ["429"] * 3
    other.v1.customers.list()  # its own window
    time.sleep(1.05)
    client.v1.customers.list()
    sandbox.control("POST", "/rate_limit", {"per_second": 0})
    for _ in range(10):
        client.v1.customers.list()


def test_rate_limit_window_slides():
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    limiter.configure(3)
    for t in (100.0, 100.2, 100.4):
        now[0] = t
        limiter.check("sk_test_a")
    with pytest.raises(StripeError) as exc:
        limiter.check("sk_test_a")
    assert exc.value.status == 429 and exc.value.code == "rate_limit"
    limiter.check("sk_test_b")
    now[0] = 101.05  # the first request left the window
    limiter.check("sk_test_a")
    with pytest.raises(StripeError):
        limiter.check("sk_test_a")
    limiter.configure(0)
    for _ in range(10):
        limiter.check("sk_test_a")


def test_requests_log_with_since(sandbox):
    key = "sk_test_requestlog001"
    client = sandbox.client(key)
    acct = sandbox.connect_account(key, "log@example.test")
    client.v1.customers.create(params={}, options={"idempotency_key": "log-1"})
    client.v1.customers.list(options={"stripe_account": acct})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.retrieve("cus_nope")
    log = sandbox.requests()
    assert [(r["method"], r["path"], r["status"]) for r in log] == [
        ("POST", "/v1/customers", 200), ("GET", "/v1/customers", 200), ("GET", "/v1/customers/cus_nope", 404),
    ]
    assert log[0]["idempotency_key"] == "log-1" and log[1]["account"] == acct
    assert log[0]["account"] == client.v1.accounts.retrieve_current().id
    assert [r["index"] for r in log] == [0, 1, 2]
    assert [r["path"] for r in sandbox.requests(since=2)] == ["/v1/customers/cus_nope", "/v1/account"]


def test_faults_500_with_status_503_and_oauth_error_kind(sandbox):
    import json
    import urllib.error
    import urllib.request

    sandbox.fault("POST /oauth/token", kind="500", status=503, count=1)
    sandbox.fault("POST /oauth/deauthorize", kind="oauth_error", code="never_heard_of_it", status=400)
    for path, status, check in (
        ("/oauth/token", 503, lambda body: body["error"]["type"] == "api_error"),
        ("/oauth/deauthorize", 400, lambda body: body == {"error": "never_heard_of_it", "error_description": "Injected by stripe_sandbox."}),
    ):
        req = urllib.request.Request(sandbox.base_url + path, data=b"grant_type=authorization_code&code=x", method="POST")
        try:
            urllib.request.urlopen(req, timeout=5)
            raise AssertionError("expected an error")
        except urllib.error.HTTPError as exc:
            assert exc.code == status
            assert check(json.loads(exc.read()))
