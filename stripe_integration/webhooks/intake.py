"""Webhook intake: verify, store once, hand to Celery, answer fast.

POST /stripe/webhook/ (settings.STRIPE_WEBHOOK_URL is where Stripe sends the Connect
endpoint's deliveries). Per delivery, in this order:

1. size: more than STRIPE_WEBHOOK_MAX_BYTES (1 MiB) is a 413, read no further;
2. signature on the raw bytes (`Stripe-Signature: t=...,v1=...[,v1=...]`): HMAC-SHA256 of
   "<t>.<body>" under any active secret (every Connect endpoint secret of each mode the
   platform has a key for, plus STRIPE_WEBHOOK_SECRETS, e.g. the previous secret while one is rolled),
   checked by stripe-python's own verifier through the gateway (`webhook_verify`); `t`
   more than STRIPE_WEBHOOK_TOLERANCE seconds away from now, in the past (Stripe's
   verifier) or in the future (checked here: Stripe's verifier does not), is refused (a
   replayed or pre-signed message);
3. the body: UTF-8 JSON naming an event (`id` evt_..., `type`), else 400; an event of a
   configured mode signed with the other mode's endpoint secret is a 400 too;
4. one INSERT ... ON CONFLICT (event_id, account) DO NOTHING RETURNING id, in autocommit
   (one statement, one commit): the delivery is stored before anything else happens;
5. on commit, processing is queued: the inbox drain task for new rows (`inbox_kick`, at
   most one message per 0.2 s per process: the rows are the queue), a task of its own
   for a copy of an event that is not done yet, so a redelivery completes a failed or
   parked one;
6. 200. A 4xx stores nothing and queues nothing; a 5xx (503) only when the row could not
   be written, so Stripe retries.

Why not dj-stripe's view: see README.md in this package (3 SELECTs, INSERT, UPDATE, two
commits).
"""
from __future__ import annotations

import functools
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from ..gateway.client import WebhookSignatureInvalid, webhook_verify
from ..models import DONE_STATUSES, ConnectWebhookEndpoint, DeliverySource, DeliveryStatus, WebhookDelivery
from ..connect.modes import configured_modes
from ..connect.oauth import platform_livemode

log = logging.getLogger(__name__)

SECRETS_TTL = 60  # seconds; a failed check reloads at once, so a new endpoint works at once


# --- signatures ----------------------------------------------------------------------
class SignatureError(Exception):
    """The Stripe-Signature header is missing, malformed, stale or does not match."""


def parse_signature_header(header: str | None) -> tuple[int, list[str]]:
    """(timestamp, [v1 signatures]) from `t=...,v1=...,v1=...,v0=...`; other schemes
    (v0 is Stripe's test scheme) are ignored, as Stripe's libraries do."""
    if not header:
        raise SignatureError("No Stripe-Signature header.")
    timestamp, signatures = None, []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("The signature timestamp is not a number.") from None
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("The Stripe-Signature header has no timestamp.")
    if not signatures:
        raise SignatureError("The Stripe-Signature header has no v1 signature.")
    return timestamp, signatures


def verify_signature(*, payload: bytes, header: str | None, secrets: list[str], tolerance: int) -> int:
    """Return the signed timestamp, or raise SignatureError. The signature (and a timestamp
    too old) is stripe-python's verdict, through the gateway; a timestamp too far in the
    future is refused here, since Stripe's verifier lets it through."""
    timestamp, _signatures = parse_signature_header(header)
    try:
        webhook_verify(payload=payload, header=header, secrets=secrets, tolerance=tolerance)
    except WebhookSignatureInvalid as exc:
        raise SignatureError(str(exc)) from None
    if timestamp - time.time() > tolerance:
        raise SignatureError("The signature timestamp is outside the tolerance.")
    return timestamp


