"""The billing overview's figures (issue 14), for finance and owners: selectors only.

Per currency, never added across currencies. By month (the last `MONTHS` calendar months,
the current one included, in the project's time zone):
  invoiced     totals of invoices finalized that month (void ones left out)
  outstanding  what those invoices still owe now (open ones' `amount_remaining`)
  overdue      the part of it past its due date (finance.filters.overdue_q, the one rule)
  collected    payments received that month (succeeded, even if refunded later), fees
  refunded     refunds made that month
Beside them: the payment success rate (succeeded / (succeeded + failed) in the period),
disputed invoices, and the top contacts by revenue collected less refunds. Each figure is
one aggregate query whatever the number of rows (tested: `test_dashboard.py`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Case, Count, DecimalField, F, IntegerField, Q, Sum, Value, When, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from crm.models import Business
from finance.filters import overdue_q
from finance.models import MONEY, Invoice, InvoiceStatus, Payment, PaymentStatus, Refund
from finance.modes import in_mode

MONTHS = 12
TOP_CONTACTS = 5
_MONEY = DecimalField(**MONEY)
_ZERO = Decimal("0")
COLLECTED_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


def _sum(expr, condition: Q | None = None):
    return Coalesce(Sum(expr, filter=condition), Value(_ZERO), output_field=_MONEY)


def month_starts(*, today: date, months: int = MONTHS) -> list[date]:
    """The first days of the last `months` months, oldest first, ending with today's."""
    year, month = today.year, today.month
    starts = []
    for _ in range(months):
        starts.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def _since(starts: list[date]):
    first = starts[0]
    return timezone.make_aware(datetime(first.year, first.month, 1))


@dataclass
class CurrencyFigures:
    """One currency's months and totals. `months` maps a month's first day to its figures."""

    currency: str
    months: dict = field(default_factory=dict)
    totals: dict = field(default_factory=dict)
    payments_succeeded: int = 0
    payments_failed: int = 0
    disputed_count: int = 0
    disputed_amount: Decimal = _ZERO
    top_contacts: list = field(default_factory=list)

    @property
    def success_rate(self) -> Decimal | None:
        """Share of payment attempts that succeeded, in percent (None without attempts)."""
        attempts = self.payments_succeeded + self.payments_failed
        if not attempts:
            return None
        return (Decimal(self.payments_succeeded) * 100 / attempts).quantize(Decimal("0.1"))


FIGURES = ("invoiced", "outstanding", "overdue", "collected", "fees", "refunded")


