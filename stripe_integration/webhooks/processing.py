"""Processing stored webhook deliveries: exactly once, in any order, none lost.

`delivery_process(delivery_id=...)`, run by the inbox drain (`deliveries_process_received`,
the Celery task the intake queues for new rows) or by a task of its own (a redelivery of
an unfinished event, the retry sweep, staff's Reprocess):

1. Read the stored event; decide whether it is ours: the app's mode (test/live), a type we
   handle, a connected account's snapshot event. Otherwise: ignored (acknowledged, kept,
   never retried). An account no business has connected *now* is not "not ours": its
   events are parked, and connecting the account queues them (`deliveries_unpark`).
2. In ONE transaction: lock the delivery row (SELECT ... FOR UPDATE), return if it is
   already processed or ignored, run the handler, mark the delivery processed. The
   handler's writes and the "processed" mark commit together or not at all, so a handler
   that fails half-way leaves nothing marked done and the next attempt does it all again.
   Five copies of one event delivered at once make one row (the intake's unique insert);
   whatever tasks reach it queue on the row lock (or, draining, skip it): the first does
   the work, the others find it done. (SQLite has no row locks, but its IMMEDIATE transactions take the
   database's write lock at BEGIN, which serializes the same way.)
3. Handlers fetch the current object through the gateway (inside the lock on the local
   invoice) instead of trusting the event, so order does not matter, and they write by
   Stripe ids and cumulative figures, so two event ids for one change make one effect.
4. A handler's EventParked (an object the app does not know yet) or any error is
   recorded (error, traceback) with a time for the next attempt; `deliveries_retry_due`
   (a periodic task) queues those again with backoff.

Nothing here calls Stripe directly: handlers use `ctx.gw` (the gateway).
"""
from __future__ import annotations

import functools
import json
import logging
import traceback as tb
from datetime import timedelta

from django.core.exceptions import ObjectDoesNotExist
from django.db import OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from crm.audit import audit_record
from finance.models import Invoice

from .handlers import credit_notes as credit_note_handlers
from .handlers import invoices as invoice_handlers
from .handlers import disputes as dispute_handlers
from .handlers import payments as payment_handlers
from .handlers import payouts as payout_handlers
from ..catalog.sync import product_drift_detected
from ..customers.links import customer_changed_in_stripe
from .context import EventContext, EventIgnored, EventParked, invoice_changes, invoice_snapshot, obj_id
from ..gateway import request_ids
from ..gateway.client import AccessRevoked, Gateway, GatewayError
from ..runs.tracking import note_failure, webhook_batch
from ..models import ConnectionStatus, DeliveryStatus, StripeConnection, WebhookDelivery
from .apply import time_of
from ..connect import modes
from ..connect.oauth import WEBHOOK_EVENTS, connection_revoke

log = logging.getLogger(__name__)

# Backoff of failed and parked deliveries (seconds), then the last step repeats.
RETRY_DELAYS = (30, 60, 120, 300, 600, 1800, 3600)
MAX_FAILED_ATTEMPTS = 12  # then it waits for staff (admin: Reprocess)
PARK_LIMIT = timedelta(days=3)  # as long as Stripe itself retries a delivery
RECEIVED_GRACE = timedelta(seconds=60)  # a queued delivery not done by then is queued again

DEAUTHORIZED = "account.application.deauthorized"
# Handlers call Stripe inside the delivery's transaction, holding its row lock: a Stripe
# outage must fail fast (the delivery is retried later with backoff), not sleep through
# the gateway's full retry schedule.
HANDLER_STRIPE_RETRIES = 2


def handler_gateway(livemode: bool | None = None) -> Gateway:
    """The client of the event's mode (test and live each have their own key)."""
    mode = modes.default_livemode() if livemode is None else livemode
    return Gateway.from_settings(secret_key=modes.secret_key(mode), client_id=modes.client_id(mode),
                                 max_retries=HANDLER_STRIPE_RETRIES)


# --- handlers of the other event families -------------------------------------------------
def on_customer_changed(ctx: EventContext) -> str:
    """customer.updated / customer.deleted: the contact's customer link follows (issue 5's
    `customers.links.customer_changed_in_stripe`: a deleted customer marks its link deleted)."""
    link = customer_changed_in_stripe(connection=ctx.connection, customer=ctx.obj, customer_id=obj_id(ctx.obj),
                                      deleted=ctx.type == "customer.deleted")
    if link is None:
        raise EventIgnored(f"Customer {obj_id(ctx.obj)} is not linked to a contact.")
    return f"customer link of {link.contact_id}: {link.state}"


