"""The periodic sweep of invoice pushes (issue 12): every push that failed, stuck (a dead
worker's "pushing" past its lease) or never started (its queued task lost) is pushed
again, across all businesses. Called by `invoice_pushes_sweep_task` (Celery beat in
production; `manage.py stripe_periodic` under the embedded default). It only queues
`invoice_push_task`, whose claim, recovery and idempotency keys keep every retry
exactly-once (see `invoicing.push`).

Only where Stripe still lets the push finish, as for the Retry button
(`invoicing.actions.push_retryable`): local drafts and open invoices. A mismatch, which
Retry offers, is not swept: it is a difference of totals that waits for a person; nor is
a draft whose Delete failed or died half-way (`invoicing.actions.DELETE_FAILED`): someone
meant to delete it, and sending it would be the opposite. A failed push is retried
with exponential backoff by its attempt count (1 min, 2, 4, ... up to 6 hours), so a
failure that needs a person (a refused customer address) costs a few calls a day.
"""
from __future__ import annotations

import datetime

from django.db.models import Q
from django.utils import timezone

from finance.models import Invoice, InvoicePushStatus, InvoiceStatus

from .push import lease_seconds
from .actions import DELETE_FAILED

BASE_DELAY = 60  # seconds before the first sweep retry of a failed push, doubled per attempt
MAX_DELAY = 6 * 3600
BATCH = 200  # invoices queued per sweep at most; the next sweep takes the rest


def retry_delay(attempts: int) -> float:
    return min(MAX_DELAY, BASE_DELAY * 2 ** max(0, min(attempts - 1, 20)))


def invoice_pushes_due(*, now: datetime.datetime | None = None) -> list[tuple[int, bool]]:
    """(invoice id, takeover) of the pushes to run again now, oldest first."""
    now = now or timezone.now()
    lease_ago = now - datetime.timedelta(seconds=lease_seconds())
    open_states = [InvoiceStatus.DRAFT, InvoiceStatus.OPEN]
    stuck = (Invoice.objects.filter(push_status=InvoicePushStatus.PUSHING, status__in=open_states)
             .filter(Q(push_claimed_at__lt=lease_ago) | Q(push_claimed_at__isnull=True))
             .exclude(last_error__startswith=DELETE_FAILED))
    # Built and queued, but never claimed: the task was lost (broker down at commit).
    never = (Invoice.objects.filter(push_status=InvoicePushStatus.PENDING, status=InvoiceStatus.DRAFT,
                                    push_claimed_at__isnull=True, created_at__lt=lease_ago)
             .exclude(approved=False, business__stripe_settings__only_approved=True))
    failed = (Invoice.objects.filter(push_status=InvoicePushStatus.FAILED, status__in=open_states)
              .exclude(last_error__startswith=DELETE_FAILED))
    # A business whose integration is disabled (runs.disable) waits for its re-enable,
    # which queues its unfinished pushes itself.
    held = Q(business__stripe_settings__disabled=True)
    stuck, never, failed = stuck.exclude(held), never.exclude(held), failed.exclude(held)
    due = [(pk, True) for pk in stuck.order_by("pk").values_list("pk", flat=True)[:BATCH]]
    due += [(pk, False) for pk in never.order_by("pk").values_list("pk", flat=True)[:BATCH]]
    for pk, attempts, claimed in failed.order_by("pk").values_list("pk", "push_attempts", "push_claimed_at")[:BATCH * 5]:
        if claimed is None or (now - claimed).total_seconds() >= retry_delay(attempts):
            due.append((pk, False))
    return due[:BATCH]


def invoice_pushes_sweep(*, now: datetime.datetime | None = None) -> int:
    """Queue a push of every invoice `invoice_pushes_due` names; returns how many."""
    from .tasks import invoice_push_task  # the tasks module imports this one

    due = invoice_pushes_due(now=now)
    for invoice_id, takeover in due:
        invoice_push_task.delay(invoice_id, takeover)
    return len(due)
