"""Stripe-Account scoping and idempotency keys."""

import threading

import pytest
import stripe


def test_connect_objects_are_scoped_to_their_account(sandbox):
    key = "sk_test_connectscope1"
    client = sandbox.client(key)
    acct_a = sandbox.connect_account(key, "a@example.test")
    acct_b = sandbox.connect_account(key, "b@example.test")
    in_a = client.v1.customers.create(params={"email": "x@example.test"}, options={"stripe_account": acct_a})
    for options in ({"stripe_account": acct_b}, {}):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            client.v1.customers.retrieve(in_a.id, options=options)
        assert exc.value.http_status == 404 and exc.value.code == "resource_missing"
    assert client.v1.customers.list().data == []
    listed = client.v1.customers.list(options={"stripe_account": acct_a})
    assert [c.id for c in listed.data] == [in_a.id]


def test_connect_foreign_account_is_permission_error(sandbox):
    owner_key = "sk_test_connectowner1"
    acct = sandbox.connect_account(owner_key, "shop@example.test")
    intruder = sandbox.client("sk_test_connectother1abc")
    with pytest.raises(stripe.PermissionError) as exc:
        intruder.v1.customers.list(options={"stripe_account": acct})
    assert exc.value.http_status == 403
    message = exc.value.user_message
    assert f"does not have access to account '{acct}'" in message
    assert "Application access may have been revoked." in message
    assert "sk_test_" in message and "1abc'" in message and "connectother" not in message
    with pytest.raises(stripe.PermissionError):
        intruder.v1.customers.list(options={"stripe_account": "acct_doesnotexist"})


def test_connect_same_email_reuses_account(sandbox):
    key = "sk_test_connectreuse1"
    first = sandbox.connect_account(key, "same@example.test")
    assert sandbox.connect_account(key, "same@example.test") == first
    assert sandbox.connect_account("sk_test_connectreuse2", "same@example.test") != first


def test_idempotency_replays_first_response(sandbox):
    client = sandbox.client()
    options = {"idempotency_key": "order-42"}
    first = client.v1.customers.create(params={"email": "idem@example.test"}, options=options)
    again = client.v1.customers.create(params={"email": "idem@example.test"}, options=options)
    assert again.id == first.id
    assert again.last_response.body == first.last_response.body
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert again.last_response.headers["Original-Request"] == first.last_response.request_id
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert len(client.v1.customers.list().data) == 1
    log = sandbox.requests()
    assert [r["replayed"] for r in log if r["idempotency_key"] == "order-42"] == [False, True]


def test_idempotency_mismatched_params_is_idempotency_error(sandbox):
    client = sandbox.client()
    client.v1.customers.create(params={"email": "a@example.test"}, options={"idempotency_key": "k1"})
    with pytest.raises(stripe.IdempotencyError) as exc:
        client.v1.customers.create(params={"email": "b@example.test"}, options={"idempotency_key": "k1"})
    assert exc.value.http_status == 400
    assert "same parameters" in exc.value.user_message
    with pytest.raises(stripe.IdempotencyError) as exc:
        client.v1.products.create(params={"name": "P"}, options={"idempotency_key": "k1"})
    assert "same endpoint" in exc.value.user_message


def test_idempotency_keys_are_scoped_per_key_and_account(sandbox):
    key = "sk_test_idemscope0001"
    client = sandbox.client(key)
    acct = sandbox.connect_account(key, "idem@example.test")
    mine = client.v1.customers.create(params={}, options={"idempotency_key": "shared"})
    theirs = client.v1.customers.create(params={}, options={"idempotency_key": "shared", "stripe_account": acct})
    other_platform = sandbox.client().v1.customers.create(params={}, options={"idempotency_key": "shared"})
    assert len({mine.id, theirs.id, other_platform.id}) == 3


def test_idempotency_keys_expire_after_24_hours(sandbox):
    client = sandbox.client()
    first = client.v1.customers.create(params={}, options={"idempotency_key": "daily"})
    sandbox.advance_clock(24 * 3600 + 1)
    again = client.v1.customers.create(params={}, options={"idempotency_key": "daily"})
    assert again.id != first.id


def test_idempotency_concurrent_same_key_makes_one_object(sandbox):
    key = "sk_test_idemconcur001"
    results, errors = [], []
    start = threading.Barrier(8)

    def call():
        client = sandbox.client(key)
        start.wait()
        try:
            results.append(client.v1.customers.create(params={"email": "race@example.test"},
                                                      options={"idempotency_key": "race"}).id)
        except stripe.StripeError as exc:  # pragma: no cover - would fail the test below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1
    assert len(sandbox.client(key).v1.customers.list().data) == 1


def test_idempotency_error_results_are_replayed_too(sandbox):
    client = sandbox.client()
    options = {"idempotency_key": "bad-price"}
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            client.v1.prices.create(params={"product": "prod_nope", "currency": "usd", "unit_amount": 1}, options=options)
    assert exc.value.headers["Idempotent-Replayed"] == "true"
