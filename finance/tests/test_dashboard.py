"""The billing overview: figures per currency and month from invoices, payments and
refunds, never added across currencies; a fixed number of queries whatever the volume;
finance roles and one business only; every figure in a table, the chart from the same."""
import json
import re
from datetime import date, datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.tests.factories import IndividualFactory
from finance import dashboard
from finance.models import InvoiceStatus
from finance.tests.factories import InvoiceFactory, PaymentFactory, RefundFactory

pytestmark = pytest.mark.django_db

D = Decimal
TODAY = date(2026, 6, 15)


def at(day: date, hour=12):
    return datetime(day.year, day.month, day.day, hour, tzinfo=dt_timezone.utc)


@pytest.fixture
def books(business_a, business_b):
    acme = IndividualFactory(business=business_a, name="Acme")
    zed = IndividualFactory(business=business_a, name="Zed")
    june, may = date(2026, 6, 3), date(2026, 5, 20)
    inv = dict(business=business_a)
    paid = InvoiceFactory(**inv, bill_to=acme, status=InvoiceStatus.PAID, total=D("1000"), amount_paid=D("1000"),
                          finalized_at=at(may))
    overdue = InvoiceFactory(**inv, bill_to=zed, status=InvoiceStatus.OPEN, total=D("300"), amount_remaining=D("300"),
                             finalized_at=at(may), due_date=date(2026, 6, 1))
    current = InvoiceFactory(**inv, bill_to=zed, status=InvoiceStatus.OPEN, total=D("200"), amount_remaining=D("150"),
                             amount_paid=D("50"), finalized_at=at(june), due_date=date(2026, 7, 1))
    InvoiceFactory(**inv, bill_to=zed, status=InvoiceStatus.VOID, total=D("999"), finalized_at=at(june))
    InvoiceFactory(**inv, bill_to=zed, status=InvoiceStatus.DRAFT, total=D("777"))  # not finalized: not invoiced
    eur = InvoiceFactory(**inv, bill_to=acme, currency="EUR", status=InvoiceStatus.PAID, total=D("80"),
                         amount_paid=D("80"), finalized_at=at(june), disputed=True)
    # Payments: collected in the month paid; a failed attempt counts against the success rate.
    p1 = PaymentFactory(invoice=paid, amount=D("1000"), fee=D("29.30"), status="partially_refunded",
                        amount_refunded=D("100"), paid_at=at(may))
    PaymentFactory(invoice=current, amount=D("50"), fee=D("1.75"), status="succeeded", paid_at=at(june))
    PaymentFactory(invoice=overdue, amount=D("300"), status="failed", paid_at=None)
    PaymentFactory(invoice=eur, amount=D("80"), currency="EUR", fee=D("2.50"), status="succeeded", paid_at=at(june))
    refund = RefundFactory(payment=p1, amount=D("100"), currency="USD")
    refund.created_at = at(june)
    refund.save(update_fields=["created_at"])
    # Another business: never in business_a's figures.
    InvoiceFactory(business=business_b, status=InvoiceStatus.OPEN, total=D("5000"), amount_remaining=D("5000"),
                   finalized_at=at(june))
    return acme, zed


def _overview(business):
    return {cf.currency: cf for cf in dashboard.billing_overview(business=business, today=TODAY)}


def test_month_starts_cover_twelve_months_ending_this_one():
    starts = dashboard.month_starts(today=date(2026, 2, 10))
    assert len(starts) == 12 and starts[0] == date(2025, 3, 1) and starts[-1] == date(2026, 2, 1)


