"""crm.services: the business comes from the caller, related rows must share it, and
full_clean() runs before every save."""
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm import services
from crm.models import ContactKind, Individual, Organization
from crm.tests.factories import IndividualFactory, OpportunityFactory, OrganizationFactory, TicketFactory

pytestmark = pytest.mark.django_db


def test_contact_create_both_kinds(business_a):
    org = services.contact_create(business=business_a, kind=ContactKind.ORGANIZATION, name=" Acme ", country="gb")
    person = services.contact_create(business=business_a, kind=ContactKind.INDIVIDUAL, name="Ann", organization=org)
    assert isinstance(org, Organization) and org.name == "Acme" and org.country == "GB"
    assert isinstance(person, Individual) and person.organization == org and person.kind == ContactKind.INDIVIDUAL


def test_individual_create_refuses_other_business_organization(business_a, business_b):
    org_b = OrganizationFactory(business=business_b)
    with pytest.raises(ValidationError) as exc:
        services.individual_create(business=business_a, name="X", organization=org_b)
    assert "organization" in exc.value.message_dict
    assert not Individual.objects.filter(name="X").exists()


def test_individual_create_validates_before_saving(business_a):
    with pytest.raises(ValidationError):
        services.individual_create(business=business_a, name="X", email="not-an-email")
    assert not Individual.objects.exists()


def test_individual_update_changes_only_allowed_fields(business_a, business_b):
    person = IndividualFactory(business=business_a)
    services.individual_update(individual=person, data={"name": "Renamed", "city": "York"})
    person.refresh_from_db()
    assert (person.name, person.city) == ("Renamed", "York")
    with pytest.raises(ValueError):
        services.individual_update(individual=person, data={"business": business_b})
    person.refresh_from_db()
    assert person.business == business_a


def test_contact_update_dispatches_on_kind(business_a):
    org = OrganizationFactory(business=business_a)
    updated = services.contact_update(contact=org.contact_ptr, data={"tax_id": "NEW"})
    assert isinstance(updated, Organization)
    org.refresh_from_db()
    assert org.tax_id == "NEW"


def test_opportunity_create_and_update(business_a, staff_a):
    contact = IndividualFactory(business=business_a)
    opp = services.opportunity_create(business=business_a, contact=contact, title="Deal", value=Decimal("5"),
                                      currency="eur", owner=staff_a)
    assert opp.currency == "EUR" and opp.business == business_a
    services.opportunity_update(opportunity=opp, data={"stage": "won"})
    opp.refresh_from_db()
    assert opp.stage == "won"


def test_opportunity_create_refuses_foreign_contact_owner_and_missing_currency(business_a, business_b, finance_b):
    contact = IndividualFactory(business=business_a)
    contact_b = IndividualFactory(business=business_b)
    with pytest.raises(ValidationError) as exc:
        services.opportunity_create(business=business_a, contact=contact_b, title="X")
    assert "contact" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.opportunity_create(business=business_a, contact=contact, title="X", owner=finance_b)
    assert "owner" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.opportunity_create(business=business_a, contact=contact, title="X", value=Decimal("1"))
    assert "currency" in exc.value.message_dict


def test_opportunity_update_refuses_foreign_contact(business_a, business_b):
    opp = OpportunityFactory(business=business_a)
    with pytest.raises(ValidationError):
        services.opportunity_update(opportunity=opp, data={"contact": IndividualFactory(business=business_b)})
    opp.refresh_from_db()
    assert opp.contact.business == business_a


def test_ticket_create_and_update(business_a, business_b):
    contact = IndividualFactory(business=business_a)
    ticket = services.ticket_create(business=business_a, contact=contact, subject="Help", priority="high")
    assert ticket.status == "open" and ticket.priority == "high"
    services.ticket_update(ticket=ticket, data={"status": "closed"})
    ticket.refresh_from_db()
    assert ticket.status == "closed"
    with pytest.raises(ValidationError):
        services.ticket_update(ticket=ticket, data={"status": "exploded"})
    with pytest.raises(ValidationError):
        services.ticket_create(business=business_a, contact=IndividualFactory(business=business_b), subject="X")


def test_update_without_changes_does_not_save(business_a):
    ticket = TicketFactory(business=business_a, subject="Same")
    with CaptureQueriesContext(connection) as ctx:
        services.ticket_update(ticket=ticket, data={"subject": "Same", "contact": ticket.contact})
    assert not [q for q in ctx.captured_queries if "UPDATE" in q["sql"].upper()]
    with CaptureQueriesContext(connection) as ctx:
        services.ticket_update(ticket=ticket, data={"subject": "Changed"})
    assert [q for q in ctx.captured_queries if q["sql"].upper().startswith("UPDATE")]
