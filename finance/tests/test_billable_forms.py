"""Staff record billables: add, edit, remove unbilled billables from an opportunity, a
ticket and the billables list; invoiced ones are read-only; list price per currency."""
from decimal import Decimal

import pytest
from django.urls import reverse

from crm.tests.factories import IndividualFactory, OpportunityFactory, TicketFactory
from finance import billables
from finance.models import Billable, BillableStatus
from finance.tests.factories import BillableFactory, InvoiceFactory
from services.models import ServicePrice
from services.tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db

CREATE = "/billables/new/"


def _service(business, **prices):
    service = ServiceFactory(business=business, code="AUDIT", name="Security audit")
    for currency, amount in prices.items():
        ServicePrice.objects.create(business=business, service=service, currency=currency, amount=Decimal(amount))
    return service


def _post(opp, service=None, **over):
    data = {"bill_to": opp.contact_id, "service": service.pk if service else "", "description": "",
            "quantity": "2", "unit_price": "", "currency": "EUR", "discount_percent": "", "discount_amount": "",
            "vat_rate": "0", "line_type": "charge", "service_date": "2026-11-30"}
    data.update(over)
    return data


@pytest.mark.parametrize("user_fixture", ["staff_a", "finance_a"])
def test_billable_create_from_opportunity_with_list_price(client, request, business_a, user_fixture):
    opp = OpportunityFactory(business=business_a)
    service = _service(business_a, EUR="90.00", USD="100.00")
    client.force_login(request.getfixturevalue(user_fixture))
    html = client.get(reverse("ui:opportunity_detail", args=[opp.pk])).content.decode()
    assert f'action="{CREATE}?opportunity={opp.pk}"' in html
    assert "AUDIT - Security audit (90.00 EUR · 100.00 USD)" in html
    response = client.post(f"{CREATE}?opportunity={opp.pk}", _post(opp, service))
    assert response.status_code == 302 and response["Location"] == reverse("ui:opportunity_detail", args=[opp.pk])
    billable = Billable.objects.get()
    assert billable.opportunity == opp and billable.ticket is None and billable.business == business_a
    assert billable.unit_price == Decimal("90.00") and billable.uses_list_price
    assert billable.description == "Security audit" and billable.status == BillableStatus.UNBILLED
    assert str(billable.service_date) == "2026-11-30"


def test_billable_create_negotiated_price_discount_vat(client, staff_a, business_a):
    ticket = TicketFactory(business=business_a)
    service = _service(business_a, USD="100.00")
    client.force_login(staff_a)
    response = client.post(f"{CREATE}?ticket={ticket.pk}", _post(
        ticket, service, currency="usd", unit_price="80.00", discount_percent="10", vat_rate="20",
        description="Audit, friends rate"))
    assert response.status_code == 302 and response["Location"] == reverse("ui:ticket_detail", args=[ticket.pk])
    b = Billable.objects.get()
    assert (b.ticket, b.currency, b.unit_price, b.uses_list_price) == (ticket, "USD", Decimal("80.00"), False)
    assert (b.discount_percent, b.vat_rate, b.description) == (Decimal("10"), Decimal("20"), "Audit, friends rate")


def test_billable_use_list_price_prefills_per_currency_without_saving(client, staff_a, business_a):
    opp = OpportunityFactory(business=business_a)
    service = _service(business_a, EUR="90.00", JPY="15000")
    client.force_login(staff_a)
    for currency, shown in (("EUR", 'value="90.00"'), ("JPY", 'value="15000"')):
        response = client.post(f"{CREATE}?opportunity={opp.pk}", {**_post(opp, service, currency=currency), "prefill": "1"})
        assert response.status_code == 200
        field = response.content.decode().split('name="unit_price"')[1].split(">")[0]
        assert shown in field
    response = client.post(f"{CREATE}?opportunity={opp.pk}", {**_post(opp, service, currency="GBP"), "prefill": "1"})
    assert "no list price in this currency" in response.content.decode()
    assert not Billable.objects.exists()


