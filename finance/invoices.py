"""Local invoices from billables: the CRM side of "Generate invoice" (issue 6).

Selected unbilled billables become invoice drafts, one per bill-to and currency, at most
`MAX_LINES` lines each (Stripe's limit: "Invoices can have at most 250 line items"; past
it, parts none of which has a negative total: `_split`), with
every line's figures snapshotted from `finance.money.compute_line` so later edits of a
billable never change an invoice. Nothing here talks to Stripe: the push lives in
`stripe_integration.invoicing`, which passes the business's integration settings in as a
plain `BuildOptions` (finance does not depend on the integration).

Writes are keyword-only services. `invoices_create_from_billables` takes the business's
row lock first, so two people sending the same billables at the same moment queue behind
each other and the second finds them already invoiced (PostgreSQL `SELECT ... FOR
UPDATE`; SQLite's IMMEDIATE transactions serialise writers anyway). Its query count does
not grow with the number of lines: one read of the billables, bulk inserts, one UPDATE of
the billables per invoice (see `invoices_create_from_billables`).
"""
from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Length
from django.utils import timezone

from crm.models import Business, Contact
from finance.models import (
    Billable, BillableStatus, CollectionMethod, Invoice, InvoiceLine, InvoicePushStatus, InvoiceStatus, LineType,
)
from finance.money import (
    LineAmounts, LineInput, Totals, UnsupportedCurrency, compute_line, decimal_places, invoice_totals, normalize_currency,
    tax_places,
)
from finance.totals import billable_line_input

MAX_LINES = 250
NUMBER_PREFIX = "INV-"
NUMBER_WIDTH = 6

LINE_ORDER_NONE = "none"
LINE_ORDER_AMOUNT = "amount"
LINE_ORDER_SERVICE = "service"


@dataclass(frozen=True)
class BuildOptions:
    """What the business's integration settings decide about a new invoice."""

    excluded_line_types: frozenset[str] = frozenset()
    line_order: str = LINE_ORDER_NONE
    collection_method: str = CollectionMethod.SEND_INVOICE
    days_until_due: int | None = 30
    # True: the invoice carries its own due date (sent to Stripe as `due_date`); False:
    # only the payment terms are sent (`days_until_due`) and Stripe dates it at finalizing.
    send_due_date: bool = True
    footer: str = ""
    po_number: str = ""
    approved: bool = False
    # Why a bill-to may not be invoiced ("" if it may): the integration's rules (a higher
    # app decides; finance only lists the billables it leaves out, with the reason).
    contact_refusal: Callable[[Contact], str] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class DraftLine:
    billable: Billable
    amounts: LineAmounts


@dataclass
class DraftInvoice:
    """One invoice to be: a bill-to, a currency, up to MAX_LINES lines."""

    bill_to: Contact
    currency: str
    lines: list[DraftLine]
    totals: Totals
    part: int = 1
    parts: int = 1


@dataclass
class Draft:
    invoices: list[DraftInvoice] = field(default_factory=list)
    left_out: list[tuple[Billable, str]] = field(default_factory=list)

    def totals_by_currency(self) -> dict[str, Decimal]:
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for inv in self.invoices:
            sums[inv.currency] += inv.totals.total
        return dict(sorted(sums.items()))


class NothingToInvoice(Exception):
    """None of the selected billables can be invoiced; `left_out` says why."""

    def __init__(self, left_out: list[tuple[Billable, str]]):
        self.left_out = left_out
        reasons = sorted({reason for _, reason in left_out})
        super().__init__("Nothing to invoice" + (": " + "; ".join(reasons) if reasons else "."))


# --- reads --------------------------------------------------------------------------------

def billables_for_invoicing(*, business: Business, ids=None, contact=None, currency: str | None = None) -> QuerySet:
    """The business's billables (by ids, or every unbilled one of a contact / currency),
    with what a draft needs joined, in the order they were entered."""
    qs = Billable.objects.for_business(business).select_related("service", "bill_to")
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    else:
        qs = qs.filter(status=BillableStatus.UNBILLED)
    if contact is not None:
        qs = qs.filter(bill_to=contact)
    if currency:
        qs = qs.filter(currency=currency.upper())
    return qs.order_by("created_at", "pk")


