"""Finance reads for the staff UI, scoped to one business (see crm.selectors for the
conventions). Amounts shown in lists are quantity x unit price ("gross", before
discounts and VAT, negative for credits); the exact breakdown is finance.totals' job."""
from decimal import Decimal

from django.db.models import (Case, Count, DecimalField, Exists, ExpressionWrapper, F, OuterRef, Prefetch, Q,
                              QuerySet, Sum, Value, When)
from django.db.models.functions import Coalesce, TruncDate

from crm.models import Business
from crm.selectors import _filtered
from finance import clock
from finance.filters import BillableFilter, InvoiceFilter
from finance.models import (DISPUTE_OPEN, Billable, BillableStatus, Dispute, DisputeStatus, Invoice, InvoiceStatus,
                            LineType, Payment, PaymentStatus, Refund)
from finance.modes import in_mode

_GROSS_FIELD = DecimalField(max_digits=30, decimal_places=3)


def _signed_gross():
    gross = ExpressionWrapper(F("quantity") * F("unit_price"), output_field=_GROSS_FIELD)
    return Case(
        When(line_type=LineType.CREDIT, then=ExpressionWrapper(-gross, output_field=_GROSS_FIELD)),
        default=gross, output_field=_GROSS_FIELD,
    )


def _billable_queryset(business: Business) -> QuerySet:
    return (
        Billable.objects.for_business(business)
        .select_related("bill_to", "opportunity", "ticket", "service", "invoice")
        .annotate(effective_date=Coalesce("service_date", TruncDate("created_at")))
    )


def billable_list(*, business: Business, filters=None, bill_to=None, opportunity=None, ticket=None) -> QuerySet:
    qs = _billable_queryset(business).order_by("-effective_date", "-created_at", "-pk")
    if bill_to is not None:
        qs = qs.filter(bill_to=bill_to)
    if opportunity is not None:
        qs = qs.filter(opportunity=opportunity)
    if ticket is not None:
        qs = qs.filter(ticket=ticket)
    return _filtered(BillableFilter, business=business, filters=filters, queryset=qs)


def billable_get(*, business: Business, pk) -> Billable:
    return _billable_queryset(business).get(pk=pk)


def unbilled_totals(*, business: Business, bill_to=None) -> list[dict]:
    """[{"currency": "EUR", "count": 3, "gross": Decimal}, ...] for unbilled billables,
    one row per currency (amounts in different currencies are never added up)."""
    qs = Billable.objects.for_business(business).filter(status=BillableStatus.UNBILLED)
    if bill_to is not None:
        qs = qs.filter(bill_to=bill_to)
    rows = (
        qs.order_by().values("currency")
        .annotate(count=Count("pk"), gross=Coalesce(Sum(_signed_gross()), Value(Decimal("0")), output_field=_GROSS_FIELD))
        .order_by("currency")
    )
    return list(rows)


# The Invoices page's sortable columns: the `sort` parameter's key -> the field it orders
# by ("-key" descending). Anything else falls back to the default order, never an error.
INVOICE_SORTS = {
    "number": "number", "stripe_number": "stripe_number", "contact": "bill_to__name",
    "issued": "finalized_at", "due": "due_date", "status": "status", "total": "total",
    "remaining": "amount_remaining", "created": "created_at",
}
INVOICE_DEFAULT_ORDER = ("-created_at", "-pk")


def invoice_sort_key(sort) -> str | None:
    """The `sort` parameter if it names a sortable column (optionally "-"), else None."""
    if not isinstance(sort, str):
        return None
    return sort if sort.removeprefix("-") in INVOICE_SORTS else None


def invoice_list(*, business: Business, bill_to=None, filters=None, sort=None, livemode: bool | None = None) -> QuerySet:
    # `payment_processing`: a bank debit under way, shown apart from paid (issue 7).
    processing = Payment.objects.filter(invoice=OuterRef("pk"), status=PaymentStatus.PROCESSING)
    qs = (in_mode(Invoice.objects.for_business(business), livemode).select_related("bill_to")
          .annotate(payment_processing=Exists(processing)))
    key = invoice_sort_key(sort)
    if key is None:
        qs = qs.order_by(*INVOICE_DEFAULT_ORDER)
    else:
        field = INVOICE_SORTS[key.removeprefix("-")]
        descending = key.startswith("-")
        # nulls (a draft's issue date, no due date) last either way; pk keeps pages stable
        ordered = F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_last=True)
        qs = qs.order_by(ordered, "-pk" if descending else "pk")
    if bill_to is not None:
        qs = qs.filter(bill_to=bill_to)
    return _filtered(InvoiceFilter, business=business, filters=filters, queryset=qs)


def payment_list(*, business: Business, bill_to=None, livemode: bool | None = None) -> QuerySet:
    qs = in_mode(Payment.objects.for_business(business), livemode).select_related("invoice").order_by("-created_at", "-pk")
    if bill_to is not None:
        qs = qs.filter(invoice__bill_to=bill_to)
    return qs


def invoice_counts(*, business: Business, livemode: bool | None = None) -> dict:
    """Invoices in total and those awaiting payment (open or uncollectible)."""
    return in_mode(Invoice.objects.for_business(business), livemode).aggregate(
        invoices=Count("pk"),
        unpaid_invoices=Count("pk", filter=Q(status__in=[InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE])),
    )


def invoice_payments(*, invoice: Invoice) -> list[Payment]:
    """The invoice's payment history, oldest first, each with its refunds (issue 7)."""
    refunds = Prefetch("refunds", queryset=Refund.objects.order_by("created_at", "pk"))
    disputes = Prefetch("disputes", queryset=Dispute.objects.order_by("opened_at", "pk"))
    return list(invoice.payments.prefetch_related(refunds, disputes).order_by("created_at", "pk"))


def invoice_credit_notes(*, invoice: Invoice) -> list:
    """The invoice's credit notes, oldest first, each with `refund`: the finance.Refund row
    of the refund Stripe made for it (None when it made none, or its events have not come)."""
    from finance.models import CreditNote

    notes = list(CreditNote.objects.filter(invoice=invoice).select_related("created_by").order_by("created_at", "pk"))
    ids = [n.stripe_refund_id for n in notes if n.stripe_refund_id]
    refunds = {r.stripe_refund_id: r for r in Refund.objects.filter(business=invoice.business, stripe_refund_id__in=ids)}
    for note in notes:
        note.refund = refunds.get(note.stripe_refund_id)
    return notes


def today():
    """The business day the money reports and "overdue" are computed for (finance.clock)."""
    return clock.today()


DISPUTE_SHOW = {
    "open": DISPUTE_OPEN,
    "lost": {DisputeStatus.LOST},
    "won": {DisputeStatus.WON},
    "all": set(DisputeStatus.values),
}


def dispute_list(*, business: Business, show: str = "open", order: str = "due") -> QuerySet:
    """The business's disputes (open ones by default), soonest evidence deadline first
    (`order="-due"`: latest first); disputes without a deadline come last."""
    due = F("evidence_due_by")
    ordering = due.asc(nulls_last=True) if order == "due" else due.desc(nulls_last=True)
    return (Dispute.objects.for_business(business).filter(status__in=DISPUTE_SHOW[show])
            .select_related("invoice", "invoice__bill_to", "payment").order_by(ordering, "pk"))
