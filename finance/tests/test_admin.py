"""Finance admin: tenancy both ways, crafted POSTs, read-only Stripe and money, no N+1."""
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.tests.factories import IndividualFactory, UserFactory
from finance.models import Billable, BillableStatus, Invoice, InvoiceStatus, Payment, Refund
from finance.tests.factories import (
    BillableFactory, InvoiceFactory, InvoiceLineFactory, PaymentFactory, RefundFactory,
)
from services.tests.factories import ServiceFactory, ServicePriceFactory

pytestmark = pytest.mark.django_db


def admin_url(model, view, *args):
    return reverse(f"admin:finance_{model._meta.model_name}_{view}", args=args)


def change_url(obj):
    return admin_url(type(obj), "change", obj.pk)


def management(prefix, total=0, initial=0):
    return {f"{prefix}-TOTAL_FORMS": total, f"{prefix}-INITIAL_FORMS": initial,
            f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000}


def query_count(client, address):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(address)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def billable_post(**overrides):
    return {"quantity": "1", "unit_price": "100", "currency": "USD", "vat_rate": "0", "line_type": "charge", **overrides}


def invoice_post(**overrides):
    return {"number": "INV-NEW", "currency": "USD", "collection_method": "send_invoice",
            **management("lines"), **management("payments"), **management("credit_notes"), **overrides}


FINANCE_ROWS = {
    "billable": lambda b: BillableFactory(business=b, description=f"Work for {b.slug}"),
    "invoice": lambda b: InvoiceFactory(business=b, number=f"INV-{b.slug}"),
    "payment": lambda b: PaymentFactory(invoice__business=b, invoice__number=f"INV-{b.slug}", amount=Decimal(len(b.slug))),
    "refund": lambda b: RefundFactory(payment__invoice__business=b, reason=f"Refund for {b.slug}"),
}


def row_marker(row):
    """Text that identifies `row` on a changelist page."""
    if isinstance(row, Billable):
        return row.description
    if isinstance(row, Invoice):
        return row.number
    if isinstance(row, Payment):
        return row.invoice.number
    return row.reason


# --- tenancy -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(FINANCE_ROWS))
def test_finance_changelist_shows_only_own_business(client, kind, finance_a, finance_b, business_a, business_b):
    row_a, row_b = FINANCE_ROWS[kind](business_a), FINANCE_ROWS[kind](business_b)
    for user, mine, theirs in ((finance_a, row_a, row_b), (finance_b, row_b, row_a)):
        client.force_login(user)
        response = client.get(admin_url(type(mine), "changelist"))
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == [mine]
        content = response.content.decode()
        assert row_marker(mine) in content and row_marker(theirs) not in content


@pytest.mark.parametrize("kind", sorted(FINANCE_ROWS))
def test_finance_change_page_of_other_business_is_not_found(client, kind, finance_a, finance_b, business_a, business_b):
    row_a, row_b = FINANCE_ROWS[kind](business_a), FINANCE_ROWS[kind](business_b)
    for user, mine, theirs in ((finance_a, row_a, row_b), (finance_b, row_b, row_a)):
        client.force_login(user)
        assert client.get(change_url(mine)).status_code == 200
        response = client.get(change_url(theirs))
        assert response.status_code == 302 and response.url == reverse("admin:index")
        # 302 to the index (not found), or 403 where finance may delete nothing (payments, refunds)
        assert client.post(admin_url(type(theirs), "delete", theirs.pk), {"post": "yes"}).status_code in (302, 403)
        assert type(theirs).objects.filter(pk=theirs.pk).exists()


def test_billable_admin_add_rejects_contact_of_other_business(client, finance_a, business_b):
    contact_b = IndividualFactory(business=business_b)
    client.force_login(finance_a)
    response = client.post(admin_url(Billable, "add"), billable_post(bill_to=contact_b.pk, description="Poach"))
    assert response.status_code == 200
    assert "bill_to" in response.context["adminform"].form.errors
    assert not Billable.objects.filter(description="Poach").exists()


def test_billable_admin_add_rejects_other_business_ids_the_other_way(client, finance_b, business_a, business_b):
    contact_b = IndividualFactory(business=business_b)
    service_a = ServiceFactory(business=business_a)
    client.force_login(finance_b)
    response = client.post(
        admin_url(Billable, "add"), billable_post(bill_to=contact_b.pk, service=service_a.pk, description="Poach")
    )
    assert response.status_code == 200
    assert "service" in response.context["adminform"].form.errors
    assert not Billable.objects.exists()


