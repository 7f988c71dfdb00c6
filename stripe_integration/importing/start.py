"""Starting an import: on the first connect of an account with history, or by the
settings page's button (which also resumes one that stopped).

An import runs in a worker, never in the request that starts it: `import_start` marks it
waiting and, with a broker, queues its task; the periodic sweep (`tasks.imports_sweep_task`,
beat entry `stripe-import-sweep`) starts waiting imports (with a broker, only those whose
queued task was lost) and resumes one whose worker died (running, no page saved for
`STALE_AFTER`). Without a broker Celery is eager (`CELERY_TASK_ALWAYS_EAGER`): queuing
would run the import inside the request, so nothing is queued and the sweep (run every
few seconds by `manage.py stripe_periodic`) starts it.
A worker runs an import only once it has claimed it (`import_claim`, one conditional
UPDATE): two workers never run the same import."""
from __future__ import annotations

import logging

from datetime import timedelta

from celery import current_app
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import Business

from ..gateway.client import GatewayError
from ..models import ImportStatus, StripeConnection, StripeImport
from ..runs.disable import integration_is_disabled

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=10)  # far beyond one page (100 objects) of work


class ImportError_(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def import_latest(*, business: Business) -> StripeImport | None:
    return StripeImport.objects.filter(business=business).select_related("connection").first()


def import_start(*, connection: StripeConnection, user=None) -> StripeImport:
    """Queue an import of the connection's account (on commit), or resume the one that
    stopped; refuses while one is waiting or running."""
    if not connection.is_active:
        raise ImportError_("Connect a Stripe account first.")
    with transaction.atomic():
        current = (StripeImport.objects.select_for_update().filter(business=connection.business, connection=connection)
                   .exclude(status=ImportStatus.COMPLETE).first())
        # A running import that has not saved a page for a while was killed with its
        # worker: it is resumed from its saved chains like one that stopped on an error.
        stale = current is not None and current.updated_at < timezone.now() - STALE_AFTER
        if current is not None and current.status in (ImportStatus.WAITING, ImportStatus.RUNNING) and not stale:
            raise ImportError_("An import of this account is already under way.")
        job = current or StripeImport(business=connection.business, connection=connection,
                                      livemode=connection.livemode, started_by=user)
        if current is not None:
            job.status = ImportStatus.WAITING
        job.full_clean()
        job.save()
    if queued_at_start():  # eager: the sweep starts it, outside this request
        from .tasks import stripe_import_task

        transaction.on_commit(lambda: stripe_import_task.delay(job.pk))
    return job


def queued_at_start() -> bool:
    """Whether `import_start` queues the import's task: only with a broker. Eager Celery
    would run it inside the request that starts it."""
    return not current_app.conf.task_always_eager


def _claimable(now, waited=timedelta(0)) -> Q:
    """Imports a worker may take, on the row's own columns: waiting ones (for longer than
    `waited`), and running ones whose worker stopped saving pages (killed)."""
    return (Q(status=ImportStatus.WAITING, updated_at__lte=now - waited)
            | Q(status=ImportStatus.RUNNING, updated_at__lt=now - STALE_AFTER))


def import_claim(*, import_id: int) -> StripeImport | None:
    """Take the import for this worker, or None when it is not claimable (another worker
    has it, it finished or stopped on an error, or the business's integration is disabled:
    it waits for re-enable). One conditional UPDATE on the row's own columns (a join would
    turn it into a subquery that PostgreSQL checks against its old snapshot): of two
    concurrent claims, the second finds the row already running and fresh."""
    business_id = StripeImport.objects.filter(pk=import_id).values_list("business_id", flat=True).first()
    if business_id is None or integration_is_disabled(business=business_id):
        return None
    now = timezone.now()
    if not StripeImport.objects.filter(_claimable(now), pk=import_id).update(status=ImportStatus.RUNNING, updated_at=now):
        return None
    return StripeImport.objects.get(pk=import_id)


def imports_claimable() -> list[int]:
    """The ids of the imports the sweep should start or resume, oldest first. With a
    broker, a waiting import's task was queued when it started: only one still waiting
    after `STALE_AFTER` (its message lost) is queued again."""
    waited = STALE_AFTER if queued_at_start() else timedelta(0)
    return list(StripeImport.objects.filter(_claimable(timezone.now(), waited))
                .exclude(business__stripe_settings__disabled=True)  # they wait for re-enable
                .order_by("created_at", "pk").values_list("pk", flat=True))


def import_start_on_connect(*, connection: StripeConnection, user=None) -> StripeImport | None:
    """The first connect of an account that holds customers or invoices imports them."""
    from ..connect.oauth import gateway

    if StripeImport.objects.filter(business=connection.business, connection__stripe_user_id=connection.stripe_user_id).exists():
        return None
    try:
        gw = gateway(connection.livemode)
        has_history = any(gw.list_page(account=connection.stripe_user_id, resource=resource, limit=1)[0]
                          for resource in ("customers", "invoices"))
    except GatewayError as exc:
        log.warning("Could not look for history in %s: %s", connection.stripe_user_id, exc.user_message)
        return None
    if not has_history:
        return None
    return import_start(connection=connection, user=user)
