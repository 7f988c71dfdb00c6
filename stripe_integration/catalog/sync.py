"""Catalog sync: a connected business's services become Stripe Products, their
per-currency prices Stripe Prices, on the business's own Stripe account.

The rules (issue 5, Stripe's docs on products and prices):
- One product per service, with a deterministic id (`crm_b<business>_s<service>`): a
  retried create cannot make a second product even after its idempotency key expired,
  because Stripe refuses a second product with the same id (`resource_already_exists`),
  and the sync then adopts the one that exists.
- Stripe prices are immutable: a changed amount makes a new Price (or re-activates the one
  made for that amount before), moves the lookup key (`transfer_lookup_key`) and the
  product's default price to it, and archives the old one: only a price made for the
  service or one of the account's it took over (`ServiceSyncer._replaceable`), never the
  account's other prices, which may be in use outside the app. Nothing is deleted;
  `PriceLink` keeps every price the service had, so past invoices keep theirs.
- A deactivated service archives its product (`active=false`); reactivating restores it.
- Nothing is sent twice: every write carries an idempotency key made of the object, the
  sync row's version and a digest of the parameters, and a write is only made for a field
  whose value in Stripe differs from the app's. The product and its linked prices, as
  Stripe holds them after a sync, are kept with their hash (`ServiceSync.fingerprint`).
- After an import (issue 15) the imported product is the service's: the prices the import
  linked are reused (a one-time price of the wanted amount), the account's own lookup key
  stays the service's and moves with the price, recurring prices are neither used nor
  archived. No sync runs while an import waits or runs; one is queued when it completes.
  An import that stops on an error holds the sync too (a waiting catalog-sync run and the
  Stripe page say so) until it completes or a person syncs before it, told the risk.
- Drift: a field that Stripe holds with a value that is neither what the app last synced
  nor what it wants now was changed by hand. The service is marked DRIFT with the details
  and the sync does not overwrite it; a person chooses (admin: "Push the app's version").

First sync of a service costs 1 product call + 1 price call per currency (the default
price is made with the product and given its lookup key in one update). A whole-catalog
run reads the account's products and prices in pages of 100 (drift detection) and writes
nothing for a service that has not changed.
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any, Mapping

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Business
from services.models import Service

from .engine import (  # noqa: F401  (re-exported: the catalog's public names)
    CatalogSyncError, RetryableSyncError, ServiceSyncer, SyncOutcome, check_transition, clean_and_save,
    desired_prices, fingerprint, lookup_key_for, product_id_for, product_state, row_for,
)
from ..gateway.client import AccessRevoked, GatewayError, NotFound, ProductInfo
from ..models import (
    ACTIVE_RUN_STATUSES, SYNC_RUN_TRANSITIONS, PriceLink, ServiceSync, StripeConnection, SyncRun, SyncRunKind,
    SyncRunStatus, SyncState,
)
from ..connect.oauth import connected_modes, connection_get_active, connection_revoke, gateway
from ..runs import EventAction, EventKind, RunKind, RunStatus, current_run, run_wait, track_run

DISABLED_MESSAGE = "The Stripe integration is disabled for this business: re-enable it (Stripe ▸ Runs) to sync."

PROGRESS_EVERY = 50  # services between two progress saves of a run (or one second)
STALE_RUN_AFTER = 900  # seconds without progress: the worker running it is gone


# --- one service, on request -------------------------------------------------------------
def service_sync(*, connection: StripeConnection, service: Service, force: bool = False) -> SyncOutcome:
    """Sync one service now: read its product and prices, check for drift, write what
    differs. Raises CatalogSyncError / RetryableSyncError after recording the error on the
    ServiceSync row; returns the outcome otherwise (a DRIFT outcome is not an error).
    Recorded as a catalog-sync run (`runs.track_run`); refused while the integration is
    disabled."""
    if service.business_id != connection.business_id:
        raise CatalogSyncError("The service belongs to another business.")
    with track_run(connection.business_id, RunKind.CATALOG_SYNC, livemode=connection.livemode,
                   subject=f"service:{service.pk}") as run:
        if run.disabled:
            raise CatalogSyncError(DISABLED_MESSAGE)
        outcome = _service_sync(connection=connection, service=service, force=force)
        run.count(f"products_{outcome.product}" if outcome.product not in ("failed", "drift", "skipped")
                  else outcome.product)
        for what, n in outcome.prices.items():
            run.count(f"prices_{what}", n)
        return outcome


def _service_sync(*, connection: StripeConnection, service: Service, force: bool = False) -> SyncOutcome:
    gw = gateway(connection.livemode)
    row = row_for(connection, service)
    remote_product, remote_prices = None, []
    try:
        if row.stripe_product_id:
            try:
                remote_product = gw.product_retrieve(account=connection.stripe_user_id, product_id=row.stripe_product_id)
                remote_prices = gw.prices_list(account=connection.stripe_user_id, product_id=row.stripe_product_id)
            except NotFound:
                remote_product = None
    except GatewayError as exc:
        syncer = ServiceSyncer(gw=gw, connection=connection, service=service, row=row, links=[], remote_product=None,
                                remote_prices=[], business_currency=service.business.default_currency)
        syncer.fail(exc.user_message, retryable=exc.retryable)
        if isinstance(exc, AccessRevoked):
            connection_revoke(stripe_user_id=connection.stripe_user_id, livemode=connection.livemode)
        raise (RetryableSyncError if exc.retryable else CatalogSyncError)(exc.user_message) from None
    links = list(PriceLink.objects.filter(connection=connection, service=service))
    outcome = ServiceSyncer(
        gw=gw, connection=connection, service=service, row=row, links=links, remote_product=remote_product,
        remote_prices=remote_prices, business_currency=service.business.default_currency, force=force,
    ).run()
    if outcome.state == SyncState.ERROR:
        run = current_run()
        if run is not None and run.failure is None:  # the service's own problem: map it
            run.fail(outcome.error, kind=EventKind.MISSING_MAPPING if not outcome.retryable else EventKind.STRIPE_ERROR,
                     action=EventAction.MAP_SERVICE, action_url=_service_admin_url(service))
        raise (RetryableSyncError if outcome.retryable else CatalogSyncError)(outcome.error)
    return outcome


def _service_admin_url(service: Service) -> str:
    from django.urls import reverse

    return reverse("admin:services_service_change", args=[service.pk])


def service_sync_by_id(*, service_id: int, force: bool = False, livemode: bool | None = None) -> SyncOutcome | None:
    """For the task: None when the service is gone or its business is not connected (in
    `livemode`; a task queued before modes existed names none: the default connection)."""
    service = Service.objects.select_related("business").prefetch_related("prices").filter(pk=service_id).first()
    if service is None:
        return None
    connection = connection_get_active(business=service.business, livemode=livemode)
    if connection is None:
        return None
    return service_sync(connection=connection, service=service, force=force)


def service_sync_request(*, service: Service, force: bool = False) -> ServiceSync | None:
    """After a service or its prices changed: mark it pending and sync it once the
    transaction commits (Celery), on every connection of the business (test and live
    each hold their own product: links per mode). Nothing happens when the business is
    not connected. Returns the row of the default mode's connection."""
    first = None
    for livemode in connected_modes(business=service.business):
        connection = connection_get_active(business=service.business, livemode=livemode)
        if connection is not None:
            row = _service_sync_request(connection=connection, service=service, force=force)
            first = first or row
    return first