def on_product_updated(ctx: EventContext) -> str:
    """product.updated: a product edited in Stripe may have drifted from the catalog
    (issue 5's `catalog.sync.product_drift_detected` compares and records it)."""
    sync = product_drift_detected(connection=ctx.connection, product=ctx.obj)
    if sync is None:
        raise EventIgnored(f"Product {obj_id(ctx.obj)} is not a synced service's.")
    return f"service {sync.service_id}: {sync.state}"


def on_deauthorized(ctx: EventContext) -> str:
    """The account disconnected the app in Stripe: the connection is revoked, so no
    further call is made for that business.

    Stripe does not promise order, and catch-up or Reprocess can bring an old event: a
    deauthorization from before the account was connected again ended an earlier
    connection and must not end this one (an event never undoes what happened after it).
    Its `created` cannot tell on its own (whole seconds, and Stripe's clock is not ours),
    so Stripe's current answer decides, as for every other event: the active connection is
    revoked only if Stripe refuses the app access to the account now."""
    livemode = ctx.delivery.livemode
    active = StripeConnection.objects.filter(stripe_user_id=ctx.account, livemode=livemode,
                                             status=ConnectionStatus.CONNECTED).first()
    if active is None:
        return "already not connected"
    try:
        ctx.gw.account_retrieve(account=ctx.account)
    except AccessRevoked:
        count = connection_revoke(stripe_user_id=ctx.account, livemode=livemode)
        return f"revoked {count} connection(s)" if count else "already not connected"
    created = time_of(ctx.event.get("created"))
    when = f"of {created:%Y-%m-%d %H:%M:%S} UTC" if created else "without a date"
    return (f"an event {when}, before {ctx.account} was connected again at {active.connected_at:%Y-%m-%d %H:%M:%S} "
            "UTC (Stripe grants access now): nothing revoked")


HANDLERS = {
    **invoice_handlers.HANDLERS,
    **payment_handlers.HANDLERS,
    **dispute_handlers.HANDLERS,
    **credit_note_handlers.HANDLERS,
    **payout_handlers.HANDLERS,
    "customer.updated": on_customer_changed,
    "customer.deleted": on_customer_changed,
    "product.updated": on_product_updated,
    DEAUTHORIZED: on_deauthorized,
}
assert set(HANDLERS) == set(WEBHOOK_EVENTS), "every subscribed event type needs a handler"


# --- processing -------------------------------------------------------------------------
def _context(delivery: WebhookDelivery) -> EventContext:
    """The event and the connection it belongs to; EventIgnored if it is not ours."""
    try:
        event = json.loads(delivery.payload)
    except ValueError:
        raise EventIgnored("The stored body is not JSON.") from None
    if not isinstance(event, dict) or event.get("object") != "event":
        raise EventIgnored("Not a snapshot event (a thin event?): the app subscribes to snapshot events only.")
    if delivery.livemode not in (modes.configured_modes() or [modes.default_livemode()]):
        # Kept (status ignored, with this reason), not lost: Reprocess applies it once the
        # platform has that mode's key.
        raise EventIgnored(f"A {modes.mode_name(delivery.livemode)}-mode event; the platform has no "
                           f"{modes.mode_name(delivery.livemode)}-mode key (set STRIPE_{modes.mode_name(delivery.livemode).upper()}_SECRET_KEY).")
    if delivery.type not in HANDLERS:
        raise EventIgnored(f"The app does not handle {delivery.type} events.")
    if not delivery.account:
        raise EventIgnored("A platform event: the Connect endpoint handles connected accounts' events only.")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise EventIgnored("The event carries no object (a thin event?): nothing to apply.")
    connection = None
    if delivery.type != DEAUTHORIZED:
        # The business's settings come in the same query: whether its integration is disabled.
        connection = (StripeConnection.objects.select_related("business", "business__stripe_settings")
                      .filter(stripe_user_id=delivery.account, livemode=delivery.livemode, status=ConnectionStatus.CONNECTED)
                      .first())
        if connection is not None and _integration_disabled(connection):
            raise EventHeld(f"Held: the Stripe integration of {connection.business} is disabled; processed when it is "
                            "re-enabled.")
        if connection is None:
            # Not connected *now* is not "not ours": the account may be (re)connected
            # later (a disconnect and reconnect, a callback that failed), and what happened
            # meanwhile must then be applied. Parked; connecting the account queues it.
            raise EventParked(f"No business has {delivery.account} connected now; kept until it is connected.")
    return EventContext(delivery=delivery, event=event, connection=connection,
                        gateway_factory=functools.partial(handler_gateway, delivery.livemode))


