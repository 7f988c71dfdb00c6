"""Money owed, for the home page and the aging report (issue 14).

What is owed is the `amount_remaining` Stripe reports (as stored) of the business's OPEN
invoices; "overdue" is open and past its due date (finance.filters.overdue_q, the one
rule). Uncollectible invoices are written off and drafts are not owed yet, so neither
counts. Figures are per currency, never added across currencies; each report is one
aggregate query whatever the number of invoices (the per-contact one paginated: a count
and a page), on the index (business, status, due_date).
"""
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce

from crm.models import Business
from finance.filters import overdue_q
from finance.models import MONEY, Invoice, InvoiceStatus
from finance.modes import in_mode

_MONEY = DecimalField(**MONEY)


def _sum(condition: Q | None = None):
    return Coalesce(Sum("amount_remaining", filter=condition), Value(Decimal("0")), output_field=_MONEY)


def _open(business: Business, livemode: bool | None = None):
    return in_mode(Invoice.objects.for_business(business), livemode).filter(status=InvoiceStatus.OPEN)


def money_owed(*, business: Business, today, livemode: bool | None = None) -> list[dict]:
    """[{"currency", "outstanding", "outstanding_count", "overdue", "overdue_count"}], one
    row per currency with open invoices, by currency code."""
    overdue = overdue_q(today=today)
    return list(
        _open(business, livemode).order_by().values("currency")
        .annotate(outstanding=_sum(), outstanding_count=Count("pk"),
                  overdue=_sum(overdue), overdue_count=Count("pk", filter=overdue))
        .order_by("currency")
    )


@dataclass(frozen=True)
class Bucket:
    key: str
    label: str
    condition: Q


def aging_buckets(*, today) -> list[Bucket]:
    """Days past due: current (not yet due, or no due date), 1-30, 31-60, 61-90, over 90.
    An invoice due today is current; due yesterday is 1 day past due."""
    def ago(days):
        return today - timedelta(days=days)

    return [
        Bucket("current", "Current", Q(due_date__isnull=True) | Q(due_date__gte=today)),
        Bucket("d1_30", "1-30 days", Q(due_date__lte=ago(1), due_date__gte=ago(30))),
        Bucket("d31_60", "31-60 days", Q(due_date__lte=ago(31), due_date__gte=ago(60))),
        Bucket("d61_90", "61-90 days", Q(due_date__lte=ago(61), due_date__gte=ago(90))),
        Bucket("over_90", "Over 90 days", Q(due_date__lt=ago(90))),
    ]


def _aging_annotations(today) -> dict:
    sums = {b.key: _sum(b.condition) for b in aging_buckets(today=today)}
    return {**sums, "total": _sum(), "count": Count("pk")}


def aging_by_currency(*, business: Business, today, livemode: bool | None = None) -> list[dict]:
    """One row per currency: the buckets' sums, total and invoice count."""
    return list(
        _open(business, livemode).order_by().values("currency").annotate(**_aging_annotations(today)).order_by("currency")
    )


def aging_by_contact(*, business: Business, today, currency: str | None = None, livemode: bool | None = None):
    """One row per (currency, contact), largest total first within a currency: a
    queryset of dicts, to paginate."""
    qs = _open(business, livemode)
    if currency:
        qs = qs.filter(currency=currency)
    return (
        qs.order_by().values("currency", "bill_to_id", "bill_to__name")
        .annotate(**_aging_annotations(today))
        .order_by("currency", "-total", "bill_to__name", "bill_to_id")
    )
