"""Recording runs: `track_run` (one job, one run) and `webhook_batch` (one run per
business per processed batch of webhook deliveries). See the package docstring.

Bookkeeping never changes what the wrapped job does: an exception leaving the block is
re-raised as it was, and a failure of the bookkeeping itself is logged, not raised.
"""
from __future__ import annotations

import datetime
import logging
from collections import Counter, defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

from django.db import transaction
from django.utils import timezone

from ..gateway import request_ids
from ..gateway.client import (
    AccessRevoked, AuthenticationFailed, CardDeclined, GatewayError, IdempotencyConflict, InvalidRequest,
    NotConfigured, NotFound, RateLimited, StripeUnavailable, TimedOut,
)
from ..models import (
    FAILED_RUN_STATUSES, LOG_MAX_CHARS, REQUEST_IDS_MAX, RUN_TRANSITIONS, EventAction, EventKind, IntegrationEvent,
    IntegrationRun, IntegrationSettings, RunKind, RunStatus,
)

log = logging.getLogger(__name__)

_current: ContextVar["RunTracker | None"] = ContextVar("integration_run", default=None)
_batch: ContextVar["WebhookBatch | None"] = ContextVar("integration_webhook_batch", default=None)
_retry_planned: ContextVar[bool] = ContextVar("integration_retry_planned", default=False)


class MissingMapping(Exception):
    """A job could not go on because something local is not mapped to Stripe yet (a
    service without its Stripe price, say). Jobs may raise it, or pass it to `run.fail`;
    its event suggests mapping the service at `action_url`."""

    def __init__(self, message: str, *, action_url: str = ""):
        self.message = message
        self.action_url = action_url
        super().__init__(message)


@dataclass(frozen=True)
class Failure:
    status: str
    kind: str
    action: str
    message: str
    action_url: str = ""
    retryable: bool = False  # transient (rate limited, unreachable, 5xx, timed out): the same call may succeed later


def _retryable(exc: BaseException) -> bool:
    """Whether the failure is transient: said by the outermost exception that says it (a
    job's own error wrapping Stripe's decides for it)."""
    for e in _chain(exc):
        if isinstance(getattr(e, "retryable", None), bool):
            return e.retryable
    return False


def _chain(exc: BaseException):
    """The exception and what it was raised from or during (a job that turns a
    GatewayError into its own error keeps the original as __context__)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def classify(exc: BaseException) -> Failure:
    """The run status, event kind and suggested action of a failure (issue 15)."""
    found = _classify(exc)
    return replace(found, retryable=_retryable(exc))


def _classify(exc: BaseException) -> Failure:
    message = getattr(exc, "user_message", None) or getattr(exc, "message", None) or str(exc) or type(exc).__name__
    for e in _chain(exc):
        rid = getattr(e, "request_id", None)
        suffix = f" (Stripe request {rid})" if rid and rid not in message else ""
        if isinstance(e, MissingMapping):
            return Failure(RunStatus.ERROR, EventKind.MISSING_MAPPING, EventAction.MAP_SERVICE, e.message, e.action_url)
        if isinstance(e, (AuthenticationFailed, AccessRevoked)):
            return Failure(RunStatus.AUTH_FAILED, EventKind.AUTHENTICATION, EventAction.RECONNECT,
                           e.user_message + suffix)
        if isinstance(e, RateLimited):
            return Failure(RunStatus.RATE_LIMITED, EventKind.RATE_LIMIT, EventAction.RETRY, e.user_message + suffix)
        if isinstance(e, TimedOut):
            return Failure(RunStatus.TIMED_OUT, EventKind.TIMEOUT, EventAction.RETRY, e.user_message + suffix)
        if isinstance(e, (InvalidRequest, IdempotencyConflict)):
            return Failure(RunStatus.ERROR, EventKind.VALIDATION, EventAction.RETRY, e.user_message + suffix)
        if isinstance(e, NotConfigured):
            return Failure(RunStatus.ERROR, EventKind.AUTHENTICATION, EventAction.VIEW_RUN, e.user_message)
        if isinstance(e, (CardDeclined, NotFound, StripeUnavailable, GatewayError)):
            return Failure(RunStatus.ERROR, EventKind.STRIPE_ERROR, EventAction.RETRY, e.user_message + suffix)
    # The app's own refusals (a push that cannot go on, a sync that cannot be done) carry a
    # `message` fit to show: the data needs a look. Anything else is a bug, logged.
    if hasattr(exc, "message"):
        return Failure(RunStatus.ERROR, EventKind.VALIDATION, EventAction.VIEW_RUN, message)
    return Failure(RunStatus.ERROR, EventKind.INTERNAL, EventAction.VIEW_RUN, f"{type(exc).__name__}: {exc}")


class RunTracker:
    """What a job holds inside `track_run`: counts, log lines, failures, its outcome."""

    def __init__(self, run: IntegrationRun | None, *, disabled: bool = False):
        self.run = run
        self.disabled = disabled
        self.counts: Counter = Counter()
        self._log: list[str] = []
        self._log_size = 0
        self.failure: Failure | None = None
        self.status: str | None = None  # an explicit outcome (`finish`)
        self.message = ""
        self.request_ids: list[str] = []
        self.discarded = False

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def log(self, line: str) -> None:
        if self._log_size > LOG_MAX_CHARS:
            return
        stamped = f"{timezone.now():%H:%M:%S} {line}"
        self._log_size += len(stamped) + 1
        self._log.append(stamped if self._log_size <= LOG_MAX_CHARS else "... (log truncated)")

    def request_id(self, rid: str | None) -> None:
        if rid:
            self.request_ids.append(rid)

    def fail(self, failure, *, kind: str | None = None, action: str | None = None, action_url: str = "",
             status: str | None = None) -> None:
        """Record a failure the job handles itself: an exception (classified) or a message.
        The run ends with the failure's status; the last failure recorded wins."""
        if isinstance(failure, BaseException):
            found = classify(failure)
        else:
            found = Failure(RunStatus.ERROR, EventKind.VALIDATION, EventAction.VIEW_RUN, str(failure))
        self.failure = Failure(status or found.status, kind or found.kind, action or found.action, found.message,
                               action_url or found.action_url, found.retryable)
        self.log(f"Failed: {self.failure.message}")

    def discard(self) -> None:
        """Keep no run for this call (it turned out not to be a run: e.g. a push of a
        business that is not connected, which the sweep asks about every minute)."""
        self.discarded = True

    def finish(self, status: str, message: str = "") -> None:
        """Say how the run ended when it is not "complete" nor a failure (e.g. awaiting retry)."""
        self.status, self.message = status, message


