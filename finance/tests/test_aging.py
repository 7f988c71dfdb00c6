"""Money owed (home page) and the aging report: buckets at their boundaries, per
currency and per contact, tenancy, roles, constant queries."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.tests.factories import IndividualFactory
from finance import reports
from finance.tests.factories import InvoiceFactory

pytestmark = pytest.mark.django_db

URL = "/invoices/aging/"

# days past due -> bucket
BOUNDARIES = [(-5, "current"), (0, "current"), (1, "d1_30"), (30, "d1_30"), (31, "d31_60"), (60, "d31_60"),
              (61, "d61_90"), (90, "d61_90"), (91, "over_90"), (400, "over_90")]


def _open(business, days_past_due, amount, currency="USD", **kwargs):
    today = timezone.localdate()
    due = None if days_past_due is None else today - timedelta(days=days_past_due)
    return InvoiceFactory(business=business, status="open", due_date=due, currency=currency,
                          total=amount, amount_remaining=amount, **kwargs)


@pytest.mark.parametrize("days,bucket", BOUNDARIES)
def test_aging_bucket_boundaries(business_a, days, bucket):
    _open(business_a, days, Decimal("10.00"))
    [row] = reports.aging_by_currency(business=business_a, today=timezone.localdate())
    for b in reports.aging_buckets(today=timezone.localdate()):
        assert row[b.key] == (Decimal("10.00") if b.key == bucket else 0), b.key
    assert row["total"] == Decimal("10.00") and row["count"] == 1


def test_aging_no_due_date_is_current(business_a):
    _open(business_a, None, Decimal("7"))
    [row] = reports.aging_by_currency(business=business_a, today=timezone.localdate())
    assert row["current"] == Decimal("7")


def test_aging_per_currency_never_summed_and_only_open(business_a):
    _open(business_a, 10, Decimal("100.00"), "USD")
    _open(business_a, 10, Decimal("5000"), "JPY")
    _open(business_a, 45, Decimal("1.250"), "KWD")
    _open(business_a, 45, Decimal("20.00"), "USD")
    for status in ("paid", "void", "draft", "uncollectible"):
        InvoiceFactory(business=business_a, status=status, due_date=timezone.localdate() - timedelta(days=10),
                       amount_remaining=Decimal("999"), currency="USD")
    rows = {r["currency"]: r for r in reports.aging_by_currency(business=business_a, today=timezone.localdate())}
    assert set(rows) == {"JPY", "KWD", "USD"}
    assert rows["USD"]["d1_30"] == Decimal("100.00") and rows["USD"]["d31_60"] == Decimal("20.00")
    assert rows["USD"]["total"] == Decimal("120.00") and rows["USD"]["count"] == 2
    assert rows["JPY"]["total"] == Decimal("5000") and rows["KWD"]["d31_60"] == Decimal("1.250")


def test_aging_per_contact(business_a):
    ada = IndividualFactory(business=business_a, name="Ada")
    bob = IndividualFactory(business=business_a, name="Bob")
    _open(business_a, 5, Decimal("10"), bill_to=ada)
    _open(business_a, 95, Decimal("30"), bill_to=ada)
    _open(business_a, 0, Decimal("15"), bill_to=bob)
    _open(business_a, 0, Decimal("15"), "EUR", bill_to=bob)
    rows = list(reports.aging_by_contact(business=business_a, today=timezone.localdate()))
    assert [(r["currency"], r["bill_to__name"], r["total"]) for r in rows] == [
        ("EUR", "Bob", Decimal("15")), ("USD", "Ada", Decimal("40")), ("USD", "Bob", Decimal("15"))]
    assert rows[1]["d1_30"] == Decimal("10") and rows[1]["over_90"] == Decimal("30")


def test_aging_page_shows_buckets(client, finance_a, business_a):
    _open(business_a, 31, Decimal("12.50"), "EUR", bill_to=IndividualFactory(business=business_a, name="Ada"))
    client.force_login(finance_a)
    html = client.get(URL).content.decode()
    currency_row = html.split('data-aging-currency')[1].split('data-currency="EUR"')[1].split("</tr>")[0]
    assert 'data-bucket="d31_60">12.50 EUR' in currency_row
    contact_row = html.split('data-contact="Ada"')[1].split("</tr>")[0]
    assert 'data-bucket="d31_60">12.50 EUR' in contact_row and 'data-bucket="current">0.00 EUR' in contact_row


def test_aging_page_finance_only(client, staff_a, owner_a):
    client.force_login(staff_a)
    assert client.get(URL).status_code == 403
    client.force_login(owner_a)
    assert client.get(URL).status_code == 200


def test_aging_page_tenancy(client, finance_a, business_a, business_b):
    _open(business_b, 10, Decimal("77.00"), bill_to=IndividualFactory(business=business_b, name="Foreign"))
    client.force_login(finance_a)
    html = client.get(URL).content.decode()
    assert "Foreign" not in html and "77.00" not in html and "data-empty" in html


@pytest.mark.parametrize("params", [{"page": "abc"}, {"page": "-3"}, {"currency": "ZZZ"}, {"currency": "<b>"}])
def test_aging_page_hostile_params(client, finance_a, business_a, params):
    _open(business_a, 10, Decimal("1"))
    client.force_login(finance_a)
    assert client.get(URL, params).status_code == 200


def test_aging_page_currency_filter(client, finance_a, business_a):
    _open(business_a, 10, Decimal("1"), "USD", bill_to=IndividualFactory(business=business_a, name="Dollar"))
    _open(business_a, 10, Decimal("1"), "EUR", bill_to=IndividualFactory(business=business_a, name="Euro"))
    client.force_login(finance_a)
    html = client.get(URL, {"currency": "eur"}).content.decode()
    assert 'data-contact="Euro"' in html and 'data-contact="Dollar"' not in html


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url", [URL, "/"])
def test_aging_and_home_queries_constant_5_vs_50(client, finance_a, business_a, url):
    def make(n):
        for i in range(n):
            _open(business_a, i * 7, Decimal("3"), ("USD", "EUR", "JPY")[i % 3],
                  bill_to=IndividualFactory(business=business_a))

    client.force_login(finance_a)
    make(5)
    few = _queries(client, url)
    make(45)
    assert _queries(client, url) == few


def test_home_money_owed_per_currency_with_links(client, staff_a, business_a, business_b):
    _open(business_a, 3, Decimal("100.00"), "USD")
    _open(business_a, 0, Decimal("50.00"), "USD")
    _open(business_a, -2, Decimal("2000"), "JPY")
    _open(business_b, 3, Decimal("999.00"), "USD")
    client.force_login(staff_a)
    html = client.get("/").content.decode()
    usd = html.split('data-currency="USD"')[1].split("</div>\n  </div>")[0]
    assert "150.00 USD" in usd and "100.00 USD overdue · 1 invoice" in usd
    assert "?status=open&amp;overdue=on&amp;currency=USD" in usd
    jpy = html.split('data-currency="JPY"')[1]
    assert "2,000 JPY" in jpy and "0 JPY overdue" in jpy
    assert "999.00" not in html


def test_home_money_owed_empty(client, staff_a):
    client.force_login(staff_a)
    assert "Nothing is owed" in client.get("/").content.decode()