def test_billable_admin_add_sets_business_from_request(client, finance_a, business_a, business_b):
    contact = IndividualFactory(business=business_a)
    client.force_login(finance_a)
    response = client.post(
        admin_url(Billable, "add"), billable_post(bill_to=contact.pk, business=business_b.pk, description="Mine")
    )
    assert response.status_code == 302
    assert Billable.objects.get(description="Mine").business == business_a


def test_billable_admin_add_without_price_uses_list_price(client, finance_a, business_a):
    contact = IndividualFactory(business=business_a)
    price = ServicePriceFactory(service__business=business_a, currency="JPY", amount=Decimal("15000"))
    client.force_login(finance_a)
    data = billable_post(bill_to=contact.pk, service=price.service.pk, unit_price="", currency="JPY")
    assert client.post(admin_url(Billable, "add"), data).status_code == 302
    billable = Billable.objects.get()
    assert (billable.unit_price, billable.uses_list_price, billable.business) == (Decimal("15000"), True, business_a)


def test_billable_admin_missing_price_is_a_form_error(client, finance_a, business_a):
    contact = IndividualFactory(business=business_a)
    client.force_login(finance_a)
    response = client.post(admin_url(Billable, "add"), billable_post(bill_to=contact.pk, unit_price=""))
    assert response.status_code == 200
    assert "unit_price" in response.context["adminform"].form.errors


def test_billable_autocomplete_offers_only_own_contacts(client, finance_a, business_a, business_b):
    IndividualFactory(business=business_a, name="Bea Alpha")
    IndividualFactory(business=business_b, name="Bea Beta")
    client.force_login(finance_a)
    response = client.get(reverse("admin:autocomplete"), {
        "app_label": "finance", "model_name": "billable", "field_name": "bill_to", "term": "Bea",
    })
    assert [r["text"] for r in response.json()["results"]] == ["Bea Alpha"]


def test_billable_admin_invoiced_row_is_read_only_and_kept(client, finance_a, business_a):
    billable = BillableFactory(business=business_a, status=BillableStatus.INVOICED, quantity=Decimal("1"))
    client.force_login(finance_a)
    response = client.get(change_url(billable))
    assert "quantity" not in response.context["adminform"].form.fields
    client.post(change_url(billable), billable_post(bill_to=billable.bill_to_id, quantity="9"))
    billable.refresh_from_db()
    assert billable.quantity == Decimal("1")
    assert client.get(admin_url(Billable, "delete", billable.pk)).status_code == 403


def test_invoice_admin_change_rejects_contact_of_other_business(client, finance_a, business_a, business_b):
    invoice = InvoiceFactory(business=business_a)
    contact_b = IndividualFactory(business=business_b)
    client.force_login(finance_a)
    response = client.post(change_url(invoice), invoice_post(number=invoice.number, bill_to=contact_b.pk))
    # The bill-to of an existing invoice is read-only (it follows from its billables):
    # the posted contact is ignored, never saved.
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.bill_to.business == business_a


def test_invoice_admin_add_rejects_contact_of_other_business(client, finance_b, business_a):
    contact_a = IndividualFactory(business=business_a)
    client.force_login(finance_b)
    response = client.post(admin_url(Invoice, "add"), invoice_post(bill_to=contact_a.pk))
    assert response.status_code == 200
    assert "bill_to" in response.context["adminform"].form.errors
    assert not Invoice.objects.exists()


def test_invoice_admin_duplicate_number_is_a_form_error(client, finance_a, business_a):
    existing = InvoiceFactory(business=business_a, number="INV-1")
    client.force_login(finance_a)
    response = client.post(admin_url(Invoice, "add"), invoice_post(number="INV-1", bill_to=existing.bill_to_id))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Invoice.objects.count() == 1


def test_payment_admin_add_is_not_offered_to_finance(client, finance_a, business_b):
    # Payments come from Stripe or "Mark paid outside Stripe": no add form, so no way to
    # point one at another business's invoice either.
    invoice_b = InvoiceFactory(business=business_b)
    client.force_login(finance_a)
    data = {"invoice": invoice_b.pk, "amount": "10", "currency": "USD", "status": "succeeded", "method": "out_of_band",
            "fee": "0", "net": "10", "amount_refunded": "0", **management("refunds")}
    assert client.get(admin_url(Payment, "add")).status_code == 403
    assert client.post(admin_url(Payment, "add"), data).status_code == 403
    assert not Payment.objects.exists()


