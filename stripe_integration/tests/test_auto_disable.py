"""Auto-disable (issue 15): ten failed runs in a row disable a business's integration,
e-mail the users chosen for it once, stop every call to Stripe and show a banner; one
click re-enables it and retries what waited. Against the sandbox with injected faults."""
import pytest
from django.core import mail
from django.urls import reverse

from finance.models import Invoice, InvoicePushStatus
from services.services import service_create
from stripe_integration.catalog import sync as catalog
from stripe_integration.invoicing import push as invoicing
from stripe_integration.invoicing.sweep import invoice_pushes_due
from stripe_integration.models import (
    DeliveryStatus, EventAction, EventKind, IntegrationSettings, IntegrationRun, RunKind, RunStatus, WebhookDelivery,
)
from stripe_integration.runs.disable import integration_disable
from stripe_integration.tests import invoicing_helpers as h
from stripe_integration.webhooks.catch_up import catch_up
from stripe_integration.webhooks.processing import deliveries_process_received

pytestmark = pytest.mark.django_db


@pytest.fixture
def env(client, finance_a, owner_a, business_a, stripe_env, settings):
    settings.STRIPE_MAX_RETRIES = 0
    conn = h.connect(client, finance_a, business_a)
    s = IntegrationSettings.for_business(business_a)
    s.alert_users.set([owner_a])  # the one chosen: finance_a is not e-mailed
    return conn, h.contact(business_a), stripe_env


def _invoices(business, contact, n):
    ids = [h.billable(business, contact, description=f"Work {i}").pk for i in range(n)]
    return [invoicing.invoices_generate(business=business, billable_ids=[pk], push=False).invoices[0] for pk in ids]


def test_ten_failed_runs_disable_the_integration_then_one_click_retries_what_waited(
        env, business_a, client, owner_a, django_capture_on_commit_callbacks):
    conn, contact, stripe_env = env
    invoices = _invoices(business_a, contact, 11)
    stripe_env.fault(r"^POST /v1/invoices$", kind="500")

    with django_capture_on_commit_callbacks(execute=True):
        for invoice in invoices[:9]:
            assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "failed"
    assert not IntegrationSettings.for_business(business_a).disabled and mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        assert invoicing.invoice_push(invoice_id=invoices[9].pk).outcome == "failed"

    s = IntegrationSettings.for_business(business_a)
    assert s.disabled and s.disabled_at and "after 10 failed runs" in s.disabled_reason
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [owner_a.email]
    assert "disabled" in mail.outbox[0].subject and reverse("stripe_integration:run_list") in mail.outbox[0].body
    last = IntegrationRun.objects.filter(kind=RunKind.INVOICE_PUSH).order_by("-pk").first()
    assert last.events.filter(kind=EventKind.DISABLED, action=EventAction.REENABLE).exists()

    # Disabled: nothing reaches Stripe; each job records a "disabled" run.
    stripe_env.mark()
    with django_capture_on_commit_callbacks(execute=True):
        assert invoicing.invoice_push(invoice_id=invoices[10].pk).outcome == "disabled"
        result = catch_up(connection=conn)
        service = service_create(business=business_a, code="AUDIT", name="Audit", prices={})
        with pytest.raises(catalog.CatalogSyncError):
            catalog.service_sync(connection=conn, service=service)
    assert stripe_env.requests() == [] and result.listed == 0
    assert set(IntegrationRun.objects.filter(pk__gt=last.pk).values_list("status", flat=True)) == {RunStatus.DISABLED}
    assert len(mail.outbox) == 1  # one e-mail per disabling
    assert Invoice.objects.get(pk=invoices[10].pk).push_status == InvoicePushStatus.PENDING  # untouched, waiting
    assert invoice_pushes_due() == []  # the sweep leaves a disabled business alone

    # The banner, in the staff UI and the admin, for finance and owner roles.
    for url in (reverse("ui:home"), reverse("stripe_integration:run_list"), reverse("admin:index")):
        page = client.get(url).content.decode()
        assert "data-integration-disabled" in page and "after 10 failed runs" in page and "Re-enable" in page

    # Stripe is fine again: one click re-enables and retries the 11 waiting pushes.
    stripe_env.clear_faults()
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(reverse("stripe_integration:reenable"))
    assert resp.status_code == 302
    s.refresh_from_db()
    assert not s.disabled and s.failed_run_streak == 0
    assert set(Invoice.objects.filter(pk__in=[i.pk for i in invoices]).values_list("push_status", flat=True)) == {
        InvoicePushStatus.PUSHED}
    assert stripe_env.requests(method="POST", path="/v1/invoices")
    assert "data-integration-disabled" not in client.get(reverse("ui:home")).content.decode()
    assert IntegrationRun.objects.filter(kind=RunKind.CATCH_UP, status=RunStatus.COMPLETE).exists()


def test_a_complete_run_of_the_same_job_ends_the_streak(env, business_a):
    conn, contact, stripe_env = env
    invoices = _invoices(business_a, contact, 11)
    stripe_env.fault(r"^POST /v1/invoices$", kind="500", count=9)
    for invoice in invoices[:9]:
        invoicing.invoice_push(invoice_id=invoice.pk)
    assert IntegrationSettings.for_business(business_a).failed_streaks == {RunKind.INVOICE_PUSH: 9}
    catch_up(connection=conn)  # another job completing does not end the pushes' streak
    assert IntegrationRun.objects.filter(kind=RunKind.CATCH_UP, status=RunStatus.COMPLETE).exists()
    assert IntegrationSettings.for_business(business_a).failed_run_streak == 9
    assert invoicing.invoice_push(invoice_id=invoices[9].pk).outcome == "pushed"
    assert IntegrationSettings.for_business(business_a).failed_run_streak == 0
    stripe_env.fault(r"^POST /v1/invoices$", kind="500", count=1)
    invoicing.invoice_push(invoice_id=invoices[10].pk)
    s = IntegrationSettings.for_business(business_a)
    assert (s.failed_run_streak, s.disabled) == (1, False)


