"""Staff UI: access, tenancy in both directions, filters, forms, and query counts."""
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Individual, Opportunity, Organization, Role, Ticket
from crm.tenancy import SESSION_KEY
from crm.tests.factories import (IndividualFactory, MembershipFactory, OpportunityFactory, OrganizationFactory,
                                 TicketFactory, UserFactory, member)
from finance.tests.factories import BillableFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db


def _page(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


@pytest.fixture
def records_a(business_a):
    contact = IndividualFactory(business=business_a, name="Ada Alpha")
    return {
        "contact": contact,
        "opportunity": OpportunityFactory(business=business_a, contact=contact, title="Alpha deal"),
        "ticket": TicketFactory(business=business_a, contact=contact, subject="Alpha printer jam"),
    }


@pytest.fixture
def records_b(business_b):
    contact = IndividualFactory(business=business_b, name="Bob Beta")
    return {
        "contact": contact,
        "opportunity": OpportunityFactory(business=business_b, contact=contact, title="Beta deal"),
        "ticket": TicketFactory(business=business_b, contact=contact, subject="Beta broken login"),
    }


def _member_urls(records):
    c, o, t = records["contact"], records["opportunity"], records["ticket"]
    return [
        reverse("ui:home"), reverse("ui:contact_list"), reverse("ui:contact_detail", args=[c.pk]),
        reverse("ui:contact_update", args=[c.pk]), reverse("ui:individual_create"),
        reverse("ui:organization_create"), reverse("ui:opportunity_list"),
        reverse("ui:opportunity_detail", args=[o.pk]), reverse("ui:opportunity_create"),
        reverse("ui:opportunity_update", args=[o.pk]), reverse("ui:ticket_list"),
        reverse("ui:ticket_detail", args=[t.pk]), reverse("ui:ticket_create"),
        reverse("ui:ticket_update", args=[t.pk]), reverse("ui:billable_list"),
    ]


# --- login and access -----------------------------------------------------------------

def test_login_page_renders(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html and 'name="password"' in html and "csrfmiddlewaretoken" in html


def test_login_post_lands_on_home(client, staff_a):
    response = client.post(reverse("login"), {"username": "staff_a", "password": "pw"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("ui:home")
    assert "Alpha Ltd" in response.content.decode()


def test_ui_anonymous_redirected_to_login(client, records_a):
    for url in _member_urls(records_a):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url


@pytest.mark.parametrize("user_fixture", ["staff_a", "finance_a", "owner_a"])
def test_ui_member_pages_ok(client, request, records_a, user_fixture):
    client.force_login(request.getfixturevalue(user_fixture))
    for url in _member_urls(records_a):
        assert client.get(url).status_code == 200, url


def test_ui_user_without_membership_forbidden(client, records_a):
    client.force_login(UserFactory(is_staff=True))
    for url in _member_urls(records_a):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("ui:ticket_create"), {}).status_code == 403


def test_ui_nav_shows_business_and_role(client, staff_a):
    client.force_login(staff_a)
    html = _page(client, reverse("ui:home"))
    assert "Alpha Ltd" in html and ">Staff<" in html


def test_home_admin_link_only_for_finance_roles(client, staff_a, finance_a):
    client.force_login(staff_a)
    assert reverse("admin:index") not in _page(client, reverse("ui:home"))
    client.force_login(finance_a)
    assert reverse("admin:index") in _page(client, reverse("ui:home"))


def test_home_shows_counts_and_unbilled_per_currency(client, staff_a, business_a, business_b):
    contact = IndividualFactory(business=business_a)
    BillableFactory(business=business_a, bill_to=contact, currency="JPY", unit_price=Decimal("1500"), quantity=Decimal("3"))
    BillableFactory(business=business_a, bill_to=contact, currency="USD", unit_price=Decimal("10.50"), quantity=Decimal("2"))
    BillableFactory(business=business_a, bill_to=contact, currency="USD", unit_price=Decimal("99"), status="paid")
    BillableFactory(business=business_b, currency="USD", unit_price=Decimal("7777"))
    TicketFactory(business=business_a, contact=contact, subject="Needs attention")
    client.force_login(staff_a)
    html = _page(client, reverse("ui:home"))
    assert "4,500 JPY" in html and "4,500.00" not in html
    assert "21.00 USD" in html
    assert "7,777" not in html and "99.00" not in html
    assert "Needs attention" in html


def test_switch_business_changes_current_business(client, business_a, business_b, records_a, records_b):
    user = member(business_a, Role.STAFF)
    MembershipFactory(business=business_b, user=user, role=Role.FINANCE)
    client.force_login(user)
    assert "Ada Alpha" in _page(client, reverse("ui:contact_list"))
    response = client.post(reverse("ui:switch_business"), {"business": business_b.pk})
    assert response.status_code == 302 and client.session[SESSION_KEY] == business_b.pk
    html = _page(client, reverse("ui:contact_list"))
    assert "Bob Beta" in html and "Ada Alpha" not in html


def test_switch_business_refuses_foreign_business(client, staff_a, business_b):
    client.force_login(staff_a)
    assert client.post(reverse("ui:switch_business"), {"business": business_b.pk}).status_code == 404
    assert SESSION_KEY not in client.session


# --- tenancy, both directions ---------------------------------------------------------

LISTS = [("ui:contact_list", "contact", "name"), ("ui:opportunity_list", "opportunity", "title"),
         ("ui:ticket_list", "ticket", "subject")]
DETAILS = [("ui:contact_detail", "contact"), ("ui:opportunity_detail", "opportunity"), ("ui:ticket_detail", "ticket"),
           ("ui:contact_update", "contact"), ("ui:opportunity_update", "opportunity"), ("ui:ticket_update", "ticket")]


@pytest.mark.parametrize("url_name,key,attr", LISTS)
def test_lists_show_only_own_business(client, staff_a, finance_b, records_a, records_b, url_name, key, attr):
    for user, mine, theirs in [(staff_a, records_a, records_b), (finance_b, records_b, records_a)]:
        client.force_login(user)
        html = _page(client, reverse(url_name))
        assert getattr(mine[key], attr) in html
        assert getattr(theirs[key], attr) not in html


@pytest.mark.parametrize("url_name,key", DETAILS)
def test_details_of_other_business_404(client, staff_a, finance_b, records_a, records_b, url_name, key):
    for user, mine, theirs in [(staff_a, records_a, records_b), (finance_b, records_b, records_a)]:
        client.force_login(user)
        assert client.get(reverse(url_name, args=[mine[key].pk])).status_code == 200
        assert client.get(reverse(url_name, args=[theirs[key].pk])).status_code == 404
        assert client.post(reverse(url_name, args=[theirs[key].pk]), {"name": "x"}).status_code in (404, 405)


def test_contact_detail_lists_billables_invoices_payments(client, staff_a, business_a, business_b):
    contact = IndividualFactory(business=business_a, name="Carla")
    other = IndividualFactory(business=business_a, name="Someone Else")
    BillableFactory(business=business_a, bill_to=contact, description="Carla consulting", currency="JPY",
                    unit_price=Decimal("12000"), quantity=Decimal("2"))
    BillableFactory(business=business_a, bill_to=other, description="Not Carla's work")
    invoice = InvoiceFactory(business=business_a, bill_to=contact, number="INV-CARLA-1", currency="USD",
                             total=Decimal("250.00"), status="paid")
    InvoiceFactory(business=business_a, bill_to=other, number="INV-OTHER-1")
    PaymentFactory(invoice=invoice, amount=Decimal("250.00"), currency="USD", status="succeeded", card_last4="4242")
    client.force_login(staff_a)
    html = _page(client, reverse("ui:contact_detail", args=[contact.pk]))
    assert "Carla consulting" in html and "24,000 JPY" in html and "12,000 JPY" in html
    assert "INV-CARLA-1" in html and "250.00 USD" in html and "4242" in html
    assert "Not Carla" not in html and "INV-OTHER-1" not in html


def test_organization_detail_lists_its_people(client, staff_a, business_a):
    org = OrganizationFactory(business=business_a, name="Acme")
    IndividualFactory(business=business_a, organization=org, name="Employee One")
    IndividualFactory(business=business_a, name="Freelancer")
    client.force_login(staff_a)
    html = _page(client, reverse("ui:contact_detail", args=[org.pk]))
    assert "Employee One" in html and "Freelancer" not in html


# --- filters and search ---------------------------------------------------------------

def test_contact_list_search_matches_name_email_and_tax_id(client, staff_a, business_a):
    IndividualFactory(business=business_a, name="Grace Hopper", email="grace@navy.example")
    IndividualFactory(business=business_a, name="Alan Turing", email="alan@bletchley.example")
    OrganizationFactory(business=business_a, name="Initech", tax_id="GB999888777")
    client.force_login(staff_a)
    html = _page(client, reverse("ui:contact_list"), q="hopper")
    assert "Grace Hopper" in html and "Alan Turing" not in html
    html = _page(client, reverse("ui:contact_list"), q="bletchley")
    assert "Alan Turing" in html and "Grace Hopper" not in html
    html = _page(client, reverse("ui:contact_list"), q="999888")
    assert "Initech" in html and "Alan Turing" not in html


def test_contact_list_filters_by_kind_and_organization(client, staff_a, business_a):
    org = OrganizationFactory(business=business_a, name="Globex")
    IndividualFactory(business=business_a, name="Hank Scorpio", organization=org)
    IndividualFactory(business=business_a, name="Homer Simpson")
    client.force_login(staff_a)
    html = _page(client, reverse("ui:contact_list"), kind="organization")
    assert "Globex" in html and "Hank Scorpio" not in html and "Homer Simpson" not in html
    html = _page(client, reverse("ui:contact_list"), organization=org.pk)
    assert "Hank Scorpio" in html and "Homer Simpson" not in html


def test_contact_list_filter_with_other_business_id_is_an_error(client, staff_a, business_a, business_b):
    IndividualFactory(business=business_a, name="Visible Person")
    org_b = OrganizationFactory(business=business_b, name="Beta Org")
    client.force_login(staff_a)
    html = _page(client, reverse("ui:contact_list"), organization=org_b.pk)
    assert "Select a valid choice" in html
    assert "Visible Person" not in html and "Beta Org" not in html


def test_opportunity_list_filters_by_stage_and_search(client, staff_a, business_a):
    contact = IndividualFactory(business=business_a, name="Zed")
    OpportunityFactory(business=business_a, contact=contact, title="Website redesign", stage="won")
    OpportunityFactory(business=business_a, contact=contact, title="Annual audit", stage="lead")
    OpportunityFactory(business=business_a, contact=contact, title="Website hosting", stage="lead")
    client.force_login(staff_a)
    html = _page(client, reverse("ui:opportunity_list"), stage="lead")
    assert "Annual audit" in html and "Website hosting" in html and "Website redesign" not in html
    html = _page(client, reverse("ui:opportunity_list"), stage="lead", q="website")
    assert "Website hosting" in html and "Annual audit" not in html and "Website redesign" not in html


def test_ticket_list_filters_by_status_priority_and_contact(client, staff_a, business_a):
    c1 = IndividualFactory(business=business_a, name="First Customer")
    c2 = IndividualFactory(business=business_a, name="Second Customer")
    TicketFactory(business=business_a, contact=c1, subject="Closed issue", status="closed")
    TicketFactory(business=business_a, contact=c1, subject="Urgent issue", priority="high")
    TicketFactory(business=business_a, contact=c2, subject="Other customer issue")
    client.force_login(staff_a)
    html = _page(client, reverse("ui:ticket_list"), status=["open", "pending"])
    assert "Urgent issue" in html and "Other customer issue" in html and "Closed issue" not in html
    html = _page(client, reverse("ui:ticket_list"), priority="high")
    assert "Urgent issue" in html and "Other customer issue" not in html
    html = _page(client, reverse("ui:ticket_list"), contact=c2.pk)
    assert "Other customer issue" in html and "Urgent issue" not in html


def test_contact_list_paginates_by_25(client, staff_a, business_a):
    for i in range(30):
        IndividualFactory(business=business_a, name=f"Person {i:02d}")
    client.force_login(staff_a)
    first = _page(client, reverse("ui:contact_list"))
    assert "Person 24" in first and "Person 25" not in first and "Page 1 of 2" in first
    second = _page(client, reverse("ui:contact_list"), page=2)
    assert "Person 25" in second and "Person 29" in second and "Person 00" not in second


# --- forms ----------------------------------------------------------------------------

def test_individual_create_by_staff(client, staff_a, business_a, business_b):
    org = OrganizationFactory(business=business_a, name="Employer")
    client.force_login(staff_a)
    response = client.post(reverse("ui:individual_create"), {
        "name": "New Person", "email": "new@example.com", "organization": org.pk, "country": "gb",
        "business": business_b.pk,  # ignored: the business comes from the membership
    })
    person = Individual.objects.get(name="New Person")
    assert response.status_code == 302 and response["Location"] == reverse("ui:contact_detail", args=[person.pk])
    assert person.business == business_a and person.organization == org and person.country == "GB"


def test_organization_create_by_staff(client, staff_a, business_a):
    client.force_login(staff_a)
    response = client.post(reverse("ui:organization_create"), {"name": "Newco", "billing_email": "ap@newco.example",
                                                             "tax_id": "GB1"})
    assert response.status_code == 302
    org = Organization.objects.get(name="Newco")
    assert org.business == business_a and org.billing_email == "ap@newco.example"


def test_individual_create_refuses_other_business_organization(client, staff_a, business_b):
    org_b = OrganizationFactory(business=business_b)
    client.force_login(staff_a)
    response = client.post(reverse("ui:individual_create"), {"name": "Sneaky", "organization": org_b.pk})
    assert response.status_code == 200
    assert "organization" in response.context["form"].errors
    assert not Individual.objects.filter(name="Sneaky").exists()


def test_contact_update_individual_and_organization(client, staff_a, business_a):
    person = IndividualFactory(business=business_a, name="Old Name")
    org = OrganizationFactory(business=business_a, name="Old Org")
    client.force_login(staff_a)
    response = client.post(reverse("ui:contact_update", args=[person.pk]),
                           {"name": "New Name", "email": "n@example.com", "organization": org.pk, "city": "Leeds"})
    assert response.status_code == 302
    person.refresh_from_db()
    assert (person.name, person.email, person.organization_id, person.city) == ("New Name", "n@example.com", org.pk, "Leeds")
    response = client.post(reverse("ui:contact_update", args=[org.pk]), {"name": "New Org", "tax_id": "XX1"})
    assert response.status_code == 302
    org.refresh_from_db()
    assert (org.name, org.tax_id) == ("New Org", "XX1")


def test_contact_update_refuses_other_business_organization(client, staff_a, business_a, business_b):
    person = IndividualFactory(business=business_a, name="Stays")
    org_b = OrganizationFactory(business=business_b)
    client.force_login(staff_a)
    response = client.post(reverse("ui:contact_update", args=[person.pk]), {"name": "Stays", "organization": org_b.pk})
    assert response.status_code == 200 and "organization" in response.context["form"].errors
    person.refresh_from_db()
    assert person.organization_id is None


def test_contact_create_shows_invalid_country(client, staff_a):
    client.force_login(staff_a)
    response = client.post(reverse("ui:individual_create"), {"name": "X", "country": "GBR"})
    assert response.status_code == 200 and response.context["form"].errors


def test_opportunity_create_by_staff(client, staff_a, business_a):
    contact = IndividualFactory(business=business_a)
    client.force_login(staff_a)
    response = client.post(reverse("ui:opportunity_create"), {
        "title": "Big deal", "contact": contact.pk, "stage": "qualified", "value": "1500000",
        "currency": "jpy", "close_date": "2030-01-31", "owner": staff_a.pk,
    })
    assert response.status_code == 302
    opp = Opportunity.objects.get(title="Big deal")
    assert (opp.business, opp.contact_id, opp.currency, opp.owner) == (business_a, contact.pk, "JPY", staff_a)
    assert opp.close_date == date(2030, 1, 31)
    assert "1,500,000 JPY" in _page(client, reverse("ui:opportunity_detail", args=[opp.pk]))


def test_opportunity_create_refuses_other_business_contact(client, staff_a, business_b):
    contact_b = IndividualFactory(business=business_b)
    client.force_login(staff_a)
    response = client.post(reverse("ui:opportunity_create"), {"title": "Steal", "contact": contact_b.pk, "stage": "lead"})
    assert response.status_code == 200 and "contact" in response.context["form"].errors
    assert not Opportunity.objects.filter(title="Steal").exists()


def test_opportunity_create_refuses_owner_outside_business(client, staff_a, business_a, finance_b):
    contact = IndividualFactory(business=business_a)
    client.force_login(staff_a)
    response = client.post(reverse("ui:opportunity_create"),
                           {"title": "Owned", "contact": contact.pk, "stage": "lead", "owner": finance_b.pk})
    assert response.status_code == 200 and "owner" in response.context["form"].errors
    assert not Opportunity.objects.filter(title="Owned").exists()


def test_opportunity_update_by_staff(client, staff_a, business_a):
    opp = OpportunityFactory(business=business_a, title="Draft deal")
    client.force_login(staff_a)
    response = client.post(reverse("ui:opportunity_update", args=[opp.pk]), {
        "title": "Signed deal", "contact": opp.contact_id, "stage": "won", "value": "99.5", "currency": "USD",
    })
    assert response.status_code == 302
    opp.refresh_from_db()
    assert (opp.title, opp.stage, opp.value) == ("Signed deal", "won", Decimal("99.5"))


def test_opportunity_update_refuses_other_business_contact(client, staff_a, business_a, business_b):
    opp = OpportunityFactory(business=business_a)
    contact_b = IndividualFactory(business=business_b)
    client.force_login(staff_a)
    response = client.post(reverse("ui:opportunity_update", args=[opp.pk]),
                           {"title": opp.title, "contact": contact_b.pk, "stage": "lead"})
    assert response.status_code == 200 and "contact" in response.context["form"].errors
    opp.refresh_from_db()
    assert opp.contact.business == business_a


def test_ticket_create_and_update_by_staff(client, staff_a, business_a, business_b):
    contact = IndividualFactory(business=business_a)
    client.force_login(staff_a)
    response = client.post(reverse("ui:ticket_create"), {
        "subject": "Cannot log in", "contact": contact.pk, "status": "open", "priority": "high",
        "description": "Since Monday", "business": business_b.pk,
    })
    assert response.status_code == 302
    ticket = Ticket.objects.get(subject="Cannot log in")
    assert ticket.business == business_a and ticket.priority == "high"
    response = client.post(reverse("ui:ticket_update", args=[ticket.pk]),
                           {"subject": "Cannot log in", "contact": contact.pk, "status": "closed", "priority": "high"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "closed" and ticket.description == ""


def test_ticket_create_refuses_other_business_contact(client, staff_a, business_b):
    contact_b = IndividualFactory(business=business_b)
    client.force_login(staff_a)
    response = client.post(reverse("ui:ticket_create"),
                           {"subject": "Cross", "contact": contact_b.pk, "status": "open", "priority": "low"})
    assert response.status_code == 200 and "contact" in response.context["form"].errors
    assert not Ticket.objects.filter(subject="Cross").exists()


def test_forms_offer_only_own_business_choices(client, staff_a, business_a, business_b):
    IndividualFactory(business=business_a, name="Choice Mine")
    IndividualFactory(business=business_b, name="Choice Theirs")
    OrganizationFactory(business=business_b, name="Org Theirs")
    client.force_login(staff_a)
    for name in ("ui:opportunity_create", "ui:ticket_create", "ui:individual_create"):
        html = _page(client, reverse(name))
        assert "Choice Theirs" not in html and "Org Theirs" not in html and "finance_b" not in html
    assert "Choice Mine" in _page(client, reverse("ui:ticket_create"))


# --- no N+1 ---------------------------------------------------------------------------

def _count_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _populate(business, n, contact=None):
    """n rows of everything, with every relation the pages show filled in."""
    from services.tests.factories import ServiceFactory

    for _ in range(n):
        org = OrganizationFactory(business=business)
        person = contact or IndividualFactory(business=business, organization=org)
        owner = member(business, Role.STAFF)
        opp = OpportunityFactory(business=business, contact=person, owner=owner, value=Decimal("10"), currency="EUR")
        ticket = TicketFactory(business=business, contact=person)
        invoice = InvoiceFactory(business=business, bill_to=person)
        PaymentFactory(invoice=invoice)
        service = ServiceFactory(business=business)
        BillableFactory(business=business, bill_to=person, opportunity=opp, service=service, invoice=invoice)
        BillableFactory(business=business, bill_to=person, ticket=ticket, service=service)
        if contact is not None:
            IndividualFactory(business=business, organization=contact if isinstance(contact, Organization) else None)


@pytest.mark.parametrize("url_name", ["ui:home", "ui:contact_list", "ui:opportunity_list", "ui:ticket_list",
                                      "ui:billable_list"])
def test_list_pages_query_count_constant(client, staff_a, business_a, url_name):
    client.force_login(staff_a)
    _populate(business_a, 5)
    few = _count_queries(client, reverse(url_name))
    _populate(business_a, 45)
    many = _count_queries(client, reverse(url_name))
    assert few == many, (few, many)


def test_filtered_list_query_count_constant(client, staff_a, business_a):
    client.force_login(staff_a)
    _populate(business_a, 5)
    contact = IndividualFactory(business=business_a)
    url = reverse("ui:billable_list") + f"?status=unbilled&currency=USD&bill_to={contact.pk}&date_from=2000-01-01"
    few = _count_queries(client, url)
    _populate(business_a, 45)
    assert _count_queries(client, url) == few


@pytest.mark.parametrize("kind", ["individual", "organization"])
def test_contact_detail_query_count_constant(client, staff_a, business_a, kind):
    contact = (OrganizationFactory if kind == "organization" else IndividualFactory)(business=business_a)
    client.force_login(staff_a)
    _populate(business_a, 5, contact=contact)
    url = reverse("ui:contact_detail", args=[contact.pk])
    few = _count_queries(client, url)
    _populate(business_a, 45, contact=contact)
    assert _count_queries(client, url) == few


@pytest.mark.parametrize("url_name,key", [("ui:opportunity_detail", "opportunity"), ("ui:ticket_detail", "ticket")])
def test_source_detail_query_count_constant(client, staff_a, business_a, url_name, key):
    from services.tests.factories import ServiceFactory

    contact = IndividualFactory(business=business_a)
    source = {"opportunity": OpportunityFactory, "ticket": TicketFactory}[key](business=business_a, contact=contact)
    client.force_login(staff_a)

    def add(n):
        for _ in range(n):
            BillableFactory(business=business_a, bill_to=contact, service=ServiceFactory(business=business_a),
                            invoice=InvoiceFactory(business=business_a, bill_to=contact), **{key: source})

    add(5)
    few = _count_queries(client, reverse(url_name, args=[source.pk]))
    add(45)
    assert _count_queries(client, reverse(url_name, args=[source.pk])) == few