class EventHeld(EventParked):
    """The business's integration is disabled (runs.disable): kept, with no retry time;
    re-enabling it queues the business's parked deliveries (`deliveries_unpark`)."""


def _integration_disabled(connection: StripeConnection) -> bool:
    try:
        return connection.business.stripe_settings.disabled
    except ObjectDoesNotExist:
        return False


def _owner_id(delivery: WebhookDelivery) -> int | None:
    """The business the account belongs (or last belonged) to, for the admin's tenancy."""
    if not delivery.account:
        return None
    connections = StripeConnection.objects.filter(stripe_user_id=delivery.account, livemode=delivery.livemode)
    active = connections.filter(status=ConnectionStatus.CONNECTED).values_list("business_id", flat=True).first()
    return active or connections.order_by("-created_at", "-pk").values_list("business_id", flat=True).first()


def _retry_at(attempts: int):
    return timezone.now() + timedelta(seconds=RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1])


def delivery_process(*, delivery_id: int, force: bool = False, skip_locked: bool = False) -> WebhookDelivery | None:
    """Process one stored delivery (see the module docstring). `force` runs a done one
    again (the admin's Reprocess: handlers are idempotent, so that is safe).
    `skip_locked` (the inbox drain): a delivery another worker is processing right now is
    left to it (None) instead of waited for.

    Recorded in a webhook-processing run of the delivery's business (`runs.webhook_batch`:
    the drain's whole batch makes one run per business; alone, one run)."""
    with webhook_batch() as batch, request_ids.collect() as ids:
        delivery = _delivery_process(delivery_id=delivery_id, force=force, skip_locked=skip_locked)
        batch.add(delivery, ids)
    return delivery


def _delivery_process(*, delivery_id: int, force: bool = False, skip_locked: bool = False) -> WebhookDelivery | None:
    outcome = None
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.select_for_update(skip_locked=skip_locked).filter(pk=delivery_id).first()
            if delivery is None:
                if skip_locked and WebhookDelivery.objects.filter(pk=delivery_id).exists():
                    return None
                raise WebhookDelivery.DoesNotExist(f"No webhook delivery {delivery_id}.")
            if delivery.is_done and not force:
                return delivery
            ctx = _context(delivery)
            note = HANDLERS[delivery.type](ctx)
            _record_history(ctx, note)
            delivery.business_id = ctx.connection.business_id if ctx.connection else _owner_id(delivery)
            delivery.status = DeliveryStatus.PROCESSED
            delivery.attempts += 1
            delivery.error = (note or "")[:2000]
            delivery.traceback = ""
            delivery.next_attempt_at = None
            delivery.processed_at = timezone.now()
            delivery.save(update_fields=["business", "status", "attempts", "error", "traceback", "next_attempt_at", "processed_at"])
            return delivery
    except WebhookDelivery.DoesNotExist:
        raise
    except EventIgnored as exc:
        outcome = (DeliveryStatus.IGNORED, str(exc), "")
    except EventHeld as exc:
        delivery = _record(delivery_id, DeliveryStatus.PARKED, str(exc), "", force=force, hold=True)
        delivery._held = True  # counted as held in the run
        return delivery
    except EventParked as exc:
        outcome = (DeliveryStatus.PARKED, str(exc), "")
    except OperationalError:
        # The database itself (lost connection, lock timeout): the task retries as a whole.
        raise
    except GatewayError as exc:
        note_failure(exc)  # the run's status and event
        outcome = (DeliveryStatus.FAILED, f"Stripe: {exc.user_message}", tb.format_exc())
    except Exception as exc:  # noqa: BLE001 - any handler bug is recorded and retried, not lost
        log.exception("Webhook delivery %s failed", delivery_id)
        note_failure(exc)
        outcome = (DeliveryStatus.FAILED, f"{type(exc).__name__}: {exc}", tb.format_exc())
    return _record(delivery_id, *outcome, force=force)


