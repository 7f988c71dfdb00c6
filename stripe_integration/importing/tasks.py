"""The import's Celery tasks: thin, they take the job's id. `stripe_import_task` runs an
import once it has claimed it (`import_claim`); `imports_sweep_task` (beat entry
`stripe-import-sweep`) starts waiting imports and resumes those whose worker died
(`start.imports_claimable`)."""
from celery import shared_task

from ..models import ImportStatus, StripeImport


@shared_task(name="stripe_integration.importing.stripe_import_task")
def stripe_import_task(import_id: int) -> dict:
    from .engine import run_import
    from .start import import_claim

    job = import_claim(import_id=import_id)
    if job is None:
        return {}  # another worker has it, or it is not waiting
    counts = run_import(job)
    # run_import ends an import complete or stopped on an error; one it left untouched
    # since the claim (the integration was disabled meanwhile) waits again.
    StripeImport.objects.filter(pk=job.pk, status=ImportStatus.RUNNING, updated_at=job.updated_at).update(
        status=ImportStatus.WAITING)
    status = StripeImport.objects.filter(pk=job.pk).values_list("status", flat=True).first()
    if status == ImportStatus.COMPLETE:
        from ..catalog.sync import catalog_sync_after_import

        catalog_sync_after_import(import_id=job.pk)
    elif status == ImportStatus.ERROR:
        # The catalog sync keeps waiting for it: a waiting run says why and what to do.
        from ..catalog.sync import catalog_sync_after_import_error

        catalog_sync_after_import_error(import_id=job.pk)
    return counts


@shared_task(name="stripe_integration.importing.imports_sweep_task")
def imports_sweep_task() -> int:
    """Queue (eager: run, one after the other) the imports to start or resume; returns how many."""
    from .start import imports_claimable

    ids = imports_claimable()
    for import_id in ids:
        stripe_import_task.delay(import_id)
    return len(ids)
