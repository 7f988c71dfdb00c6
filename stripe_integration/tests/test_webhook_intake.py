"""The webhook intake against adversarial deliveries: only signed messages are believed,
each is stored once, bad input is a 4xx (never a 500), and nothing unverified is stored
or queued. Processing here finds no connected business (the account is unknown), so
every stored event ends ignored, without any call to Stripe."""
import json
import time

import pytest
from django.db import DatabaseError

from config.celery import app as celery_app
from stripe_integration.webhooks import intake as webhooks
from stripe_integration.models import ConnectWebhookEndpoint, DeliveryStatus, WebhookDelivery
from stripe_integration.tests.stripe_http import sign
from stripe_integration.gateway.types import WEBHOOK_SECRET_PREFIX

pytestmark = pytest.mark.django_db

URL = "/stripe/webhook/"
SECRET = WEBHOOK_SECRET_PREFIX + "current_0123456789abcdef"
OLD_SECRET = WEBHOOK_SECRET_PREFIX + "previous_0123456789abcdef"


@pytest.fixture(autouse=True)
def endpoint(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_intake"
    settings.STRIPE_WEBHOOK_SECRETS = []
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    webhooks.endpoint_secrets.clear()
    yield ConnectWebhookEndpoint.objects.create(stripe_id="we_intake", url=settings.STRIPE_WEBHOOK_URL, secret=SECRET,
                                                livemode=False, enabled_events=["*"])
    celery_app.conf.task_always_eager = previous
    webhooks.endpoint_secrets.clear()


def event(event_id="evt_1", type_="invoice.paid", account="acct_nobody", livemode=False, **extra) -> dict:
    return {"id": event_id, "object": "event", "type": type_, "account": account, "livemode": livemode,
            "api_version": "2026-08-26.dahlia", "created": int(time.time()), "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": {"id": "in_123", "object": "invoice", "status": "paid"}}, **extra}


def body_of(evt) -> bytes:
    return json.dumps(evt, indent=2).encode()


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    """POST a delivery; what the intake queues on commit runs too (the test itself runs
    inside a transaction that never commits)."""

    def deliver(body: bytes, signature: str | None, *, via=None):
        headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
        with django_capture_on_commit_callbacks(execute=True):
            return (via or client).post(URL, data=body, content_type="application/json", **headers)

    return deliver


def test_intake_valid_delivery_is_stored_once_and_processed(post):
    body = body_of(event())
    resp = post(body, sign(body, SECRET))
    assert resp.status_code == 200 and resp.json() == {"received": True, "duplicate": False}
    delivery = WebhookDelivery.objects.get()
    assert delivery.payload == body.decode()  # the bytes as signed, never re-serialized
    assert (delivery.event_id, delivery.account, delivery.type, delivery.object_id) == ("evt_1", "acct_nobody", "invoice.paid", "in_123")
    assert delivery.livemode is False and delivery.api_version == "2026-08-26.dahlia" and delivery.created is not None
    # Processed by the queued task: no business has the account connected now, so it is
    # kept (parked) until one connects it, not dropped.
    assert delivery.status == DeliveryStatus.PARKED
    assert "No business has acct_nobody connected now" in delivery.error and delivery.attempts == 1


def test_intake_duplicate_delivery_makes_one_row(post):
    body = body_of(event(type_="customer.subscription.created"))  # done (ignored) at once
    for n in range(3):
        resp = post(body, sign(body, SECRET))
        assert resp.status_code == 200 and resp.json()["duplicate"] is (n > 0)
    assert WebhookDelivery.objects.count() == 1
    assert WebhookDelivery.objects.get().attempts == 1  # done once, duplicates not processed again


def test_intake_same_event_id_on_two_accounts_is_two_rows(post):
    for account in ("acct_one", "acct_two"):
        body = body_of(event(account=account))
        assert post(body, sign(body, SECRET)).status_code == 200
    assert sorted(WebhookDelivery.objects.values_list("account", flat=True)) == ["acct_one", "acct_two"]


def _refused(resp, status=400):
    assert resp.status_code == status, resp.content
    assert WebhookDelivery.objects.count() == 0
    assert "error" in resp.json()


def test_intake_changed_byte_is_refused(post):
    body = body_of(event())
    signature = sign(body, SECRET)
    tampered = body.replace(b'"status": "paid"', b'"status": "void"')
    assert tampered != body
    _refused(post(tampered, signature))


def test_intake_reserialized_json_is_refused(post):
    evt = event()
    body = body_of(evt)
    compact = json.dumps(evt, separators=(",", ":")).encode()  # same JSON value, other bytes
    _refused(post(compact, sign(body, SECRET)))


def test_intake_wrong_secret_is_refused(post):
    body = body_of(event())
    _refused(post(body, sign(body, WEBHOOK_SECRET_PREFIX + "someone_else")))


def test_intake_no_signature_header_is_refused(post):
    _refused(post(body_of(event()), None))


def test_intake_header_without_timestamp_is_refused(post):
    body = body_of(event())
    v1 = sign(body, SECRET).split(",")[1]
    _refused(post(body, v1))