def billing_overview(*, business: Business, today: date, months: int = MONTHS,
                     livemode: bool | None = None) -> list[CurrencyFigures]:
    """Every currency the business has figures in for the period, by code; five queries."""
    starts = month_starts(today=today, months=months)
    since = _since(starts)
    by_currency: dict[str, CurrencyFigures] = {}

    def figures(currency, month=None) -> dict:
        cf = by_currency.get(currency)
        if cf is None:
            cf = by_currency[currency] = CurrencyFigures(
                currency, months={m: dict.fromkeys(FIGURES, _ZERO) for m in starts}, totals=dict.fromkeys(FIGURES, _ZERO))
        return cf if month is None else cf.months.get(month)

    # Each row falls in one month: a CASE over the month bounds gives its index, and the
    # sums are grouped by (currency, month) -- a few sums per row, not one filtered sum per
    # month and figure (36 FILTER clauses evaluated on every row, and as many columns to
    # compile and convert), and no per-row date truncation (a Python function on SQLite).
    bounds = _month_bounds(starts)
    invoices = _by_month(
        in_mode(Invoice.objects.for_business(business), livemode).exclude(status=InvoiceStatus.VOID), "finalized_at", bounds,
        invoiced=_sum("total"), outstanding=_sum("amount_remaining", Q(status=InvoiceStatus.OPEN)),
        overdue=_sum("amount_remaining", overdue_q(today=today)))
    payments = _by_month(
        in_mode(Payment.objects.for_business(business), livemode).filter(status__in=COLLECTED_STATUSES), "paid_at", bounds,
        collected=_sum("amount"), fees=_sum("fee"))
    refunds = _by_month(
        in_mode(Refund.objects.for_business(business), livemode).filter(status="succeeded"), "created_at", bounds,
        refunded=_sum("amount"))
    for rows, names in ((invoices, ("invoiced", "outstanding", "overdue")), (payments, ("collected", "fees")),
                        (refunds, ("refunded",))):
        for row in rows:
            month = figures(row["currency"], bounds[row["month_index"]][0])
            for name in names:
                month[name] += row[name]

    attempts = (
        in_mode(Payment.objects.for_business(business), livemode).filter(created_at__gte=since).order_by().values("currency")
        .annotate(succeeded=Count("pk", filter=Q(status__in=COLLECTED_STATUSES)),
                  failed=Count("pk", filter=Q(status=PaymentStatus.FAILED)))
    )
    for row in attempts:
        cf = figures(row["currency"])
        cf.payments_succeeded, cf.payments_failed = row["succeeded"], row["failed"]

    disputed = (
        in_mode(Invoice.objects.for_business(business), livemode).filter(disputed=True).order_by().values("currency")
        .annotate(count=Count("pk"), amount=_sum("amount_paid"))
    )
    for row in disputed:
        cf = figures(row["currency"])
        cf.disputed_count, cf.disputed_amount = row["count"], row["amount"]

    for cf in by_currency.values():
        for month in cf.months.values():
            for name in FIGURES:
                cf.totals[name] += month[name]
    return [by_currency[c] for c in sorted(by_currency)]


def _month_bounds(starts: list[date]) -> list[tuple[date, datetime, datetime]]:
    """(month, first instant, first instant of the next month) in the current time zone."""
    def instant(d):
        return timezone.make_aware(datetime(d.year, d.month, 1))

    nexts = [*starts[1:], date(starts[-1].year + starts[-1].month // 12, starts[-1].month % 12 + 1, 1)]
    return [(m, instant(m), instant(n)) for m, n in zip(starts, nexts)]


def _by_month(queryset, stamp: str, bounds, **sums):
    """Rows {"currency", "month_index", **sums} of `queryset` whose `stamp` falls in one
    of the months of `bounds` (index into it), grouped by currency and month."""
    month_index = Case(*(When(**{f"{stamp}__lt": end}, then=Value(i)) for i, (_, _, end) in enumerate(bounds)),
                       output_field=IntegerField())
    return (
        queryset.filter(**{f"{stamp}__gte": bounds[0][1], f"{stamp}__lt": bounds[-1][2]})
        .annotate(month_index=month_index).order_by().values("currency", "month_index").annotate(**sums)
    )


def top_contacts(*, business: Business, today: date, months: int = MONTHS, limit: int = TOP_CONTACTS,
                 livemode: bool | None = None) -> dict[str, list[dict]]:
    """{currency: [{"bill_to_id", "name", "revenue"}, ...]}: the contacts who paid the most
    in the period (collected less refunded), `limit` per currency; one query (a window
    function ranks within each currency)."""
    since = _since(month_starts(today=today, months=months))
    ranked = (
        in_mode(Payment.objects.for_business(business), livemode).filter(paid_at__gte=since, status__in=COLLECTED_STATUSES)
        .order_by().values("currency", "invoice__bill_to_id", "invoice__bill_to__name")
        .annotate(revenue=_sum(F("amount") - F("amount_refunded")))
        .annotate(rank=Window(RowNumber(), partition_by=[F("currency")],
                              order_by=[F("revenue").desc(), F("invoice__bill_to_id").asc()]))
        .filter(rank__lte=limit).order_by("currency", "rank")
    )
    result: dict[str, list[dict]] = {}
    for row in ranked:
        result.setdefault(row["currency"], []).append(
            {"bill_to_id": row["invoice__bill_to_id"], "name": row["invoice__bill_to__name"], "revenue": row["revenue"]})
    return result
