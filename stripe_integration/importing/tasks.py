"""The import's Celery task: thin, takes the job's id (eager in `make run`)."""
from celery import shared_task

from ..models import StripeImport


@shared_task(name="stripe_integration.importing.stripe_import_task")
def stripe_import_task(import_id: int) -> dict:
    from .engine import run_import

    job = StripeImport.objects.filter(pk=import_id).first()
    return run_import(job) if job is not None else {}