def _service_sync_request(*, connection: StripeConnection, service: Service, force: bool) -> ServiceSync | None:
    row = row_for(connection, service)
    if row.pk is None and not service.active:
        return None  # never in Stripe: nothing to archive
    # A drifted service stays DRIFT until a person pushes the app's version (force).
    if row.pk is None:
        clean_and_save(row)
    elif row.state != SyncState.PENDING and (row.state != SyncState.DRIFT or force):
        row.state = SyncState.PENDING
        # Only the state: a worker may be saving this row's Stripe state right now.
        clean_and_save(row, update_fields=["state", "updated_at"])
    if import_holding_sync(connection) is not None:
        return row  # the sync queued when the import completes (or Sync catalog now) covers it
    from ..tasks import enqueue_on_commit
    from .tasks import service_sync_task  # tasks import this module

    enqueue_on_commit(service_sync_task, service.pk, force, connection.livemode)
    return row


# --- the whole catalog ------------------------------------------------------------------
IMPORT_STOPPED_MESSAGE = (
    "The catalog sync waits for the import from Stripe, which stopped on an error: until it completes, a "
    "service it has not matched yet to one of the account's products would be made a second product. Resume the "
    "import (Stripe page, Import from Stripe): the catalog sync starts by itself when it completes. Or choose "
    "\u201cSync catalog now, before the import\u201d on the Stripe page, accepting that risk.")


