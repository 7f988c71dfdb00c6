"""Celery task of the customer push (thin: an id in, one service call; the retry policy
is `stripe_integration.tasks.retry_or_report`). It keeps the name it had in
`stripe_integration.tasks` (`name=`), so queued messages still find it."""
from celery import shared_task

from ..tasks import MAX_RETRIES, retry_or_report
from . import links as customers


@shared_task(name="stripe_integration.tasks.customer_push_task",
             bind=True, acks_late=True, max_retries=MAX_RETRIES)
def customer_push_task(self, link_id: int) -> str:
    try:
        link = customers.customer_push_by_id(link_id=link_id)
    except customers.CustomerLinkError as exc:
        return retry_or_report(self, exc)
    return link.state if link else "skipped"
