"""Local invoices from billables (finance.invoices): grouping per bill-to and currency,
250-line chunks, line snapshots by finance.money, what is left out and why, numbering,
releasing billables, constant queries."""
import math
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.tests.factories import IndividualFactory
from finance.invoices import (
    MAX_LINES, BuildOptions, NothingToInvoice, invoice_delete_local, invoice_draft, invoice_line_input,
    invoice_release_billables, invoices_create_from_billables,
)
from finance.models import Billable, BillableStatus, Invoice, InvoiceLine, InvoicePushStatus, InvoiceStatus, LineType
from finance.money import compute_line, invoice_totals
from services.tests.factories import ServiceFactory, ServicePriceFactory

pytestmark = pytest.mark.django_db

D = Decimal
OPTIONS = BuildOptions()


def bill(business, contact, **kwargs):
    values = {"quantity": D("1"), "unit_price": D("100.00"), "currency": "USD", "description": "Work"}
    values.update(kwargs)
    b = Billable(business=business, bill_to=contact, **values)
    b.full_clean()
    b.save()
    return b


def create(business, bills, options=OPTIONS):
    return invoices_create_from_billables(business=business, billable_ids=[b.pk for b in bills], options=options)


def test_one_invoice_per_bill_to_and_currency(business_a):
    alice, bob = IndividualFactory(business=business_a, name="Alice"), IndividualFactory(business=business_a, name="Bob")
    bills = [bill(business_a, alice), bill(business_a, alice, currency="EUR"), bill(business_a, bob),
             bill(business_a, alice, unit_price=D("50"))]
    result = create(business_a, bills)
    got = sorted((inv.bill_to.name, inv.currency, inv.lines.count(), inv.total) for inv in result.invoices)
    assert got == [("Alice", "EUR", 1, D("100.00")), ("Alice", "USD", 2, D("150.00")), ("Bob", "USD", 1, D("100.00"))]
    for b in bills:
        b.refresh_from_db()
        assert b.status == BillableStatus.INVOICED and b.invoice.bill_to_id == b.bill_to_id


def test_more_than_250_lines_become_several_invoices(business_a):
    contact = IndividualFactory(business=business_a)
    bills = [bill(business_a, contact, description=f"Item {i}", unit_price=D("1")) for i in range(2 * MAX_LINES + 1)]
    result = create(business_a, bills)
    assert [inv.lines.count() for inv in result.invoices] == [250, 250, 1]
    assert sum(inv.total for inv in result.invoices) == D("501.00")
    assert Billable.objects.filter(status=BillableStatus.INVOICED).count() == 501


def test_lines_snapshot_finance_money_figures(business_a):
    contact = IndividualFactory(business=business_a)
    bills = [
        bill(business_a, contact, quantity=D("3"), unit_price=D("19.99"), vat_rate=D("20"), discount_percent=D("12.5")),
        bill(business_a, contact, unit_price=D("119.00"), vat_rate=D("19"), prices_include_vat=True, discount_amount=D("9")),
        bill(business_a, contact, unit_price=D("30"), vat_rate=D("20"), line_type=LineType.CREDIT),
    ]
    (invoice,) = create(business_a, bills).invoices
    lines = list(invoice.lines.order_by("position"))
    for line, b in zip(lines, bills):
        expected = b.amounts
        assert (line.subtotal, line.discount_amount, line.tax, line.total) == (
            expected.subtotal, expected.discount, expected.tax, expected.total)
        assert compute_line(invoice_line_input(line, "USD")) == expected  # the snapshot recomputes exactly
    totals = invoice_totals([b.amounts for b in bills], "USD")
    assert (invoice.subtotal, invoice.discount_total, invoice.tax_total, invoice.total) == (
        totals.subtotal, totals.discount, totals.tax, totals.total)
    assert lines[2].total < 0 and invoice.amount_remaining == invoice.total


def test_snapshot_does_not_follow_later_billable_edits(business_a):
    contact = IndividualFactory(business=business_a)
    b = bill(business_a, contact)
    (invoice,) = create(business_a, [b]).invoices
    Billable.objects.filter(pk=b.pk).update(unit_price=D("999"))
    assert invoice.lines.get().unit_price == D("100.00")


def test_left_out_billables_say_why(business_a):
    contact = IndividualFactory(business=business_a)
    other = IndividualFactory(business=business_a, name="Credit only")
    ok = bill(business_a, contact)
    credit = bill(business_a, contact, unit_price=D("5"), line_type=LineType.CREDIT)
    lonely_credit = bill(business_a, other, unit_price=D("5"), line_type=LineType.CREDIT)
    result = create(business_a, [ok, credit, lonely_credit], BuildOptions(excluded_line_types=frozenset({"credit"})))
    reasons = {b.pk: reason for b, reason in result.left_out}
    assert "left out by the integration settings" in reasons[credit.pk]
    assert [inv.total for inv in result.invoices] == [D("100.00")]
    with pytest.raises(NothingToInvoice, match="credits exceed the charges"):
        create(business_a, [lonely_credit])
    with pytest.raises(NothingToInvoice, match="already invoiced on INV-000001"):
        create(business_a, [ok])
    lonely_credit.refresh_from_db()
    assert lonely_credit.status == BillableStatus.UNBILLED


