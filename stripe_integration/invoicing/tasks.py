"""Thin Celery tasks of the invoice push (STYLE.md 7): take ids, call one service, own the
retry policy. Registered with Celery through `stripe_integration.tasks` (which imports
this module), since autodiscovery only looks at `tasks.py`. The task keeps the name it had
in `stripe_integration.tasks_invoicing` (`name=`), so queued messages still find it.

Retry policy: a push that failed on something Stripe calls retryable (unavailable, rate
limited after the gateway's own backoff) is retried with exponential backoff; every retry
carries the same idempotency keys and starts by re-reading Stripe, so it never makes a
second invoice. The run of an attempt that will be retried ends `awaiting_retry`
(`runs.retry_planned`); the last attempt's ends complete or failed. Other failures are
recorded on the invoice (failed / mismatch, with Stripe's message and a Retry in the
admin) and end the task. Eager Celery (the embedded
default, where the task runs inside the web request) does not retry: the request would
hang on the backoff; the Retry button and the periodic sweep (`invoice_pushes_sweep_task`,
see `invoicing.sweep`) are there instead.
"""
from celery import shared_task

from . import push as invoicing
from . import sweep as invoicing_sweep
from . import unbilled_run

RETRY_BACKOFF = 10  # seconds, doubled per retry, capped
RETRY_BACKOFF_MAX = 600
MAX_RETRIES = 6


@shared_task(name="stripe_integration.tasks_invoicing.invoice_push_task",
             bind=True, acks_late=True, max_retries=MAX_RETRIES)
def invoice_push_task(self, invoice_id: int, takeover: bool = False) -> str:
    from ..runs import retry_planned
    from ..tasks import retries_left

    with retry_planned(retries_left(self)):  # a transient failure's run: awaiting retry
        result = invoicing.invoice_push(invoice_id=invoice_id, takeover=takeover)
    if result.retryable and not self.request.is_eager:
        countdown = min(RETRY_BACKOFF_MAX, RETRY_BACKOFF * 2 ** self.request.retries)
        raise self.retry(countdown=countdown)
    return result.outcome


@shared_task(name="stripe_integration.invoicing.tasks.invoice_pushes_sweep_task", ignore_result=True)
def invoice_pushes_sweep_task() -> None:
    invoicing_sweep.invoice_pushes_sweep()


@shared_task(name="stripe_integration.invoicing.tasks.invoice_run_push_task", ignore_result=True, acks_late=True)
def invoice_run_push_task(run_id: int) -> None:
    # No retry: each push has its own recovery (the sweep and Retry); a run that stopped
    # says so on its page and its invoices are resumed by the next run.
    unbilled_run.invoice_run_push(run_id=run_id)
