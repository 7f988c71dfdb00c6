"""Auto-disable (issue 15, m3ter): after `auto_disable_after` failed runs in a row the
business's integration stops calling Stripe, e-mails the users chosen for it, and shows
a banner to its finance and owner roles; re-enabling is one click and retries what
waited (unfinished invoice pushes, held webhook deliveries, a catch-up, a catalog sync).

The flag lives on `IntegrationSettings` (`disabled`, `disabled_at`, `disabled_reason`);
every job checks it through `track_run` (`run.disabled`) before calling Stripe.
"""
from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from crm.audit import audit_record
from crm.models import FINANCE_ROLES, Business

from ..models import EventAction, EventKind, IntegrationEvent, IntegrationRun, IntegrationSettings

log = logging.getLogger(__name__)


def integration_is_disabled(*, business) -> bool:
    business_id = getattr(business, "pk", business)
    return IntegrationSettings.objects.filter(business_id=business_id, disabled=True).exists()


class IntegrationDisabled(Exception):
    """A person's Stripe action (void, resend, credit note, save-card link...) refused
    because the business's integration is disabled or paused. Raised before any Stripe
    call or local change; `runs.middleware` answers it with this message and a link to
    re-enable, on any page (the app's or the admin's)."""

    message = "The Stripe integration is disabled: re-enable it first."

    def __init__(self):
        super().__init__(self.message)


def integration_require_enabled(*, business) -> None:
    """For the actions a person starts (background jobs use `track_run`'s `run.disabled`):
    raise IntegrationDisabled while the business's integration is disabled or paused."""
    if integration_is_disabled(business=business):
        raise IntegrationDisabled()


def integration_enabled_only(items, *, business_id_of) -> tuple[list, dict[int, int]]:
    """For a bulk action a person starts over items of one or several businesses (the
    admin's Sync to Stripe, Push contact details, invoice actions): (the items whose
    business's integration is enabled, {business id: items left out} for the businesses
    whose integration is disabled or paused). One query. Raises IntegrationDisabled when
    items were given and none is left: the action would do nothing, as for one business."""
    items = list(items)
    disabled = integrations_disabled(business_id_of(item) for item in items)
    if not disabled:
        return items, {}
    kept = [item for item in items if business_id_of(item) not in disabled]
    if not kept:
        raise IntegrationDisabled()
    return kept, dict(Counter(b for b in map(business_id_of, items) if b in disabled))


def integrations_disabled(business_ids) -> set[int]:
    """The ids among `business_ids` whose integration is disabled or paused (one query)."""
    return set(IntegrationSettings.objects.filter(business_id__in=set(business_ids), disabled=True)
               .values_list("business_id", flat=True))


def integration_skipped_messages(skipped: dict[int, int], what: str) -> list[str]:
    """One line per business `integration_enabled_only` left out: which, how many, why."""
    rows = (IntegrationSettings.objects.filter(business_id__in=list(skipped)).select_related("business")
            .order_by("business__name"))
    out = []
    for row in rows:
        why = f" ({row.disabled_reason[:200]})" if row.disabled_reason else ""
        out.append(f"{row.business.name}: {skipped[row.business_id]} {what} skipped, nothing done: its Stripe "
                   f"integration is disabled or paused{why}. Re-enable it (that business's Stripe runs page), "
                   "then run the action again for them.")
    return out


def alert_recipients(*, business: Business) -> list[str]:
    """The e-mail addresses of the users chosen for the alert; without a choice, the
    business's finance and owner members (somebody must hear of it)."""
    s = IntegrationSettings.for_business(business)
    users = s.alert_users.filter(memberships__business=business)
    if not users.exists():
        users = get_user_model().objects.filter(memberships__business=business, memberships__role__in=FINANCE_ROLES)
    return sorted({u.email for u in users.distinct() if u.email})


def integration_disable(*, business_id: int, reason: str, run: IntegrationRun | None = None, user=None) -> bool:
    """Disable the business's integration; True when this call did it (it was enabled).
    One e-mail per disabling, sent once the transaction commits."""
    now = timezone.now()
    with transaction.atomic():
        changed = IntegrationSettings.objects.filter(business_id=business_id, disabled=False).update(
            disabled=True, disabled_at=now, disabled_reason=reason[:2000])
        if not changed:
            return False
        business = Business.objects.get(pk=business_id)
        if run is not None:
            IntegrationEvent.objects.create(business_id=business_id, run=run, kind=EventKind.DISABLED, message=reason,
                                            action=EventAction.REENABLE, action_url=reverse("stripe_integration:run_list"))
        audit_record(business=business, user=user, action="stripe_integration_disabled", detail=reason[:2000])
        log.warning("Stripe integration of %s disabled: %s", business, reason)
        transaction.on_commit(lambda: _send_disabled_mail(business, reason), robust=True)
    return True


