"""The import job: phases, pages, resume state, counts, replay.

`run_import(job)` is the one entry (the Celery task and the benchmark call it; the runs
of issue 15 wrap it). Each phase lists one kind of Stripe object, 100 per call, through
several cursor chains at once, each over its own `created` window (importing/listing.py:
up to STRIPE_IMPORT_CONCURRENCY requests in flight, windows split as pages come back),
over the objects created until the import started (`replay_from`). The calling thread
alone writes: each page in one transaction together with the job's resume state (the
phase and its unfinished chains, each with the cursor of its last page written), so an
import killed at any point resumes every chain after the last page it committed, and
objects it already handled are recognised by `ImportedObject` (unique per connection and
Stripe id): a second run creates nothing. Phases stay in order: every page of one is
written before any of the next (invoices need their customers). A last pass lists what
was created since the import started, then the account's events since then are replayed
through the catch-up (the webhook inbox) and the deliveries parked meanwhile retried, so
what changed while the import listed is not lost.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from crm.bulk import insert_many

from ..gateway.client import Gateway, GatewayError
from ..models import IMPORT_PHASES, ConnectionStatus, ImportedObject, ImportRules, ImportStatus, StripeImport
from . import billing, catalog
from .outcome import Page
from .listing import Chain, Listing

log = logging.getLogger(__name__)

# Without any event in the account yet, the replay starts this long before the import
# by our clock (replaying more than needed is harmless: every handler is idempotent).
_REPLAY_MARGIN = timedelta(minutes=5)


def _id(value) -> str:
    return value.get("id", "") if isinstance(value, dict) else (value or "")


@dataclass(frozen=True)
class Phase:
    resource: str
    handle: Callable[[Page, list[dict]], None]  # a page's objects not handled before, each once
    refs: Callable[[dict], list[str]]  # Stripe ids of already imported objects the handler needs
    params: dict | None = None


def _each(handle: Callable[[Page, dict], None]) -> Callable[[Page, list[dict]], None]:
    """A page handler that handles its objects one by one."""
    def handle_page(page: Page, objects: list[dict]) -> None:
        for obj in objects:
            handle(page, obj)
    return handle_page


PHASES = {
    "customers": Phase("customers", catalog.import_customers, lambda o: []),
    "products": Phase("products", _each(catalog.import_product), lambda o: [], {"expand": ["data.default_price"]}),
    "prices": Phase("prices", _each(catalog.import_price), lambda o: [_id(o.get("product"))]),
    "invoices": Phase("invoices", billing.import_invoices,
                      lambda o: [_id(o.get("customer")),
                                 *[((d.get("pricing") or {}).get("price_details") or {}).get("price") or ""
                                   for d in (o.get("lines") or {}).get("data") or []]]),
    "invoice_payments": Phase("invoice_payments", billing.import_invoice_payments, lambda o: [_id(o.get("invoice"))]),
    "payments": Phase("payment_intents", billing.import_payments, lambda o: [],
                      {"expand": ["data.latest_charge.balance_transaction"]}),
    "refunds": Phase("refunds", billing.import_refunds, lambda o: []),
    "disputes": Phase("disputes", billing.import_disputes, lambda o: []),
    "credit_notes": Phase("credit_notes", billing.import_credit_notes, lambda o: []),
}


def _transition(job: StripeImport, status: str, **fields) -> None:
    job.status = status
    for name, value in fields.items():
        setattr(job, name, value)
    job.save()


def _page(job: StripeImport, rules: ImportRules, kind: str, objects: list[dict], gw: Gateway,
          count_seen: bool = True) -> Page:
    """Handle one page in the caller's transaction: load the mapping rows it needs in one
    query, hand the objects not handled before (each once) to the phase's handler, then
    add the new mapping rows in one insert."""
    phase = PHASES[kind]
    page = Page(job=job, rules=rules, gw=gw, count_seen=count_seen)
    wanted = {o["id"] for o in objects} | {ref for o in objects for ref in phase.refs(o) if ref}
    page.known = {r.stripe_id: r for r in ImportedObject.objects.filter(connection=job.connection, stripe_id__in=wanted)}
    fresh = {}
    for obj in objects:
        if obj["id"] not in fresh and page.seen(kind, obj["id"]) is None:
            fresh[obj["id"]] = obj
    if fresh:
        phase.handle(page, list(fresh.values()))
    insert_many(page.new)
    return page


def _recent(job: StripeImport, rules: ImportRules, gw: Gateway) -> tuple[int, float]:
    """What was made in Stripe since the import started, which the phases did not list
    (they list what was created up to `replay_from`'s second): every phase once more, only
    `created[gte]` the replay's start. Handled objects are skipped; no resume state (a
    stop here lists it all again). Returns the pages listed and the seconds spent
    waiting for them."""
    since = int(job.replay_from.timestamp())
    account = job.connection.stripe_user_id
    listings = [(kind, _lister(gw, account, PHASES[kind]), [Chain(gte=since)]) for kind in IMPORT_PHASES[:-1]]
    with Listing(listings, concurrency=settings.STRIPE_IMPORT_CONCURRENCY) as pages:
        for page in pages:
            with transaction.atomic():
                _page(job, rules, page.key, page.objects, gw, count_seen=False)
                job.pages += 1
                job.save(update_fields=["counts", "pages", "updated_at"])
    return pages.pages, pages.waited


def _lister(gw: Gateway, account: str, phase: Phase):
    """fetch(chain) -> one page of the phase's listing within the chain's window (for Listing)."""
    def fetch(chain: Chain) -> tuple[list[dict], bool]:
        params = {**(phase.params or {}), **chain.params()} or None
        return gw.list_page(account=account, resource=phase.resource, starting_after=chain.after, params=params)
    return fetch


def _saved_chains(job: StripeImport, upper: int) -> list[Chain]:
    """The chains the job's phase resumes with: those saved; for a job saved before
    chains existed, its one listing after its cursor; else the whole range."""
    if job.chains:
        return [Chain.from_json(c) for c in job.chains]
    return [Chain(lt=upper, after=job.cursor)]


def _replay(job: StripeImport) -> None:
    from ..webhooks.catch_up import catch_up
    from ..webhooks.processing import deliveries_unpark

    result = catch_up(connection=job.connection, since=job.replay_from)
    deliveries_unpark(account=job.connection.stripe_user_id)
    job.counts["replay"] = {"listed": result.listed, "relevant": result.relevant, "stored": len(result.stored)}


def _stripe_now(gw: Gateway, account: str):
    """The replay's start by Stripe's clock, not ours: the newest event of the account as
    the import starts (events of that same second are replayed too: `created[gte]`)."""
    newest, _ = gw.list_page(account=account, resource="events", limit=1)
    if newest:
        return datetime.fromtimestamp(int(newest[0]["created"]), tz=dt_timezone.utc)
    return timezone.now() - _REPLAY_MARGIN


def run_import(job: StripeImport, *, gw: Gateway | None = None) -> dict:
    """Run (or resume) the import from its saved phase and chains to the end. Returns the
    counts per object type. A Stripe error stops it with status error (resumable). Each
    run is recorded (runs.track_run: an import run with its counts, request ids and, on a
    Stripe error, its event); a disabled integration records a disabled run and calls
    nothing."""
    from ..runs import RunKind, track_run

    job = StripeImport.objects.select_related("business", "connection").get(pk=job.pk)
    if job.status == ImportStatus.COMPLETE:
        return job.counts
    with track_run(job.business, RunKind.IMPORT, livemode=job.connection.livemode, subject=f"import:{job.pk}") as run:
        if run.disabled:
            return job.counts
        counts = _run_import(job, gw=gw, run=run)
        for kind, figures in (counts or {}).items():
            for what, n in (figures.items() if isinstance(figures, dict) else ()):
                if isinstance(n, int) and n:
                    run.count(f"{kind}_{what}", n)
        return counts


def _run_import(job: StripeImport, *, gw: Gateway | None, run) -> dict:
    from ..connect.oauth import gateway

    if job.connection.status != ConnectionStatus.CONNECTED:
        _transition(job, ImportStatus.ERROR, error="The Stripe connection is no longer active.")
        run.fail("The Stripe connection is no longer active.")
        return job.counts
    gw = gw or gateway(job.connection.livemode)
    rules = ImportRules.for_business(job.business)
    account = job.connection.stripe_user_id
    try:
        replay_from = job.replay_from or _stripe_now(gw, account)
        _transition(job, ImportStatus.RUNNING, error="", started_at=job.started_at or timezone.now(),
                    replay_from=replay_from)
        # Each phase lists what was created up to replay_from's second included (the last
        # pass lists from that second on: the two overlap by that second, not to miss
        # what it holds); the resume state saved with a page is what is left of its phase
        # once it is written (listing.ListedPage.resume), or the next phase's start after
        # its last page.
        upper = int(replay_from.timestamp()) + 1
        listings = [(kind, _lister(gw, account, PHASES[kind]),
                     _saved_chains(job, upper) if kind == job.phase else [Chain(lt=upper)])
                    for kind in IMPORT_PHASES[IMPORT_PHASES.index(job.phase):-1]]
        with Listing(listings, concurrency=settings.STRIPE_IMPORT_CONCURRENCY) as pages:
            for page in pages:
                with transaction.atomic():
                    _page(job, rules, page.key, page.objects, gw)
                    job.pages += 1
                    if page.resume is None:
                        job.phase, job.chains = IMPORT_PHASES[IMPORT_PHASES.index(page.key) + 1], []
                    else:
                        job.phase, job.chains = page.key, page.resume
                    job.cursor = ""
                    job.save(update_fields=["counts", "pages", "chains", "cursor", "phase", "updated_at"])
        recent_pages, recent_wait = _recent(job, rules, gw)
        listed, waited = pages.pages + recent_pages, pages.waited + recent_wait
        log.info("Import %s listed %d pages, waiting %.2f s for them, up to %d chains at once", job.pk, listed,
                 waited, pages.most_chains,
                 extra={"import_pages": listed, "import_fetch_wait_s": round(waited, 3),
                        "import_chains": pages.most_chains})
        with transaction.atomic():
            _replay(job)
            _transition(job, ImportStatus.COMPLETE, finished_at=timezone.now(), summary=summary_text(job))
    except GatewayError as exc:
        log.warning("Import %s stopped in %s: %s", job.pk, job.phase, exc.user_message)
        run.fail(exc)
        job.refresh_from_db(fields=["phase", "chains", "cursor", "counts", "pages"])
        _transition(job, ImportStatus.ERROR, error=f"Stopped while importing {job.phase.replace('_', ' ')}: "
                                                   f"{exc.user_message} Resume continues from there.")
    return job.counts


def summary_text(job: StripeImport) -> str:
    parts = []
    for kind, created, matched, skipped, _ in job.count_rows():
        if created or matched or skipped:
            parts.append(f"{kind}: {created} created, {matched} matched, {skipped} skipped")
    return "; ".join(parts) or "Nothing to import."
