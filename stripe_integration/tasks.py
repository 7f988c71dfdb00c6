"""Thin Celery tasks of the Stripe integration (STYLE.md 7): take ids, call one service,
own the retry policy.

Retry policy of the catalog and customer syncs: a failure Stripe calls retryable
(unavailable, rate limited after the gateway's own backoff) is retried with exponential
backoff; a retry carries the same idempotency keys (the sync row's version has not moved),
so it never makes a second product, price or customer. Any other failure is already
recorded on its row (state "error" with Stripe's message, shown in the admin with a retry
action), so the task ends there. Eager Celery (the embedded default, where the task runs
inside the web request) does not retry: the request would hang on the backoff; the admin's
retry is there instead (as for the invoice push, invoicing/tasks.py).

The Celery entry point of the app: autodiscovery imports only `<app>.tasks`, so the
capability task modules are imported at the end (also in settings.CELERY_IMPORTS).
"""
from celery import shared_task
from django.db import transaction

from .catalog import sync as catalog
from .customers import links as customers

RETRY_BACKOFF = 10  # seconds, doubled per retry, capped
RETRY_BACKOFF_MAX = 600
MAX_RETRIES = 6


def enqueue_on_commit(task, *args) -> None:
    """Send `task(*args)` once the current transaction commits. Robust: a broker that is
    down must not undo the edit that asked for it (its row stays "pending", and the admin
    offers the retry)."""
    def send():
        task.delay(*args)

    transaction.on_commit(send, robust=True)


def _retry_or_report(task, exc) -> str:
    if exc.retryable and not task.request.is_eager:
        raise task.retry(exc=exc, countdown=min(RETRY_BACKOFF_MAX, RETRY_BACKOFF * 2 ** task.request.retries))
    return f"error: {exc.message}"


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def service_sync_task(self, service_id: int, force: bool = False) -> str:
    try:
        outcome = catalog.service_sync_by_id(service_id=service_id, force=force)
    except catalog.CatalogSyncError as exc:
        return _retry_or_report(self, exc)
    return outcome.state if outcome else "skipped"


@shared_task(acks_late=True)
def catalog_sync_task(run_id: int) -> str:
    run = catalog.catalog_sync_run_by_id(run_id=run_id)
    return run.status if run else "skipped"


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def customer_push_task(self, link_id: int) -> str:
    try:
        link = customers.customer_push_by_id(link_id=link_id)
    except customers.CustomerLinkError as exc:
        return _retry_or_report(self, exc)
    return link.state if link else "skipped"


# --- the invoice push and the webhook inbox: registered with Celery through this module ---
from .invoicing import tasks as invoicing_tasks  # noqa: E402,F401
from .webhooks import tasks as webhook_tasks  # noqa: E402,F401