def test_the_limit_is_per_business_and_zero_never_disables(env, business_a):
    conn, contact, stripe_env = env
    h.settings_for(business_a, auto_disable_after=2)
    stripe_env.fault(r"^POST /v1/invoices$", kind="500")
    for invoice in _invoices(business_a, contact, 2):
        invoicing.invoice_push(invoice_id=invoice.pk)
    assert IntegrationSettings.for_business(business_a).disabled
    # 0: never
    IntegrationSettings.objects.filter(business=business_a).update(disabled=False, failed_streaks={},
                                                                   auto_disable_after=0)
    for invoice in _invoices(business_a, contact, 3):
        invoicing.invoice_push(invoice_id=invoice.pk)
    s = IntegrationSettings.for_business(business_a)
    assert (s.disabled, s.failed_run_streak) == (False, 3)


def test_webhooks_are_held_while_disabled_and_processed_on_reenable(env, business_a, client,
                                                                      django_capture_on_commit_callbacks):
    conn, contact, stripe_env = env
    [invoice] = _invoices(business_a, contact, 1)
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    catch_up(connection=conn)  # stored; their processing is queued on commit, never run here
    stored = WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED).count()
    assert stored >= 3
    integration_disable(business_id=business_a.pk, reason="Disabled for the test.")

    stripe_env.mark()
    deliveries_process_received()
    assert stripe_env.requests() == []
    held = WebhookDelivery.objects.filter(status=DeliveryStatus.PARKED)
    assert held.count() == stored and not held.filter(next_attempt_at__isnull=False).exists()
    run = IntegrationRun.objects.get(kind=RunKind.WEBHOOK_PROCESSING)
    assert run.status == RunStatus.DISABLED and run.counts == {"held": stored}

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("stripe_integration:reenable"))
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.PROCESSED).count() >= stored


def test_settings_page_chooses_the_limit_and_members_to_email(env, business_a, business_b, client, owner_a,
                                                              finance_b):
    resp = client.post(reverse("stripe_integration:integration_settings"),
                       {"auto_disable_after": "5", "alert_users": [owner_a.pk, finance_b.pk]})
    assert resp.status_code == 200  # finance_b is no member: "Select a valid choice"
    assert "valid choice" in resp.content.decode()
    resp = client.post(reverse("stripe_integration:integration_settings"),
                       {"auto_disable_after": "5", "alert_users": [owner_a.pk]})
    assert resp.status_code == 302
    s = IntegrationSettings.for_business(business_a)
    assert s.auto_disable_after == 5 and list(s.alert_users.all()) == [owner_a]


def test_admin_shows_the_state_and_reenables(env, business_a, client, django_capture_on_commit_callbacks):
    integration_disable(business_id=business_a.pk, reason="Disabled for the test.")
    s = IntegrationSettings.for_business(business_a)
    changelist = reverse("admin:stripe_integration_integrationsettings_changelist")
    page = client.get(reverse("admin:stripe_integration_integrationsettings_change", args=[s.pk])).content.decode()
    assert "Disabled for the test." in page and "data-integration-disabled" in page
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(changelist, {"action": "reenable", "_selected_action": [s.pk]})
    assert resp.status_code == 302
    s.refresh_from_db()
    assert not s.disabled


def test_customer_pushes_wait_while_disabled_then_go(env, business_a, client, django_capture_on_commit_callbacks):
    from stripe_integration.customers.links import customer_sync_request
    from stripe_integration.models import CustomerLink, CustomerState

    conn, contact, stripe_env = env
    [invoice] = _invoices(business_a, contact, 1)
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"  # makes the Stripe customer
    integration_disable(business_id=business_a.pk, reason="Disabled for the test.")
    stripe_env.mark()
    contact.address_line1 = "1 New Street"
    contact.save()
    with django_capture_on_commit_callbacks(execute=True):
        customer_sync_request(contact=contact)
    link = CustomerLink.objects.get(contact=contact)
    assert stripe_env.requests() == [] and link.state == CustomerState.PENDING

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("stripe_integration:reenable"))
    link.refresh_from_db()
    assert link.state == CustomerState.SYNCED
    assert stripe_env.requests(method="POST", path=f"/v1/customers/{link.stripe_customer_id}")


def test_pause_button_stops_stripe_work_until_reenable(env, business_a, client, finance_a, staff_a,
                                                       django_capture_on_commit_callbacks):
    """The business's own switch on its Stripe page: the same disabled state, by hand."""
    conn, contact, stripe_env = env
    (invoice,) = _invoices(business_a, contact, 1)
    client.force_login(staff_a)
    assert client.post(reverse("stripe_integration:pause")).status_code == 403
    assert not IntegrationSettings.for_business(business_a).disabled

    client.force_login(finance_a)
    assert 'data-pause' in client.get(reverse("stripe_integration:settings")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("stripe_integration:pause")).status_code == 302
    s = IntegrationSettings.for_business(business_a)
    assert s.disabled and "Paused by finance_a" in s.disabled_reason
    stripe_env.mark()
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "disabled"
    assert stripe_env.requests() == []

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("stripe_integration:reenable"))
    assert Invoice.objects.get(pk=invoice.pk).push_status == InvoicePushStatus.PUSHED
