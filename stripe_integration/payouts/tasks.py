"""The periodic payout sync (settings.CELERY_BEAT_SCHEDULE, `manage.py stripe_periodic`):
every active connection, test and live mode each with its own client, one account's
failure not stopping the others; each account's sync is a recorded run (runs.track_run)."""
from __future__ import annotations

import logging

from celery import shared_task

from ..gateway.client import GatewayError
from ..models import ConnectionStatus, StripeConnection
from .sync import payouts_sync_account

log = logging.getLogger(__name__)


def payouts_sync_all() -> dict[int, dict]:
    """{connection id: counts} of every active connection (the failed ones: {"error": ...})."""
    results = {}
    connections = StripeConnection.objects.filter(status=ConnectionStatus.CONNECTED)
    for connection in connections.select_related("business").order_by("pk"):
        try:
            results[connection.pk] = payouts_sync_recorded(connection=connection)
        except GatewayError as exc:
            log.warning("Payout sync of %s (%s) failed: %s", connection.business, connection.stripe_user_id,
                        exc.user_message)
            results[connection.pk] = {"error": exc.user_message}
    return results


def payouts_sync_recorded(*, connection: StripeConnection) -> dict:
    """One account's payout sync as a run (counts, request ids; a failure's event). A
    disabled integration records a disabled run and calls nothing."""
    from ..runs import RunKind, track_run

    with track_run(connection.business, RunKind.PAYOUT_SYNC, livemode=connection.livemode,
                   subject=f"payouts:{connection.stripe_user_id}") as run:
        if run.disabled:
            return {"disabled": 1}
        counts = payouts_sync_account(connection=connection)
        for name, n in counts.items():
            if n:
                run.count(name, n)
        return counts


@shared_task(name="stripe_integration.payouts.tasks.payouts_sync_task")
def payouts_sync_task() -> None:
    payouts_sync_all()