def current_run() -> RunTracker | None:
    return _current.get()


@contextmanager
def retry_planned(planned: bool = True):
    """For a task that retries a transient failure itself (Celery's retry, with retries
    left): a run inside the block that fails on a transient Stripe error (rate limited,
    unreachable, 5xx, timed out) ends `awaiting_retry`, which leaves the auto-disable
    streak alone; the retry is a run of its own that ends complete or failed."""
    token = _retry_planned.set(planned)
    try:
        yield
    finally:
        _retry_planned.reset(token)


def note_failure(exc: BaseException) -> None:
    """For a job that catches a failure and carries on (it does not re-raise): record it
    on the current run, or on the current webhook batch's delivery."""
    tracker = _current.get()
    if tracker is not None and tracker.run is not None:
        tracker.fail(exc)
        return
    batch = _batch.get()
    if batch is not None:
        batch.pending = classify(exc)


def _settings_state(business_id: int) -> dict | None:
    return IntegrationSettings.objects.filter(business_id=business_id).values("disabled").first()


def _platform_livemode() -> bool:
    from ..connect.oauth import platform_livemode

    return platform_livemode()


def run_wait(business, kind: str, *, livemode: bool | None = None, subject: str = "") -> IntegrationRun:
    """Record a job queued for later as a `waiting` run; the job's `track_run(...,
    resume=True)` with the same kind and subject then starts that run instead of a new one."""
    return IntegrationRun.objects.create(business_id=getattr(business, "pk", business), kind=kind,
                                         status=RunStatus.WAITING, subject=subject[:100],
                                         livemode=_platform_livemode() if livemode is None else livemode)