def test_intake_only_v0_signature_is_refused(post):
    body = body_of(event())
    t, v1 = sign(body, SECRET).split(",")
    _refused(post(body, f"{t},v0={v1.split('=')[1]}"))


def test_intake_malformed_timestamp_is_refused(post):
    body = body_of(event())
    _, v1 = sign(body, SECRET).split(",")
    _refused(post(body, f"t=yesterday,{v1}"))


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400])
def test_intake_timestamp_outside_tolerance_is_refused(post, offset):
    body = body_of(event())
    _refused(post(body, sign(body, SECRET, timestamp=int(time.time()) + offset)))


@pytest.mark.parametrize("offset", [-290, 290])
def test_intake_timestamp_within_tolerance_is_accepted(post, offset):
    body = body_of(event())
    assert post(body, sign(body, SECRET, timestamp=int(time.time()) + offset)).status_code == 200


def test_intake_tolerance_comes_from_settings(post, settings):
    settings.STRIPE_WEBHOOK_TOLERANCE = 10
    body = body_of(event())
    _refused(post(body, sign(body, SECRET, timestamp=int(time.time()) - 60)))


def test_intake_two_v1_values_during_a_roll_are_accepted(post, settings):
    # While a secret is rolled Stripe signs with both; the app knows only one of them.
    body = body_of(event())
    t = int(time.time())
    old_sig = sign(body, OLD_SECRET, t).split(",")[1]
    new_sig = sign(body, SECRET, t).split(",")[1]
    assert post(body, f"t={t},{old_sig},{new_sig}").status_code == 200
    # ... and the previous secret alone, when configured as still active.
    settings.STRIPE_WEBHOOK_SECRETS = [OLD_SECRET]
    body2 = body_of(event("evt_2"))
    assert post(body2, sign(body2, OLD_SECRET)).status_code == 200
    assert WebhookDelivery.objects.count() == 2


def test_intake_previous_secret_not_configured_is_refused(post):
    body = body_of(event())
    _refused(post(body, sign(body, OLD_SECRET)))


def test_intake_secret_of_a_new_endpoint_works_at_once(post, endpoint):
    body = body_of(event())
    assert post(body, sign(body, SECRET)).status_code == 200  # secrets now cached
    ConnectWebhookEndpoint.objects.create(stripe_id="we_new", url="https://other.example/hook/", secret=WEBHOOK_SECRET_PREFIX + "new_one",
                                          livemode=False)
    body2 = body_of(event("evt_2"))
    assert post(body2, sign(body2, WEBHOOK_SECRET_PREFIX + "new_one")).status_code == 200


def test_intake_live_endpoint_secret_does_not_verify_test_mode(post):
    ConnectWebhookEndpoint.objects.create(stripe_id="we_live", url="https://x.example/hook/", secret=WEBHOOK_SECRET_PREFIX + "live_only",
                                          livemode=True)
    body = body_of(event())
    _refused(post(body, sign(body, WEBHOOK_SECRET_PREFIX + "live_only")))


@pytest.mark.parametrize("body", [
    b"not json at all",
    b"",
    b"[1, 2, 3]",
    b'{"id": "evt_1"}',  # no type
    b'{"id": "not-an-event", "type": "invoice.paid"}',
    b'{"id": "evt_1", "type": "invoice.paid", "livemode": "yes"}',
    b'{"id": "evt_1", "type": "invoice.paid", "account": 42}',
    b'{"id": "evt_1", "type": ' + b'"x' * 60 + b'"}',
    b"\xff\xfe\x00garbage",  # not UTF-8
    b'{"id": "evt_1", "type": "invoice.paid", "data": ' + b"[" * 100000 + b"]" * 100000 + b"}",
], ids=["text", "empty", "array", "no-type", "bad-id", "bad-livemode", "bad-account", "long-type", "not-utf8", "deep"])
def test_intake_signed_garbage_is_a_400(post, body):
    _refused(post(body, sign(body, SECRET)))


def test_intake_huge_body_is_413_before_verification(post, settings):
    body = b'{"id": "evt_1", "type": "invoice.paid", "pad": "' + b"x" * settings.STRIPE_WEBHOOK_MAX_BYTES + b'"}'
    _refused(post(body, sign(body, SECRET)), status=413)


def test_intake_body_at_the_limit_is_accepted(post, settings):
    settings.STRIPE_WEBHOOK_MAX_BYTES = 4096
    evt = event()
    evt["pad"] = ""
    evt["pad"] = "x" * (4096 - len(body_of(evt)))
    body = body_of(evt)
    assert len(body) == 4096
    assert post(body, sign(body, SECRET)).status_code == 200


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_intake_other_methods_are_405(client, method):
    resp = getattr(client, method)(URL)
    assert resp.status_code == 405 and resp["Allow"] == "POST"


def test_intake_needs_no_session_or_csrf_token(post):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    body = body_of(event())
    assert post(body, sign(body, SECRET), via=strict).status_code == 200


