"""Events and signed webhook deliveries."""

import json
import time

import pytest
import stripe

from stripe_sandbox.webhooks import sign
from stripe_sandbox.resources.webhook_endpoints import SECRET_PREFIX


def endpoint(client, url, events=("*",), **params):
    return client.v1.webhook_endpoints.create(params={"url": url, "enabled_events": list(events), **params})


def test_events_emitted_for_each_change(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={"email": "e@example.test"}, options={"idempotency_key": "evt-k"})
    client.v1.customers.update(cus.id, params={"name": "New", "metadata": {"a": "1"}})
    client.v1.customers.delete(cus.id)
    product = client.v1.products.create(params={"name": "P"})
    client.v1.products.update(product.id, params={"name": "P2"})
    price = client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 1})
    client.v1.prices.update(price.id, params={"active": False})
    other = client.v1.products.create(params={"name": "Gone"})
    client.v1.products.delete(other.id)
    events = list(client.v1.events.list(params={"limit": 100}).auto_paging_iter())
    assert [e.type for e in reversed(events)] == [
        "customer.created", "customer.updated", "customer.deleted", "product.created", "product.updated",
        "price.created", "price.updated", "product.created", "product.deleted",
    ]
    created = events[-1]
    assert created.data.object.id == cus.id and created.livemode is False
    request = created["request"]  # `.request` is a StripeObject method
    assert request["idempotency_key"] == "evt-k" and request["id"].startswith("req_")
    assert created.api_version and created.pending_webhooks == 0 and "account" not in created
    assert "previous_attributes" not in created.data
    updated = events[-2]
    assert updated.data.previous_attributes.to_dict() == {"name": None, "metadata": {"a": None}}
    assert updated.data.object.name == "New"
    assert client.v1.events.retrieve(updated.id).id == updated.id


def test_events_filters(sandbox):
    client = sandbox.client()
    client.v1.customers.create(params={})
    client.v1.products.create(params={"name": "P"})
    assert [e.type for e in client.v1.events.list(params={"type": "product.created"}).data] == ["product.created"]
    assert len(client.v1.events.list(params={"type": "customer.*"}).data) == 1
    assert len(client.v1.events.list(params={"types": ["customer.created", "product.created"]}).data) == 2
    first = client.v1.events.list().data[-1]
    sandbox.advance_clock(10)
    client.v1.customers.create(params={})
    later = client.v1.events.list(params={"created": {"gt": first.created + 5}})
    assert len(later.data) == 1


def test_events_kept_30_days(sandbox):
    client = sandbox.client()
    client.v1.customers.create(params={})
    event = client.v1.events.list().data[0]
    sandbox.advance_clock(31 * 24 * 3600)
    assert client.v1.events.list().data == []
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.retrieve(event.id)


def test_events_scoped_by_stripe_account(sandbox):
    key = "sk_test_eventscope001"
    client = sandbox.client(key)
    acct = sandbox.connect_account(key, "ev@example.test")
    client.v1.customers.create(params={}, options={"stripe_account": acct})
    platform_types = [e.type for e in client.v1.events.list().data]
    assert "customer.created" not in platform_types
    theirs = client.v1.events.list(options={"stripe_account": acct}).data
    assert theirs[0].type == "customer.created" and theirs[0].account == acct


def test_webhooks_signed_deliveries_verify_with_stripe_python(sandbox, webhook_receiver):
    client = sandbox.client()
    we = endpoint(client, webhook_receiver.url, ["customer.created"])
    assert we.secret.startswith(SECRET_PREFIX) and we.status == "enabled"
    assert "secret" not in client.v1.webhook_endpoints.retrieve(we.id)  # shown at creation only
    cus = client.v1.customers.create(params={"email": "hook@example.test"})
    client.v1.products.create(params={"name": "not subscribed"})
    (delivery,) = webhook_receiver.wait_for(1)
    event = stripe.Webhook.construct_event(delivery["body"], delivery["headers"]["Stripe-Signature"], we.secret)
    assert event.type == "customer.created" and event.data.object.id == cus.id
    assert delivery["headers"]["Content-Type"].startswith("application/json")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery["body"], delivery["headers"]["Stripe-Signature"], SECRET_PREFIX + "wrong")
    sandbox.drain()
    assert client.v1.events.retrieve(event.id).pending_webhooks == 0
    assert len(webhook_receiver.received) == 1


def test_webhooks_signature_format():
    header = sign('{"id": "evt_1"}', SECRET_PREFIX + "test", timestamp=1700000000)
    t, v1 = header.split(",")
    assert t == "t=1700000000" and v1.startswith("v1=") and len(v1) == 3 + 64


def test_webhooks_retry_until_2xx(sandbox, webhook_receiver):
    client = sandbox.client()
    endpoint(client, webhook_receiver.url)
    webhook_receiver.respond_with(500, 302)  # Stripe follows no redirects
    cus = client.v1.customers.create(params={})
    deliveries = webhook_receiver.wait_for(3)
    assert [d["status"] for d in deliveries] == [500, 302, 200]
    assert len({json.loads(d["body"])["id"] for d in deliveries}) == 1
    sandbox.drain()
    attempts = sandbox.deliveries()
    assert [(a["attempt"], a["status"], a["ok"]) for a in attempts] == [(1, 500, False), (2, 302, False), (3, 200, True)]
    event_id = attempts[0]["event"]
    assert client.v1.events.retrieve(event_id).pending_webhooks == 0
    assert client.v1.events.list(params={"delivery_success": True}).data[0].data.object.id == cus.id


