"""While a business's Stripe integration is disabled or paused, the actions a person starts
(invoice actions, credit notes and refunds, save-card link, collection method, linking a
customer) are refused with a message and a link to re-enable it: no Stripe call, nothing
changed, no 500. Re-enabled, they work again. Against the sandbox over HTTP."""
import uuid

import pytest
from django.urls import reverse

from finance.models import CreditNote, CreditNotePushStatus, Invoice, InvoiceStatus
from stripe_integration.credit_notes.issue import credit_note_create
from stripe_integration.models import CustomerLink
from stripe_integration.runs import IntegrationDisabled, integration_require_enabled
from stripe_integration.tests.test_credit_notes_issue import _fast_retries, paid, pushed  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

REFUSED = "The Stripe integration is disabled: re-enable it first."


def _pause(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("stripe_integration:pause")).status_code == 302


def _reenable(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("stripe_integration:reenable")).status_code == 302


def _refused(resp, back: str):
    """Redirected back to the page it came from, with the message and the re-enable link."""
    assert resp.status_code == 302 and resp["Location"] == back, (resp.status_code, resp.get("Location"))
    return resp


def _shows_refusal(client, back):
    page = client.get(back).content.decode()
    assert REFUSED in page and f'href="{reverse("stripe_integration:run_list")}"' in page


def _person_actions(invoice, contact, note):
    """(label, url, data) of each action a person starts that reaches Stripe."""
    action = reverse("ui:invoice_action", args=[invoice.pk])
    credit = reverse("ui:invoice_credit_note", args=[invoice.pk])
    return [
        ("void", action, {"action": "void", "confirmed": "yes"}),
        ("mark uncollectible", action, {"action": "mark_uncollectible", "confirmed": "yes"}),
        ("resend", action, {"action": "resend"}),
        ("paid outside Stripe", action, {"action": "mark_paid_out_of_band", "oob-paid_on": "2026-01-05",
                                         "oob-method": "bank_transfer", "oob-reference": "BT-1"}),
        ("credit note preview", credit, {"cn-amount": "10", "cn-mode": "pre_payment", "cn-reason": "", "cn-memo": ""}),
        ("credit note", credit, {"cn-amount": "10", "cn-mode": "pre_payment", "cn-reason": "", "cn-memo": "",
                                 "cn-request_key": uuid.uuid4().hex, "confirm": "yes"}),
        ("credit note void", credit, {"void": str(note.pk), "confirmed": "yes"}),
        ("save-card link", reverse("stripe_integration:card_setup_link", args=[contact.pk]), {"nonce": uuid.uuid4().hex}),
        ("collection method", reverse("stripe_integration:collection_method", args=[contact.pk]),
         {"collection_method": "send_invoice"}),
        ("link a customer", reverse("stripe_integration:customer_link", args=[contact.pk]),
         {"customer_id": "cus_Nx8bQ2f3L0z1Ab"}),
    ]


def test_person_actions_are_refused_while_paused_and_work_after_reenable(
        pushed, client, finance_a, stripe_env, django_capture_on_commit_callbacks):
    conn, invoice, s = pushed
    note = credit_note_create(invoice=invoice, amount="20.00", reason="", memo="", mode="pre_payment", user=finance_a)
    client.force_login(finance_a)
    _pause(client, django_capture_on_commit_callbacks)
    back = reverse("ui:invoice_detail", args=[invoice.pk])
    notes_before = CreditNote.objects.count()
    links_before = list(CustomerLink.objects.values_list("pk", "collection_method", "stripe_customer_id"))
    stripe_env.mark()
    for label, url, data in _person_actions(invoice, invoice.bill_to, note):
        _refused(client.post(url, data, HTTP_REFERER="http://testserver" + back), "http://testserver" + back)
        _shows_refusal(client, back)
    # The admin's invoice actions too.
    admin_url = reverse("admin:finance_invoice_stripe_action", args=[invoice.pk])
    admin_back = reverse("admin:finance_invoice_change", args=[invoice.pk])
    _refused(client.post(admin_url, {"_stripe_action": "resend"}), reverse("stripe_integration:run_list"))
    assert REFUSED in client.get(admin_back).content.decode()
    assert stripe_env.requests() == []  # nothing reached Stripe
    invoice.refresh_from_db()
    note.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN and note.status == "issued"
    assert CreditNote.objects.count() == notes_before
    assert list(CustomerLink.objects.values_list("pk", "collection_method", "stripe_customer_id")) == links_before

    _reenable(client, django_capture_on_commit_callbacks)
    resp = client.post(reverse("ui:invoice_credit_note", args=[invoice.pk]), {"void": str(note.pk), "confirmed": "yes"})
    assert resp.status_code == 302
    note.refresh_from_db()
    assert note.status == "void"
    resp = client.post(reverse("ui:invoice_action", args=[invoice.pk]), {"action": "void", "confirmed": "yes"})
    assert resp.status_code == 302 and Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.VOID
    page = client.post(reverse("stripe_integration:card_setup_link", args=[invoice.bill_to_id]),
                       {"nonce": uuid.uuid4().hex})
    assert page.status_code == 200 and "checkout" in page.content.decode().lower()