def _record_history(ctx: EventContext, note: str | None) -> None:
    """One audit entry per invoice the event's handler looked at: which event, what it
    changed (or that it changed nothing: a duplicate, a stale event), in the delivery's
    transaction. The invoice page's history shows them (crm.audit)."""
    for invoice, before in ctx.touched.values():
        current = Invoice.objects.filter(pk=invoice.pk).first()
        if current is None:
            continue  # a draft deleted by the event: nothing left to show a history on
        changes = invoice_changes(before, invoice_snapshot(current), current.currency)
        what = "; ".join(changes) if changes else "no change"
        detail = f"{ctx.type} ({ctx.delivery.event_id}): {what}." + (f" {note}" if note else "")
        audit_record(business=ctx.business, user=None, action="stripe_event", obj=current, detail=detail[:2000])


def _record(delivery_id: int, status: str, error: str, trace: str, *, force: bool, hold: bool = False) -> WebhookDelivery:
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.is_done and not force:
            return delivery  # another worker finished it meanwhile
        delivery.attempts += 1
        delivery.status = status
        delivery.error = error[:2000]
        delivery.traceback = trace[-20000:]
        delivery.business_id = _owner_id(delivery)
        delivery.next_attempt_at = None
        if hold:
            pass  # no retry time: re-enabling the integration queues it
        elif status == DeliveryStatus.PARKED and timezone.now() - delivery.received_at < PARK_LIMIT:
            delivery.next_attempt_at = _retry_at(delivery.attempts)
        elif status == DeliveryStatus.FAILED and delivery.attempts < MAX_FAILED_ATTEMPTS:
            delivery.next_attempt_at = _retry_at(delivery.attempts)
        if status == DeliveryStatus.IGNORED:
            delivery.processed_at = timezone.now()
        delivery.save(update_fields=["attempts", "status", "error", "traceback", "business", "next_attempt_at", "processed_at"])
    if status == DeliveryStatus.FAILED:
        log.warning("Webhook delivery %s (%s) failed: %s", delivery_id, delivery.type, error)
    return delivery


def delivery_reprocess(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Staff's Reprocess: run the delivery again now, whatever its state."""
    return delivery_process(delivery_id=delivery.pk, force=True)


# --- the inbox drain and retries ---------------------------------------------------------
DRAIN_BATCH = 500


def deliveries_process_received(*, limit: int = DRAIN_BATCH) -> int:
    """Process the deliveries waiting in the inbox, oldest event first (the drain task the
    intake queues). Concurrent drains share the work: each skips the rows another one
    holds. A full batch queues the next drain at once. Returns how many were taken."""
    ids = list(WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED)
               .order_by("created", "pk").values_list("pk", flat=True)[:limit])
    with webhook_batch():  # one run per business for the whole batch
        for delivery_id in ids:
            delivery_process(delivery_id=delivery_id, skip_locked=True)
    if len(ids) == limit:
        from .intake import inbox_kick

        inbox_kick()
    return len(ids)


def deliveries_due(*, now=None, limit: int = 500) -> list[int]:
    """Deliveries to process again: parked or failed ones whose time has come, and
    received ones whose task never ran (broker down, worker lost), oldest event first."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            Q(status=DeliveryStatus.RECEIVED, received_at__lte=now - RECEIVED_GRACE)
            | Q(status__in=[DeliveryStatus.PARKED, DeliveryStatus.FAILED], next_attempt_at__lte=now)
        ).order_by("created", "pk").values_list("pk", flat=True)[:limit]
    )


def deliveries_retry_due(*, now=None, limit: int = 500) -> int:
    """Queue the due deliveries (the periodic task)."""
    from .intake import delivery_enqueue

    due = deliveries_due(now=now, limit=limit)
    for delivery_id in due:
        delivery_enqueue(delivery_id=delivery_id)
    return len(due)


def deliveries_unpark(*, account: str) -> int:
    """Retry now the account's parked deliveries (for the invoice push to call once it has
    saved a Stripe invoice id, so that the invoice's early events need not wait; payment
    events are parked under their PaymentIntent, hence the whole account)."""
    from .intake import delivery_enqueue

    ids = list(WebhookDelivery.objects.filter(status=DeliveryStatus.PARKED, account=account)
               .order_by("created", "pk").values_list("pk", flat=True))
    for delivery_id in ids:
        delivery_enqueue(delivery_id=delivery_id)
    return len(ids)
