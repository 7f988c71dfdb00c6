"""Every form of the admin and the staff UI answers hostile input with a clear error,
never a 5xx (issue 12, item 11).

The admin walk is generic: every registered ModelAdmin's add page, and the change page of
one row of each model, is read back from its own context (form fields and inline
formsets) and posted again with hostile values, once with every field hostile and once per
foreign key (the rest of the form left as the page rendered it). Django's test client
re-raises a view's exception, so a 500 shows up as the exception itself.
"""
from decimal import Decimal

import pytest
from django.contrib import admin
from django.forms import ModelChoiceField, ModelMultipleChoiceField
from django.urls import NoReverseMatch, reverse

from crm.tests.factories import IndividualFactory, OpportunityFactory, OrganizationFactory, TicketFactory, UserFactory
from finance.tests.factories import BillableFactory, InvoiceFactory, InvoiceLineFactory, PaymentFactory, RefundFactory
from services.tests.factories import ServiceFactory, ServicePriceFactory

pytestmark = pytest.mark.django_db

HOSTILE = ["abc", "1e400", "NaN", "-1", "99999999999999999999999", "1.00000000001", "٣💥", "x" * 5000, " \x00"]
HOSTILE_KEYS = ["abc", "99999999999999999999999", "1.5"]


def _initial_data(form):
    """The values the page rendered for a form, as a browser would post them back."""
    data = {}
    for name, field in form.fields.items():
        bound = form[name]
        value = bound.value()
        key = form.add_prefix(name)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            data[key] = [str(v) for v in value]
        elif isinstance(value, bool):
            if value:
                data[key] = "on"
        else:
            data[key] = str(value.pk if hasattr(value, "pk") else value)
    return data