@contextmanager
def track_run(business, kind: str, *, livemode: bool | None = None, subject: str = "", resume: bool = False):
    """Record the block as one run of `kind` for `business` (a Business or its id); with
    `resume`, the `waiting` run of that kind and subject (`run_wait`) if there is one.
    When the business's integration is disabled, a `disabled` run is recorded and the
    tracker says `disabled`: the job must then return without calling Stripe."""
    business_id = getattr(business, "pk", business)
    livemode = _platform_livemode() if livemode is None else livemode
    now = timezone.now()
    state = _settings_state(business_id)
    run = None
    if resume:
        run = IntegrationRun.objects.filter(business_id=business_id, kind=kind, subject=subject[:100],
                                            status=RunStatus.WAITING).order_by("-pk").first()
    run = run or IntegrationRun(business_id=business_id, kind=kind, subject=subject[:100])
    run.livemode, run.started_at = livemode, now
    if state and state["disabled"]:
        run.status, run.finished_at, run.duration = RunStatus.DISABLED, now, datetime.timedelta(0)
        run.message = "Not run: the Stripe integration is disabled for this business. Re-enable it to retry."
        run.save()
        yield RunTracker(run, disabled=True)
        return
    run.status = RunStatus.STARTED
    run.save()
    tracker = RunTracker(run)
    token = _current.set(tracker)
    try:
        with request_ids.collect() as ids:
            try:
                yield tracker
            except Exception as exc:
                if tracker.failure is None:  # a failure the job recorded itself says more
                    tracker.fail(exc)
                elif _retryable(exc):  # ... but the exception leaving says whether it is transient
                    tracker.failure = replace(tracker.failure, retryable=True)
                raise
            finally:
                tracker.request_ids.extend(ids)
    finally:
        _current.reset(token)
        try:
            _run_end(tracker)
        except Exception:  # noqa: BLE001 - bookkeeping must not change the job's outcome
            log.exception("Recording the end of integration run %s failed", run.pk)


def _run_end(tracker: RunTracker) -> None:
    run = tracker.run
    if tracker.discarded:
        run.delete()
        return
    failure = tracker.failure
    status = tracker.status or (failure.status if failure else RunStatus.COMPLETE)
    if failure and failure.retryable and _retry_planned.get() and not tracker.status:
        status = RunStatus.AWAITING_RETRY
    if status not in RUN_TRANSITIONS[run.status]:
        raise ValueError(f"A run cannot go from {run.status} to {status}.")
    run.status = status
    run.message = (tracker.message or (failure.message if failure else ""))[:2000]
    run.finished_at = timezone.now()
    run.duration = run.finished_at - run.started_at
    run.counts = dict(tracker.counts)
    run.request_ids = _unique(tracker.request_ids)[:REQUEST_IDS_MAX]
    run.log = "\n".join(tracker._log)
    run.save(update_fields=["status", "message", "finished_at", "duration", "counts", "request_ids", "log",
                            "updated_at"])
    if failure:
        IntegrationEvent.objects.create(business_id=run.business_id, run=run, kind=failure.kind,
                                        message=failure.message[:2000], action=failure.action,
                                        action_url=failure.action_url or _default_url(run, failure.action))
    streak_update(business_id=run.business_id, kind=run.kind, status=run.status, run=run, internal=_internal(failure))


def _internal(failure: Failure | None) -> bool:
    return failure is not None and failure.kind == EventKind.INTERNAL


def _unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _default_url(run: IntegrationRun, action: str) -> str:
    from django.urls import reverse

    if action == EventAction.RECONNECT:
        return reverse("stripe_integration:settings")
    if action == EventAction.MAP_SERVICE:
        return reverse("admin:services_service_changelist")
    kind, _, ref = run.subject.partition(":")
    if action == EventAction.RETRY and kind == "invoice" and ref.isdigit():
        return reverse("ui:invoice_detail", args=[int(ref)])
    return reverse("stripe_integration:run_detail", args=[run.pk])


def streak_update(*, business_id: int, kind: str, status: str, run: IntegrationRun, internal: bool = False) -> None:
    """The business's streak of failed runs of `kind` after a run of it ended with `status`:
    a complete run ends the streak, a failed one adds one, the others leave it. A streak
    of `auto_disable_after` disables the integration (once). Streaks are per kind of job
    (m3ter's integrations are per job too): webhooks processed fine do not hide ten
    invoice pushes failing in a row.

    A failure inside the app (`internal`: a bug, not Stripe's answer) is recorded but
    leaves the streak alone: not calling Stripe would not fix it."""
    if internal or (status != RunStatus.COMPLETE and status not in FAILED_RUN_STATUSES):
        return
    rows = IntegrationSettings.objects.filter(business_id=business_id)
    if status == RunStatus.COMPLETE:
        if not rows.filter(failed_streaks__has_key=kind).exists():
            return  # the usual case: one query
        with transaction.atomic():
            row = rows.select_for_update().first()
            row.failed_streaks.pop(kind, None)
            row.save(update_fields=["failed_streaks", "updated_at"])
        return
    with transaction.atomic():
        row = rows.select_for_update().first()
        if row is None:
            from crm.models import Business

            IntegrationSettings.for_business(Business.objects.get(pk=business_id))
            row = rows.select_for_update().first()
        row.failed_streaks[kind] = row.failed_streaks.get(kind, 0) + 1
        row.save(update_fields=["failed_streaks", "updated_at"])
    streak = row.failed_streaks[kind]
    if not row.disabled and row.auto_disable_after and streak >= row.auto_disable_after:
        from .disable import integration_disable

        integration_disable(business_id=business_id, run=run,
                            reason=f"Stripe integration disabled after {streak} failed runs in a row "
                                   f"({run.get_kind_display().lower()}, last {run.get_status_display().lower()}).")