def invoice_line_input(line: InvoiceLine, currency: str) -> LineInput:
    """The snapshot back as a LineInput; compute_line gives the stored figures again."""
    amount = None
    if line.discount_percent is None and line.discount_amount:
        amount = abs(line.discount_amount)
    return LineInput(
        quantity=line.quantity, unit_price=line.unit_price, currency=currency,
        discount_percent=line.discount_percent, discount_amount=amount, vat_rate=line.vat_rate,
        prices_include_vat=line.prices_include_vat, is_credit=line.line_type == LineType.CREDIT,
    )


def _sort_lines(lines: list[DraftLine], order: str) -> list[DraftLine]:
    if order == LINE_ORDER_AMOUNT:
        # Largest first; sorted() is stable, so equal amounts keep the entered order.
        return sorted(lines, key=lambda ln: -ln.amounts.total)
    if order == LINE_ORDER_SERVICE:
        # Lines without a service last, grouped by service code.
        return sorted(lines, key=lambda ln: (ln.billable.service is None,
                                             ln.billable.service.code if ln.billable.service else ""))
    return lines


CREDIT_WAITS = ("this credit would make a part of the split invoice negative (Stripe would book it as a "
                "customer balance): it waits for the next invoice")


def lines_limit(currency: str) -> int:
    """CRM lines per invoice: MAX_LINES, less one where the push may add a rounding line
    (three-decimal currencies, finance.money.Totals.rounding)."""
    return MAX_LINES - 1 if tax_places(currency) > decimal_places(currency) else MAX_LINES