class _SecretCache:
    """The active signing secrets of each mode the platform has a key for (test and live
    each have their own Connect endpoint and secret), decrypted once a minute per process
    rather than per delivery (a SELECT and Fernet decryptions would cost more than the
    insert)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._value: tuple[float, tuple[bool, ...], dict[bool, tuple[str, ...]]] | None = None

    def get(self, *, refresh: bool = False) -> dict[bool | None, list[str]]:
        """{livemode: its endpoint secrets}, and under None STRIPE_WEBHOOK_SECRETS (any mode)."""
        wanted = tuple(configured_modes()) or (platform_livemode(),)
        value = self._value
        if refresh or value is None or value[1] != wanted or time.monotonic() - value[0] > SECRETS_TTL:
            with self._lock:
                by_mode: dict[bool, list[str]] = {mode: [] for mode in wanted}
                for e in ConnectWebhookEndpoint.objects.filter(livemode__in=wanted):
                    if e.secret:
                        by_mode[e.livemode].append(e.secret)
                value = (time.monotonic(), wanted, {m: tuple(s) for m, s in by_mode.items()})
                self._value = value
        out: dict[bool | None, list[str]] = {m: list(s) for m, s in value[2].items() if s}
        extra = [s for s in getattr(settings, "STRIPE_WEBHOOK_SECRETS", []) if s]
        if extra:
            out[None] = extra
        return out

    def clear(self) -> None:
        self._value = None


endpoint_secrets = _SecretCache()


def _verify_by_mode(*, payload: bytes, header: str | None, by_mode: dict, tolerance: int) -> bool | None:
    if not by_mode:
        verify_signature(payload=payload, header=header, secrets=[], tolerance=tolerance)  # raises: no secret
    error = None
    for mode, secrets in by_mode.items():
        try:
            verify_signature(payload=payload, header=header, secrets=secrets, tolerance=tolerance)
        except SignatureError as exc:
            error = exc
            continue
        return mode
    raise error


def verify_delivery(*, payload: bytes, header: str | None) -> bool | None:
    """Verify against the cached secrets, then once more against fresh ones (a secret
    that was just created or rolled). Returns the mode whose endpoint secret signed the
    delivery (None: one of STRIPE_WEBHOOK_SECRETS): the event must say that mode."""
    tolerance = settings.STRIPE_WEBHOOK_TOLERANCE
    try:
        return _verify_by_mode(payload=payload, header=header, by_mode=endpoint_secrets.get(), tolerance=tolerance)
    except SignatureError:
        return _verify_by_mode(payload=payload, header=header, by_mode=endpoint_secrets.get(refresh=True),
                               tolerance=tolerance)


# --- the event envelope --------------------------------------------------------------
class BadEvent(ValueError):
    """The body is not a Stripe event."""


@dataclass(frozen=True)
class Envelope:
    """What the inbox row keeps beside the raw body."""

    event_id: str
    account: str
    livemode: bool
    type: str
    api_version: str
    created: datetime | None
    object_id: str


def _text(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def envelope_from(event) -> Envelope:
    if not isinstance(event, dict):
        raise BadEvent("The body is not a JSON object.")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id.startswith("evt_") or len(event_id) > 255:
        raise BadEvent("The body has no Stripe event id.")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        raise BadEvent("The body has no event type.")
    # Snapshot events name the account in `account`; thin (v2) events in `context`.
    account = event.get("account") or event.get("context") or ""
    if not isinstance(account, str) or len(account) > 255:
        raise BadEvent("The event's account is not an account id.")
    livemode = event.get("livemode", False)
    if not isinstance(livemode, bool):
        raise BadEvent("The event's livemode is not a boolean.")
    created = event.get("created")
    # Snapshot events carry a Unix time; thin events an ISO string (not needed here).
    created_at = (datetime.fromtimestamp(created, tz=dt_timezone.utc)
                  if isinstance(created, int) and not isinstance(created, bool) and 0 < created < 2**37 else None)
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        obj = event.get("related_object") if isinstance(event.get("related_object"), dict) else {}
    return Envelope(
        event_id=event_id, account=account, livemode=livemode, type=event_type,
        api_version=_text(event.get("api_version"), 40), created=created_at, object_id=_text(obj.get("id"), 255),
    )


def parse_event(payload: bytes) -> tuple[str, Envelope]:
    """(the body as text, its envelope); BadEvent for anything that is not an event."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BadEvent("The body is not UTF-8.") from None
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        raise BadEvent("The body is not JSON.") from None
    return text, envelope_from(event)


# --- storing a delivery ----------------------------------------------------------------
_COLUMNS = ("event_id", "account", "livemode", "type", "api_version", "created", "object_id", "payload",
            "source", "received_at", "status", "attempts", "error", "traceback")


@functools.lru_cache(maxsize=4)
def _insert_sql(vendor: str) -> str:
    meta = WebhookDelivery._meta
    qn = connection.ops.quote_name
    columns = ", ".join(qn(meta.get_field(name).column) for name in _COLUMNS)
    # The ORM's bulk_create(ignore_conflicts=True) would not say whether the row is new;
    # RETURNING does, in the same single statement (PostgreSQL, and SQLite >= 3.35).
    return (
        f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(_COLUMNS))}) "
        f"ON CONFLICT ({qn('event_id')}, {qn('account')}) DO NOTHING RETURNING {qn(meta.pk.column)}"
    )


@dataclass(frozen=True)
class Stored:
    delivery_id: int
    created: bool  # False: the event was already in the inbox
    needs_processing: bool