# --- webhook processing: one run per business per batch ------------------------------------
@dataclass
class _BusinessPart:
    livemode: bool = False
    counts: Counter = field(default_factory=Counter)
    request_ids: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    log: list = field(default_factory=list)
    first_at: object = None


class WebhookBatch:
    def __init__(self):
        self.started_at = timezone.now()
        self.parts: dict[int, _BusinessPart] = defaultdict(_BusinessPart)
        self.pending: Failure | None = None  # the failure of the delivery being processed

    def add(self, delivery, ids: list[str]) -> None:
        failure, self.pending = self.pending, None
        if delivery is None or not delivery.business_id:
            return  # skipped (another worker has it), or an event of no business
        part = self.parts[delivery.business_id]
        part.livemode = delivery.livemode
        outcome = "held" if getattr(delivery, "_held", False) else delivery.status
        part.counts[outcome] += 1
        part.request_ids.extend(ids)
        if delivery.status == "failed":
            failure = failure or Failure(RunStatus.ERROR, EventKind.INTERNAL, EventAction.VIEW_RUN, delivery.error)
            part.failures.append(failure)
            part.log.append(f"{delivery.event_id} ({delivery.type}) failed: {failure.message}")

    def flush(self) -> None:
        if not self.parts:
            return
        now = timezone.now()
        runs = []
        for business_id, part in self.parts.items():
            failure = part.failures[-1] if part.failures else None
            if failure:
                status = failure.status
                message = f"{len(part.failures)} deliveries failed; last: {failure.message}"
            elif part.counts.get("held") and len(part.counts) == 1:
                status, message = RunStatus.DISABLED, "Held: the Stripe integration is disabled for this business."
            else:
                status, message = RunStatus.COMPLETE, ""
            runs.append(IntegrationRun(
                business_id=business_id, kind=RunKind.WEBHOOK_PROCESSING, status=status, livemode=part.livemode,
                started_at=self.started_at, finished_at=now, duration=now - self.started_at, counts=dict(part.counts),
                request_ids=_unique(part.request_ids)[:REQUEST_IDS_MAX], message=message[:2000],
                log="\n".join(part.log)[:LOG_MAX_CHARS],
            ))
        IntegrationRun.objects.bulk_create(runs)
        events = []
        for run in runs:
            part = self.parts[run.business_id]
            if part.failures:
                if run.pk is None:  # a backend that does not return ids from bulk inserts
                    run = IntegrationRun.objects.filter(business_id=run.business_id).order_by("-pk").first()
                failure = part.failures[-1]
                events.append(IntegrationEvent(
                    business_id=run.business_id, run=run, kind=failure.kind, message=run.message, action=failure.action,
                    action_url=failure.action_url or _default_url(run, failure.action)))
        if events:
            IntegrationEvent.objects.bulk_create(events)
        complete = [r.business_id for r in runs if r.status == RunStatus.COMPLETE]
        streaking = set(IntegrationSettings.objects.filter(
            business_id__in=complete, failed_streaks__has_key=RunKind.WEBHOOK_PROCESSING,
        ).values_list("business_id", flat=True)) if complete else set()  # one query, usually empty
        for run in runs:
            failures = self.parts[run.business_id].failures
            if run.status in FAILED_RUN_STATUSES or run.business_id in streaking:
                streak_update(business_id=run.business_id, kind=run.kind, status=run.status, run=run,
                              internal=bool(failures) and _internal(failures[-1]))


@contextmanager
def webhook_batch():
    """Group the deliveries processed inside the block into one run per business (joins
    the batch already open, if any). Writes at the end: a bulk insert of the runs, and one
    streak update (plus the events of failed runs)."""
    outer = _batch.get()
    if outer is not None:
        yield outer
        return
    batch = WebhookBatch()
    token = _batch.set(batch)
    try:
        yield batch
    finally:
        _batch.reset(token)
        try:
            batch.flush()
        except Exception:  # noqa: BLE001 - bookkeeping must not change the processing's outcome
            log.exception("Recording a webhook processing run failed")
