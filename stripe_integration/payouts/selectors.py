"""Reads of payouts for the staff UI, the export and the admin: always one business's,
a fixed number of queries per page whatever its size. `livemode` (the session's current
mode, finance.modes) keeps test payouts out of live views and the other way round; None:
both."""
from __future__ import annotations

from django.db.models import F, Q, QuerySet

from finance.modes import in_mode

from ..models import ItemException, Payout, PayoutItem


def payout_list(*, business, filters: dict | None = None, livemode: bool | None = None) -> QuerySet[Payout]:
    """`filters` (cleaned): status, currency, arrival_from, arrival_to, exceptions ("1":
    only payouts with an exception: an unmatched item, or items that do not add up)."""
    filters = filters or {}
    qs = in_mode(Payout.objects.filter(business=business), livemode)
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("currency"):
        qs = qs.filter(currency=filters["currency"].upper())
    if filters.get("arrival_from"):
        qs = qs.filter(arrival_date__date__gte=filters["arrival_from"])
    if filters.get("arrival_to"):
        qs = qs.filter(arrival_date__date__lte=filters["arrival_to"])
    if filters.get("exceptions"):
        qs = qs.filter(payout_exceptions_q())
    return qs.order_by("-arrival_date", "-pk")


def payout_exceptions_q() -> Q:
    """Payouts that need a look: an item without an invoice or with another amount, or
    items that do not add up to the payout (checked once the items are synced)."""
    unbalanced = Q(items_synced_at__isnull=False) & ~Q(net=F("amount"))
    return Q(exception_count__gt=0) | unbalanced


def payout_get(*, business, pk: int) -> Payout:
    return Payout.objects.get(business=business, pk=pk)


def payout_items(*, payout: Payout) -> QuerySet[PayoutItem]:
    return (PayoutItem.objects.filter(business=payout.business, payout=payout)
            .select_related("invoice__bill_to", "payment", "refund", "dispute").order_by("pk"))


def exception_items(*, business, livemode: bool | None = None) -> QuerySet[PayoutItem]:
    return (in_mode(PayoutItem.objects.filter(business=business), livemode, "payout__livemode").exclude(exception=ItemException.NONE)
            .select_related("payout", "invoice__bill_to", "payment").order_by("-payout__arrival_date", "pk"))


def unbalanced_payouts(*, business, livemode: bool | None = None) -> QuerySet[Payout]:
    return (in_mode(Payout.objects.filter(business=business, items_synced_at__isnull=False), livemode)
            .exclude(net=F("amount")).order_by("-arrival_date", "-pk"))
