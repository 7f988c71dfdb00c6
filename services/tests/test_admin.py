"""Service catalog admin: tenancy, roles, delete-or-archive, no N+1."""
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from finance.tests.factories import BillableFactory
from services.models import Service
from services.tests.factories import ServiceFactory, ServicePriceFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:services_service_changelist")
ADD = reverse("admin:services_service_add")


def change_url(service):
    return reverse("admin:services_service_change", args=[service.pk])


def delete_url(service):
    return reverse("admin:services_service_delete", args=[service.pk])


def prices_management(total=0, initial=0):
    return {"prices-TOTAL_FORMS": total, "prices-INITIAL_FORMS": initial,
            "prices-MIN_NUM_FORMS": 0, "prices-MAX_NUM_FORMS": 1000}


def query_count(client, address):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(address)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_service_changelist_shows_only_own_business(client, finance_a, finance_b, business_a, business_b):
    service_a = ServiceFactory(business=business_a, name="Alpha audit")
    service_b = ServiceFactory(business=business_b, name="Beta audit")
    for user, mine, theirs in ((finance_a, service_a, service_b), (finance_b, service_b, service_a)):
        client.force_login(user)
        content = client.get(CHANGELIST).content.decode()
        assert mine.name in content and theirs.name not in content
        response = client.get(change_url(theirs))
        assert response.status_code == 302 and response.url == reverse("admin:index")
        assert client.get(change_url(mine)).status_code == 200


def test_service_admin_add_sets_business_and_prices_from_request(client, finance_a, business_a, business_b):
    client.force_login(finance_a)
    data = {
        "business": business_b.pk, "code": "NEW", "name": "New", "active": "on", **prices_management(total=1),
        "prices-0-currency": "JPY", "prices-0-amount": "15000",
    }
    response = client.post(ADD, data)
    assert response.status_code == 302
    service = Service.objects.get(code="NEW")
    assert service.business == business_a
    price = service.prices.get()
    assert (price.business, price.currency, price.amount) == (business_a, "JPY", Decimal("15000"))


def test_service_admin_duplicate_code_is_a_form_error(client, finance_a, business_a, business_b):
    ServiceFactory(business=business_a, code="DUP")
    ServiceFactory(business=business_b, code="ONLY-B")
    client.force_login(finance_a)
    response = client.post(ADD, {"code": "DUP", "name": "Again", **prices_management()})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Service.objects.filter(code="DUP").count() == 1
    # a code used by another business only is free here
    assert client.post(ADD, {"code": "ONLY-B", "name": "Mine", **prices_management()}).status_code == 302


def test_service_admin_change_goes_through_service_update(client, finance_a, business_a, business_b):
    service = ServiceFactory(business=business_a, name="Old")
    client.force_login(finance_a)
    data = {"business": business_b.pk, "code": service.code, "name": "Renamed", "active": "on", **prices_management()}
    assert client.post(change_url(service), data).status_code == 302
    service.refresh_from_db()
    assert (service.name, service.business) == ("Renamed", business_a)


@pytest.mark.parametrize("name", ["services_service_changelist", "services_service_add"])
def test_service_admin_forbidden_to_staff_role(client, staff_a, name):
    staff_a.is_staff = True
    staff_a.save()
    client.force_login(staff_a)
    assert client.get(reverse(f"admin:{name}")).status_code == 403


def test_service_admin_owner_role_manages_services(client, owner_a, business_a):
    ServiceFactory(business=business_a)
    client.force_login(owner_a)
    assert client.get(CHANGELIST).status_code == 200


def test_service_admin_delete_archives_referenced_service(client, finance_a, business_a):
    service = ServiceFactory(business=business_a)
    BillableFactory(business=business_a, service=service)
    client.force_login(finance_a)
    confirm = client.get(delete_url(service))
    assert confirm.status_code == 200 and not confirm.context["protected"]
    response = client.post(delete_url(service), {"post": "yes"})
    assert response.status_code == 302
    service.refresh_from_db()
    assert service.active is False
    assert any("archived instead of deleted" in m for m in messages_of(response))


def test_service_admin_delete_removes_unreferenced_service(client, finance_a, business_a):
    service = ServicePriceFactory(service__business=business_a).service
    client.force_login(finance_a)
    response = client.post(delete_url(service), {"post": "yes"})
    assert response.status_code == 302
    assert not Service.objects.filter(pk=service.pk).exists()
    assert any("deleted successfully" in m for m in messages_of(response))


def test_service_admin_bulk_delete_reports_archived(client, finance_a, business_a):
    used = ServiceFactory.create_batch(2, business=business_a)
    for service in used:
        BillableFactory(business=business_a, service=service)
    unused = ServiceFactory(business=business_a)
    client.force_login(finance_a)
    ids = [s.pk for s in [*used, unused]]
    confirm = client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": ids})
    assert confirm.status_code == 200 and not confirm.context["protected"]
    response = client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert response.status_code == 302
    assert not Service.objects.filter(pk=unused.pk).exists()
    assert set(Service.objects.values_list("active", flat=True)) == {False}
    text = messages_of(response)
    assert "Deleted 1 service." in text
    assert "Archived 2 services instead of deleting: in use." in text


def test_service_admin_bulk_delete_ignores_other_business_ids(client, finance_a, business_a, business_b):
    service_b = ServiceFactory(business=business_b)
    client.force_login(finance_a)
    client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [service_b.pk], "post": "yes"})
    assert Service.objects.get(pk=service_b.pk).active is True


def test_service_admin_archive_and_restore_actions(client, finance_a, business_a):
    service = ServiceFactory(business=business_a)
    client.force_login(finance_a)
    client.post(CHANGELIST, {"action": "archive_selected", "_selected_action": [service.pk]})
    assert Service.objects.get(pk=service.pk).active is False
    client.post(CHANGELIST, {"action": "restore_selected", "_selected_action": [service.pk]})
    assert Service.objects.get(pk=service.pk).active is True


def test_service_changelist_shows_prices_with_currency(client, finance_a, business_a):
    service = ServiceFactory(business=business_a)
    ServicePriceFactory(service=service, currency="JPY", amount=Decimal("15000"))
    ServicePriceFactory(service=service, currency="USD", amount=Decimal("1234.5"))
    client.force_login(finance_a)
    content = client.get(CHANGELIST).content.decode()
    assert "15,000 JPY, 1,234.50 USD" in content


def _services_with_prices(business, n):
    for service in ServiceFactory.create_batch(n, business=business):
        ServicePriceFactory(service=service, currency="USD")
        ServicePriceFactory(service=service, currency="EUR")


def test_service_changelist_query_count_does_not_grow_with_rows(client, finance_a, business_a):
    client.force_login(finance_a)
    _services_with_prices(business_a, 5)
    client.get(CHANGELIST)
    five = query_count(client, CHANGELIST)
    _services_with_prices(business_a, 45)
    assert query_count(client, CHANGELIST) == five


def test_service_change_page_query_count_does_not_grow_with_prices(client, finance_a, business_a):
    service = ServiceFactory(business=business_a)
    client.force_login(finance_a)
    for currency in ("USD", "EUR", "GBP", "JPY", "CHF"):
        ServicePriceFactory(service=service, currency=currency)
    client.get(change_url(service))
    five = query_count(client, change_url(service))
    for n in range(45):
        ServicePriceFactory(service=service, currency=f"X{chr(65 + n // 26)}{chr(65 + n % 26)}")
    assert query_count(client, change_url(service)) == five