def _send_disabled_mail(business: Business, reason: str) -> None:
    recipients = alert_recipients(business=business)
    if not recipients:
        log.warning("Stripe integration of %s disabled; no one to e-mail (no address on file).", business)
        return
    link = settings.SITE_URL.rstrip("/") + reverse("stripe_integration:run_list")
    send_mail(
        subject=f"[{settings.PRODUCT_NAME}] Stripe integration disabled for {business.name}",
        message=(f"{reason}\n\nNothing is sent to Stripe for {business.name} until someone re-enables the "
                 f"integration. See the failed runs and re-enable it here:\n{link}\n"),
        from_email=None, recipient_list=recipients, fail_silently=False,
    )


def integration_reenable(*, business: Business, user=None, ip: str | None = None) -> dict[str, int]:
    """Re-enable and retry what waited: unfinished invoice pushes, webhook deliveries held
    while disabled, a catch-up of the missed events, a catalog sync. Returns what was
    queued. Does nothing (empty dict) when the integration was not disabled."""
    with transaction.atomic():
        rows = IntegrationSettings.objects.filter(business=business, disabled=True)
        disabled_at = rows.values_list("disabled_at", flat=True).first()
        if not rows.update(disabled=False, failed_streaks={}, disabled_reason="", disabled_at=None):
            return {}
        audit_record(business=business, user=user, action="stripe_integration_enabled", ip=ip,
                     detail="Stripe integration re-enabled; retrying what waited.")
    # Events Stripe sent while failing and disabled: from a catch-up window before disabling.
    since = disabled_at - timedelta(hours=settings.STRIPE_CATCH_UP_HOURS) if disabled_at else None
    return integration_retry_waiting(business=business, since=since)


def integration_retry_waiting(*, business: Business, since=None) -> dict[str, int]:
    """Queue again what waited while disabled (each queued on commit, as its own run)."""
    from ..catalog.sync import CatalogSyncError, catalog_sync_start
    from ..connect.oauth import connection_get_active
    from ..invoicing.push import invoices_unfinished
    from ..invoicing.tasks import invoice_push_task
    from ..models import DeliveryStatus, StripeConnection, WebhookDelivery
    from ..tasks import enqueue_on_commit
    from ..webhooks.catch_up import catch_up
    from ..webhooks.processing import deliveries_unpark

    from ..customers.tasks import customer_push_task
    from ..models import CustomerLink, CustomerState

    queued = {"invoice_pushes": 0, "webhook_deliveries": 0, "catch_up_events": 0, "catalog_sync": 0,
              "customer_pushes": 0}
    # Contact edits made while disabled left their Stripe customer "pending".
    for link_id in CustomerLink.objects.filter(business=business, state=CustomerState.PENDING).values_list("pk", flat=True):
        enqueue_on_commit(customer_push_task, link_id)
        queued["customer_pushes"] += 1
    for invoice_id in invoices_unfinished(business=business).values_list("pk", flat=True):
        enqueue_on_commit(invoice_push_task, invoice_id, True)
        queued["invoice_pushes"] += 1
    accounts = set(StripeConnection.objects.filter(business=business).values_list("stripe_user_id", flat=True))
    for account in accounts:
        queued["webhook_deliveries"] += WebhookDelivery.objects.filter(account=account, status=DeliveryStatus.PARKED).count()
        deliveries_unpark(account=account)
    connection = connection_get_active(business=business)
    if connection is not None:
        try:
            result = catch_up(connection=connection, since=since)
            queued["catch_up_events"] = len(result.stored)
        except Exception:  # noqa: BLE001 - recorded as the catch-up's run; the rest still goes ahead
            log.warning("Catch-up after re-enabling %s failed", business, exc_info=True)
        try:
            catalog_sync_start(business=business)
            queued["catalog_sync"] = 1
        except CatalogSyncError as exc:
            log.info("No catalog sync after re-enabling %s: %s", business, exc.message)
    return queued
