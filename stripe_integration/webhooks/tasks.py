"""Celery tasks of the webhook inbox (thin: ids in, one service call each).

Imported by `stripe_integration.tasks` and listed in settings.CELERY_IMPORTS, so that a
worker registers them. Each keeps the name it had in `stripe_integration.webhook_tasks`
(`name=`), so queued messages and the beat schedule still find it.
"""
from celery import shared_task
from django.db import OperationalError

from .catch_up import catch_up_all
from .processing import deliveries_process_received, deliveries_retry_due, delivery_process


# OperationalError: the database itself failed (lost connection, lock timeout). Handler
# errors are recorded on the delivery by the service and retried by the sweep instead.
@shared_task(name="stripe_integration.webhook_tasks.webhook_delivery_process_task",
             bind=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5, ignore_result=True)
def webhook_delivery_process_task(self, delivery_id: int) -> None:
    delivery_process(delivery_id=delivery_id)


@shared_task(name="stripe_integration.webhook_tasks.webhook_inbox_drain_task",
             bind=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5, ignore_result=True)
def webhook_inbox_drain_task(self) -> None:
    deliveries_process_received()


@shared_task(name="stripe_integration.webhook_tasks.webhook_deliveries_retry_task",
             ignore_result=True)
def webhook_deliveries_retry_task() -> None:
    deliveries_retry_due()


@shared_task(name="stripe_integration.webhook_tasks.stripe_catch_up_task",
             ignore_result=True)
def stripe_catch_up_task() -> None:
    catch_up_all()