@pytest.mark.parametrize("over,field,message", [
    ({"currency": "GBP"}, "unit_price", "no list price in this currency"),
    ({"quantity": "0"}, "quantity", "greater than or equal to"),
    ({"quantity": "abc"}, "quantity", "Enter a number"),
    ({"unit_price": "-5"}, "unit_price", "greater than or equal to"),
    ({"discount_percent": "10", "discount_amount": "5"}, None, "not both"),
    ({"vat_rate": "101"}, "vat_rate", "less than or equal to 100"),
    ({"service_date": "2026-02-30"}, "service_date", "valid date"),
    ({"currency": "E1", "unit_price": "5"}, "currency", "three-letter"),
])
def test_billable_create_validation_errors_shown(client, staff_a, business_a, over, field, message):
    opp = OpportunityFactory(business=business_a)
    service = _service(business_a, EUR="90.00")
    client.force_login(staff_a)
    response = client.post(f"{CREATE}?opportunity={opp.pk}", _post(opp, service, **over))
    assert response.status_code == 200
    html = response.content.decode()
    assert "errorlist" in html and message in html
    assert not Billable.objects.exists()


def test_billable_create_refuses_other_business_rows(client, staff_a, business_a, business_b):
    foreign_opp = OpportunityFactory(business=business_b)
    foreign_contact = IndividualFactory(business=business_b)
    foreign_service = _service(business_b, EUR="1.00")
    opp = OpportunityFactory(business=business_a)
    client.force_login(staff_a)
    assert client.get(f"{CREATE}?opportunity={foreign_opp.pk}").status_code == 404
    assert client.get(f"{CREATE}?ticket=abc").status_code == 404
    response = client.post(f"{CREATE}?opportunity={opp.pk}",
                           _post(opp, foreign_service, bill_to=foreign_contact.pk, unit_price="5"))
    assert response.status_code == 200 and response.content.decode().count("Select a valid choice") == 2
    assert not Billable.objects.exists()


def test_billable_create_on_list_page(client, staff_a, business_a):
    contact = IndividualFactory(business=business_a)
    client.force_login(staff_a)
    html = client.get("/billables/").content.decode()
    assert f'action="{CREATE}"' in html
    response = client.post(CREATE, {"bill_to": contact.pk, "description": "Ad hoc work", "quantity": "1.5",
                                    "unit_price": "40", "currency": "GBP", "vat_rate": "0", "line_type": "charge"})
    assert response.status_code == 302 and response["Location"] == "/billables/"
    b = Billable.objects.get()
    assert (b.opportunity, b.ticket, b.quantity, b.unit_price) == (None, None, Decimal("1.5"), Decimal("40"))


def test_billable_update_unbilled(client, staff_a, business_a):
    opp = OpportunityFactory(business=business_a)
    b = BillableFactory(business=business_a, opportunity=opp, bill_to=opp.contact, currency="EUR", description="Old")
    client.force_login(staff_a)
    url = reverse("ui:billable_update", args=[b.pk])
    assert 'value="Old"' in client.get(url).content.decode()
    response = client.post(url, _post(opp, description="New", unit_price="12.50"))
    assert response.status_code == 302 and response["Location"] == reverse("ui:opportunity_detail", args=[opp.pk])
    b.refresh_from_db()
    assert (b.description, b.unit_price, b.quantity, b.opportunity) == ("New", Decimal("12.50"), Decimal("2"), opp)


