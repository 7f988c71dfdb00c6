import pytest
from django.core.exceptions import ValidationError

from crm.models import ContactKind
from crm.tests.factories import IndividualFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_contact_kind_set_from_subclass(business_a):
    org = OrganizationFactory(business=business_a)
    person = IndividualFactory(business=business_a, organization=org)
    assert org.kind == ContactKind.ORGANIZATION
    assert person.kind == ContactKind.INDIVIDUAL
    assert person.contact_ptr.specific == person
    assert org.contact_ptr.billing_email == org.billing_email


def test_individual_organization_must_be_same_business(business_a, business_b):
    org_b = OrganizationFactory(business=business_b)
    person = IndividualFactory.build(business=business_a, organization=org_b)
    with pytest.raises(ValidationError) as exc:
        person.full_clean()
    assert "organization" in exc.value.message_dict
