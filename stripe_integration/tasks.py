"""The Stripe integration's Celery entry point, and the retry policy of its sync tasks.

The tasks themselves are thin (STYLE.md 7: take ids, call one service) and live with their
capability: `catalog/tasks.py`, `customers/tasks.py`, `invoicing/tasks.py`,
`webhooks/tasks.py`, each keeping the name it was registered under before the move.

Retry policy of the catalog and customer syncs: a failure Stripe calls retryable
(unavailable, rate limited after the gateway's own backoff) is retried with exponential
backoff; a retry carries the same idempotency keys (the sync row's version has not moved),
so it never makes a second product, price or customer (a catalog sync's run of an attempt
that will be retried ends `awaiting_retry`: `retries_left`, `runs.retry_planned`). Any other failure is already
recorded on its row (state "error" with Stripe's message, shown in the admin with a retry
action), so the task ends there. Eager Celery (the embedded default, where the task runs
inside the web request) does not retry: the request would hang on the backoff; the admin's
retry is there instead (as for the invoice push, invoicing/tasks.py).

Celery's autodiscovery imports only `<app>.tasks`, so the capability task modules are
imported at the end of this one (settings.CELERY_IMPORTS lists them too).
"""
from django.db import transaction

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


def retries_left(task) -> bool:
    """Whether a transient failure of this run of `task` will be retried by Celery (a real
    worker, retries left): its run then ends `awaiting_retry` (`runs.retry_planned`)."""
    return not task.request.is_eager and task.request.retries < task.max_retries


def retry_or_report(task, exc) -> str:
    """A retryable failure (and a real worker): retry with backoff. Otherwise report it;
    the service has recorded it on its row."""
    if exc.retryable and not task.request.is_eager:
        raise task.retry(exc=exc, countdown=min(RETRY_BACKOFF_MAX, RETRY_BACKOFF * 2 ** task.request.retries))
    return f"error: {exc.message}"


# --- each capability's tasks: registered with Celery through this module ---
# Imported last: they import the retry policy above.
from .catalog import tasks as catalog_tasks  # noqa: E402,F401
from .customers import tasks as customer_tasks  # noqa: E402,F401
from .invoicing import tasks as invoicing_tasks  # noqa: E402,F401
from .payouts import tasks as payout_tasks  # noqa: E402,F401
from .webhooks import tasks as webhook_tasks  # noqa: E402,F401
