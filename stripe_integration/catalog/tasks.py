"""Celery tasks of the catalog sync (thin: ids in, one service call each; the retry
policy is `stripe_integration.tasks.retry_or_report`). Each keeps the name it had in
`stripe_integration.tasks` (`name=`), so queued messages still find it."""
from celery import shared_task

from ..runs import retry_planned
from ..tasks import MAX_RETRIES, retries_left, retry_or_report
from . import sync as catalog


@shared_task(name="stripe_integration.tasks.service_sync_task",
             bind=True, acks_late=True, max_retries=MAX_RETRIES)
def service_sync_task(self, service_id: int, force: bool = False, livemode: bool | None = None) -> str:
    try:
        with retry_planned(retries_left(self)):
            outcome = catalog.service_sync_by_id(service_id=service_id, force=force, livemode=livemode)
    except catalog.CatalogSyncError as exc:
        return retry_or_report(self, exc)
    return outcome.state if outcome else "skipped"


@shared_task(name="stripe_integration.tasks.catalog_sync_task", acks_late=True)
def catalog_sync_task(run_id: int) -> str:
    run = catalog.catalog_sync_run_by_id(run_id=run_id)
    return run.status if run else "skipped"