def test_refund_admin_add_is_not_offered_to_finance(client, finance_b, business_a):
    payment_a = PaymentFactory(invoice__business=business_a)
    client.force_login(finance_b)
    data = {"payment": payment_a.pk, "amount": "5", "currency": "USD", "status": "succeeded"}
    assert client.post(admin_url(Refund, "add"), data).status_code == 403
    assert not Refund.objects.exists()


# --- roles ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", [Billable, Invoice, Payment, Refund])
def test_finance_admin_forbidden_to_staff_role_and_non_members(client, model, staff_a, business_a):
    staff_a.is_staff = True
    staff_a.save()
    stranger = UserFactory(is_staff=True)
    for user in (staff_a, stranger):
        client.force_login(user)
        assert client.get(admin_url(model, "changelist")).status_code == 403
        assert client.get(admin_url(model, "add")).status_code == 403


@pytest.mark.parametrize("kind", sorted(FINANCE_ROWS))
def test_finance_admin_owner_sees_own_rows_superuser_sees_all(client, kind, owner_a, business_a, business_b):
    row_a, row_b = FINANCE_ROWS[kind](business_a), FINANCE_ROWS[kind](business_b)
    address = admin_url(type(row_a), "changelist")
    client.force_login(owner_a)
    assert list(client.get(address).context["cl"].result_list) == [row_a]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert set(client.get(address).context["cl"].result_list) == {row_a, row_b}


# --- read-only money and Stripe ------------------------------------------------------


def test_invoice_changelist_formats_money_and_links(client, finance_a, business_a):
    InvoiceFactory(business=business_a, number="INV-USD", currency="USD", total=Decimal("1234.5"),
                   hosted_invoice_url="https://invoice.stripe.test/i/abc", invoice_pdf_url="https://pay.stripe.test/p.pdf")
    InvoiceFactory(business=business_a, number="INV-JPY", currency="JPY", total=Decimal("15000"),
                   hosted_invoice_url="javascript:alert(1)")
    client.force_login(finance_a)
    content = client.get(admin_url(Invoice, "changelist")).content.decode()
    assert "1,234.50 USD" in content and "15,000 JPY" in content
    assert 'href="https://invoice.stripe.test/i/abc"' in content
    assert 'href="https://pay.stripe.test/p.pdf"' in content
    assert "javascript:alert" not in content


def test_invoice_admin_money_and_stripe_fields_are_read_only(client, finance_a, business_a):
    invoice = InvoiceFactory(business=business_a, total=Decimal("50"), hosted_invoice_url="https://h.test/x")
    client.force_login(finance_a)
    response = client.get(change_url(invoice))
    form_fields = set(response.context["adminform"].form.fields)
    assert form_fields == {"number", "collection_method", "due_date"}  # bill-to, currency: from the billables
    assert 'href="https://h.test/x"' in response.content.decode()
    data = invoice_post(number=invoice.number, bill_to=invoice.bill_to_id, total="1", amount_paid="50",
                        stripe_invoice_id="in_smuggled", status="paid")
    assert client.post(change_url(invoice), data).status_code == 302
    invoice.refresh_from_db()
    assert (invoice.total, invoice.amount_paid, invoice.stripe_invoice_id, invoice.status) == (
        Decimal("50"), Decimal("0"), None, InvoiceStatus.DRAFT)


def test_invoice_admin_finalized_invoice_is_read_only_and_not_deletable(client, finance_a, business_a):
    invoice = InvoiceFactory(business=business_a, status=InvoiceStatus.OPEN, stripe_invoice_id="in_1")
    client.force_login(finance_a)
    assert client.get(change_url(invoice)).context["adminform"].form.fields == {}
    assert client.get(admin_url(Invoice, "delete", invoice.pk)).status_code == 403


def test_payment_admin_stripe_payment_is_read_only(client, finance_a, business_a):
    payment = PaymentFactory(invoice__business=business_a, stripe_payment_intent_id="pi_1", amount=Decimal("10"))
    RefundFactory(payment=payment)
    client.force_login(finance_a)
    response = client.get(change_url(payment))
    assert response.context["adminform"].form.fields == {}
    refunds = response.context["inline_admin_formsets"][0]
    assert not refunds.has_add_permission and not refunds.has_change_permission


def test_payment_admin_manual_payment_keeps_stripe_ids_read_only(client, finance_a, business_a):
    payment = PaymentFactory(invoice__business=business_a, method="out_of_band")
    client.force_login(finance_a)
    data = {"invoice": payment.invoice_id, "amount": "100", "currency": "USD", "status": "succeeded",
            "method": "out_of_band", "fee": "0", "net": "100", "amount_refunded": "0",
            "stripe_charge_id": "ch_smuggled", **management("refunds")}
    assert client.post(change_url(payment), data).status_code == 302
    payment.refresh_from_db()
    assert (payment.status, payment.stripe_charge_id) == ("succeeded", None)


