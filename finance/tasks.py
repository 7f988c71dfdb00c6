"""Thin Celery tasks (STYLE.md 7): take ids, call one service, own the retry policy."""
from celery import shared_task
from django.db import OperationalError

from finance.services import invoice_recalculate_totals


# OperationalError: a lost connection, a deadlock or SQLite's "database is locked" - worth
# retrying with backoff. Anything else (e.g. the invoice was deleted) is a bug to surface.
@shared_task(bind=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def invoice_recalculate_totals_task(self, invoice_id: int) -> None:
    invoice_recalculate_totals(invoice_id=invoice_id)