def catalog_sync_start(*, business: Business, user=None, livemode: bool | None = None,
                       before_import: bool = False) -> SyncRun:
    """Queue a whole-catalog sync of one connection (the settings page's "Sync catalog now",
    per mode). Refused while an import waits or runs, and while one that stopped on an
    error holds the catalog (`import_holding_sync`) unless `before_import` (a person chose
    to sync before it, having been told what that risks). A catalog-sync run recorded as
    waiting for that import becomes this sync's run."""
    connection = connection_get_active(business=business, livemode=livemode)
    if connection is None:
        raise CatalogSyncError("This business is not connected to Stripe.")
    if import_in_progress(connection):
        raise CatalogSyncError("An import from Stripe is running: the catalog sync starts by itself when it completes.")
    if not before_import and import_holding_sync(connection) is not None:
        raise CatalogSyncError(IMPORT_STOPPED_MESSAGE)
    run = catalog_sync_create_run(business=business, connection=connection, user=user)
    held = _runs_waiting_for_import(connection).first()
    if held is not None:
        held.subject, held.message = f"sync_run:{run.pk}", ""
        held.save(update_fields=["subject", "message", "updated_at"])
    else:
        run_wait(business, RunKind.CATALOG_SYNC, livemode=connection.livemode, subject=f"sync_run:{run.pk}")
    from ..tasks import enqueue_on_commit
    from .tasks import catalog_sync_task

    enqueue_on_commit(catalog_sync_task, run.pk)
    return run


def import_in_progress(connection: StripeConnection) -> bool:
    """Whether an import of the connection is waiting or running: it may yet link a
    service to a product the account already has, so the sync waits for it (a sync
    before it would make that service a second product)."""
    from ..models import ImportStatus, StripeImport

    return StripeImport.objects.filter(connection=connection,
                                       status__in=(ImportStatus.WAITING, ImportStatus.RUNNING)).exists()


def import_holding_sync(connection: StripeConnection):
    """The import the connection's catalog sync waits for, else None: one waiting or
    running, or the latest import when it stopped on an error and no catalog sync was
    started since (a person may choose to sync before it: `catalog_sync_start(...,
    before_import=True)`; edits then sync as they are saved)."""
    from ..models import ImportStatus, StripeImport

    latest = StripeImport.objects.filter(connection=connection).order_by("-created_at", "-pk").first()
    if latest is None or latest.status == ImportStatus.COMPLETE:
        return None
    if latest.status == ImportStatus.ERROR and SyncRun.objects.filter(
            connection=connection, kind=SyncRunKind.CATALOG, created_at__gte=latest.updated_at).exists():
        return None
    return latest


def _runs_waiting_for_import(connection: StripeConnection):
    from ..models import IntegrationRun

    return IntegrationRun.objects.filter(business_id=connection.business_id, kind=RunKind.CATALOG_SYNC,
                                         livemode=connection.livemode, status=RunStatus.WAITING,
                                         subject__startswith="import:").order_by("-pk")


def catalog_sync_after_import_error(*, import_id: int):
    """After an import stopped on an error: no catalog sync is queued (the first one waits
    for the import), so say so where finance looks: a catalog-sync run `waiting`, about
    the import, whose message says why and what to do (one per connection; it becomes the
    sync's run once one starts). Returns that run, or None when nothing waits (the
    connection is gone, or a catalog sync was started since)."""
    from ..models import StripeImport

    job = StripeImport.objects.select_related("connection").get(pk=import_id)
    if not job.connection.is_active or import_holding_sync(job.connection) is None:
        return None
    message = f"{IMPORT_STOPPED_MESSAGE} (Import #{job.pk}: {job.error or 'stopped on an error'})"
    held = _runs_waiting_for_import(job.connection).first()
    if held is None:
        held = run_wait(job.business_id, RunKind.CATALOG_SYNC, livemode=job.connection.livemode,
                        subject=f"import:{job.pk}")
    held.subject, held.message = f"import:{job.pk}", message
    held.save(update_fields=["subject", "message", "updated_at"])
    return held


def catalog_sync_after_import(*, import_id: int) -> SyncRun | None:
    """Queue the whole-catalog sync of a completed import's connection: the imported
    products are linked to their services (pending), the sync brings them and the rest of
    the catalog to the app's version. The sync on connect waits for this when the account
    has history (connect/oauth.py). None when the connection is no longer active or a
    catalog sync is already running (it covers the imported services too)."""
    from ..models import StripeImport

    job = StripeImport.objects.select_related("connection", "business").get(pk=import_id)
    if not job.connection.is_active:
        return None
    try:
        return catalog_sync_start(business=job.business, user=job.started_by, livemode=job.connection.livemode)
    except CatalogSyncError:
        return None


