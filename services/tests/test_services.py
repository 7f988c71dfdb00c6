from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from finance.tests.factories import BillableFactory, InvoiceLineFactory
from services.models import Service, ServicePrice
from services.services import (
    ARCHIVED, DELETED, service_archive, service_create, service_delete_or_archive, service_is_in_use,
    service_update,
)
from services.tests.factories import ServiceFactory, ServicePriceFactory

pytestmark = pytest.mark.django_db


def test_service_create_saves_service_and_prices(business_a):
    service = service_create(
        business=business_a, code="AUDIT", name="Audit", prices={"USD": Decimal("100"), "JPY": Decimal("15000")}
    )
    assert service.business == business_a and service.active
    assert {(p.currency, p.amount, p.business_id) for p in service.prices.all()} == {
        ("USD", Decimal("100"), business_a.pk), ("JPY", Decimal("15000"), business_a.pk),
    }


def test_service_create_accepts_price_pairs(business_a):
    service = service_create(business=business_a, code="A", name="A", prices=[("EUR", Decimal("9.5"))])
    assert service.price_for("EUR").amount == Decimal("9.5")


def test_service_create_rejects_duplicate_code_in_same_business(business_a, business_b):
    service_create(business=business_a, code="DUP", name="One")
    with pytest.raises(ValidationError):
        service_create(business=business_a, code="DUP", name="Two")
    assert service_create(business=business_b, code="DUP", name="Other business").pk


def test_service_create_rolls_back_on_invalid_price(business_a):
    with pytest.raises(ValidationError):
        service_create(business=business_a, code="BAD", name="Bad", prices={"usd dollars": Decimal("1")})
    assert not Service.objects.filter(code="BAD").exists()


def test_service_update_changes_allowed_fields(business_a):
    service = ServiceFactory(business=business_a, name="Old")
    service_update(service=service, name="New", description="Longer")
    service.refresh_from_db()
    assert (service.name, service.description) == ("New", "Longer")


def test_service_update_refuses_business_and_unknown_fields(business_a, business_b):
    service = ServiceFactory(business=business_a)
    with pytest.raises(TypeError):
        service_update(service=service, business=business_b)
    service.refresh_from_db()
    assert service.business == business_a


def test_service_update_validates(business_a):
    ServiceFactory(business=business_a, code="TAKEN")
    service = ServiceFactory(business=business_a)
    with pytest.raises(ValidationError):
        service_update(service=service, code="TAKEN")


def test_service_archive_deactivates(business_a):
    service = ServiceFactory(business=business_a)
    service_archive(service=service)
    service.refresh_from_db()
    assert service.active is False


def test_service_delete_or_archive_deletes_unused_service_and_prices(business_a):
    service = ServicePriceFactory(service__business=business_a).service
    pk = service.pk
    assert service_is_in_use(service=service) is False
    assert service_delete_or_archive(service=service) == DELETED
    assert not Service.objects.filter(pk=pk).exists()
    assert not ServicePrice.objects.filter(service_id=pk).exists()


def test_service_delete_or_archive_archives_service_on_a_billable(business_a):
    service = ServiceFactory(business=business_a)
    BillableFactory(business=business_a, service=service)
    assert service_is_in_use(service=service) is True
    assert service_delete_or_archive(service=service) == ARCHIVED
    service.refresh_from_db()
    assert service.active is False


def test_service_delete_or_archive_archives_service_on_an_invoice_line(business_a):
    service = ServiceFactory(business=business_a)
    InvoiceLineFactory(invoice__business=business_a, service=service)
    assert service_delete_or_archive(service=service) == ARCHIVED
    assert Service.objects.get(pk=service.pk).active is False