def _management(formset):
    prefix = formset.prefix
    return {f"{prefix}-TOTAL_FORMS": str(len(formset.forms) + 1), f"{prefix}-INITIAL_FORMS": str(formset.initial_form_count()),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


def _forms_of(response):
    """(main form, [(formset, extra form)]) of an admin add/change page."""
    context = response.context
    form = context["adminform"].form
    formsets = []
    for inline in context.get("inline_admin_formsets") or []:
        formset = inline.formset
        extra = formset.form(prefix=formset.add_prefix(len(formset.forms)), **formset.get_form_kwargs(None))
        formsets.append((formset, extra))
    return form, formsets


def _payloads(response):
    """Hostile POST bodies for an admin page: all fields hostile, then one FK at a time."""
    form, formsets = _forms_of(response)
    base = _initial_data(form)
    for formset, _ in formsets:
        base.update(_management(formset))
        for existing in formset.forms:
            base.update(_initial_data(existing))
    editable = [(form, name, field) for name, field in form.fields.items()]
    for _, extra in formsets:
        editable += [(extra, name, field) for name, field in extra.fields.items() if name not in ("id", "DELETE")]
    for value in HOSTILE:
        data = dict(base)
        for owner, name, field in editable:
            data[owner.add_prefix(name)] = [value] if isinstance(field, ModelMultipleChoiceField) else value
        yield f"all fields = {value[:20]!r}", data
    for owner, name, field in editable:
        if isinstance(field, ModelChoiceField):
            for value in HOSTILE_KEYS:
                data = dict(base)
                data[owner.add_prefix(name)] = [value] if isinstance(field, ModelMultipleChoiceField) else value
                yield f"{owner.add_prefix(name)} = {value!r}", data


@pytest.fixture
def rows(business_a):
    """One row of each model the admin edits, so every change page has something to open."""
    contact = IndividualFactory(business=business_a)
    org = OrganizationFactory(business=business_a)
    OpportunityFactory(business=business_a, contact=contact, value=Decimal("10.00"), currency="USD")
    TicketFactory(business=business_a, contact=contact)
    service = ServiceFactory(business=business_a)
    ServicePriceFactory(service=service, business=business_a)
    BillableFactory(business=business_a, bill_to=org)
    invoice = InvoiceFactory(business=business_a, bill_to=contact)
    billable = BillableFactory(business=business_a, bill_to=contact, invoice=invoice, status="invoiced")
    InvoiceLineFactory(invoice=invoice, billable=billable, position=1)
    payment = PaymentFactory(invoice=invoice)
    RefundFactory(payment=payment)
    from stripe_integration.models import CustomerLink, StripeConnection

    connection = StripeConnection.objects.create(business=business_a, stripe_user_id="acct_hostile", status="connected")
    CustomerLink.objects.create(business=business_a, connection=connection, contact=org, stripe_customer_id="cus_hostile1",
                                origin="linked")
    return business_a


def _admin_pages(model):
    opts = model._meta
    try:
        yield reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
    except NoReverseMatch:
        pass
    obj = model._default_manager.first()
    if obj is not None:
        yield reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


@pytest.mark.parametrize("who", ["superuser", "finance"])
def test_admin_forms_answer_hostile_input_without_5xx(client, rows, finance_a, who):
    user = UserFactory(is_staff=True, is_superuser=True) if who == "superuser" else finance_a
    client.force_login(user)
    failures = []
    for model in list(admin.site._registry):
        for page in _admin_pages(model):
            response = client.get(page)
            if response.status_code != 200 or "adminform" not in (response.context or {}):
                continue
            for label, data in _payloads(response):
                try:
                    answer = client.post(page, data)
                except Exception as exc:  # the test client re-raises what would be a 500
                    failures.append(f"{page} {label}: {type(exc).__name__}: {str(exc)[:120]}")
                    continue
                if answer.status_code >= 500:
                    failures.append(f"{page} {label}: {answer.status_code}")
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("who", ["superuser", "finance"])
def test_admin_actions_answer_hostile_selections_without_5xx(client, rows, finance_a, who):
    """Every action of every changelist, run on selected ids no row can have."""
    client.force_login(UserFactory(is_staff=True, is_superuser=True) if who == "superuser" else finance_a)
    failures = []
    for model in list(admin.site._registry):
        opts = model._meta
        page = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = client.get(page)
        action_form = (response.context or {}).get("action_form") if response.status_code == 200 else None
        if action_form is None:
            continue
        actions = [name for name, _ in action_form.fields["action"].choices if name]
        for action in actions:
            for value in HOSTILE_KEYS:
                try:
                    answer = client.post(page, {"action": action, "_selected_action": [value], "index": "0"})
                except Exception as exc:
                    failures.append(f"{page} {action} {value!r}: {type(exc).__name__}: {str(exc)[:120]}")
                    continue
                if answer.status_code >= 500:
                    failures.append(f"{page} {action} {value!r}: {answer.status_code}")
    assert failures == [], "\n".join(failures)


def test_staff_ui_forms_answer_hostile_input_without_5xx(client, rows, finance_a):
    from finance.models import Billable, Invoice

    client.force_login(finance_a)
    contact = IndividualFactory(business=rows)
    opportunity = OpportunityFactory(business=rows, contact=contact)
    ticket = TicketFactory(business=rows, contact=contact)
    unbilled = list(Billable.objects.filter(business=rows, status="unbilled").values_list("pk", flat=True))
    pages = [
        ("/contacts/new/individual/", ["name", "email", "organization", "country", "phone"]),
        ("/contacts/new/organization/", ["name", "billing_email", "tax_id", "country"]),
        (reverse("ui:contact_update", args=[contact.pk]), ["name", "email", "organization", "country"]),
        ("/opportunities/new/", ["title", "contact", "stage", "value", "currency", "close_date", "owner"]),
        (reverse("ui:opportunity_update", args=[opportunity.pk]), ["title", "contact", "value", "currency", "owner"]),
        ("/tickets/new/", ["subject", "contact", "status", "priority", "description"]),
        (reverse("ui:ticket_update", args=[ticket.pk]), ["subject", "contact", "status", "priority"]),
        ("/invoices/preview/", ["billables", "next"]),
        ("/invoices/send/", ["billables", "next", "po_number", "approved"]),
        (reverse("ui:invoice_action", args=[Invoice.objects.filter(business=rows).first().pk]), ["action"]),
        ("/business/switch/", ["business", "next"]),
        (reverse("stripe_integration:integration_settings"), [
            "auto_create_customers", "collection_method", "days_until_due", "send_due_date", "only_approved",
            "excluded_line_types", "line_order", "po_number_field", "footer"]),
    ]
    failures = []
    for page, fields in pages:
        for value in HOSTILE + ["//evil.example/", "https://evil.example/", "javascript:alert(1)", "\r\nX: y"]:
            data = {name: value for name in fields}
            if "billables" in fields:  # real billables beside the hostile ones: the rest is read too
                data["billables"] = [str(pk) for pk in unbilled] + [value]
            try:
                answer = client.post(page, data)
            except Exception as exc:
                failures.append(f"{page} = {value[:20]!r}: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            if answer.status_code >= 500:
                failures.append(f"{page} = {value[:20]!r}: {answer.status_code}")
    lists = {
        "/contacts/": ["q", "kind", "country", "organization", "page"],
        "/opportunities/": ["q", "stage", "contact", "owner", "close_from", "close_to", "page"],
        "/tickets/": ["q", "status", "priority", "contact", "page"],
        "/billables/": ["q", "status", "currency", "bill_to", "date_from", "date_to", "page"],
    }
    for page, fields in lists.items():  # the list pages' filter forms (GET)
        for value in HOSTILE:
            try:
                answer = client.get(page, {name: value for name in fields})
            except Exception as exc:
                failures.append(f"{page}?{value[:20]!r}: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            if answer.status_code >= 500:
                failures.append(f"{page}?{value[:20]!r}: {answer.status_code}")
    assert failures == [], "\n".join(failures)


def test_invoice_send_with_an_amount_beyond_stripes_maximum_leaves_it_out_with_a_message(client, finance_a, business_a,
                                                                                          stripe_env):
    """A billable saved before the limits existed (no clean()), 100,000 billion USD all told:
    "Send to Stripe" says why it is left out instead of a 500 on the invoice's 15 digits."""
    from finance.models import Billable, Invoice
    from stripe_integration.tests import invoicing_helpers as h

    h.connect(client, finance_a, business_a)
    contact = h.contact(business_a)
    huge = Billable.objects.create(business=business_a, bill_to=contact, description="Huge", quantity=Decimal("1000"),
                                   unit_price=Decimal("99999999999999"), currency="USD")
    response = client.post("/invoices/send/", {"billables": [huge.pk], "next": f"/contacts/{contact.pk}/"}, follow=True)
    assert response.status_code == 200
    said = " ".join(str(m) for m in response.context["messages"])
    assert "more than Stripe accepts" in said and "Nothing was sent" in said
    assert not Invoice.objects.exists()


@pytest.mark.parametrize("po_number, says", [("PO\x00-1", "null character"), ("P" * 101, "at most 100 characters")])
def test_send_to_stripe_refuses_a_po_number_it_cannot_store(client, rows, finance_a, po_number, says):
    """Staff UI and admin action alike: a message, nothing created (was: silently cut to
    100 characters; a NUL is a 500 on PostgreSQL)."""
    from finance.models import Billable, Invoice

    client.force_login(finance_a)
    ids = list(Billable.objects.filter(business=rows, status="unbilled").values_list("pk", flat=True))
    sent = client.post("/invoices/send/", {"billables": ids, "po_number": po_number}, follow=True)
    assert any(says in str(m) for m in sent.context["messages"])
    action = client.post(reverse("admin:finance_billable_changelist"),
                         {"action": "generate_invoice", "_selected_action": ids, "apply": "Send to Stripe",
                          "po_number": po_number}, follow=True)
    assert any(says in str(m) for m in action.context["messages"])
    assert not Invoice.objects.filter(po_number__startswith="P", business=rows).exists()
