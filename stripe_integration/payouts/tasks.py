"""The periodic payout sync (settings.CELERY_BEAT_SCHEDULE, `manage.py stripe_periodic`):
every active connection of the app's mode, one account's failure not stopping the others."""
from __future__ import annotations

import logging

from celery import shared_task

from ..connect.oauth import platform_livemode
from ..gateway.client import GatewayError
from ..models import ConnectionStatus, StripeConnection
from .sync import payouts_sync_account

log = logging.getLogger(__name__)


def payouts_sync_all() -> dict[int, dict]:
    """{connection id: counts} of every active connection (the failed ones: {"error": ...})."""
    results = {}
    connections = StripeConnection.objects.filter(status=ConnectionStatus.CONNECTED, livemode=platform_livemode())
    for connection in connections.select_related("business"):
        try:
            results[connection.pk] = payouts_sync_account(connection=connection)
        except GatewayError as exc:
            log.warning("Payout sync of %s (%s) failed: %s", connection.business, connection.stripe_user_id,
                        exc.user_message)
            results[connection.pk] = {"error": exc.user_message}
    return results


@shared_task(name="stripe_integration.payouts.tasks.payouts_sync_task")
def payouts_sync_task() -> None:
    payouts_sync_all()