def catalog_sync_create_run(*, business: Business, connection: StripeConnection, user=None) -> SyncRun:
    stale = timezone.now() - timedelta(seconds=STALE_RUN_AFTER)
    for old in SyncRun.objects.filter(business=business, connection=connection, kind=SyncRunKind.CATALOG,
                                      status__in=ACTIVE_RUN_STATUSES, updated_at__lt=stale):
        _run_finish(old, SyncRunStatus.FAILED, error="Interrupted: no progress for 15 minutes.")
    run = SyncRun(business=business, connection=connection, kind=SyncRunKind.CATALOG, started_by=user,
                  total=Service.objects.filter(business=business).count())
    try:
        with transaction.atomic():
            run.full_clean()
            run.save()
    except (ValidationError, IntegrityError):
        raise CatalogSyncError("A catalog sync is already running for this business; wait for it to finish.") from None
    return run


def catalog_sync_run(*, run: SyncRun) -> SyncRun:
    """Sync every service of the run's business, saving progress as it goes. Recorded as
    a catalog-sync run (`runs.track_run`); not run while the integration is disabled."""
    with track_run(run.business_id, RunKind.CATALOG_SYNC, subject=f"sync_run:{run.pk}", resume=True) as tracked:
        if tracked.disabled:
            return _run_finish(run, SyncRunStatus.FAILED, error=DISABLED_MESSAGE)
        run = _catalog_sync_run(run=run, tracked=tracked)
        tracked.counts.update(run.counts or {})
        if run.status == SyncRunStatus.PARTIAL and (run.counts or {}).get("failed") and tracked.failure is None:
            tracked.fail(f"{run.counts['failed']} service(s) could not be synced: {run.error or 'see their sync state'}.",
                         kind=EventKind.MISSING_MAPPING, action=EventAction.MAP_SERVICE,
                         action_url=_services_admin_url())
        elif run.status == SyncRunStatus.FAILED and tracked.failure is None:
            tracked.fail(run.error or "The catalog sync failed.")
        return run


def _services_admin_url() -> str:
    from django.urls import reverse

    return reverse("admin:services_service_changelist")


def _catalog_sync_run(*, run: SyncRun, tracked) -> SyncRun:
    check_transition(SYNC_RUN_TRANSITIONS, run.status, SyncRunStatus.RUNNING, "A sync run")
    run.status, run.started_at = SyncRunStatus.RUNNING, timezone.now()
    run.save(update_fields=["status", "started_at", "updated_at"])
    connection = StripeConnection.objects.get(pk=run.connection_id)
    if not connection.is_active:
        return _run_finish(run, SyncRunStatus.FAILED, error="The Stripe connection is no longer active.")
    business = run.business
    account = connection.stripe_user_id
    gw = gateway(connection.livemode)
    try:
        products = gw.products_list(account=account)
        prices = gw.prices_list(account=account)
    except GatewayError as exc:
        tracked.fail(exc)
        if isinstance(exc, AccessRevoked):
            connection_revoke(stripe_user_id=account, livemode=connection.livemode)
        return _run_finish(run, SyncRunStatus.FAILED, error=exc.user_message)
    products_by_id = {p.id: p for p in products}
    prices_by_product = defaultdict(list)
    for price in prices:
        prices_by_product[price.product].append(price)
    services = list(Service.objects.filter(business=business).prefetch_related("prices").order_by("pk"))
    rows = {row.service_id: row for row in ServiceSync.objects.filter(connection=connection)}
    links = defaultdict(list)
    for link in PriceLink.objects.filter(connection=connection):
        links[link.service_id].append(link)
    counts: Counter = Counter()
    run.total, run.done = len(services), 0
    last_save = time.monotonic()
    for service in services:
        service.business = business
        row = rows.get(service.pk) or ServiceSync(business_id=business.pk, connection=connection, service=service)
        product = products_by_id.get(row.stripe_product_id or product_id_for(service, account))
        outcome = ServiceSyncer(
            gw=gw, connection=connection, service=service, row=row, links=links[service.pk], remote_product=product,
            remote_prices=prices_by_product.get(product.id, []) if product else [],
            business_currency=business.default_currency,
        ).run()
        _count(counts, outcome)
        run.done += 1
        if outcome.fatal:
            tracked.fail(outcome.error, status=RunStatus.AUTH_FAILED, kind=EventKind.AUTHENTICATION,
                         action=EventAction.RECONNECT)
            run.counts = dict(counts)
            return _run_finish(run, SyncRunStatus.FAILED, error=outcome.error)
        if run.done % PROGRESS_EVERY == 0 or time.monotonic() - last_save > 1:
            run.counts = dict(counts)
            run.save(update_fields=["done", "total", "counts", "updated_at"])
            last_save = time.monotonic()
    run.counts = dict(counts)
    status = SyncRunStatus.PARTIAL if counts["failed"] or counts["drift"] else SyncRunStatus.SUCCEEDED
    return _run_finish(run, status)


