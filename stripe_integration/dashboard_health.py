"""Integration health for finance's dashboard: is the Stripe link working for this business?

Read-only: the connection's state, the latest catalog sync run, services and customers
whose sync failed, invoice pushes that failed or stopped on a mismatch, and webhook
deliveries for the business's Stripe account(s) waiting or failed, with the lag of the
oldest waiting one. Registered for finance's "dashboard" page in `apps.ready()`
(finance imports nothing of Stripe). A fixed number of queries whatever the volume.
"""
from __future__ import annotations

from django.db.models import Count, Min, Q
from django.utils import timezone

from finance.models import Invoice, InvoicePushStatus

from .connect.oauth import connection_overview
from .models import CustomerLink, ServiceSync, StripeConnection, SyncRun, WebhookDelivery
from .models.sync import CustomerState, SyncState
from .models.webhooks import DeliveryStatus

WAITING = (DeliveryStatus.RECEIVED, DeliveryStatus.PARKED)


def integration_health(*, business, now=None, livemode: bool | None = None) -> dict:
    """The health of the connection of `livemode` (the viewer's current mode; None: the
    default mode's)."""
    now = now or timezone.now()
    overview = connection_overview(business=business, livemode=livemode)
    accounts = StripeConnection.objects.filter(business=business).values("stripe_user_id")
    deliveries = WebhookDelivery.objects.filter(
        account__in=accounts, status__in=[*WAITING, DeliveryStatus.FAILED]).aggregate(
        waiting=Count("pk", filter=Q(status__in=WAITING)),
        failed=Count("pk", filter=Q(status=DeliveryStatus.FAILED)),
        oldest_waiting=Min("received_at", filter=Q(status__in=WAITING)),
        oldest_failed=Min("received_at", filter=Q(status=DeliveryStatus.FAILED)),
    )
    pushes = Invoice.objects.for_business(business).filter(
        push_status__in=[InvoicePushStatus.FAILED, InvoicePushStatus.MISMATCH]).aggregate(
        failed=Count("pk", filter=Q(push_status=InvoicePushStatus.FAILED)),
        mismatch=Count("pk", filter=Q(push_status=InvoicePushStatus.MISMATCH)),
    )
    oldest = deliveries["oldest_waiting"]
    return {
        "state": overview.state,
        "connection": overview.connection,
        "catalog_run": SyncRun.objects.filter(business=business).order_by("-created_at", "-pk").first(),
        "services_failed": ServiceSync.objects.filter(business=business, state=SyncState.ERROR).count(),
        "customers_failed": CustomerLink.objects.filter(business=business, state=CustomerState.ERROR).count(),
        "pushes_failed": pushes["failed"], "pushes_mismatch": pushes["mismatch"],
        "deliveries_waiting": deliveries["waiting"], "deliveries_failed": deliveries["failed"],
        "oldest_waiting_at": oldest, "lag_seconds": int((now - oldest).total_seconds()) if oldest else 0,
        "oldest_failed_at": deliveries["oldest_failed"],
    }


def dashboard_context(*, business, membership=None, livemode: bool | None = None) -> dict:
    """finance's "dashboard" page: the `integration_health` panel of the current mode."""
    return {"integration_health": integration_health(business=business, livemode=livemode)}
