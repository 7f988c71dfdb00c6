"""The audit log: audit_record, the staff UI page (filters, tenancy, roles, constant
queries, hostile parameters) and the read-only admin."""
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.contrib.auth.models import AnonymousUser

from crm.audit import AuditEntry, audit_for_object, audit_record
from crm.tests.factories import IndividualFactory

pytestmark = pytest.mark.django_db

URL = "/audit/"


def test_audit_record_keeps_object_identity_and_survives_deletion(business_a, finance_a):
    contact = IndividualFactory(business=business_a, name="Ada")
    entry = audit_record(business=business_a, user=finance_a, action="invoice_void", obj=contact, ip="10.0.0.1",
                         detail="why", amount=Decimal("12.30"), currency="eur")
    assert (entry.object_type, entry.object_id, entry.object_label) == ("crm.individual", str(contact.pk), "Ada")
    assert (entry.currency, entry.amount, entry.ip_address) == ("EUR", Decimal("12.30"), "10.0.0.1")
    assert list(audit_for_object(business=business_a, obj=contact)) == [entry]
    pk = contact.pk
    contact.delete()
    assert AuditEntry.objects.get(object_id=str(pk)).object_label == "Ada"


def test_audit_record_anonymous_is_the_app(business_a):
    entry = audit_record(business=business_a, user=AnonymousUser(), action="stripe_event")
    assert entry.user is None and entry.actor.startswith("the app")


def test_audit_record_refuses_bad_ip(business_a):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        audit_record(business=business_a, user=None, action="x", ip="not-an-ip")


def test_audit_log_page_roles(client, staff_a, finance_a, owner_a):
    client.force_login(staff_a)
    assert client.get(URL).status_code == 403
    for user in (finance_a, owner_a):
        client.force_login(user)
        assert client.get(URL).status_code == 200


def test_audit_log_page_tenancy_and_filters(client, finance_a, business_a, business_b, owner_a):
    audit_record(business=business_a, user=finance_a, action="invoice_void", detail="Voided INV-1")
    audit_record(business=business_a, user=owner_a, action="stripe_disconnect", detail="Disconnected acct_1")
    audit_record(business=business_b, user=None, action="invoice_void", detail="Foreign INV-9")
    client.force_login(finance_a)
    html = client.get(URL).content.decode()
    assert "Voided INV-1" in html and "Disconnected acct_1" in html and "Foreign" not in html
    html = client.get(URL, {"action": "invoice_void"}).content.decode()
    assert "Voided INV-1" in html and "Disconnected acct_1" not in html
    html = client.get(URL, {"user": owner_a.pk}).content.decode()
    assert "Disconnected acct_1" in html and "Voided INV-1" not in html
    html = client.get(URL, {"q": "acct_1"}).content.decode()
    assert "Disconnected acct_1" in html and "Voided INV-1" not in html


@pytest.mark.parametrize("params", [{"page": "abc"}, {"page": "999"}, {"date_from": "2026-99-01"},
                                    {"user": "abc"}, {"action": "<script>"}, {"q": "' OR 1=1"}])
def test_audit_log_page_hostile_params(client, finance_a, business_a, params):
    audit_record(business=business_a, user=finance_a, action="invoice_void")
    client.force_login(finance_a)
    assert client.get(URL, params).status_code == 200


def test_audit_log_page_queries_constant_5_vs_50(client, finance_a, owner_a, business_a):
    def make(n):
        for i in range(n):
            audit_record(business=business_a, user=(finance_a, owner_a)[i % 2], action=f"action_{i % 7}",
                         obj=IndividualFactory(business=business_a), amount=Decimal("1"), currency="USD")

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(URL).status_code == 200
        return len(ctx.captured_queries)

    client.force_login(finance_a)
    make(5)
    few = count()
    make(45)
    assert count() == few


def test_audit_admin_read_only(client, finance_a, business_a, business_b):
    mine = audit_record(business=business_a, user=finance_a, action="invoice_void", detail="mine")
    theirs = audit_record(business=business_b, user=None, action="invoice_void", detail="theirs")
    client.force_login(finance_a)
    listing = client.get("/admin/crm/auditentry/")
    assert listing.status_code == 200
    assert f"/admin/crm/auditentry/{mine.pk}/" in listing.content.decode()
    assert f"/admin/crm/auditentry/{theirs.pk}/" not in listing.content.decode()
    assert client.get("/admin/crm/auditentry/add/").status_code == 403
    assert client.post(f"/admin/crm/auditentry/{mine.pk}/delete/", {"post": "yes"}).status_code == 403
    page = client.get(f"/admin/crm/auditentry/{mine.pk}/change/")
    assert page.status_code == 200 and 'name="detail"' not in page.content.decode()
    assert AuditEntry.objects.filter(pk=mine.pk).exists()