def test_intake_database_failure_is_a_503_so_stripe_retries(post, monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(webhooks, "delivery_store", broken)
    body = body_of(event())
    _refused(post(body, sign(body, SECRET)), status=503)


def test_intake_broker_failure_still_acknowledges_the_stored_event(post, monkeypatch):
    from stripe_integration.webhooks import tasks as webhook_tasks

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(webhook_tasks.webhook_inbox_drain_task, "apply_async", down)
    body = body_of(event())
    assert post(body, sign(body, SECRET)).status_code == 200
    # Stored, waiting for the retry sweep.
    assert WebhookDelivery.objects.get().status == DeliveryStatus.RECEIVED


@pytest.mark.parametrize("evt, reason", [
    (event(type_="customer.subscription.created"), "does not handle"),
    (event(livemode=True), "live-mode event"),
    (event(account=None), "platform event"),
    ({"id": "evt_thin1", "object": "v2.core.event", "type": "v1.invoice.paid", "livemode": False,
      "created": "2026-01-01T00:00:00.000Z", "context": "acct_nobody",
      "related_object": {"id": "in_1", "type": "invoice", "url": "/v1/invoices/in_1"}}, "thin event"),
    (event(data=None), "carries no object"),
], ids=["unknown-type", "other-mode", "platform", "thin", "no-data"])
def test_intake_events_not_ours_are_acknowledged_and_ignored(post, evt, reason):
    body = body_of(evt)
    assert post(body, sign(body, SECRET)).status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.IGNORED and reason in delivery.error, delivery.error


def test_intake_thin_event_keeps_its_account_and_object(post):
    evt = {"id": "evt_thin2", "object": "v2.core.event", "type": "v1.invoice.paid", "livemode": False,
           "created": "2026-01-01T00:00:00.000Z", "context": "acct_ctx", "related_object": {"id": "in_9"}}
    body = body_of(evt)
    assert post(body, sign(body, SECRET)).status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert (delivery.account, delivery.object_id, delivery.created) == ("acct_ctx", "in_9", None)


def test_verify_signature_compares_every_candidate():
    body = b"{}"
    t = int(time.time())
    good = sign(body, SECRET, t).split(",")[1]
    header = f"t={t},v1=00,{good},v1=ff"
    assert webhooks.verify_signature(payload=body, header=header, secrets=[WEBHOOK_SECRET_PREFIX + "x", SECRET], tolerance=300) == t
    with pytest.raises(webhooks.SignatureError):
        webhooks.verify_signature(payload=body, header=header, secrets=[], tolerance=300)


def test_inbox_kick_with_a_broker_publishes_once_per_window(monkeypatch, django_capture_on_commit_callbacks):
    from stripe_integration.webhooks import tasks as webhook_tasks

    sent = []
    monkeypatch.setattr(webhook_tasks.webhook_inbox_drain_task, "apply_async",
                        lambda args=(), **options: sent.append(options))
    kick = webhooks._Kicker()
    clock = [1000.0]
    monkeypatch.setattr(webhooks.time, "time", lambda: clock[0])
    celery_app.conf.task_always_eager = False  # restored by the `endpoint` fixture
    with django_capture_on_commit_callbacks(execute=True):
        kick()
        clock[0] += 0.1  # a row committed while the drain is pending: covered by it
        kick()
        clock[0] += 0.06  # too close to the pending drain's start to count on it
        kick()
    assert sent == [{"countdown": kick.KICK_WINDOW}] * 2


def test_inbox_kick_in_eager_mode_drains_at_once(monkeypatch, django_capture_on_commit_callbacks):
    from stripe_integration.webhooks import tasks as webhook_tasks

    sent = []
    monkeypatch.setattr(webhook_tasks.webhook_inbox_drain_task, "apply_async",
                        lambda args=(), **options: sent.append(options))
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            webhooks._Kicker()()
    assert sent == [{}] * 3


def test_inbox_drain_takes_oldest_first_and_queues_the_next_batch(monkeypatch, post):
    from stripe_integration.webhooks import processing as events

    bodies = [body_of(event(f"evt_{n}", created=1_700_000_000 - n)) for n in range(3)]
    monkeypatch.setattr(webhooks, "inbox_kick", lambda: None)  # store only
    for body in bodies:
        assert post(body, sign(body, SECRET)).status_code == 200
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.RECEIVED}
    order, kicks = [], []
    real = events.delivery_process
    monkeypatch.setattr(events, "delivery_process", lambda **kw: order.append(kw["delivery_id"]) or real(**kw))
    monkeypatch.setattr(webhooks, "inbox_kick", lambda: kicks.append(1))
    assert events.deliveries_process_received(limit=2) == 2
    assert kicks == [1]  # a full batch: more may wait
    assert events.deliveries_process_received(limit=2) == 1 and kicks == [1]
    by_event = dict(WebhookDelivery.objects.values_list("pk", "event_id"))
    assert [by_event[pk] for pk in order] == ["evt_2", "evt_1", "evt_0"]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PARKED}  # acct_nobody