def _split(lines: list[DraftLine], limit: int = MAX_LINES) -> tuple[list[list[DraftLine]], list[DraftLine]]:
    """Lines -> parts of at most `limit` lines, none with a negative total, in the
    lines' order; and the credits that fit on no part (they wait, left unbilled).

    A part made only of credits would be a negative Stripe invoice, which Stripe turns
    into a customer credit balance deducted silently from the next invoice. So the
    charges are sliced first, leaving room on each part for its share of the credits, and
    each credit (largest first) goes on the part with the largest total that stays >= 0
    with it and has room."""
    if len(lines) <= limit:
        return [lines], []  # the caller refused a negative whole already
    index = {id(ln): i for i, ln in enumerate(lines)}
    charges = [ln for ln in lines if ln.amounts.total >= 0]
    credits = sorted((ln for ln in lines if ln.amounts.total < 0), key=lambda ln: (ln.amounts.total, index[id(ln)]))
    parts = -(-len(lines) // limit)
    size = max(1, limit - -(-len(credits) // parts))
    chunks = [charges[i:i + size] for i in range(0, len(charges), size)] or [[]]
    totals = [sum((ln.amounts.total for ln in chunk), Decimal(0)) for chunk in chunks]
    waiting = []
    for credit in credits:
        fits = [i for i in range(len(chunks))
                if len(chunks[i]) < limit and totals[i] + credit.amounts.total >= 0]
        if not fits:
            waiting.append(credit)
            continue
        best = max(fits, key=lambda i: (totals[i], -i))
        chunks[best].append(credit)
        totals[best] += credit.amounts.total
    chunks = [sorted(chunk, key=lambda ln: index[id(ln)]) for chunk in chunks if chunk]
    return chunks, waiting


def invoice_draft(*, billables, options: BuildOptions) -> Draft:
    """Group billables into invoices-to-be (no writes). Billables that cannot go on an
    invoice are listed in `left_out` with the reason, never dropped silently."""
    draft = Draft()
    groups: dict[tuple[int, str], list[DraftLine]] = defaultdict(list)
    contacts: dict[int, Contact] = {}
    for billable in billables:
        if billable.status != BillableStatus.UNBILLED:
            where = f" on {billable.invoice.number}" if billable.invoice_id and billable.invoice else ""
            draft.left_out.append((billable, f"already {billable.get_status_display().lower()}{where}"))
            continue
        if billable.line_type in options.excluded_line_types:
            draft.left_out.append((billable, f"{billable.get_line_type_display().lower()} lines are left out by the integration settings"))
            continue
        if options.contact_refusal is not None and (refused := options.contact_refusal(billable.bill_to)):
            draft.left_out.append((billable, f"{billable.bill_to}: {refused}"))
            continue
        try:
            normalize_currency(billable.currency)
            amounts = compute_line(billable_line_input(billable))
        except UnsupportedCurrency as exc:
            draft.left_out.append((billable, str(exc)))
            continue
        except ValueError as exc:
            draft.left_out.append((billable, f"its amounts are invalid: {exc}"))
            continue
        groups[(billable.bill_to_id, billable.currency)].append(DraftLine(billable, amounts))
        contacts[billable.bill_to_id] = billable.bill_to
    for (contact_id, currency), lines in sorted(groups.items(), key=lambda kv: (contacts[kv[0][0]].name, kv[0][1], kv[0][0])):
        totals = invoice_totals([ln.amounts for ln in lines], currency)
        if totals.total < 0:
            # Stripe would turn a negative invoice into customer credit balance: that is a
            # credit note's job, not an invoice's.
            draft.left_out.extend((ln.billable, "the credits exceed the charges for this customer and currency") for ln in lines)
            continue
        lines = _sort_lines(lines, options.line_order)
        chunks, waiting = _split(lines, lines_limit(currency))
        draft.left_out.extend((ln.billable, CREDIT_WAITS) for ln in waiting)
        for n, chunk in enumerate(chunks, start=1):
            draft.invoices.append(DraftInvoice(
                bill_to=contacts[contact_id], currency=currency, lines=chunk,
                totals=invoice_totals([ln.amounts for ln in chunk], currency), part=n, parts=len(chunks),
            ))
    return draft


# --- writes -------------------------------------------------------------------------------

def _next_numbers(business: Business, count: int) -> list[str]:
    """INV-000001, INV-000002, ... per business. Called under the business's row lock."""
    last = (
        Invoice.objects.filter(business=business, number__regex=rf"^{NUMBER_PREFIX}[0-9]+$")
        .order_by(Length("number").desc(), "-number").values_list("number", flat=True).first()
    )
    start = int(last[len(NUMBER_PREFIX):]) + 1 if last else 1
    return [f"{NUMBER_PREFIX}{n:0{NUMBER_WIDTH}d}" for n in range(start, start + count)]


# Foreign keys of a new line point at rows read under the lock a moment ago; validating
# them again would cost one query per line (ForeignKey.validate), so full_clean skips them.
_LINE_FK_FIELDS = ["business", "invoice", "billable", "service"]


@dataclass
class CreateResult:
    invoices: list[Invoice]
    left_out: list[tuple[Billable, str]]


def invoices_create_from_billables(*, business: Business, billable_ids=None, contact=None, currency: str | None = None,
                                   options: BuildOptions) -> CreateResult:
    """Turn billables (the given ids, or every unbilled one of the business, optionally of
    one contact / currency) into local invoices (status draft, push pending) and mark
    them invoiced, in one transaction. Raises NothingToInvoice when none qualifies."""
    with transaction.atomic():
        # Serialise invoice creation per business: concurrent "Send to Stripe" clicks on
        # the same billables wait here, then see them invoiced. It also guards numbering.
        Business.objects.select_for_update().filter(pk=business.pk).values_list("pk", flat=True).get()
        billables = list(billables_for_invoicing(business=business, ids=billable_ids, contact=contact, currency=currency)
                         .select_related("invoice"))
        draft = invoice_draft(billables=billables, options=options)
        if not draft.invoices:
            raise NothingToInvoice(draft.left_out)
        today = timezone.localdate()
        send_invoice = options.collection_method == CollectionMethod.SEND_INVOICE
        days = options.days_until_due if send_invoice else None
        terms = None if options.send_due_date else days
        invoices = []
        for number, planned in zip(_next_numbers(business, len(draft.invoices)), draft.invoices):
            totals = planned.totals
            invoice = Invoice(
                business=business, number=number, bill_to=planned.bill_to, currency=planned.currency,
                status=InvoiceStatus.DRAFT, push_status=InvoicePushStatus.PENDING,
                collection_method=options.collection_method, days_until_due=terms,
                due_date=today + datetime.timedelta(days=days) if days is not None else None,
                subtotal=totals.subtotal, discount_total=totals.discount, tax_total=totals.tax, total=totals.total,
                amount_remaining=totals.total, footer=options.footer, po_number=options.po_number,
                approved=options.approved,
            )
            invoice.full_clean()
            invoices.append(invoice)
        Invoice.objects.bulk_create(invoices)
        lines = []
        for invoice, planned in zip(invoices, draft.invoices):
            for position, ln in enumerate(planned.lines, start=1):
                b, a = ln.billable, ln.amounts
                line = InvoiceLine(
                    business=business, invoice=invoice, billable=b, position=position, service=b.service,
                    description=(b.description or (b.service.name if b.service else f"Billable {b.pk}"))[:500],
                    quantity=b.quantity, unit_price=b.unit_price or Decimal(0), discount_amount=a.discount,
                    discount_percent=b.discount_percent, vat_rate=b.vat_rate or Decimal(0),
                    prices_include_vat=b.prices_include_vat, line_type=b.line_type, subtotal=a.subtotal,
                    tax=a.tax, total=a.total, uses_list_price=b.uses_list_price,
                )
                line.full_clean(exclude=_LINE_FK_FIELDS, validate_unique=False, validate_constraints=False)
                lines.append(line)
        InvoiceLine.objects.bulk_create(lines)
        now = timezone.now()
        for invoice, planned in zip(invoices, draft.invoices):
            # UNBILLED -> INVOICED (BILLABLE_TRANSITIONS); the status filter makes a
            # billable that changed meanwhile a visible error rather than a double booking.
            ids = [ln.billable.pk for ln in planned.lines]
            updated = Billable.objects.filter(pk__in=ids, status=BillableStatus.UNBILLED).update(
                status=BillableStatus.INVOICED, invoice=invoice, updated_at=now)
            if updated != len(ids):
                raise RuntimeError(f"{len(ids) - updated} billable(s) of {invoice.number} changed while invoicing")
    return CreateResult(invoices=invoices, left_out=draft.left_out)


def invoice_release_billables(*, invoice: Invoice) -> int:
    """The invoice was voided or its draft deleted: its billables are unbilled again
    (INVOICED -> UNBILLED). Its lines keep their snapshot and their link to the billable.
    Idempotent; returns how many billables were released."""
    return Billable.objects.filter(invoice=invoice, status=BillableStatus.INVOICED).update(
        status=BillableStatus.UNBILLED, invoice=None, updated_at=timezone.now())


def invoice_mark_billables_paid(*, invoice: Invoice) -> int:
    """The invoice is paid: its billables are paid too (INVOICED -> PAID). Idempotent."""
    return Billable.objects.filter(invoice=invoice, status=BillableStatus.INVOICED).update(
        status=BillableStatus.PAID, updated_at=timezone.now())


def invoice_delete_local(*, invoice: Invoice) -> None:
    """Delete a local draft that Stripe does not have (or no longer has), releasing its
    billables first. Refuses anything past draft: finalized invoices are voided, not deleted."""
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.status != InvoiceStatus.DRAFT or locked.payments.exists():
            raise ValueError(f"{locked.number} is {locked.get_status_display().lower()}: only drafts can be deleted")
        invoice_release_billables(invoice=locked)
        locked.delete()
