"""Exports: the rows are the page's rows (same filters, search and sort, every page), one
business only, finance roles only, amounts as plain decimals with their currency, and no
cell a spreadsheet would run as a formula."""
import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.tests.factories import IndividualFactory
from finance import selectors
from finance.exports import csv_safe, plain_amount
from finance.models import InvoiceStatus
from finance.tests.factories import BillableFactory, InvoiceFactory, PaymentFactory, RefundFactory

pytestmark = pytest.mark.django_db

D = Decimal


def _url(kind, fmt="csv"):
    return reverse("ui:export", args=[kind, fmt])


def _csv(resp):
    assert resp.status_code == 200, resp.content[:300]
    body = b"".join(resp.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))


@pytest.fixture
def invoices(business_a, business_b):
    acme = IndividualFactory(business=business_a, name="Acme Buyer")
    other = IndividualFactory(business=business_a, name="Zed Client")
    past = date.today() - timedelta(days=10)
    rows = [
        InvoiceFactory(business=business_a, bill_to=acme, number="INV-000001", status=InvoiceStatus.OPEN,
                       total=D("1234.5"), amount_remaining=D("1234.5"), due_date=past),
        InvoiceFactory(business=business_a, bill_to=acme, number="INV-000002", status=InvoiceStatus.PAID,
                       currency="JPY", total=D("15000"), amount_paid=D("15000")),
        InvoiceFactory(business=business_a, bill_to=other, number="INV-000003", status=InvoiceStatus.OPEN,
                       currency="KWD", total=D("12.345"), amount_remaining=D("12.345")),
    ]
    InvoiceFactory(business=business_b, number="INV-B-1", status=InvoiceStatus.OPEN, total=D("9"))
    return rows


def test_csv_safe_quotes_formula_text_only():
    for text in ("=1+2", "+1", "-2+3", "@SUM(A1)", "\t=x", "\r=x"):
        assert csv_safe(text) == "'" + text
    assert csv_safe("Acme = good") == "Acme = good"
    assert csv_safe(D("-12.50")) == D("-12.50")  # a number stays a number


def test_plain_amount_uses_the_currency_places_without_separators():
    assert str(plain_amount(D("33615"), "USD")) == "33615.00"
    assert str(plain_amount(D("15000"), "JPY")) == "15000"
    assert str(plain_amount(D("12.345"), "KWD")) == "12.345"


def test_export_invoices_rows_match_the_filtered_page(client, finance_a, business_a, invoices):
    client.force_login(finance_a)
    query = {"status": ["open"], "q": "acme"}
    rows = _csv(client.get(_url("invoices"), query))
    expected = list(selectors.invoice_list(business=business_a, filters=query))
    assert [r["number"] for r in rows] == [i.number for i in expected] == ["INV-000001"]
    assert rows[0]["total"] == "1234.50" and rows[0]["currency"] == "USD" and rows[0]["contact"] == "Acme Buyer"
    assert rows[0]["due"] == invoices[0].due_date.isoformat()
    # The page's sort, and every page (no pagination).
    rows = _csv(client.get(_url("invoices"), {"sort": "-total", "page": "2"}))
    assert [r["number"] for r in rows] == [i.number for i in selectors.invoice_list(business=business_a, sort="-total")]
    assert {r["number"]: (r["total"], r["currency"]) for r in rows} == {
        "INV-000001": ("1234.50", "USD"), "INV-000002": ("15000", "JPY"), "INV-000003": ("12.345", "KWD")}
    assert "INV-B-1" not in {r["number"] for r in rows}


def test_export_overdue_filter_matches_the_page(client, finance_a, business_a, invoices):
    client.force_login(finance_a)
    rows = _csv(client.get(_url("invoices"), {"overdue": "on"}))
    page = client.get(reverse("ui:invoice_list"), {"overdue": "on"})
    assert [r["number"] for r in rows] == [i.number for i in page.context["object_list"]] == ["INV-000001"]


def test_export_payments_and_refunds_of_the_filtered_invoices(client, finance_a, business_a, business_b, invoices):
    paid = PaymentFactory(invoice=invoices[1], amount=D("15000"), currency="JPY", status="succeeded")
    RefundFactory(payment=paid, amount=D("500"), currency="JPY", reason="=cmd|' /C calc'!A0")
    PaymentFactory(invoice=invoices[0], amount=D("100"), status="succeeded")
    PaymentFactory(invoice__business=business_b, amount=D("7"))
    client.force_login(finance_a)
    rows = _csv(client.get(_url("payments"), {"status": ["paid"]}))
    assert [(r["invoice"], r["amount"], r["currency"]) for r in rows] == [("INV-000002", "15000", "JPY")]
    assert len(_csv(client.get(_url("payments")))) == 2  # business_b's payment never
    refunds = _csv(client.get(_url("refunds")))
    assert [(r["invoice"], r["amount"]) for r in refunds] == [("INV-000002", "500")]
    assert refunds[0]["reason"] == "'=cmd|' /C calc'!A0"