@pytest.mark.parametrize("status", ["invoiced", "paid", "void"])
def test_billable_invoiced_is_read_only(client, staff_a, business_a, status):
    opp = OpportunityFactory(business=business_a)
    invoice = InvoiceFactory(business=business_a, number="INV-9", bill_to=opp.contact)
    b = BillableFactory(business=business_a, opportunity=opp, bill_to=opp.contact, status=status, invoice=invoice,
                        description="Done work", unit_price=Decimal("100.00"))
    client.force_login(staff_a)
    url = reverse("ui:billable_update", args=[b.pk])
    response = client.get(url, follow=True)
    assert "invoiced billables are read-only" in response.content.decode()
    response = client.post(url, _post(opp, unit_price="1"))
    assert response.status_code == 200 and "only unbilled billables can be edited" in response.content.decode()
    response = client.post(reverse("ui:billable_delete", args=[b.pk]), follow=True)
    assert "only unbilled billables can be removed" in response.content.decode()
    b.refresh_from_db()
    assert b.unit_price == Decimal("100.00") and b.status == status
    html = client.get(reverse("ui:opportunity_detail", args=[opp.pk])).content.decode()
    assert "data-edit-billable" not in html and "read-only" in html


def test_billable_delete_unbilled(client, staff_a, business_a):
    ticket = TicketFactory(business=business_a)
    b = BillableFactory(business=business_a, ticket=ticket, bill_to=ticket.contact)
    client.force_login(staff_a)
    response = client.post(reverse("ui:billable_delete", args=[b.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("ui:ticket_detail", args=[ticket.pk])
    assert not Billable.objects.exists()
    assert client.get(reverse("ui:billable_delete", args=[b.pk])).status_code == 405


def test_billable_edit_and_delete_other_business_404(client, staff_a, business_b):
    b = BillableFactory(business=business_b)
    client.force_login(staff_a)
    assert client.get(reverse("ui:billable_update", args=[b.pk])).status_code == 404
    assert client.post(reverse("ui:billable_delete", args=[b.pk])).status_code == 404
    assert Billable.objects.filter(pk=b.pk).exists()


def test_billable_update_service_refuses_invoiced_after_form_was_read(business_a):
    # The page showed an unbilled billable; an invoice run takes it before Save.
    b = BillableFactory(business=business_a)
    stale = Billable.objects.get(pk=b.pk)
    Billable.objects.filter(pk=b.pk).update(status=BillableStatus.INVOICED)
    with pytest.raises(billables.BillableReadOnly):
        billables.billable_update(billable=stale, data={"unit_price": Decimal("1")})
    with pytest.raises(billables.BillableReadOnly):
        billables.billable_delete(billable=stale)
    assert Billable.objects.get(pk=b.pk).unit_price == Decimal("100.00")


def test_billable_services_refuse_app_owned_fields(business_a):
    b = BillableFactory(business=business_a)
    with pytest.raises(TypeError):
        billables.billable_update(billable=b, data={"status": "paid"})
    with pytest.raises(TypeError):
        billables.billable_create(business=business_a, bill_to=b.bill_to, currency="USD", invoice=None)


def test_billable_update_back_to_list_price(business_a):
    service = _service(business_a, USD="70.00")
    b = billables.billable_create(business=business_a, bill_to=IndividualFactory(business=business_a),
                                  service=service, currency="USD", unit_price=Decimal("50"))
    assert not b.uses_list_price
    b = billables.billable_update(billable=b, data={"unit_price": None})
    assert b.unit_price == Decimal("70.00") and b.uses_list_price


@pytest.mark.parametrize("page", ["opportunity", "ticket", "list"])
def test_billable_pages_queries_constant_5_vs_50(client, staff_a, business_a, page):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    source = (OpportunityFactory if page == "opportunity" else TicketFactory)(business=business_a)
    url = {"opportunity": reverse("ui:opportunity_detail", args=[source.pk]),
           "ticket": reverse("ui:ticket_detail", args=[source.pk]), "list": "/billables/"}[page]

    def make(n):
        for i in range(n):
            service = ServiceFactory(business=business_a)
            ServicePrice.objects.create(business=business_a, service=service, currency="EUR", amount=Decimal("1"))
            BillableFactory(business=business_a, service=service, bill_to=IndividualFactory(business=business_a),
                            **{page: source} if page != "list" else {})

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    client.force_login(staff_a)
    make(5)
    few = count()
    make(45)
    assert count() == few
