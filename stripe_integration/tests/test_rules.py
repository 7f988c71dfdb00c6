"""Stripe rules per business: the CEL filter (checked on save, evaluated safely on one
contact's fields and custom fields), include and exclude lists, the "Test this filter"
preview, and their enforcement: a contact outside the rules gets no Stripe customer, no
customer push, no Stripe invoice, and its pages say why."""
from decimal import Decimal

import pytest
from django.urls import reverse

from crm import services as crm_services
from crm.models import CustomFieldDefinition, CustomFieldTarget, CustomFieldType
from crm.tests.factories import IndividualFactory, OrganizationFactory
from finance.invoices import NothingToInvoice
from finance.models import InvoicePushStatus
from stripe_integration.customers import links as customers
from stripe_integration.invoicing import push as invoicing
from stripe_integration.invoicing import unbilled_run
from stripe_integration.models import CustomerLink, CustomerState, StripeRules
from stripe_integration.rules.eligibility import contact_outside_rules, rules_evaluator
from stripe_integration.rules.expressions import FilterError, filter_compile
from stripe_integration.tests import invoicing_helpers as h
from stripe_integration.tests.sync_helpers import stripe_call

pytestmark = pytest.mark.django_db
D = Decimal


def define(business, key, field_type=CustomFieldType.TEXT):
    return CustomFieldDefinition.objects.create(business=business, key=key, label=key.upper(), field_type=field_type,
                                                applies_to=CustomFieldTarget.CONTACT)


def set_rules(business, *, expression="", include=(), exclude=()):
    rules = StripeRules.for_business(business)
    rules.filter_expression = expression
    rules.save()
    rules.include_contacts.set(include)
    rules.exclude_contacts.set(exclude)
    return rules


@pytest.fixture
def people(business_a):
    define(business_a, "po")
    define(business_a, "seats", CustomFieldType.NUMBER)
    uk_po = OrganizationFactory(business=business_a, name="UK with PO", country="GB", custom_fields={"po": "PO-1"})
    uk = OrganizationFactory(business=business_a, name="UK without PO", country="GB")
    de = IndividualFactory(business=business_a, name="German", country="DE", custom_fields={"po": "PO-2"})
    return uk_po, uk, de


# --- the expression ------------------------------------------------------------------------
def test_rules_filter_has_on_custom_fields(business_a, people):
    uk_po, uk, de = people
    set_rules(business_a, expression='contact.country == "GB" && has(contact.custom_fields.po)')
    rules = rules_evaluator(business=business_a)
    assert rules.reason(uk_po) == ""
    assert "filter is false" in rules.reason(uk)
    assert "filter is false" in rules.reason(de)


@pytest.mark.parametrize("expression", [
    'contact.country == "GB"', 'contact.custom_fields.seats > 10 || contact.kind == "individual"',
    'has(contact.custom_fields.po) && contact.custom_fields.po.startsWith("PO-")', "",
    'contact.name.matches("^A") && contact.country in ["GB", "IE"]',
])
def test_rules_filter_valid_expressions_compile(business_a, people, expression):
    from crm.custom_fields import custom_field_definitions

    filter_compile(expression, definitions=custom_field_definitions(business=business_a, applies_to="contact"))


@pytest.mark.parametrize("expression,message", [
    ('contact.country ==', "Syntax error"),
    ('contact.country', "true or false"),
    ('contact.country + 1', "Type error"),
    ('contact.nope == "x"', "no field 'nope'"),
    ('contact.custom_fields.unknown == "x"', "no field 'unknown'"),
    ('__import__("os")', "Type error"),
    ("x" * 1001, "at most 1000"),
    ("(" * 400 + "true" + ")" * 400, ""),
    ('[1].map(a, [1].map(b, [1].map(c, c)))', "not allowed"),
    ('[1, 2].exists(x, x > 1)', "not allowed"),
    ('contact.custom_fields.exists // a comment\n (k, k == "po")', "not allowed"),
    ("[" + ",".join(["1"] * 230) + "].all(x, [" + ",".join(["1"] * 230) + "].all(y, x + y > 0))", "not allowed"),
    ('contact.name == "\x00"', "not text"),
])
def test_rules_filter_invalid_expressions_are_filter_errors(business_a, people, expression, message):
    with pytest.raises(FilterError) as exc:
        filter_compile(expression, definitions=[])
    assert message in exc.value.message