def test_billing_overview_by_month_and_currency(business_a, books):
    overview = _overview(business_a)
    assert list(overview) == ["EUR", "USD"]
    usd = overview["USD"]
    june, may = usd.months[date(2026, 6, 1)], usd.months[date(2026, 5, 1)]
    assert (may["invoiced"], may["outstanding"], may["overdue"]) == (D("1300"), D("300"), D("300"))
    assert (june["invoiced"], june["outstanding"], june["overdue"]) == (D("200"), D("150"), D("0"))  # void left out
    assert (may["collected"], may["fees"], june["collected"], june["fees"]) == (D("1000"), D("29.30"), D("50"), D("1.75"))
    assert (june["refunded"], may["refunded"]) == (D("100"), D("0"))
    assert usd.totals == {"invoiced": D("1500"), "outstanding": D("450"), "overdue": D("300"), "collected": D("1050"),
                          "fees": D("31.05"), "refunded": D("100")}
    assert (usd.payments_succeeded, usd.payments_failed, usd.success_rate) == (2, 1, D("66.7"))
    assert usd.disputed_count == 0
    eur = overview["EUR"]
    # Never summed across currencies: EUR figures stay EUR, USD stays USD.
    assert eur.totals["invoiced"] == D("80") and eur.totals["collected"] == D("80") and eur.totals["fees"] == D("2.50")
    assert (eur.disputed_count, eur.disputed_amount, eur.success_rate) == (1, D("80"), D("100.0"))


def test_billing_overview_other_business_and_old_months_are_left_out(business_a, business_b, books):
    InvoiceFactory(business=business_a, status=InvoiceStatus.OPEN, total=D("11"), amount_remaining=D("11"),
                   finalized_at=at(date(2025, 5, 31)))  # 13 months back
    assert _overview(business_a)["USD"].totals["invoiced"] == D("1500")
    assert _overview(business_b)["USD"].totals["invoiced"] == D("5000")


def test_top_contacts_ranks_revenue_less_refunds_per_currency(business_a, books):
    acme, zed = books
    top = dashboard.top_contacts(business=business_a, today=TODAY)
    assert [(c["name"], c["revenue"]) for c in top["USD"]] == [("Acme", D("900")), ("Zed", D("50"))]
    assert [(c["name"], c["revenue"]) for c in top["EUR"]] == [("Acme", D("80"))]
    assert [c["name"] for c in dashboard.top_contacts(business=business_a, today=TODAY, limit=1)["USD"]] == ["Acme"]


def _add_volume(business, n):
    for i in range(n):
        for currency in ("USD", "EUR", "JPY"):
            invoice = InvoiceFactory(business=business, currency=currency, status=InvoiceStatus.OPEN, total=D("10"),
                                     amount_remaining=D("10"), finalized_at=at(TODAY - timedelta(days=40 * (i % 9))))
            payment = PaymentFactory(invoice=invoice, currency=currency, amount=D("5"), status="succeeded",
                                     paid_at=at(TODAY - timedelta(days=30 * (i % 11))))
            RefundFactory(payment=payment, currency=currency, amount=D("1"))


def _queries(fn):
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def test_dashboard_selectors_query_count_is_constant(business_a):
    _add_volume(business_a, 1)
    overview = lambda: dashboard.billing_overview(business=business_a, today=TODAY)  # noqa: E731
    top = lambda: dashboard.top_contacts(business=business_a, today=TODAY)  # noqa: E731
    assert _queries(overview) == 5 and _queries(top) == 1
    _add_volume(business_a, 12)
    assert _queries(overview) == 5 and _queries(top) == 1


def test_dashboard_page_query_count_is_constant(client, finance_a, business_a):
    client.force_login(finance_a)
    url = reverse("ui:dashboard")
    _add_volume(business_a, 1)
    few = _queries(lambda: client.get(url))
    _add_volume(business_a, 12)
    assert _queries(lambda: client.get(url)) == few


