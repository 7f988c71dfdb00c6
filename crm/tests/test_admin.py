"""Admin for the CRM models: tenancy both ways, roles, business never smuggled, no N+1."""
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.admin_base import format_money
from crm.models import Individual, Membership, Opportunity, Role, Ticket
from crm.tests.factories import (
    BusinessFactory, IndividualFactory, MembershipFactory, OpportunityFactory, OrganizationFactory, TicketFactory,
    UserFactory, member,
)
from finance.tests.factories import BillableFactory
from services.tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"admin:{name}", args=args)


def change_url(obj):
    return url(f"{obj._meta.app_label}_{obj._meta.model_name}_change", obj.pk)


def changelist_url(model):
    return url(f"{model._meta.app_label}_{model._meta.model_name}_changelist")


def add_url(model):
    return url(f"{model._meta.app_label}_{model._meta.model_name}_add")


def management(prefix, total=0, initial=0):
    return {f"{prefix}-TOTAL_FORMS": total, f"{prefix}-INITIAL_FORMS": initial,
            f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000}


def query_count(client, address):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(address)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_admin_a(staff_a):
    # The `staff` role reaches the admin once the account may log into it (is_staff).
    staff_a.is_staff = True
    staff_a.save()
    return staff_a


@pytest.fixture
def stranger(db):
    return UserFactory(username="stranger", is_staff=True)


# --- money display -------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount, currency, expected",
    [
        (Decimal("1234.5"), "USD", "1,234.50 USD"),
        (Decimal("1500"), "JPY", "1,500 JPY"),
        (Decimal("1500.4"), "jpy", "1,500 JPY"),
        (Decimal("12.345"), "KWD", "12.345 KWD"),  # to the fils, like its VAT (finance.money.format_money)
        (Decimal("1000"), "ISK", "1,000 ISK"),
        (Decimal("-10"), "EUR", "-10.00 EUR"),
        (Decimal("-0.001"), "USD", "0.00 USD"),
        (None, "USD", "-"),
    ],
)
def test_format_money_uses_currency_precision(amount, currency, expected):
    assert format_money(amount, currency) == expected


# --- tenancy, both directions, for every CRM model ----------------------------------

CRM_ROWS = {
    "individual": lambda business: IndividualFactory(business=business, name=f"Ind of {business.slug}"),
    "organization": lambda business: OrganizationFactory(business=business, name=f"Org of {business.slug}"),
    "opportunity": lambda business: OpportunityFactory(business=business, title=f"Opp of {business.slug}"),
    "ticket": lambda business: TicketFactory(business=business, subject=f"Ticket of {business.slug}"),
    "contact": lambda business: IndividualFactory(business=business, name=f"Contact of {business.slug}").contact_ptr,
}


@pytest.mark.parametrize("kind", sorted(CRM_ROWS))
def test_crm_changelist_shows_only_own_business(client, kind, finance_a, finance_b, business_a, business_b):
    row_a, row_b = CRM_ROWS[kind](business_a), CRM_ROWS[kind](business_b)
    for user, mine, theirs in ((finance_a, row_a, row_b), (finance_b, row_b, row_a)):
        client.force_login(user)
        response = client.get(changelist_url(type(mine)))
        assert response.status_code == 200
        assert str(mine) in response.content.decode()
        assert str(theirs) not in response.content.decode()
        assert response.context["cl"].result_count == 1


@pytest.mark.parametrize("kind", sorted(CRM_ROWS))
def test_crm_change_page_of_other_business_is_not_found(client, kind, finance_a, finance_b, business_a, business_b):
    row_a, row_b = CRM_ROWS[kind](business_a), CRM_ROWS[kind](business_b)
    for user, mine, theirs in ((finance_a, row_a, row_b), (finance_b, row_b, row_a)):
        client.force_login(user)
        assert client.get(change_url(mine)).status_code == 200
        response = client.get(change_url(theirs))
        assert response.status_code == 302 and response.url == url("index")  # "doesn't exist"
        response = client.get(change_url(theirs), follow=True)
        assert str(theirs) not in response.content.decode()


