"""Catch-up: a missed delivery heals itself.

Stripe keeps an account's events for 30 days and lists them (`GET /v1/events` with
Stripe-Account). For each connected business, list the events since a point in time
(paging through all of them), keep those of the types the app handles, and store the
ones the inbox has not seen through the intake's own `delivery_store` (same unique row,
same queued processing), marked source=catch_up. Seen ones cost nothing: one SELECT per
batch of ids, and the unique insert would refuse them anyway.

Run by a periodic task (settings.CELERY_BEAT_SCHEDULE, looking back
STRIPE_CATCH_UP_HOURS) and by `manage.py stripe_catch_up --business <slug>` (30 days).
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ..gateway.client import GatewayError
from ..models import ConnectionStatus, DeliverySource, StripeConnection, WebhookDelivery
from ..connect.modes import configured_modes
from ..connect.oauth import WEBHOOK_EVENTS, gateway
from .intake import delivery_store, envelope_from
from ..runs import RunKind, track_run

log = logging.getLogger(__name__)

RETENTION = timedelta(days=30)  # "Events are kept for 30 days" (API reference, Events)
_MARGIN = timedelta(minutes=5)  # stay inside the window while the listing pages on
_BATCH = 500


@dataclass
class CatchUpResult:
    connection: StripeConnection
    since: datetime
    listed: int = 0  # events Stripe listed
    relevant: int = 0  # of the types the app handles
    stored: list[int] = field(default_factory=list)  # ids of deliveries new to the inbox


def catch_up(*, connection: StripeConnection, since: datetime | None = None, page_size: int = 100) -> CatchUpResult:
    """Recorded as a catch-up run (`runs.track_run`); lists nothing while the business's
    integration is disabled (re-enabling runs a catch-up)."""
    oldest = timezone.now() - RETENTION + _MARGIN
    since = max(since or oldest, oldest)
    result = CatchUpResult(connection=connection, since=since)
    with track_run(connection.business_id, RunKind.CATCH_UP, livemode=connection.livemode,
                   subject=f"account:{connection.stripe_user_id}") as run:
        if run.disabled:
            return result
        _catch_up(result, page_size=page_size)
        run.count("listed", result.listed)
        run.count("relevant", result.relevant)
        run.count("stored", len(result.stored))
    return result


def _catch_up(result: CatchUpResult, *, page_size: int) -> CatchUpResult:
    connection, since = result.connection, result.since
    account = connection.stripe_user_id
    wanted = []
    for event in gateway(connection.livemode).events_list(account=account, created_gte=int(since.timestamp()), page_size=page_size):
        result.listed += 1
        if event.get("type") in WEBHOOK_EVENTS:
            wanted.append(event)
    result.relevant = len(wanted)
    wanted.reverse()  # Stripe lists newest first; handle them in the order they happened
    known = set()
    for start in range(0, len(wanted), _BATCH):
        ids = [e["id"] for e in wanted[start:start + _BATCH]]
        known.update(WebhookDelivery.objects.filter(account=account, event_id__in=ids).values_list("event_id", flat=True))
    for event in wanted:
        if event["id"] in known:
            continue
        # Listed through Stripe-Account, an event may not name its account: it is this one.
        envelope = dataclasses.replace(envelope_from(event), account=account)
        stored = delivery_store(envelope=envelope, payload=json.dumps(event, separators=(",", ":")),
                                source=DeliverySource.CATCH_UP)
        if stored.created:
            result.stored.append(stored.delivery_id)
    return result


def catch_up_all(*, since: datetime | None = None) -> list[CatchUpResult]:
    """Every active connection of every mode the platform has a key for (test and live
    each with their own key); one account's failure does not stop the others (the next
    run tries it again)."""
    since = since or timezone.now() - timedelta(hours=settings.STRIPE_CATCH_UP_HOURS)
    results = []
    connections = StripeConnection.objects.filter(status=ConnectionStatus.CONNECTED, livemode__in=configured_modes())
    for connection in connections.select_related("business"):
        try:
            results.append(catch_up(connection=connection, since=since))
        except GatewayError as exc:
            log.warning("Catch-up of %s (%s) failed: %s", connection.business, connection.stripe_user_id, exc.user_message)
    return results