# --- query counts: 5 rows cost what 50 rows cost --------------------------------------


def _rows(kind, business, n):
    contact = IndividualFactory(business=business)
    service = ServiceFactory(business=business)
    for _ in range(n):
        if kind == "billable":
            BillableFactory(business=business, bill_to=IndividualFactory(business=business), service=service,
                            invoice=InvoiceFactory(business=business, bill_to=contact))
        elif kind == "invoice":
            InvoiceFactory(business=business, bill_to=IndividualFactory(business=business))
        elif kind == "payment":
            PaymentFactory(invoice=InvoiceFactory(business=business, bill_to=IndividualFactory(business=business)))
        else:
            RefundFactory(payment=PaymentFactory(invoice=InvoiceFactory(business=business, bill_to=contact)))


@pytest.mark.parametrize("kind", sorted(FINANCE_ROWS))
def test_finance_changelist_query_count_does_not_grow_with_rows(client, kind, finance_a, business_a):
    model = {"billable": Billable, "invoice": Invoice, "payment": Payment, "refund": Refund}[kind]
    address = admin_url(model, "changelist")
    client.force_login(finance_a)
    _rows(kind, business_a, 5)
    client.get(address)
    five = query_count(client, address)
    _rows(kind, business_a, 45)
    assert query_count(client, address) == five


def _invoice_children(invoice, n):
    service = ServiceFactory(business=invoice.business)
    for _ in range(n):
        billable = BillableFactory(business=invoice.business, bill_to=invoice.bill_to, service=service, description="")
        InvoiceLineFactory(invoice=invoice, service=service, billable=billable)
        RefundFactory(payment=PaymentFactory(invoice=invoice))


def test_invoice_change_page_query_count_does_not_grow_with_lines_and_payments(client, finance_a, business_a):
    invoice = InvoiceFactory(business=business_a)
    client.force_login(finance_a)
    _invoice_children(invoice, 5)
    client.get(change_url(invoice))
    five = query_count(client, change_url(invoice))
    _invoice_children(invoice, 45)
    assert query_count(client, change_url(invoice)) == five


def test_payment_change_page_query_count_does_not_grow_with_refunds(client, finance_a, business_a):
    payment = PaymentFactory(invoice__business=business_a)
    client.force_login(finance_a)
    RefundFactory.create_batch(5, payment=payment)
    client.get(change_url(payment))
    five = query_count(client, change_url(payment))
    RefundFactory.create_batch(45, payment=payment)
    assert query_count(client, change_url(payment)) == five


def test_billable_admin_choices_are_limited_to_own_business(client, finance_a, business_a, business_b):
    contact_a = IndividualFactory(business=business_a)
    service_a = ServiceFactory(business=business_a)
    IndividualFactory(business=business_b)
    ServiceFactory(business=business_b)
    client.force_login(finance_a)
    form = client.get(admin_url(Billable, "add")).context["adminform"].form
    assert [c.pk for c in form.fields["bill_to"].queryset] == [contact_a.pk]
    assert list(form.fields["service"].queryset) == [service_a]
    assert "business" not in form.fields


def test_billable_inline_refuses_to_delete_or_edit_invoiced_row(client, finance_a, business_a):
    person = IndividualFactory(business=business_a)
    billable = BillableFactory(business=business_a, bill_to=person, status=BillableStatus.INVOICED,
                               description="Invoiced work", quantity=Decimal("1"))
    client.force_login(finance_a)
    row = {"billables-0-id": billable.pk, "billables-0-bill_to": person.pk, "billables-0-description": "Invoiced work",
           "billables-0-quantity": "1", "billables-0-unit_price": "100", "billables-0-currency": "USD",
           "billables-0-vat_rate": "0", "billables-0-line_type": "charge"}
    page = reverse("admin:crm_individual_change", args=[person.pk])
    base = {"name": person.name, **management("billables", total=1, initial=1), **row}
    for change in ({"billables-0-DELETE": "on"}, {"billables-0-quantity": "5"}):
        response = client.post(page, {**base, **change})
        assert response.status_code == 200
        assert response.context["inline_admin_formsets"][0].formset.non_form_errors()
        billable.refresh_from_db()
        assert billable.quantity == Decimal("1")
    assert client.post(page, base).status_code == 302  # unchanged: fine