def _count(counts: Counter, outcome: SyncOutcome):
    if outcome.product in ("failed", "drift", "skipped"):
        counts[outcome.product] += 1
    else:
        counts[f"products_{outcome.product}"] += 1
    for what, n in outcome.prices.items():
        counts[f"prices_{what}"] += n


def _run_finish(run: SyncRun, status: str, *, error: str = "") -> SyncRun:
    check_transition(SYNC_RUN_TRANSITIONS, run.status, status, "A sync run")
    run.status, run.error, run.finished_at = status, error, timezone.now()
    run.full_clean()
    run.save()
    return run


def catalog_sync_run_by_id(*, run_id: int) -> SyncRun | None:
    run = SyncRun.objects.select_related("business").filter(pk=run_id, status=SyncRunStatus.PENDING).first()
    return catalog_sync_run(run=run) if run else None


def sync_run_latest(*, business: Business, livemode: bool | None = None) -> SyncRun | None:
    runs = SyncRun.objects.filter(business=business, kind=SyncRunKind.CATALOG)
    return (runs if livemode is None else runs.filter(connection__livemode=livemode)).first()


def catalog_summary(*, business: Business, livemode: bool | None = None) -> dict[str, int]:
    """{state: count} of the services' sync rows on the active connection (of `livemode`)."""
    connection = connection_get_active(business=business, livemode=livemode)
    if connection is None:
        return {}
    rows = ServiceSync.objects.filter(connection=connection).values_list("state", flat=True)
    return dict(Counter(rows))


# --- for the invoicing code and the webhook handlers -----------------------------------------
def price_id_for(*, connection: StripeConnection, service: Service, currency: str, amount: Decimal) -> str | None:
    """The active synced Stripe price of `service` in `currency` when `amount` is exactly its
    synced list amount; None otherwise (a negotiated amount is sent inline by the invoice,
    and so is any amount of a service whose Stripe copy drifted). The rule, for many at
    once: `catalog.prices.price_ids_for`."""
    from .prices import price_ids_for

    key = (service.pk, currency, amount)
    return price_ids_for(connection=connection, wanted=[key])[key]


def product_drift_detected(*, product: Mapping[str, Any], connection: StripeConnection | None = None,
                           business: Business | None = None) -> ServiceSync | None:
    """For the `product.updated` webhook: `product` is the event's data.object (plain data);
    give the `connection` (or the `business`, whose active connection is used).

    Marks the service DRIFT (with details) when a field now differs both from what the app
    last synced and from what it wants; an update the app made itself matches one of those
    and only refreshes the stored state. Late events (older `updated`) are ignored.
    Returns the service's sync row, or None for a product that is not a synced service's.
    """
    if connection is None and business is not None:
        connection = connection_get_active(business=business)
    if connection is None:
        return None
    row = ServiceSync.objects.select_related("service__business").filter(
        connection=connection, stripe_product_id=product.get("id", "")).first()
    if row is None:
        return None
    metadata = product.get("metadata") or {}
    default = product.get("default_price") or ""
    info = ProductInfo(
        id=product["id"], name=product.get("name") or "", description=product.get("description") or "",
        active=bool(product.get("active")), default_price=default if isinstance(default, str) else default.get("id", ""),
        metadata=dict(metadata), updated=int(product.get("updated") or 0),
    )
    stored = row.remote_state or {}
    if info.updated and info.updated < int(stored.get("product_updated") or 0):
        return row
    service = Service.objects.prefetch_related("prices").get(pk=row.service_id)
    service.business = row.service.business
    try:
        desired = desired_prices(service)
    except CatalogSyncError:
        desired = {}
    links = list(PriceLink.objects.filter(connection=connection, service=service))
    syncer = ServiceSyncer(gw=None, connection=connection, service=service, row=row, links=links, remote_product=info,
                            remote_prices=[], business_currency=service.business.default_currency)
    syncer.track = {"product": product_state(info), "prices": dict(stored.get("prices") or {}),
                    "product_updated": info.updated}
    if stored and syncer.track["product"] == stored.get("product"):
        return row
    details = syncer.drift_details(desired) if stored else []
    if details:
        syncer.save_row(state=SyncState.DRIFT, drift=details)
    elif stored:
        new_state = {**stored, "product": syncer.track["product"], "product_updated": info.updated}
        syncer.save_row(remote_state=new_state, fingerprint=fingerprint(new_state))
    return row
