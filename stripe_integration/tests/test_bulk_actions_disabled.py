"""The admin's bulk Stripe actions over a selection that spans businesses (a superuser's
Sync to Stripe, Push contact details): a business whose integration is disabled or paused
is left out and named in the admin's messages with why; the others are done. Only a
selection of disabled businesses alone is refused as a whole (nothing would be done).
Against the sandbox over HTTP."""
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.urls import reverse

from crm.tests.factories import IndividualFactory
from services.services import service_create
from stripe_integration.customers import links as customers
from stripe_integration.models import CustomerLink, CustomerState, IntegrationSettings, ServiceSync, SyncState
from stripe_integration.runs.disable import integration_disable
from finance.tests.factories import InvoiceFactory
from stripe_integration.tests.sync_helpers import connect
from stripe_integration.tests.test_credit_notes_issue import _fast_retries, pushed  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

SERVICES = reverse("admin:services_service_changelist")
LINKS = reverse("admin:stripe_integration_customerlink_changelist")


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def two_businesses(client, finance_a, business_a, finance_b, business_b, stripe_env, settings):
    """Both businesses connected, each with a service and a linked contact; Beta's
    integration then paused; the client logged in as a superuser."""
    settings.STRIPE_MAX_RETRIES = 0
    made = {}
    for key, user, business in (("a", finance_a, business_a), ("b", finance_b, business_b)):
        conn = connect(client, user, business)
        service = service_create(business=business, code="AUDIT", name=f"Audit {key}", prices={"GBP": Decimal("100")})
        contact = IndividualFactory(business=business, name=f"Client {key}", email=f"client.{key}@example.test")
        customers.customer_ensure(connection=conn, contact=contact)
        made[key] = (conn, service, CustomerLink.objects.get(contact=contact))
    IntegrationSettings.for_business(business_b)
    integration_disable(business_id=business_b.pk, reason="Paused by finance_b")
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    return made


def test_sync_to_stripe_over_two_businesses_skips_the_paused_one_and_says_so(
        two_businesses, client, business_b, stripe_env, django_capture_on_commit_callbacks):
    (conn_a, audit_a, _), (conn_b, audit_b, _) = two_businesses["a"], two_businesses["b"]
    ServiceSync.objects.filter(service__in=[audit_a, audit_b]).update(state=SyncState.ERROR)
    stripe_env.mark()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(SERVICES, {"action": "sync_to_stripe", "_selected_action": [audit_a.pk, audit_b.pk]})
    assert response.status_code == 302 and response["Location"] == SERVICES
    said = _messages(response)
    assert any(m.startswith("Beta Ltd: 1 service(s) skipped, nothing done: its Stripe integration is disabled or "
                            "paused (Paused by finance_b)") for m in said), said
    assert not any("Alpha Ltd" in m for m in said), said
    assert ServiceSync.objects.get(service=audit_a).state == SyncState.SYNCED
    assert ServiceSync.objects.get(service=audit_b).state == SyncState.ERROR  # untouched
    assert {r["account"] for r in stripe_env.requests()} == {conn_a.stripe_user_id}


def test_push_contact_details_over_two_businesses_skips_the_paused_one(two_businesses, client, stripe_env):
    (conn_a, _, link_a), (_, _, link_b) = two_businesses["a"], two_businesses["b"]
    CustomerLink.objects.filter(pk__in=[link_a.pk, link_b.pk]).update(state=CustomerState.ERROR, last_error="x")
    stripe_env.mark()
    response = client.post(LINKS, {"action": "push_contact_details", "_selected_action": [link_a.pk, link_b.pk]})
    said = _messages(response)
    assert "Updated 1 Stripe customer(s)." in said, said
    assert any(m.startswith("Beta Ltd: 1 customer(s) skipped") for m in said), said
    link_a.refresh_from_db()
    link_b.refresh_from_db()
    assert (link_a.state, link_b.state) == (CustomerState.SYNCED, CustomerState.ERROR)
    assert {r["account"] for r in stripe_env.requests()} == {conn_a.stripe_user_id}


def test_a_selection_of_the_paused_business_alone_is_refused_as_before(two_businesses, client, stripe_env):
    _, audit_b, link_b = two_businesses["b"]
    stripe_env.mark()
    for url, data in ((SERVICES, {"action": "sync_to_stripe", "_selected_action": [audit_b.pk]}),
                      (LINKS, {"action": "push_contact_details", "_selected_action": [link_b.pk]})):
        response = client.post(url, data)
        assert response.status_code == 302 and response["Location"] == reverse("stripe_integration:run_list")
        assert any("The Stripe integration is disabled: re-enable it first." in m for m in _messages(response))
    assert stripe_env.requests() == []


def test_an_invoice_action_over_two_businesses_skips_the_paused_one(pushed, client, business_b, stripe_env):
    """Resend over an invoice of Alpha (sent to Stripe) and one of Beta (paused): Alpha's
    is resent, Beta's left out and named, whatever their order."""
    conn, invoice_a, _ = pushed
    invoice_b = InvoiceFactory(business=business_b, number="INV-B-1")
    IntegrationSettings.for_business(business_b)
    integration_disable(business_id=business_b.pk, reason="Paused by finance_b")
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    invoices = reverse("admin:finance_invoice_changelist")
    stripe_env.mark()
    response = client.post(invoices, {"action": "stripe_resend", "_selected_action": [invoice_b.pk, invoice_a.pk]})
    assert response.status_code == 302 and response["Location"] == invoices
    said = _messages(response)
    assert any(m.startswith("Beta Ltd: 1 invoice(s) skipped") for m in said), said
    assert stripe_env.requests(method="POST", path=f"/v1/invoices/{invoice_a.stripe_invoice_id}/send"), said
    assert {r["account"] for r in stripe_env.requests()} == {conn.stripe_user_id}
    # A void's confirmation page says beforehand which are left out, and why.
    page = client.post(invoices, {"action": "stripe_void", "_selected_action": [invoice_b.pk, invoice_a.pk]})
    assert page.status_code == 200
    assert "INV-B-1 (the Stripe integration of Beta Ltd is disabled or paused)" in page.content.decode()