def test_webhooks_give_up_after_max_attempts(sandbox, webhook_receiver):
    client = sandbox.client()
    endpoint(client, webhook_receiver.url)
    webhook_receiver.respond_with(*[500] * 10)
    client.v1.customers.create(params={})
    sandbox.drain()
    assert len(webhook_receiver.received) == 4  # the session sandbox keeps 4 attempts
    failed = client.v1.events.list(params={"delivery_success": False}).data
    assert len(failed) == 1 and failed[0].pending_webhooks == 1


def test_webhooks_connection_errors_are_retried(sandbox):
    client = sandbox.client()
    endpoint(client, "http://127.0.0.1:9/closed")  # port 9 (discard): nothing listens
    client.v1.customers.create(params={})
    sandbox.drain()
    attempts = sandbox.deliveries()
    assert len(attempts) == 4 and all(a["status"] is None and a["error"] for a in attempts)


def test_webhooks_connect_endpoints_get_only_connected_events(sandbox, webhook_receiver):
    from stripe_sandbox.testing import WebhookReceiver

    key = "sk_test_hookconnect01"
    client = sandbox.client(key)
    own = WebhookReceiver()
    try:
        endpoint(client, own.url)
        endpoint(client, webhook_receiver.url, connect=True)
        acct = sandbox.connect_account(key, "hooks@example.test")
        client.v1.customers.create(params={"email": "platform@example.test"})
        client.v1.customers.create(params={"email": "connected@example.test"}, options={"stripe_account": acct})
        sandbox.drain()
        connected = webhook_receiver.events()
        assert [(e["type"], e["account"]) for e in connected] == [
            ("account.application.authorized", acct), ("customer.created", acct),
        ]
        assert [(e["type"], e.get("account")) for e in own.events()] == [("customer.created", None)]
    finally:
        own.close()


def test_webhooks_disabled_and_deleted_endpoints_get_nothing(sandbox, webhook_receiver):
    client = sandbox.client()
    we = endpoint(client, webhook_receiver.url)
    client.v1.webhook_endpoints.update(we.id, params={"disabled": True})
    client.v1.customers.create(params={})
    client.v1.webhook_endpoints.update(we.id, params={"disabled": False, "enabled_events": ["product.created"]})
    client.v1.products.create(params={"name": "P"})
    assert client.v1.webhook_endpoints.delete(we.id).deleted is True
    client.v1.products.create(params={"name": "Q"})
    sandbox.drain()
    assert [e["type"] for e in webhook_receiver.events()] == ["product.created"]
    assert client.v1.webhook_endpoints.list().data == []


def test_webhooks_in_order_per_endpoint_without_chaos(sandbox, webhook_receiver):
    client = sandbox.client()
    endpoint(client, webhook_receiver.url)
    created = [client.v1.customers.create(params={}).id for _ in range(15)]
    sandbox.drain()
    assert [e["data"]["object"]["id"] for e in webhook_receiver.events()] == created


def test_webhooks_chaos_duplicates_and_shuffles(sandbox, webhook_receiver):
    client = sandbox.client()
    endpoint(client, webhook_receiver.url)
    sandbox.control("POST", "/webhooks/chaos", {"duplicate": 1.0, "shuffle": True, "delay_ms": [0, 50], "seed": 7})
    created = [client.v1.customers.create(params={"email": f"c{i}@example.test"}).id for i in range(12)]
    sandbox.drain()
    got = [e["data"]["object"]["id"] for e in webhook_receiver.events()]
    assert sorted(got) == sorted(created * 2)
    assert got != [c for c in created for _ in range(2)]  # not in emission order
    assert sum(d["duplicate"] for d in sandbox.deliveries()) == 12
    # Duplicates do not count twice against pending_webhooks.
    assert all(e.pending_webhooks == 0 for e in client.v1.events.list(params={"limit": 100}).data)


def test_webhooks_chaos_delay(sandbox, webhook_receiver):
    client = sandbox.client()
    endpoint(client, webhook_receiver.url)
    sandbox.control("POST", "/webhooks/chaos", {"delay_ms": [300, 300]})
    started = time.time()  # the clock the sandbox schedules deliveries on
    client.v1.customers.create(params={})
    webhook_receiver.wait_for(1)
    assert time.time() - started >= 0.3


def test_webhook_endpoints_crud_and_validation(sandbox):
    client = sandbox.client()
    we = endpoint(client, "https://example.test/hook", ["customer.created", "invoice.paid"], description="d",
                  metadata={"k": "v"})
    assert list(we.enabled_events) == ["customer.created", "invoice.paid"] and we.application is None
    got = client.v1.webhook_endpoints.update(we.id, params={"url": "https://example.test/other", "description": "e"})
    assert got.url == "https://example.test/other" and got.description == "e" and "secret" not in got
    assert [w.id for w in client.v1.webhook_endpoints.list().data] == [we.id]
    with pytest.raises(stripe.InvalidRequestError) as exc:
        endpoint(client, "https://example.test/x", ["customer.exploded"])
    assert exc.value.param == "enabled_events[0]"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        endpoint(client, "not a url")
    assert exc.value.param == "url"
    connect = endpoint(client, "https://example.test/c", connect=True)
    assert connect.application.startswith("ca_")