def test_export_billables_guard_formula_text(client, finance_a, business_a):
    contact = IndividualFactory(business=business_a, name='=HYPERLINK("http://evil.test","x")')
    BillableFactory(business=business_a, bill_to=contact, description="@SUM(1+1)", unit_price=D("99.5"))
    BillableFactory(business=business_a, bill_to=contact, description="Plain work", unit_price=D("10"),
                    line_type="credit")
    client.force_login(finance_a)
    rows = _csv(client.get(_url("billables"), {"q": "sum"}))
    assert len(rows) == 1
    assert rows[0]["description"] == "'@SUM(1+1)" and rows[0]["contact"].startswith("'=HYPERLINK")
    assert rows[0]["unit_price"] == "99.50"
    assert len(_csv(client.get(_url("billables")))) == 2


def test_export_xlsx_has_the_same_rows_with_numeric_amounts(client, finance_a, business_a, invoices):
    client.force_login(finance_a)
    resp = client.get(_url("invoices", "xlsx"), {"sort": "number"})
    assert resp.status_code == 200 and resp["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(resp.content)).active
    values = list(sheet.values)
    headers = values[0]
    rows = [dict(zip(headers, row)) for row in values[1:]]
    assert [r["number"] for r in rows] == ["INV-000001", "INV-000002", "INV-000003"]
    assert rows[0]["total"] == 1234.5 and rows[2]["total"] == 12.345


def test_export_is_for_finance_roles_and_refuses_bad_input(client, staff_a, finance_a, invoices):
    assert client.get(_url("invoices")).status_code == 302  # anonymous: to the login page
    client.force_login(staff_a)
    assert client.get(_url("invoices")).status_code == 403
    client.force_login(finance_a)
    assert client.get(_url("contacts")).status_code == 404
    assert client.get(_url("invoices", "pdf")).status_code == 404
    resp = client.get(_url("invoices"), {"due_from": "not-a-date"})
    assert resp.status_code == 400 and b"due_from" in resp.content


def test_export_buttons_carry_the_page_query(client, finance_a, invoices):
    client.force_login(finance_a)
    body = client.get(reverse("ui:invoice_list"), {"status": "open", "sort": "-total", "page": "1"}).content.decode()
    assert 'href="/exports/invoices.csv?status=open&amp;sort=-total"' in body
    assert 'href="/exports/refunds.xlsx?status=open&amp;sort=-total"' in body


def _export_queries(client, kind):
    with CaptureQueriesContext(connection) as ctx:
        _csv(client.get(_url(kind)))
    return len(ctx.captured_queries)


@pytest.mark.parametrize("kind", ["invoices", "payments", "refunds", "billables"])
def test_export_query_count_does_not_grow_with_rows(client, finance_a, business_a, kind):
    def make(n):
        for _ in range(n):
            refund = RefundFactory(payment__invoice__business=business_a)
            BillableFactory(business=business_a, invoice=refund.payment.invoice)

    client.force_login(finance_a)
    make(2)
    few = _export_queries(client, kind)
    make(20)
    assert _export_queries(client, kind) == few


# --- admin actions ----------------------------------------------------------------------

@pytest.mark.parametrize("model_name,kind", [("invoice", "invoices"), ("payment", "payments"),
                                             ("refund", "refunds"), ("billable", "billables")])
def test_admin_export_action_exports_the_selected_rows(client, finance_a, business_a, model_name, kind):
    refunds = [RefundFactory(payment__invoice__business=business_a, reason=f"R{i}") for i in range(3)]
    for r in refunds:
        BillableFactory(business=business_a, invoice=r.payment.invoice, description=f"B {r.payment.invoice.number}")
    rows = {"invoice": [r.payment.invoice for r in refunds], "payment": [r.payment for r in refunds],
            "refund": refunds, "billable": [r.payment.invoice.billables.get() for r in refunds]}[model_name]
    client.force_login(finance_a)
    url = reverse(f"admin:finance_{model_name}_changelist")
    assert "export_csv" in client.get(url).content.decode()
    resp = client.post(url, {"action": "export_csv", "_selected_action": [rows[0].pk, rows[2].pk]})
    exported = _csv(resp)
    assert len(exported) == 2
    first_column = {"invoice": "number", "payment": "invoice", "refund": "invoice", "billable": "description"}[model_name]
    invoice_of = {"invoice": lambda o: o.number, "payment": lambda o: o.invoice.number,
                  "refund": lambda o: o.payment.invoice.number, "billable": lambda o: o.description}[model_name]
    assert {r[first_column] for r in exported} == {invoice_of(rows[0]), invoice_of(rows[2])}
    xlsx = client.post(url, {"action": "export_xlsx", "_selected_action": [rows[1].pk]})
    assert len(list(openpyxl.load_workbook(io.BytesIO(xlsx.content)).active.values)) == 2  # header + 1


def test_admin_export_action_never_exports_another_business(client, finance_a, business_a, business_b):
    mine, theirs = InvoiceFactory(business=business_a), InvoiceFactory(business=business_b)
    client.force_login(finance_a)
    resp = client.post(reverse("admin:finance_invoice_changelist"),
                       {"action": "export_csv", "_selected_action": [mine.pk, theirs.pk]})
    assert [r["number"] for r in _csv(resp)] == [mine.number]