def test_a_credit_note_retry_is_refused_while_disabled_and_stays_pending(
        paid, client, finance_a, stripe_env, django_capture_on_commit_callbacks):
    conn, invoice, s = paid
    stripe_env.fault("POST /v1/credit_notes", kind="500")
    failed = credit_note_create(invoice=invoice, amount="10", reason="", memo="", mode="refund", user=finance_a)
    assert failed.push_status == CreditNotePushStatus.FAILED
    stripe_env.clear_faults()
    client.force_login(finance_a)
    _pause(client, django_capture_on_commit_callbacks)
    stripe_env.mark()
    resp = client.post(reverse("ui:invoice_credit_note", args=[invoice.pk]), {"retry": str(failed.pk)})
    assert resp.status_code == 302 and stripe_env.requests() == []
    failed.refresh_from_db()
    assert failed.push_status == CreditNotePushStatus.FAILED  # kept, for Retry once re-enabled
    _reenable(client, django_capture_on_commit_callbacks)
    client.post(reverse("ui:invoice_credit_note", args=[invoice.pk]), {"retry": str(failed.pk)})
    failed.refresh_from_db()
    assert failed.push_status == CreditNotePushStatus.PUSHED


def test_the_one_check_raises_only_while_disabled(business_a):
    from stripe_integration.models import IntegrationSettings
    from stripe_integration.runs.disable import integration_disable

    integration_require_enabled(business=business_a)  # no settings row yet: enabled
    IntegrationSettings.for_business(business_a)
    integration_disable(business_id=business_a.pk, reason="test")
    with pytest.raises(IntegrationDisabled) as caught:
        integration_require_enabled(business=business_a.pk)
    assert caught.value.message == REFUSED


def test_a_refusal_goes_back_only_to_this_site(pushed, client, finance_a, django_capture_on_commit_callbacks):
    conn, invoice, s = pushed
    client.force_login(finance_a)
    _pause(client, django_capture_on_commit_callbacks)
    resp = client.post(reverse("ui:invoice_action", args=[invoice.pk]), {"action": "resend"},
                       HTTP_REFERER="https://evil.example/phish")
    assert resp.status_code == 302 and resp["Location"] == reverse("stripe_integration:run_list")


def test_admin_and_settings_page_stripe_actions_are_refused_while_paused(
        pushed, client, finance_a, business_a, stripe_env, django_capture_on_commit_callbacks):
    """Sync to Stripe (services), push contact details, link a customer (admin), Sync
    catalog now and Start import (Stripe page)."""
    from services.services import service_create

    conn, invoice, s = pushed
    service = service_create(business=business_a, code="AUDIT", name="Audit", prices={})
    link = CustomerLink.objects.get(contact=invoice.bill_to)
    client.force_login(finance_a)
    _pause(client, django_capture_on_commit_callbacks)
    stripe_env.mark()
    runs = reverse("stripe_integration:run_list")
    for url, data in (
        (reverse("admin:services_service_changelist"), {"action": "sync_to_stripe", "_selected_action": [service.pk]}),
        (reverse("admin:stripe_integration_customerlink_changelist"),
         {"action": "push_contact_details", "_selected_action": [link.pk]}),
        (reverse("admin:stripe_integration_customerlink_add"),
         {"contact": invoice.bill_to_id, "stripe_customer_id": "cus_Nx8bQ2f3L0z1Ab"}),
        (reverse("stripe_integration:catalog_sync"), {}),
        (reverse("stripe_integration:import_start"), {}),
    ):
        _refused(client.post(url, data), runs)
    assert REFUSED in client.get(runs).content.decode()
    assert stripe_env.requests() == []
    from stripe_integration.models import StripeImport

    assert not StripeImport.objects.filter(business=business_a).exists()