def test_rules_evaluation_error_excludes_the_contact_with_the_reason(business_a, people, caplog):
    uk_po, uk, de = people
    # Valid on a contact having every field; a contact without `po` cannot be evaluated.
    set_rules(business_a, expression='contact.custom_fields.po.startsWith("PO-")')
    rules = rules_evaluator(business=business_a)
    assert rules.reason(uk_po) == ""
    assert rules.reason(uk).startswith("the filter could not be evaluated: no field 'po'")
    assert "failed for contact" in caplog.text


def test_rules_include_list_is_only_these_and_exclude_wins(business_a, people):
    uk_po, uk, de = people
    set_rules(business_a, include=[uk_po, de], exclude=[de])
    rules = rules_evaluator(business=business_a)
    assert rules.reason(uk_po) == ""
    assert rules.reason(uk) == "not on the include list"
    assert rules.reason(de) == "on the exclude list"
    # The include list narrows; it does not bypass the filter.
    set_rules(business_a, include=[uk_po, uk], expression="has(contact.custom_fields.po)")
    rules = rules_evaluator(business=business_a)
    assert rules.reason(uk_po) == "" and "filter is false" in rules.reason(uk)


def test_rules_of_another_business_do_not_apply(business_a, business_b, people):
    uk_po, uk, de = people
    set_rules(business_b, expression="false")
    assert contact_outside_rules(contact=uk) == ""


# --- the page and its preview ------------------------------------------------------------------
def test_rules_preview_lists_who_passes_without_saving(client, finance_a, business_a, people):
    uk_po, uk, de = people
    client.force_login(finance_a)
    response = client.post(reverse("stripe_integration:rules"), {
        "filter_expression": 'contact.country == "GB" && has(contact.custom_fields.po)',
        "exclude_contacts": [de.pk], "preview": "1"})
    content = response.content.decode()
    assert response.status_code == 200 and "1 of 3 contacts go to Stripe" in content
    assert f'data-contact="{uk_po.pk}" data-passes="yes"' in content
    assert f'data-contact="{uk.pk}" data-passes="no"' in content and "filter is false" in content
    assert "on the exclude list" in content
    assert StripeRules.objects.get(business=business_a).filter_expression == ""  # nothing saved


def test_rules_page_saves_and_shows_errors(client, finance_a, business_a, business_b, people):
    uk_po, uk, de = people
    client.force_login(finance_a)
    url = reverse("stripe_integration:rules")
    bad = client.post(url, {"filter_expression": 'contact.country == ', "save": "1"})
    assert bad.status_code == 400 and "Syntax error" in bad.content.decode()
    typed = client.post(url, {"filter_expression": 'contact.country > 3', "save": "1"})
    assert typed.status_code == 400 and "Type error" in typed.content.decode()
    huge = client.post(url, {"filter_expression": "true && " * 500, "save": "1"})
    assert huge.status_code == 400
    other = OrganizationFactory(business=business_b, name="Other business")
    foreign = client.post(url, {"exclude_contacts": [other.pk], "save": "1"})
    assert foreign.status_code == 400
    hostile = client.post(url, {"exclude_contacts": ["abc", "99999999999999999999999"], "save": "1"})
    assert hostile.status_code == 400
    raw = client.post(url, data=b"filter_expression=%ff%fe%00&save=1", content_type="application/x-www-form-urlencoded")
    assert raw.status_code == 400
    ok = client.post(url, {"filter_expression": 'has(contact.custom_fields.po)', "exclude_contacts": [de.pk],
                           "save": "1"})
    assert ok.status_code == 302
    rules = StripeRules.objects.get(business=business_a)
    assert rules.filter_expression == "has(contact.custom_fields.po)" and list(rules.exclude_contacts.all()) == [de.contact_ptr]


def test_rules_page_is_for_finance_roles(client, staff_a):
    client.force_login(staff_a)
    assert client.get(reverse("stripe_integration:rules")).status_code == 403


def test_rules_admin_refuses_a_bad_filter(client, finance_a, business_a, people):
    StripeRules.for_business(business_a)
    rules = StripeRules.objects.get(business=business_a)
    client.force_login(finance_a)
    url = reverse("admin:stripe_integration_striperules_change", args=[rules.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"filter_expression": "contact.country ==", "include_contacts": [],
                                 "exclude_contacts": []})
    assert response.status_code == 200 and "Syntax error" in response.content.decode()


# --- enforcement ------------------------------------------------------------------------------
@pytest.fixture
def conn(client, finance_a, business_a, stripe_env):
    connection = h.connect(client, finance_a, business_a)
    stripe_env.mark()
    return connection


def _customers_in_stripe(stripe_env, conn):
    return stripe_call(stripe_env, "GET", "/v1/customers", account=conn.stripe_user_id, params={"limit": 100})["data"]