def test_line_order_by_amount_and_by_service(business_a):
    contact = IndividualFactory(business=business_a)
    zeta, alpha = ServiceFactory(business=business_a, code="ZETA"), ServiceFactory(business=business_a, code="ALPHA")
    bills = [bill(business_a, contact, description="small", unit_price=D("1"), service=zeta),
             bill(business_a, contact, description="big", unit_price=D("900")),
             bill(business_a, contact, description="mid", unit_price=D("50"), service=alpha)]
    draft = invoice_draft(billables=bills, options=BuildOptions(line_order="amount"))
    assert [ln.billable.description for ln in draft.invoices[0].lines] == ["big", "mid", "small"]
    draft = invoice_draft(billables=bills, options=BuildOptions(line_order="service"))
    assert [ln.billable.description for ln in draft.invoices[0].lines] == ["mid", "small", "big"]
    draft = invoice_draft(billables=bills, options=BuildOptions())
    assert [ln.billable.description for ln in draft.invoices[0].lines] == ["small", "big", "mid"]


def test_invoice_numbers_follow_on_per_business(business_a, business_b):
    a, b = IndividualFactory(business=business_a), IndividualFactory(business=business_b)
    first = create(business_a, [bill(business_a, a), bill(business_a, a, currency="EUR")]).invoices
    second = create(business_a, [bill(business_a, a)]).invoices
    theirs = create(business_b, [bill(business_b, b)]).invoices
    assert [i.number for i in first + second] == ["INV-000001", "INV-000002", "INV-000003"]
    assert theirs[0].number == "INV-000001"


def test_new_invoice_carries_settings_and_is_pending(business_a):
    contact = IndividualFactory(business=business_a)
    options = BuildOptions(days_until_due=14, send_due_date=False, footer="Thanks", po_number="PO-7", approved=True)
    (invoice,) = create(business_a, [bill(business_a, contact)], options).invoices
    assert (invoice.status, invoice.push_status, invoice.days_until_due) == (InvoiceStatus.DRAFT, InvoicePushStatus.PENDING, 14)
    assert (invoice.footer, invoice.po_number, invoice.approved) == ("Thanks", "PO-7", True)
    assert invoice.due_date is not None
    (fixed,) = create(business_a, [bill(business_a, contact)], BuildOptions(send_due_date=True)).invoices
    assert fixed.days_until_due is None and fixed.due_date is not None
    (card,) = create(business_a, [bill(business_a, contact)], BuildOptions(collection_method="charge_automatically")).invoices
    assert card.days_until_due is None and card.due_date is None


def test_list_price_use_is_snapshotted(business_a):
    contact = IndividualFactory(business=business_a)
    service = ServiceFactory(business=business_a)
    ServicePriceFactory(service=service, currency="USD", amount=D("150.00"))
    listed = bill(business_a, contact, service=service, unit_price=None)
    (invoice,) = create(business_a, [listed]).invoices
    line = invoice.lines.get()
    assert line.uses_list_price and line.unit_price == D("150.00") and line.service == service


def test_release_and_delete_return_billables_to_unbilled(business_a):
    contact = IndividualFactory(business=business_a)
    bills = [bill(business_a, contact), bill(business_a, contact)]
    (invoice,) = create(business_a, bills).invoices
    assert invoice_release_billables(invoice=invoice) == 2
    assert invoice_release_billables(invoice=invoice) == 0
    (again,) = create(business_a, bills).invoices  # invoiceable again
    invoice_delete_local(invoice=again)
    assert not Invoice.objects.filter(pk=again.pk).exists()
    assert set(Billable.objects.values_list("status", "invoice_id")) == {(BillableStatus.UNBILLED, None)}
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.OPEN)
    with pytest.raises(ValueError, match="only drafts"):
        invoice_delete_local(invoice=invoice)


def test_other_business_ids_are_ignored(business_a, business_b):
    theirs = bill(business_b, IndividualFactory(business=business_b))
    with pytest.raises(NothingToInvoice):
        invoices_create_from_billables(business=business_a, billable_ids=[theirs.pk], options=OPTIONS)
    theirs.refresh_from_db()
    assert theirs.status == BillableStatus.UNBILLED


def _queries_for(business, contact, n):
    bills = [bill(business, contact, description=f"L{i}", vat_rate=D("20"), discount_percent=D("5")) for i in range(n)]
    with CaptureQueriesContext(connection) as ctx:
        create(business, bills)
    inserts = sum(1 for q in ctx.captured_queries if q["sql"].startswith('INSERT INTO "finance_invoiceline"'))
    return len(ctx.captured_queries) - inserts, inserts


def test_building_costs_the_same_queries_for_5_and_100_lines(business_a):
    contact = IndividualFactory(business=business_a)
    few, few_inserts = _queries_for(business_a, contact, 5)
    many, many_inserts = _queries_for(business_a, contact, 100)
    assert few == many
    # One bulk INSERT of the lines (SQLite splits it at 999 parameters, see test_invoicing_push).
    fields = [f for f in InvoiceLine._meta.concrete_fields if not f.primary_key]
    assert (few_inserts, many_inserts) == (1, math.ceil(100 / connection.ops.bulk_batch_size(fields, [None] * 100)))
