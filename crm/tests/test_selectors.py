"""Selectors: scoped to one business, filters applied, invalid filters give no rows."""
from decimal import Decimal

import pytest

from crm import selectors
from crm.models import Contact, Opportunity, Ticket
from crm.tests.factories import IndividualFactory, OpportunityFactory, OrganizationFactory, TicketFactory
from finance import selectors as finance_selectors
from finance.tests.factories import BillableFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db


def test_contact_list_scoped_to_business(business_a, business_b):
    mine = IndividualFactory(business=business_a)
    IndividualFactory(business=business_b)
    assert list(selectors.contact_list(business=business_a)) == [mine.contact_ptr]


def test_contact_list_filters_search(business_a):
    ann = IndividualFactory(business=business_a, name="Ann", email="ann@x.example")
    IndividualFactory(business=business_a, name="Ben")
    assert [c.pk for c in selectors.contact_list(business=business_a, filters={"q": "x.example"})] == [ann.pk]


def test_contact_list_invalid_filter_gives_no_rows(business_a, business_b):
    IndividualFactory(business=business_a)
    org_b = OrganizationFactory(business=business_b)
    assert list(selectors.contact_list(business=business_a, filters={"organization": org_b.pk})) == []
    assert list(selectors.contact_list(business=business_a, filters={"kind": "robot"})) == []


@pytest.mark.parametrize("getter,factory,model", [
    (selectors.contact_get, IndividualFactory, Contact),
    (selectors.opportunity_get, OpportunityFactory, Opportunity),
    (selectors.ticket_get, TicketFactory, Ticket),
])
def test_get_refuses_other_business(business_a, business_b, getter, factory, model):
    row_b = factory(business=business_b)
    assert getter(business=business_b, pk=row_b.pk).pk == row_b.pk
    with pytest.raises(model.DoesNotExist):
        getter(business=business_a, pk=row_b.pk)


def test_opportunity_and_ticket_lists_by_contact(business_a):
    contact = IndividualFactory(business=business_a)
    opp = OpportunityFactory(business=business_a, contact=contact)
    ticket = TicketFactory(business=business_a, contact=contact)
    OpportunityFactory(business=business_a)
    TicketFactory(business=business_a)
    assert list(selectors.opportunity_list(business=business_a, contact=contact)) == [opp]
    assert list(selectors.ticket_list(business=business_a, contact=contact)) == [ticket]


def test_opportunity_list_filters_by_several_stages(business_a):
    lead = OpportunityFactory(business=business_a, stage="lead")
    won = OpportunityFactory(business=business_a, stage="won")
    OpportunityFactory(business=business_a, stage="lost")
    result = selectors.opportunity_list(business=business_a, filters={"stage": ["lead", "won"]})
    assert set(result) == {lead, won}


def test_crm_counts(business_a, business_b):
    org = OrganizationFactory(business=business_a)
    person = IndividualFactory(business=business_a, organization=org)
    OpportunityFactory(business=business_a, contact=person, stage="won")
    OpportunityFactory(business=business_a, contact=person, stage="proposal")
    TicketFactory(business=business_a, contact=person, status="closed")
    TicketFactory(business=business_b)
    counts = selectors.crm_counts(business=business_a)
    assert counts == {"contacts": 2, "individuals": 1, "organizations": 1, "opportunities": 2,
                      "open_opportunities": 1, "tickets": 1, "open_tickets": 0}


def test_unbilled_totals_per_currency_with_credits(business_a, business_b):
    contact = IndividualFactory(business=business_a)
    BillableFactory(business=business_a, bill_to=contact, currency="USD", quantity=Decimal("2"), unit_price=Decimal("10.25"))
    BillableFactory(business=business_a, bill_to=contact, currency="USD", unit_price=Decimal("5"), line_type="credit")
    BillableFactory(business=business_a, bill_to=contact, currency="JPY", quantity=Decimal("3"), unit_price=Decimal("1000"))
    BillableFactory(business=business_a, bill_to=contact, currency="USD", unit_price=Decimal("999"), status="invoiced")
    BillableFactory(business=business_a, currency="EUR", unit_price=Decimal("1"))  # another contact
    BillableFactory(business=business_b, currency="USD", unit_price=Decimal("500"))
    rows = finance_selectors.unbilled_totals(business=business_a, bill_to=contact)
    assert [(r["currency"], r["count"], r["gross"]) for r in rows] == [
        ("JPY", 1, Decimal("3000")), ("USD", 2, Decimal("15.50"))]
    assert [r["currency"] for r in finance_selectors.unbilled_totals(business=business_a)] == ["EUR", "JPY", "USD"]


def test_billable_list_filters(business_a, business_b):
    contact = IndividualFactory(business=business_a)
    match = BillableFactory(business=business_a, bill_to=contact, currency="EUR", service_date="2025-03-10")
    BillableFactory(business=business_a, bill_to=contact, currency="EUR", service_date="2025-05-01")
    BillableFactory(business=business_a, bill_to=contact, currency="USD", service_date="2025-03-10")
    BillableFactory(business=business_a, currency="EUR", service_date="2025-03-10")
    BillableFactory(business=business_a, bill_to=contact, currency="EUR", service_date="2025-03-10", status="void")
    BillableFactory(business=business_b, currency="EUR", service_date="2025-03-10")
    filters = {"status": ["unbilled"], "currency": "EUR", "bill_to": contact.pk,
               "date_from": "2025-03-01", "date_to": "2025-03-31"}
    assert list(finance_selectors.billable_list(business=business_a, filters=filters)) == [match]


def test_billable_list_date_falls_back_to_created_day(business_a):
    undated = BillableFactory(business=business_a, service_date=None)
    day = undated.created_at.date().isoformat()
    assert list(finance_selectors.billable_list(business=business_a, filters={"date_from": day, "date_to": day})) == [undated]
    assert list(finance_selectors.billable_list(business=business_a, filters={"date_to": "2000-01-01"})) == []


def test_billable_list_refuses_other_business_contact_filter(business_a, business_b):
    BillableFactory(business=business_a)
    b_row = BillableFactory(business=business_b)
    assert list(finance_selectors.billable_list(business=business_a, filters={"bill_to": b_row.bill_to_id})) == []


def test_invoice_and_payment_lists_by_contact(business_a, business_b):
    contact = IndividualFactory(business=business_a)
    invoice = InvoiceFactory(business=business_a, bill_to=contact)
    payment = PaymentFactory(invoice=invoice)
    PaymentFactory(invoice=InvoiceFactory(business=business_a))
    PaymentFactory(invoice=InvoiceFactory(business=business_b))
    assert list(finance_selectors.invoice_list(business=business_a, bill_to=contact)) == [invoice]
    assert list(finance_selectors.payment_list(business=business_a, bill_to=contact)) == [payment]
    assert finance_selectors.payment_list(business=business_a).count() == 2