def test_rules_excluded_contact_gets_no_customer_and_no_invoice(conn, business_a, stripe_env, people, client):
    uk_po, uk, de = people
    set_rules(business_a, expression="has(contact.custom_fields.po)", exclude=[de])
    with pytest.raises(customers.CustomerLinkError) as exc:
        customers.customer_ensure(connection=conn, contact=uk)
    assert "outside the Stripe rules (the filter is false" in exc.value.message
    billable = h.billable(business_a, de)
    with pytest.raises(NothingToInvoice) as left:
        invoicing.invoices_generate(business=business_a, billable_ids=[billable.pk], push=False)
    assert "outside the Stripe rules: on the exclude list" in str(left.value)
    assert stripe_env.requests(method="POST", path="/v1/customers") == []
    assert _customers_in_stripe(stripe_env, conn) == []


def test_rules_invoice_push_refuses_a_contact_outside_the_rules(conn, business_a, stripe_env, people, client):
    uk_po, uk, de = people
    billable = h.billable(business_a, uk)
    (invoice,) = invoicing.invoices_generate(business=business_a, billable_ids=[billable.pk], push=False).invoices
    set_rules(business_a, exclude=[uk])  # the rules changed after the invoice was made
    result = invoicing.invoice_push(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    assert result.outcome == "failed" and invoice.push_status == InvoicePushStatus.FAILED
    assert "outside the Stripe rules (on the exclude list)" in invoice.last_error
    assert stripe_env.requests(method="POST") == [] and _customers_in_stripe(stripe_env, conn) == []
    page = client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    assert "outside the Stripe rules (on the exclude list)" in page  # the push's error
    assert "Outside Stripe rules: on the exclude list. This invoice is not sent to Stripe." in page
    contact_page = client.get(reverse("ui:contact_detail", args=[uk.pk])).content.decode()
    assert "Outside Stripe rules: on the exclude list" in contact_page


def test_rules_unbilled_run_skips_and_says_why(conn, business_a, stripe_env, people):
    uk_po, uk, de = people
    set_rules(business_a, expression="has(contact.custom_fields.po)")
    h.billable(business_a, uk_po)
    h.billable(business_a, uk)
    preview = unbilled_run.unbilled_preview(business=business_a)
    assert [inv.bill_to.pk for inv in preview.draft.invoices] == [uk_po.pk]
    assert any("UK without PO: outside the Stripe rules: the filter is false" in line
               for line in preview.summary().splitlines())


def test_rules_contact_edit_is_not_pushed_once_outside(conn, business_a, stripe_env, people,
                                                      django_capture_on_commit_callbacks):
    uk_po, uk, de = people
    customer_id = customers.customer_ensure(connection=conn, contact=uk_po)
    set_rules(business_a, exclude=[uk_po])
    stripe_env.mark()
    with django_capture_on_commit_callbacks(execute=True):
        crm_services.contact_update(contact=uk_po, data={"name": "Renamed"})
    assert stripe_env.requests(method="POST") == []
    link = CustomerLink.objects.get(contact=uk_po)
    assert link.state == CustomerState.ERROR and "outside the Stripe rules" in link.last_error
    assert stripe_call(stripe_env, "GET", f"/v1/customers/{customer_id}", account=conn.stripe_user_id)["name"] == "UK with PO"
    with pytest.raises(customers.CustomerLinkError):
        customers.customer_push(link=link, force=True)
    assert stripe_env.requests(method="POST") == []


def test_rules_demo_seed_keeps_one_contact_out_and_is_idempotent(settings, client):
    from io import StringIO

    from django.core.management import call_command

    from crm.models import Business, Contact, Membership

    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    for _ in range(2):
        call_command("seed_demo", skip_checks=True, stdout=StringIO())
        out = StringIO()
        call_command("seed_demo_rules", skip_checks=True, stdout=out)
    assert "nothing new" in out.getvalue()
    business = Business.objects.get(slug="demo")
    rules = rules_evaluator(business=business)
    outside = {c.name: rules.reason(c) for c in Contact.objects.for_business(business) if rules.reason(c)}
    assert list(outside) == ["Diana Prince"] and "filter is false" in outside["Diana Prince"]
    assert StripeRules.objects.filter(business=business).count() == 1
    finance = Membership.objects.get(business=business, role="finance").user
    client.force_login(finance)
    diana = Contact.objects.get(business=business, name="Diana Prince")
    assert "Outside Stripe rules" in client.get(reverse("ui:contact_detail", args=[diana.pk])).content.decode()
