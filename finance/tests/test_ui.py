"""The billables page of the staff UI, and the money template filter."""
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.admin_base import format_money
from finance.templatetags import money as money_tags
from crm.tests.factories import IndividualFactory, OpportunityFactory, TicketFactory, UserFactory
from finance.tests.factories import BillableFactory, InvoiceFactory
from services.tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db

URL = "/billables/"


def _page(client, **params):
    response = client.get(URL, params)
    assert response.status_code == 200
    return response.content.decode()


def test_billable_list_url_name():
    assert reverse("ui:billable_list") == URL


def test_billable_list_anonymous_redirected(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_billable_list_forbidden_without_membership(client, business_a):
    client.force_login(UserFactory())
    assert client.get(URL).status_code == 403


@pytest.mark.parametrize("user_fixture", ["staff_a", "finance_a", "owner_a"])
def test_billable_list_visible_to_every_role(client, request, business_a, user_fixture):
    BillableFactory(business=business_a, description="Visible work")
    client.force_login(request.getfixturevalue(user_fixture))
    assert "Visible work" in _page(client)


def test_billable_list_staff_add_billables_but_not_invoice_them(client, staff_a, finance_a, business_a):
    # Staff record billables (issue 14: the add form is on the list); generating
    # invoices and the admin stay with the finance roles.
    BillableFactory(business=business_a)
    client.force_login(staff_a)
    html = _page(client)
    assert 'action="/billables/new/"' in html
    assert "data-generate-invoice" not in html
    assert reverse("admin:index") not in html
    assert client.post(URL, {"description": "x"}).status_code == 405
    client.force_login(finance_a)
    html = _page(client)
    assert reverse("admin:index") in html and "data-generate-invoice" in html


def test_billable_list_shows_only_own_business_both_ways(client, staff_a, finance_b, business_a, business_b):
    BillableFactory(business=business_a, description="Alpha work")
    BillableFactory(business=business_b, description="Beta work")
    client.force_login(staff_a)
    html = _page(client)
    assert "Alpha work" in html and "Beta work" not in html
    client.force_login(finance_b)
    html = _page(client)
    assert "Beta work" in html and "Alpha work" not in html


def test_billable_list_filters_by_status(client, staff_a, business_a):
    BillableFactory(business=business_a, description="Open item")
    BillableFactory(business=business_a, description="Settled item", status="paid")
    client.force_login(staff_a)
    html = _page(client, status="paid")
    assert "Settled item" in html and "Open item" not in html


def test_billable_list_filters_by_currency(client, staff_a, business_a):
    BillableFactory(business=business_a, description="Yen item", currency="JPY", unit_price=Decimal("1500"))
    BillableFactory(business=business_a, description="Dollar item", currency="USD")
    client.force_login(staff_a)
    html = _page(client, currency="JPY")
    assert "Yen item" in html and "Dollar item" not in html
    assert "1,500 JPY" in html and "1,500.00" not in html


def test_billable_list_filters_by_contact(client, staff_a, business_a, business_b):
    ann = IndividualFactory(business=business_a, name="Ann")
    BillableFactory(business=business_a, bill_to=ann, description="Ann's item")
    BillableFactory(business=business_a, description="Someone else's item")
    client.force_login(staff_a)
    html = _page(client, bill_to=ann.pk)
    assert "Ann&#x27;s item" in html and "Someone else" not in html
    # another business's contact id is a form error and shows nothing
    contact_b = IndividualFactory(business=business_b)
    html = _page(client, bill_to=contact_b.pk)
    assert "Select a valid choice" in html and "Ann&#x27;s item" not in html


def test_billable_list_filters_by_date_range(client, staff_a, business_a):
    BillableFactory(business=business_a, description="March work", service_date="2025-03-15")
    BillableFactory(business=business_a, description="June work", service_date="2025-06-15")
    client.force_login(staff_a)
    html = _page(client, date_from="2025-03-01", date_to="2025-03-31")
    assert "March work" in html and "June work" not in html
    html = _page(client, date_from="2025-04-01")
    assert "June work" in html and "March work" not in html


def test_billable_list_search(client, staff_a, business_a):
    BillableFactory(business=business_a, description="Roof repair")
    BillableFactory(business=business_a, description="Window cleaning")
    client.force_login(staff_a)
    html = _page(client, q="roof")
    assert "Roof repair" in html and "Window cleaning" not in html


def test_billable_list_shows_line_amount_and_sources(client, staff_a, business_a):
    contact = IndividualFactory(business=business_a, name="Dora")
    opp = OpportunityFactory(business=business_a, contact=contact, title="Kitchen refit")
    ticket = TicketFactory(business=business_a, contact=contact, subject="Leaking tap")
    invoice = InvoiceFactory(business=business_a, bill_to=contact, number="INV-77")
    BillableFactory(business=business_a, bill_to=contact, opportunity=opp, quantity=Decimal("2.5"),
                    unit_price=Decimal("40.10"), currency="EUR", invoice=invoice, status="invoiced")
    BillableFactory(business=business_a, bill_to=contact, ticket=ticket, unit_price=Decimal("15"), currency="EUR",
                    line_type="credit", description="Goodwill")
    client.force_login(staff_a)
    html = _page(client)
    assert "100.25 EUR" in html and "-15.00 EUR" in html
    assert "Kitchen refit" in html and "Leaking tap" in html and "INV-77" in html and "Dora" in html


def test_billable_list_paginates_by_25(client, staff_a, business_a):
    for i in range(26):
        BillableFactory(business=business_a, description=f"Item {i:02d}", service_date=f"2025-01-{i + 1:02d}")
    client.force_login(staff_a)
    first = _page(client)
    assert "Item 25" in first and "Item 00" not in first
    assert "Item 00" in _page(client, page=2)


def test_billable_list_query_count_constant(client, staff_a, business_a):
    def add(n):
        for _ in range(n):
            contact = IndividualFactory(business=business_a)
            opp = OpportunityFactory(business=business_a, contact=contact)
            ticket = TicketFactory(business=business_a, contact=contact)
            service = ServiceFactory(business=business_a)
            invoice = InvoiceFactory(business=business_a, bill_to=contact)
            BillableFactory(business=business_a, bill_to=contact, opportunity=opp, service=service, invoice=invoice)
            BillableFactory(business=business_a, bill_to=contact, ticket=ticket, service=service, description="")

    client.force_login(staff_a)
    add(5)
    with CaptureQueriesContext(connection) as few:
        assert client.get(URL).status_code == 200
    add(45)
    with CaptureQueriesContext(connection) as many:
        assert client.get(URL).status_code == 200
    assert len(few) == len(many)


# --- the money filter -------------------------------------------------------------------

@pytest.mark.parametrize("amount,currency,expected", [
    (Decimal("1500"), "JPY", "1,500 JPY"),
    (Decimal("1500.000"), "jpy", "1,500 JPY"),
    (Decimal("1234.5"), "USD", "1,234.50 USD"),
    (Decimal("0.005"), "USD", "0.01 USD"),
    (Decimal("-0.001"), "EUR", "0.00 EUR"),
    (Decimal("12.5"), "XXX", "12.50 XXX"),  # unknown code: two places, never an error
    (Decimal("12.5"), "", "12.50"),
    (None, "USD", ""),
])
def test_money_filter_formats(amount, currency, expected):
    assert money_tags.money(amount, currency) == expected


@pytest.mark.parametrize("amount,currency", [
    (Decimal("12.345"), "KWD"), (Decimal("1000"), "ISK"), (Decimal("1500.4"), "JPY"), (Decimal("-0.001"), "USD"),
])
def test_money_filter_and_admin_show_the_same_text(amount, currency):
    # One rule (finance.money.format_money) for the staff UI and the admin: a three-decimal
    # currency shows its three places (to the fils, like its VAT) in both.
    assert money_tags.money(amount, currency) == format_money(amount, currency)


def test_line_gross_negates_credits():
    charge = SimpleNamespace(quantity=Decimal("3"), unit_price=Decimal("2.50"), line_type="charge")
    credit = SimpleNamespace(quantity=Decimal("1"), unit_price=Decimal("4"), line_type="credit")
    assert money_tags.line_gross(charge) == Decimal("7.50")
    assert money_tags.line_gross(credit) == Decimal("-4")