def test_dashboard_page_tables_chart_data_and_local_chart_library(client, finance_a, business_a, books, monkeypatch):
    monkeypatch.setattr("finance.selectors.today", lambda: TODAY)
    client.force_login(finance_a)
    resp = client.get(reverse("ui:dashboard"))
    body = resp.content.decode()
    assert resp.status_code == 200
    usd = re.search(r'<table data-months="USD">.*?</table>', body, re.S).group(0)
    assert '<tr data-month="2026-05"><td>2026-05</td><td class="num">1,300.00 USD</td><td class="num">1,000.00 USD</td>' in usd
    assert 'data-figure="overdue">300.00 USD<' in body and 'data-figure="invoiced">80.00 EUR<' in body
    assert "5,000.00" not in body  # business_b's invoice
    data = json.loads(re.search(r'<script id="dashboard-chart-data" type="application/json">(.*?)</script>', body, re.S).group(1))
    assert data["USD"]["labels"][-2:] == ["2026-05", "2026-06"] and data["USD"]["series"]["invoiced"][-2:] == ["1300.00", "200.00"]
    assert data["EUR"]["series"]["collected"][-1] == "80.00"
    scripts = re.findall(r'<script src="([^"]+)"', body)
    assert scripts == ["/static/crm/vendor/htmx/htmx.min.js", "/static/finance/vendor/chartjs/chart.umd.min.js",
                       "/static/finance/dashboard.js"]
    assert "Acme" in re.search(r'<table data-top="USD">.*?</table>', body, re.S).group(0)


def test_dashboard_is_for_finance_roles(client, staff_a, finance_b, business_a, books):
    assert client.get(reverse("ui:dashboard")).status_code == 302
    client.force_login(staff_a)
    assert client.get(reverse("ui:dashboard")).status_code == 403
    client.force_login(finance_b)
    body = client.get(reverse("ui:dashboard")).content.decode()
    assert "Acme" not in body and "1,300.00" not in body


def test_dashboard_empty_business_says_so(client, finance_a):
    client.force_login(finance_a)
    assert 'data-empty' in client.get(reverse("ui:dashboard")).content.decode()


def test_billing_overview_months_match_a_direct_computation_at_the_boundaries(business_a):
    """Each invoice and payment falls in exactly the month its timestamp is in, edges included
    (the first instant of a month belongs to it; the instant before, to the month before),
    and nothing outside the twelve months counts: compared with a sum made row by row."""
    import random

    from finance.models import Invoice, Payment

    rng = random.Random(14)
    contact = IndividualFactory(business=business_a)
    starts = dashboard.month_starts(today=TODAY)
    first = timezone.make_aware(datetime(starts[0].year, starts[0].month, 1))
    stamps = []
    for m in [*starts, date(2026, 7, 1)]:
        edge = timezone.make_aware(datetime(m.year, m.month, 1))
        stamps += [edge, edge - timedelta(microseconds=1), edge + timedelta(days=rng.randrange(0, 27))]
    for n, stamp in enumerate(stamps):
        status = rng.choice([InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.VOID])
        total = D(rng.randrange(100, 100000)) / 100
        invoice = InvoiceFactory(business=business_a, bill_to=contact, status=status, total=total,
                                 amount_remaining=total if status == InvoiceStatus.OPEN else D(0),
                                 finalized_at=stamp, due_date=(stamp + timedelta(days=30)).date())
        if status == InvoiceStatus.PAID:
            PaymentFactory(invoice=invoice, amount=total, fee=D("1.00"), status="succeeded", paid_at=stamp)

    def month_of(stamp):
        local = timezone.localtime(stamp)
        month = date(local.year, local.month, 1)
        return month if stamp >= first and month in starts else None

    expected = {m: dict.fromkeys(dashboard.FIGURES, D(0)) for m in starts}
    for inv in Invoice.objects.filter(business=business_a).exclude(status=InvoiceStatus.VOID):
        month = month_of(inv.finalized_at)
        if month:
            expected[month]["invoiced"] += inv.total
            if inv.status == InvoiceStatus.OPEN:
                expected[month]["outstanding"] += inv.amount_remaining
                if inv.due_date < TODAY:
                    expected[month]["overdue"] += inv.amount_remaining
    for p in Payment.objects.filter(business=business_a):
        month = month_of(p.paid_at)
        if month:
            expected[month]["collected"] += p.amount
            expected[month]["fees"] += p.fee
    usd = _overview(business_a)["USD"]
    assert usd.months == expected
    assert any(v["invoiced"] for v in expected.values()) and any(v["overdue"] for v in expected.values())
