"""The Invoices page: filters, search, sort, pagination, tenancy, roles, constant queries,
hostile parameters."""
import re
from html import unescape
from urllib.parse import parse_qs
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.tests.factories import IndividualFactory, UserFactory
from finance.models import PaymentStatus
from finance.tests.factories import InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db

URL = "/invoices/"


def _page(client, **params):
    response = client.get(URL, params)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def _numbers(html):
    return re.findall(r'data-invoice="([^"]+)"', html)


def _issued(day):
    return datetime(day.year, day.month, day.day, 12, tzinfo=dt_timezone.utc)


def test_invoice_list_url_name():
    assert reverse("ui:invoice_list") == URL


def test_invoice_list_anonymous_redirected(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_invoice_list_forbidden_without_membership(client, business_a):
    client.force_login(UserFactory())
    assert client.get(URL).status_code == 403


@pytest.mark.parametrize("user_fixture", ["staff_a", "finance_a", "owner_a"])
def test_invoice_list_visible_to_every_role(client, request, business_a, user_fixture):
    InvoiceFactory(business=business_a, number="INV-VIS")
    client.force_login(request.getfixturevalue(user_fixture))
    html = _page(client)
    assert _numbers(html) == ["INV-VIS"]
    # the aging report link is for finance roles only
    assert (reverse("ui:invoice_aging") in html.split("<main>")[1]) == (user_fixture != "staff_a")


def test_invoice_list_in_navigation(client, staff_a):
    client.force_login(staff_a)
    assert f'href="{URL}"' in client.get("/").content.decode()


def test_invoice_list_shows_only_own_business_both_ways(client, staff_a, finance_b, business_a, business_b):
    InvoiceFactory(business=business_a, number="A-1")
    InvoiceFactory(business=business_b, number="B-1")
    client.force_login(staff_a)
    assert _numbers(_page(client)) == ["A-1"]
    client.force_login(finance_b)
    assert _numbers(_page(client)) == ["B-1"]


def test_invoice_list_contact_filter_refuses_other_business_contact(client, staff_a, business_a, business_b):
    InvoiceFactory(business=business_a, number="A-1")
    foreign = InvoiceFactory(business=business_b, number="B-1")
    client.force_login(staff_a)
    html = _page(client, bill_to=foreign.bill_to_id)
    assert _numbers(html) == [] and "errorlist" in html


def test_invoice_list_columns(client, staff_a, business_a):
    InvoiceFactory(business=business_a, number="INV-7", stripe_number="ABCD-0007", status="open",
                   total=Decimal("150000"), amount_remaining=Decimal("100000"), currency="JPY",
                   due_date=datetime(2026, 1, 31).date(), finalized_at=_issued(datetime(2026, 1, 1)))
    client.force_login(staff_a)
    html = _page(client)
    row = html.split('data-invoice="INV-7"')[1].split("</tr>")[0]
    for text in ("ABCD-0007", "2026-01-01", "2026-01-31", 'data-status="open"', "150,000 JPY", "100,000 JPY"):
        assert text in row


def test_invoice_list_filters_by_status_and_flags(client, staff_a, business_a):
    InvoiceFactory(business=business_a, number="OPEN", status="open")
    InvoiceFactory(business=business_a, number="PAID", status="paid")
    InvoiceFactory(business=business_a, number="DISPUTED", status="paid", disputed=True)
    processing = InvoiceFactory(business=business_a, number="PROC", status="open")
    PaymentFactory(invoice=processing, status=PaymentStatus.PROCESSING)
    client.force_login(staff_a)
    assert sorted(_numbers(_page(client, status="paid"))) == ["DISPUTED", "PAID"]
    assert _numbers(_page(client, status="disputed")) == ["DISPUTED"]
    html = _page(client, status="processing")
    assert _numbers(html) == ["PROC"] and "data-processing" in html
    assert sorted(_numbers(_page(client, status=["open", "disputed"]))) == ["DISPUTED", "OPEN", "PROC"]


def test_invoice_list_overdue_filter_is_open_and_past_due(client, staff_a, business_a):
    today = timezone.localdate()
    InvoiceFactory(business=business_a, number="LATE", status="open", due_date=today - timedelta(days=1))
    InvoiceFactory(business=business_a, number="TODAY", status="open", due_date=today)
    InvoiceFactory(business=business_a, number="LATE-PAID", status="paid", due_date=today - timedelta(days=9))
    InvoiceFactory(business=business_a, number="NO-DUE", status="open", due_date=None)
    client.force_login(staff_a)
    html = _page(client, overdue="on")
    assert _numbers(html) == ["LATE"]
    assert html.count("data-overdue") == 1


def test_invoice_list_filters_currency_contact_and_dates(client, staff_a, business_a):
    ada = IndividualFactory(business=business_a, name="Ada")
    InvoiceFactory(business=business_a, number="EUR-ADA", currency="EUR", bill_to=ada,
                   finalized_at=_issued(datetime(2026, 3, 10)), due_date=datetime(2026, 4, 9).date())
    InvoiceFactory(business=business_a, number="USD-1", currency="USD",
                   finalized_at=_issued(datetime(2026, 2, 1)), due_date=datetime(2026, 3, 3).date())
    InvoiceFactory(business=business_a, number="DRAFT", currency="USD")
    client.force_login(staff_a)
    assert _numbers(_page(client, currency="EUR")) == ["EUR-ADA"]
    assert _numbers(_page(client, bill_to=ada.pk)) == ["EUR-ADA"]
    assert _numbers(_page(client, issued_from="2026-03-10")) == ["EUR-ADA"]
    assert _numbers(_page(client, issued_to="2026-03-09")) == ["USD-1"]
    assert _numbers(_page(client, due_from="2026-03-01", due_to="2026-03-31")) == ["USD-1"]


def test_invoice_list_search_by_number_stripe_number_or_contact(client, staff_a, business_a):
    InvoiceFactory(business=business_a, number="INV-100", bill_to=IndividualFactory(business=business_a, name="Grace Hopper"))
    InvoiceFactory(business=business_a, number="INV-200", stripe_number="XY-0042")
    client.force_login(staff_a)
    assert _numbers(_page(client, q="hopper")) == ["INV-100"]
    assert _numbers(_page(client, q="inv-2")) == ["INV-200"]
    assert _numbers(_page(client, q="xy-0042")) == ["INV-200"]


def test_invoice_list_sorts_by_each_column_both_ways(client, staff_a, business_a):
    a = IndividualFactory(business=business_a, name="Aaron")
    z = IndividualFactory(business=business_a, name="Zed")
    InvoiceFactory(business=business_a, number="N-2", bill_to=z, total=Decimal("5"), amount_remaining=Decimal("5"),
                   due_date=datetime(2026, 1, 2).date(), finalized_at=_issued(datetime(2026, 1, 1)))
    InvoiceFactory(business=business_a, number="N-1", bill_to=a, total=Decimal("50"), amount_remaining=Decimal("0"),
                   due_date=datetime(2026, 5, 2).date(), finalized_at=_issued(datetime(2026, 5, 1)))
    client.force_login(staff_a)
    assert _numbers(_page(client, sort="number")) == ["N-1", "N-2"]
    assert _numbers(_page(client, sort="-number")) == ["N-2", "N-1"]
    assert _numbers(_page(client, sort="contact")) == ["N-1", "N-2"]
    assert _numbers(_page(client, sort="total")) == ["N-2", "N-1"]
    assert _numbers(_page(client, sort="-remaining")) == ["N-2", "N-1"]
    assert _numbers(_page(client, sort="issued")) == ["N-2", "N-1"]
    assert _numbers(_page(client, sort="-due")) == ["N-1", "N-2"]
    # the active column's header links to the other direction, keeping the filters
    html = _page(client, sort="number", q="N-")
    links = [parse_qs(unescape(h)[1:]) for h in re.findall(r'href="(\?[^"]*sort=[^"]*)"', html)]
    assert links[0] == {"q": ["N-"], "sort": ["-number"]} and links[1] == {"q": ["N-"], "sort": ["stripe_number"]}


def test_invoice_list_drafts_sort_last_by_issue_date(client, staff_a, business_a):
    InvoiceFactory(business=business_a, number="DRAFT")
    InvoiceFactory(business=business_a, number="ISSUED", finalized_at=_issued(datetime(2026, 1, 1)))
    client.force_login(staff_a)
    assert _numbers(_page(client, sort="issued")) == ["ISSUED", "DRAFT"]
    assert _numbers(_page(client, sort="-issued")) == ["ISSUED", "DRAFT"]


def test_invoice_list_paginates(client, staff_a, business_a):
    for n in range(30):
        InvoiceFactory(business=business_a, number=f"P-{n:02d}")
    client.force_login(staff_a)
    first = _numbers(_page(client, sort="number"))
    second = _numbers(_page(client, sort="number", page=2))
    assert first == [f"P-{n:02d}" for n in range(25)]
    assert second == [f"P-{n:02d}" for n in range(25, 30)]


@pytest.mark.parametrize("params", [
    {"page": "abc"}, {"page": "9999"}, {"page": "-1"}, {"sort": "bill_to__business__name"}, {"sort": "-"},
    {"sort": "password"}, {"issued_from": "2026-13-45"}, {"due_to": "yesterday"}, {"bill_to": "abc"},
    {"bill_to": "99999999"}, {"currency": "<script>"}, {"status": "bogus"}, {"overdue": "maybe"},
    {"q": "%' OR 1=1 --"}, {"q": "x" * 5000},
])
def test_invoice_list_hostile_params_never_500(client, staff_a, business_a, params):
    InvoiceFactory(business=business_a, number="SAFE")
    client.force_login(staff_a)
    response = client.get(URL, params)
    assert response.status_code == 200
    assert "<script>" not in response.content.decode().split("<main>")[1].replace("&lt;script&gt;", "")


def test_invoice_list_unknown_sort_falls_back_to_newest_first(client, staff_a, business_a):
    InvoiceFactory(business=business_a, number="OLDER")
    InvoiceFactory(business=business_a, number="NEWER")
    client.force_login(staff_a)
    assert _numbers(_page(client, sort="bill_to__business__name")) == ["NEWER", "OLDER"]


def _count_queries(client, params):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(URL, params).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("params", [{}, {"status": ["open", "processing"], "sort": "-due", "q": "INV"}])
def test_invoice_list_queries_constant_5_vs_50_rows(client, staff_a, business_a, params):
    def make(n):
        for _ in range(n):
            invoice = InvoiceFactory(business=business_a, status="open",
                                     bill_to=IndividualFactory(business=business_a))
            PaymentFactory(invoice=invoice, status=PaymentStatus.PROCESSING)

    client.force_login(staff_a)
    make(5)
    few = _count_queries(client, {**params, "page": 1})
    make(45)
    client.get(URL)  # warm any per-process caches equally
    # 50 rows: two pages of 25; both pages cost what the 5-row page did
    assert _count_queries(client, params) == few
    assert _count_queries(client, {**params, "page": 2}) == few


def test_invoice_detail_history_queries_constant_5_vs_50(client, finance_a, owner_a, business_a):
    from crm.audit import audit_record

    invoice = InvoiceFactory(business=business_a, number="HIST-1", finalized_at=_issued(datetime(2026, 1, 2)))
    url = reverse("ui:invoice_detail", args=[invoice.pk])

    def make(n):
        for i in range(n):
            audit_record(business=business_a, user=(finance_a, owner_a, None)[i % 3], action="stripe_event",
                         obj=invoice, detail=f"event {i}")

    def count():
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200
        return len(ctx.captured_queries), response.content.decode()

    client.force_login(finance_a)
    count()  # the first view makes the business's integration settings row
    make(5)
    few, _ = count()
    make(45)
    many, html = count()
    assert many == few and html.count('data-action="stripe_event"') == 50
    assert "data-issued>2026-01-02" in html


HX = {"HX-Request": "true"}


def test_invoice_list_htmx_request_gets_the_results_fragment_only(client, finance_a, business_a, business_b):
    InvoiceFactory(business=business_a, number="A-EUR", currency="EUR")
    InvoiceFactory(business=business_a, number="A-USD", currency="USD")
    InvoiceFactory(business=business_b, number="B-EUR", currency="EUR")
    client.force_login(finance_a)
    full = client.get(URL, {"currency": "EUR"})
    html = full.content.decode()
    # the whole page: layout, the filter form wired to fetch the results, the results
    assert "<html" in html and 'role="search"' in html and 'hx-get="/invoices/"' in html
    assert 'hx-target="#invoice-results"' in html and _numbers(html) == ["A-EUR"]
    assert "HX-Request" in full["Vary"]
    part = client.get(URL, {"currency": "EUR"}, headers=HX)
    fragment = part.content.decode()
    assert fragment.lstrip().startswith('<div id="invoice-results"')
    assert "<html" not in fragment and 'role="search"' not in fragment and "<h1>" not in fragment
    assert _numbers(fragment) == ["A-EUR"]  # filtered, and only this business's
    # the Export links follow the filters (swapped out of band)
    assert 'id="invoice-exports" hx-swap-oob="true"' in fragment
    assert 'href="/exports/invoices.csv?currency=EUR" data-export-link="invoices.csv"' in fragment
    assert "HX-Request" in part["Vary"]


def test_invoice_list_htmx_fragment_sorts_and_paginates_like_the_page(client, staff_a, business_a):
    for n in range(30):
        InvoiceFactory(business=business_a, number=f"P-{n:02d}")
    client.force_login(staff_a)
    part = client.get(URL, {"sort": "-number", "page": 2}, headers=HX).content.decode()
    assert _numbers(part) == [f"P-{n:02d}" for n in range(4, -1, -1)]
    # sort headers and pager links are boosted inside the fragment; staff get no Export links
    assert 'hx-boost="true"' in part and "Page 2 of 2" in part and "invoice-exports" not in part
    # htmx restoring history after a cache miss needs the whole page
    restore = client.get(URL, {"sort": "-number"}, headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.content.decode()