def delivery_store(*, envelope: Envelope, payload: str, source: str = DeliverySource.WEBHOOK) -> Stored:
    """Write the delivery once (unique on event id and account) and, once that commits,
    have it processed: a new row by the inbox drain (`inbox_kick`), a copy of one that is
    not done yet (failed, parked, still queued) by a task of its own, so that Stripe's
    redelivery completes it."""
    conn = connection
    # Values in _COLUMNS order. Only the datetimes need the backend's adaptation (the
    # fields' get_db_prep_save would do the same, at a cost the hot path notices).
    adapt = conn.ops.adapt_datetimefield_value
    params = [
        envelope.event_id, envelope.account, envelope.livemode, envelope.type, envelope.api_version,
        adapt(envelope.created), envelope.object_id, payload, str(source), adapt(timezone.now()),
        str(DeliveryStatus.RECEIVED), 0, "", "",
    ]
    with conn.cursor() as cursor:
        cursor.execute(_insert_sql(conn.vendor), params)
        row = cursor.fetchone()
    if row is not None:
        inbox_kick()
        return Stored(delivery_id=row[0], created=True, needs_processing=True)
    delivery_id, status = WebhookDelivery.objects.filter(
        event_id=envelope.event_id, account=envelope.account).values_list("pk", "status").get()
    stored = Stored(delivery_id=delivery_id, created=False, needs_processing=status not in DONE_STATUSES)
    if stored.needs_processing:
        delivery_enqueue(delivery_id=delivery_id)
    return stored


def _send(task, *args, **options) -> None:
    """Publish a task; a broker that is down (or an eager task that raised) must not turn
    a stored delivery into an error: the row is safe and the retry sweep
    (`processing.deliveries_retry_due`) picks it up."""
    try:
        task.apply_async(args, **options)
    except Exception:  # noqa: BLE001 - any broker error; logged, healed by the sweep
        log.exception("Could not queue %s%r; the retry sweep will process it.", task.name, args)


def delivery_enqueue(*, delivery_id: int) -> None:
    """Process this delivery in a task of its own once the current transaction commits."""
    from .tasks import webhook_delivery_process_task

    transaction.on_commit(lambda: _send(webhook_delivery_process_task, delivery_id))


class _Kicker:
    """Queue the inbox drain at most once per KICK_WINDOW per process.

    The rows are the queue; the task only says "there is work". Publishing a Celery
    message costs about as much as the insert itself (kombu's Python, then Redis), so one
    per delivery would halve the intake's throughput (see README.md here). A drain queued
    with countdown=KICK_WINDOW starts after every row this process commits before it is
    due, so a row committed while one is pending is covered; KICK_MARGIN keeps that true
    under small clock differences between web and worker hosts, and the retry sweep
    catches anything a larger skew would leave (RECEIVED rows older than a minute).
    Eager Celery (the embedded default) runs the drain here and now: nothing to save."""

    KICK_WINDOW = 0.2  # seconds: at most ~5 publishes per second per process
    KICK_MARGIN = 0.05

    def __init__(self):
        self._lock = threading.Lock()
        self._due = 0.0

    def __call__(self) -> None:
        now = time.time()
        if now + self.KICK_MARGIN < self._due:  # unlocked read: the common, cheap case
            return
        from .tasks import webhook_inbox_drain_task

        if webhook_inbox_drain_task.app.conf.task_always_eager:
            transaction.on_commit(lambda: _send(webhook_inbox_drain_task))
            return
        with self._lock:
            if now + self.KICK_MARGIN < self._due:
                return
            self._due = now + self.KICK_WINDOW
        transaction.on_commit(lambda: _send(webhook_inbox_drain_task, countdown=self.KICK_WINDOW))


inbox_kick = _Kicker()


# --- the view --------------------------------------------------------------------------
def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
def stripe_webhook(request):
    """Stripe's deliveries: no session, no login, no CSRF token (the signature is the
    authentication)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    limit = settings.STRIPE_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "Bad Content-Length.")
    if declared > limit:
        return _error(413, f"The body is larger than {limit} bytes.")
    # read(), not request.body: the size is ours to limit, and the bytes are what was signed.
    payload = request.read(limit + 1)
    if len(payload) > limit:
        return _error(413, f"The body is larger than {limit} bytes.")
    try:
        signed_mode = verify_delivery(payload=payload, header=request.headers.get("Stripe-Signature"))
    except SignatureError as exc:
        log.warning("Refused a webhook delivery: %s", exc)
        return _error(400, f"Signature verification failed: {exc}")
    try:
        text, envelope = parse_event(payload)
    except BadEvent as exc:
        log.warning("Refused a signed webhook body: %s", exc)
        return _error(400, str(exc))
    if signed_mode is not None and envelope.livemode != signed_mode and envelope.livemode in configured_modes():
        # Each mode's endpoint signs its own mode's events: a test secret never vouches
        # for a live event the app would act on. An event of a mode the platform has no
        # key for is stored all the same, and kept as ignored with the reason.
        log.warning("Refused webhook event %s: livemode=%s under the other mode's secret.", envelope.event_id,
                    envelope.livemode)
        return _error(400, f"Signature verification failed: the event says livemode={str(envelope.livemode).lower()} "
                           "but was signed with the other mode's endpoint secret.")
    try:
        stored = delivery_store(envelope=envelope, payload=text)
    except DatabaseError:
        log.exception("Could not store webhook event %s; answering 503 so that Stripe retries.", envelope.event_id)
        return _error(503, "The event could not be stored; retry later.")
    return HttpResponse(_RECEIVED if stored.created else _DUPLICATE, content_type="application/json")


_RECEIVED = b'{"received": true, "duplicate": false}'
_DUPLICATE = b'{"received": true, "duplicate": true}'