def test_individual_admin_add_takes_business_from_request_not_post(client, finance_a, business_a, business_b):
    client.force_login(finance_a)
    data = {"name": "Smuggler", "business": business_b.pk, **management("billables")}
    response = client.post(add_url(Individual), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Individual.objects.get(name="Smuggler").business == business_a


def test_individual_admin_change_cannot_move_business(client, finance_a, business_a, business_b):
    person = IndividualFactory(business=business_a)
    client.force_login(finance_a)
    data = {"name": "Renamed", "business": business_b.pk, **management("billables")}
    response = client.post(change_url(person), data)
    assert response.status_code == 302
    person.refresh_from_db()
    assert (person.name, person.business) == ("Renamed", business_a)


def test_individual_admin_form_hides_business_from_members(client, finance_a):
    client.force_login(finance_a)
    form = client.get(add_url(Individual)).context["adminform"].form
    assert "business" not in form.fields


def test_individual_admin_rejects_organization_of_other_business(client, finance_a, business_a, business_b):
    person = IndividualFactory(business=business_a)
    org_b = OrganizationFactory(business=business_b)
    client.force_login(finance_a)
    data = {"name": person.name, "organization": org_b.pk, **management("billables")}
    response = client.post(change_url(person), data)
    assert response.status_code == 200
    assert "organization" in response.context["adminform"].form.errors
    person.refresh_from_db()
    assert person.organization is None


def test_opportunity_admin_add_rejects_contact_of_other_business(client, finance_a, business_b):
    contact_b = IndividualFactory(business=business_b)
    client.force_login(finance_a)
    data = {"title": "Poach", "contact": contact_b.pk, "stage": "lead", **management("billables")}
    response = client.post(add_url(Opportunity), data)
    assert response.status_code == 200
    assert "contact" in response.context["adminform"].form.errors
    assert not Opportunity.objects.filter(title="Poach").exists()


def test_opportunity_admin_owner_choices_are_members_of_the_business(client, finance_a, finance_b, staff_a):
    client.force_login(finance_a)
    form = client.get(add_url(Opportunity)).context["adminform"].form
    assert set(form.fields["owner"].queryset) == {finance_a, staff_a}


def test_ticket_admin_add_rejects_contact_of_other_business(client, finance_b, business_a):
    contact_a = IndividualFactory(business=business_a)
    client.force_login(finance_b)
    data = {"subject": "Poach", "contact": contact_a.pk, "status": "open", "priority": "normal", **management("billables")}
    response = client.post(add_url(Ticket), data)
    assert response.status_code == 200
    assert "contact" in response.context["adminform"].form.errors
    assert not Ticket.objects.filter(subject="Poach").exists()


def test_contact_autocomplete_returns_only_own_business(client, finance_a, business_a, business_b):
    IndividualFactory(business=business_a, name="Ann Alpha")
    IndividualFactory(business=business_b, name="Ann Beta")
    client.force_login(finance_a)
    response = client.get(
        url("autocomplete"), {"app_label": "crm", "model_name": "opportunity", "field_name": "contact", "term": "Ann"}
    )
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["Ann Alpha"]


def test_contact_changelist_search_stays_in_business(client, finance_a, business_a, business_b):
    IndividualFactory(business=business_a, name="Zed Alpha")
    IndividualFactory(business=business_b, name="Zed Beta")
    client.force_login(finance_a)
    response = client.get(changelist_url(Individual), {"q": "Zed"})
    assert [obj.name for obj in response.context["cl"].result_list] == ["Zed Alpha"]


def test_billable_inline_on_individual_adds_row_in_parent_business(client, finance_a, business_a, business_b):
    person = IndividualFactory(business=business_a)
    client.force_login(finance_a)
    data = {
        "name": person.name, **management("billables", total=1),
        "billables-0-description": "Audit", "billables-0-quantity": "2", "billables-0-unit_price": "50",
        "billables-0-currency": "USD", "billables-0-vat_rate": "0", "billables-0-line_type": "charge",
    }
    response = client.post(change_url(person), data)
    assert response.status_code == 302
    billable = person.billables.get()
    assert (billable.business, billable.description) == (business_a, "Audit")


def test_billable_inline_rejects_service_of_other_business(client, finance_a, business_a, business_b):
    person = IndividualFactory(business=business_a)
    service_b = ServiceFactory(business=business_b)
    client.force_login(finance_a)
    data = {
        "name": person.name, **management("billables", total=1),
        "billables-0-service": service_b.pk, "billables-0-quantity": "1", "billables-0-unit_price": "50",
        "billables-0-currency": "USD", "billables-0-vat_rate": "0", "billables-0-line_type": "charge",
    }
    response = client.post(change_url(person), data)
    assert response.status_code == 200
    assert "service" in response.context["inline_admin_formsets"][0].formset.forms[0].errors
    assert not person.billables.exists()


# --- roles ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["individual", "organization", "opportunity", "ticket"])
def test_crm_admin_staff_role_can_view_and_change(client, kind, staff_admin_a, business_a):
    row = CRM_ROWS[kind](business_a)
    client.force_login(staff_admin_a)
    assert client.get(changelist_url(type(row))).status_code == 200
    response = client.get(change_url(row))
    assert response.status_code == 200
    assert response.context["has_change_permission"] is True


def test_individual_admin_hides_billables_inline_from_staff_role(client, staff_admin_a, finance_a, business_a):
    person = IndividualFactory(business=business_a)
    BillableFactory(business=business_a, bill_to=person, description="Secret fee")
    client.force_login(staff_admin_a)
    response = client.get(change_url(person))
    assert response.context["inline_admin_formsets"] == []
    assert "Secret fee" not in response.content.decode()
    client.force_login(finance_a)
    assert "Secret fee" in client.get(change_url(person)).content.decode()


def test_staff_role_change_post_keeps_billables_untouched(client, staff_admin_a, business_a):
    person = IndividualFactory(business=business_a)
    BillableFactory(business=business_a, bill_to=person)
    client.force_login(staff_admin_a)
    response = client.post(change_url(person), {"name": "New name"})
    assert response.status_code == 302
    assert person.billables.count() == 1


@pytest.mark.parametrize("name", [
    "crm_individual_changelist", "crm_opportunity_changelist", "crm_ticket_changelist", "crm_contact_changelist",
    "crm_business_changelist", "finance_billable_changelist", "services_service_changelist",
])
def test_admin_user_without_membership_gets_403(client, stranger, name, business_a):
    client.force_login(stranger)
    assert client.get(url(name)).status_code == 403


def test_admin_index_lists_nothing_without_membership(client, stranger):
    client.force_login(stranger)
    response = client.get(url("index"))
    assert response.status_code == 200
    assert response.context["app_list"] == []


def test_admin_index_lists_finance_apps_by_role(client, staff_admin_a, finance_a):
    client.force_login(staff_admin_a)
    apps = {app["app_label"] for app in client.get(url("index")).context["app_list"]}
    assert apps == {"crm"}
    client.force_login(finance_a)
    apps = {app["app_label"] for app in client.get(url("index")).context["app_list"]}
    assert {"crm", "finance", "services"} <= apps


def test_superuser_sees_both_businesses(client, superuser, business_a, business_b):
    IndividualFactory(business=business_a, name="Alpha person")
    IndividualFactory(business=business_b, name="Beta person")
    client.force_login(superuser)
    response = client.get(changelist_url(Individual))
    assert {obj.name for obj in response.context["cl"].result_list} == {"Alpha person", "Beta person"}


def test_superuser_picks_business_on_create_but_cannot_change_it(client, superuser, business_a, business_b):
    client.force_login(superuser)
    data = {"name": "Chosen", "business": business_b.pk, **management("billables")}
    assert client.post(add_url(Individual), data).status_code == 302
    person = Individual.objects.get(name="Chosen")
    assert person.business == business_b
    response = client.post(change_url(person), {**data, "business": business_a.pk})
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.business == business_b


def test_superuser_cannot_link_rows_across_businesses(client, superuser, business_a, business_b):
    contact_b = IndividualFactory(business=business_b)
    client.force_login(superuser)
    data = {"business": business_a.pk, "title": "Cross", "contact": contact_b.pk, "stage": "lead", **management("billables")}
    response = client.post(add_url(Opportunity), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["contact"] == ["Belongs to another business."]
    assert not Opportunity.objects.exists()


# --- business and memberships ----------------------------------------------------------


def test_business_admin_owner_sees_only_own_business(client, owner_a, business_a, business_b):
    owner_b = member(business_b, Role.OWNER, username="owner_b")
    for user, mine, theirs in ((owner_a, business_a, business_b), (owner_b, business_b, business_a)):
        client.force_login(user)
        response = client.get(url("crm_business_changelist"))
        assert list(response.context["cl"].result_list) == [mine]
        page = client.get(change_url(mine)).content.decode()
        assert user.username in page and ({owner_a, owner_b} - {user}).pop().username not in page
        assert client.get(change_url(theirs)).status_code == 302
        assert client.get(url("crm_business_add")).status_code == 403


def test_business_admin_is_closed_to_finance_and_staff(client, finance_a, staff_admin_a, business_a):
    for user in (finance_a, staff_admin_a):
        client.force_login(user)
        assert client.get(url("crm_business_changelist")).status_code == 403
        assert client.get(change_url(business_a)).status_code == 403


def test_business_admin_owner_changes_role_not_business_fields(client, owner_a, staff_a, business_a):
    staff_membership = Membership.objects.get(user=staff_a)
    owner_membership = Membership.objects.get(user=owner_a)
    client.force_login(owner_a)
    data = {
        "name": "Hijacked", "slug": "hijacked", "finance_enabled": "",
        **management("memberships", total=2, initial=2),
        "memberships-0-id": owner_membership.pk, "memberships-0-role": "owner",
        "memberships-1-id": staff_membership.pk, "memberships-1-role": "finance",
    }
    response = client.post(change_url(business_a), data)
    assert response.status_code == 302
    staff_membership.refresh_from_db()
    business_a.refresh_from_db()
    assert staff_membership.role == Role.FINANCE
    assert (business_a.name, business_a.slug, business_a.finance_enabled) == ("Alpha Ltd", "alpha", True)


def test_business_admin_owner_cannot_add_members(client, owner_a, business_a):
    outsider = UserFactory()
    client.force_login(owner_a)
    data = {
        **management("memberships", total=1),
        "memberships-0-user": outsider.pk, "memberships-0-role": "owner",
    }
    client.post(change_url(business_a), data)
    assert not Membership.objects.filter(user=outsider).exists()


def test_user_admin_is_for_superusers_only(client, owner_a, superuser):
    client.force_login(owner_a)
    assert client.get(url("auth_user_changelist")).status_code == 403
    client.force_login(superuser)
    response = client.get(change_url(owner_a))
    assert response.status_code == 200
    assert "Alpha Ltd" in response.content.decode()  # the membership inline


# --- query counts: 5 rows cost what 50 rows cost --------------------------------------

CHANGELIST_ROWS = {
    "individual": lambda b, n: [IndividualFactory(business=b, organization=OrganizationFactory(business=b)) for _ in range(n)],
    "organization": lambda b, n: [IndividualFactory(business=b, organization=OrganizationFactory(business=b)) for _ in range(n)],
    "opportunity": lambda b, n: [OpportunityFactory(business=b, value=Decimal("10"), currency="USD") for _ in range(n)],
    "ticket": lambda b, n: TicketFactory.create_batch(n, business=b),
    "contact": lambda b, n: IndividualFactory.create_batch(n, business=b),
}


@pytest.mark.parametrize("kind", sorted(CHANGELIST_ROWS))
def test_crm_changelist_query_count_does_not_grow_with_rows(client, kind, finance_a, business_a):
    client.force_login(finance_a)
    address = url(f"crm_{kind}_changelist")
    CHANGELIST_ROWS[kind](business_a, 5)
    client.get(address)  # warm per-process caches (content types)
    five = query_count(client, address)
    CHANGELIST_ROWS[kind](business_a, 45)
    fifty = query_count(client, address)
    assert fifty == five


def test_business_changelist_query_count_does_not_grow_with_rows(client, superuser):
    client.force_login(superuser)
    address = url("crm_business_changelist")
    for business in BusinessFactory.create_batch(5):
        MembershipFactory(business=business)
    client.get(address)
    five = query_count(client, address)
    for business in BusinessFactory.create_batch(45):
        MembershipFactory(business=business)
    assert query_count(client, address) == five


def _add_billables(person, n):
    service = ServiceFactory(business=person.business)
    for _ in range(n):
        BillableFactory(business=person.business, bill_to=person, service=service, description="")


def test_individual_change_page_query_count_does_not_grow_with_billables(client, finance_a, business_a):
    person = IndividualFactory(business=business_a)
    OpportunityFactory.create_batch(3, business=business_a)
    client.force_login(finance_a)
    _add_billables(person, 5)
    client.get(change_url(person))
    five = query_count(client, change_url(person))
    _add_billables(person, 45)
    assert query_count(client, change_url(person)) == five


def test_organization_change_page_query_count_does_not_grow_with_inlines(client, finance_a, business_a):
    org = OrganizationFactory(business=business_a)
    client.force_login(finance_a)
    IndividualFactory.create_batch(5, business=business_a, organization=org)
    _add_billables(org, 5)
    client.get(change_url(org))
    five = query_count(client, change_url(org))
    IndividualFactory.create_batch(45, business=business_a, organization=org)
    _add_billables(org, 45)
    assert query_count(client, change_url(org)) == five


def test_admin_change_is_logged(client, finance_a, business_a):
    person = IndividualFactory(business=business_a)
    client.force_login(finance_a)
    client.post(change_url(person), {"name": "Logged", **management("billables")})
    assert LogEntry.objects.filter(object_id=str(person.pk), user=finance_a).exists()


# --- the form mixin on its own ------------------------------------------------------


def _billable_form(business, fields):
    from django import forms

    from crm.admin_base import BusinessScopedFormMixin
    from finance.models import Billable

    meta = type("Meta", (), {"model": Billable, "fields": fields})
    return type("BillableForm", (BusinessScopedFormMixin, forms.ModelForm), {"Meta": meta, "scoped_business": business})


def test_scoped_form_reports_model_error_on_hidden_field(business_a):
    # Billable.clean() names `unit_price`, which this form does not show.
    contact = IndividualFactory(business=business_a)
    service = ServiceFactory(business=business_a)  # no list price in USD
    form_class = _billable_form(business_a, ["bill_to", "service", "quantity", "currency", "vat_rate", "line_type"])
    form = form_class(data={"bill_to": contact.pk, "service": service.pk, "quantity": "1", "currency": "USD",
                            "vat_rate": "0", "line_type": "charge"})
    assert not form.is_valid()
    assert form.non_field_errors() == ["Unit price: Enter a unit price: there is no list price in this currency."]
    assert form.instance.business == business_a


def test_scoped_form_rejects_row_of_other_business(business_a, business_b):
    contact_b = IndividualFactory(business=business_b)
    form_class = _billable_form(business_a, ["bill_to", "quantity", "unit_price", "currency", "vat_rate", "line_type"])
    form = form_class(data={"bill_to": contact_b.pk, "quantity": "1", "unit_price": "5", "currency": "USD",
                            "vat_rate": "0", "line_type": "charge"})
    assert not form.is_valid()
    assert form.errors["bill_to"] == ["Belongs to another business."]


def test_billable_inline_choices_are_limited_to_own_business(client, finance_a, business_a, business_b):
    person = IndividualFactory(business=business_a)
    service_a = ServiceFactory(business=business_a)
    ServiceFactory(business=business_b)
    client.force_login(finance_a)
    formset = client.get(change_url(person)).context["inline_admin_formsets"][0].formset
    assert list(formset.empty_form.fields["service"].queryset) == [service_a]
