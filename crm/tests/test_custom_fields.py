"""Custom fields: definitions per business, values checked by type in the services, the
staff UI's contact form and the admin (a bad value is a form error, never a 500), shown
on the contact page; another business's definitions are invisible."""
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from crm import services
from crm.custom_fields import custom_values_clean, value_coerce
from crm.models import Contact, CustomFieldDefinition, CustomFieldTarget, CustomFieldType
from crm.tests.factories import IndividualFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def define(business, key, field_type=CustomFieldType.TEXT, applies_to=CustomFieldTarget.CONTACT, label=None):
    d = CustomFieldDefinition(business=business, key=key, label=label or key.upper(), field_type=field_type,
                              applies_to=applies_to)
    d.full_clean()
    d.save()
    return d


@pytest.mark.parametrize("field_type,raw,stored", [
    ("text", " PO-1 ", "PO-1"), ("number", "12", 12), ("number", "2.5", 2.5), ("bool", "yes", True),
    ("bool", False, False), ("date", "2026-01-31", "2026-01-31"), ("email", "ap@acme.example", "ap@acme.example"),
    ("text", "", None),
])
def test_custom_fields_value_coerce_by_type(field_type, raw, stored):
    assert value_coerce(field_type, raw) == stored


@pytest.mark.parametrize("field_type,raw", [
    ("number", "twelve"), ("number", "NaN"), ("number", "1e400"), ("number", True), ("bool", "maybe"),
    ("date", "31/01/2026"), ("date", "2026-02-30"), ("email", "not-an-address"), ("text", "x" * 501),
    ("text", ["a", "list"]), ("text", {"a": 1}), ("email", 12),
])
def test_custom_fields_bad_values_are_validation_errors(field_type, raw):
    with pytest.raises(ValidationError):
        value_coerce(field_type, raw)


def test_custom_fields_services_check_values_and_unknown_keys(business_a):
    define(business_a, "seats", CustomFieldType.NUMBER)
    contact = services.individual_create(business=business_a, name="Ada", custom_fields={"seats": "3"})
    assert Contact.objects.get(pk=contact.pk).custom_fields == {"seats": 3}
    with pytest.raises(ValidationError) as exc:
        services.contact_update(contact=contact, data={"custom_fields": {"seats": "many"}})
    assert "SEATS" in str(exc.value)
    with pytest.raises(ValidationError):
        services.contact_update(contact=contact, data={"custom_fields": {"nope": "x"}})
    with pytest.raises(ValidationError):
        services.contact_update(contact=contact, data={"custom_fields": ["not", "a", "dict"]})
    assert Contact.objects.get(pk=contact.pk).custom_fields == {"seats": 3}


def test_custom_fields_of_another_business_are_refused(business_a, business_b):
    define(business_b, "po")
    with pytest.raises(ValidationError):
        custom_values_clean(business=business_a, applies_to=CustomFieldTarget.CONTACT, values={"po": "1"})


def test_custom_fields_staff_form_saves_and_shows_them(client, staff_a, business_a):
    define(business_a, "po", label="PO reference")
    define(business_a, "vip", CustomFieldType.BOOL, label="VIP")
    org = OrganizationFactory(business=business_a, name="Acme")
    client.force_login(staff_a)
    url = reverse("ui:contact_update", args=[org.pk])
    page = client.get(url)
    assert b'name="cf_po"' in page.content and b'name="cf_vip"' in page.content
    response = client.post(url, {"name": "Acme", "country": "GB", "cf_po": "PO-9", "cf_vip": "true"})
    assert response.status_code == 302, response.content
    org.refresh_from_db()
    assert org.custom_fields == {"po": "PO-9", "vip": True}
    detail = client.get(reverse("ui:contact_detail", args=[org.pk])).content.decode()
    assert "PO reference" in detail and "PO-9" in detail


@pytest.mark.parametrize("value", ["abc", "1e999", "\ufffd\ufffd", "9" * 400])
def test_custom_fields_staff_form_bad_number_is_a_form_error(client, staff_a, business_a, value):
    define(business_a, "seats", CustomFieldType.NUMBER, label="Seats")
    person = IndividualFactory(business=business_a, name="Ada")
    client.force_login(staff_a)
    response = client.post(reverse("ui:contact_update", args=[person.pk]), {"name": "Ada", "cf_seats": value})
    assert response.status_code == 200
    assert "Enter a number" in response.content.decode() or "characters" in response.content.decode()
    person.refresh_from_db()
    assert person.custom_fields == {}


def test_custom_fields_staff_form_non_utf8_is_a_form_error_not_a_500(client, staff_a, business_a):
    define(business_a, "due", CustomFieldType.DATE)
    person = IndividualFactory(business=business_a, name="Ada")
    client.force_login(staff_a)
    response = client.post(reverse("ui:contact_update", args=[person.pk]),
                           data=b"name=Ada&cf_due=%ff%fe%00", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    person.refresh_from_db()
    assert person.custom_fields == {}


def test_custom_fields_of_another_business_are_not_in_the_form(client, staff_a, business_a, business_b):
    define(business_b, "secret_b")
    person = IndividualFactory(business=business_a, name="Ada")
    client.force_login(staff_a)
    assert b"cf_secret_b" not in client.get(reverse("ui:contact_update", args=[person.pk])).content


def test_custom_fields_admin_form_checks_values(client, finance_a, business_a):
    define(business_a, "seats", CustomFieldType.NUMBER, label="Seats")
    org = OrganizationFactory(business=business_a, name="Acme", custom_fields={"legacy": "kept"})
    client.force_login(finance_a)
    url = reverse("admin:crm_organization_change", args=[org.pk])
    page = client.get(url)
    assert page.status_code == 200 and b'name="cf_seats"' in page.content
    data = {"name": "Acme", "billing_email": "", "tax_id": "", "phone": "", "address_line1": "", "address_line2": "",
            "city": "", "postal_code": "", "state": "", "country": "GB", "cf_seats": "lots",
            "people-TOTAL_FORMS": "0", "people-INITIAL_FORMS": "0", "billables-TOTAL_FORMS": "0",
            "billables-INITIAL_FORMS": "0"}
    response = client.post(url, data)
    assert response.status_code == 200 and "Enter a number" in response.content.decode()
    data["cf_seats"] = "12"
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    org.refresh_from_db()
    assert org.custom_fields == {"legacy": "kept", "seats": 12}


def test_custom_field_definitions_admin_is_scoped(client, finance_a, business_a, business_b):
    define(business_a, "mine")
    define(business_b, "theirs")
    client.force_login(finance_a)
    content = client.get(reverse("admin:crm_customfielddefinition_changelist")).content.decode()
    assert "MINE" in content and "THEIRS" not in content
    response = client.post(reverse("admin:crm_customfielddefinition_add"),
                           {"applies_to": "contact", "key": "Bad Key!", "label": "x", "field_type": "text"})
    assert response.status_code == 200 and "lower-case" in response.content.decode()


def test_custom_fields_staff_form_on_create(client, staff_a, business_a):
    define(business_a, "po")
    client.force_login(staff_a)
    response = client.post(reverse("ui:individual_create"), {"name": "Grace", "cf_po": "PO-1"})
    assert response.status_code == 302
    assert Contact.objects.get(business=business_a, name="Grace").custom_fields == {"po": "PO-1"}
