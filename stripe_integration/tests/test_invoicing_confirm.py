"""Void, mark uncollectible and delete draft ask first: a page (staff UI and admin) that
says what will happen, and nothing done until its own POST with `confirmed=yes`."""
from decimal import Decimal

import pytest
from django.urls import reverse

from finance.models import Billable, BillableStatus, Invoice, InvoiceStatus
from stripe_integration.invoicing import push as invoicing
from stripe_integration.invoicing.confirm import action_consequences
from stripe_integration.tests import invoicing_helpers as h

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def pushed(client, finance_a, business_a, stripe_env):
    conn = h.connect(client, finance_a, business_a)
    contact = h.contact(business_a, name="Acme Buyer")
    bills = [h.billable(business_a, contact, description=f"Work {i}", unit_price=D("100.00")) for i in range(2)]
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk for b in bills], push=False).invoices[0]
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    invoice.refresh_from_db()
    return conn, invoice, bills


def _action_url(invoice):
    return reverse("ui:invoice_action", args=[invoice.pk])


@pytest.mark.parametrize("action", ["void", "mark_uncollectible"])
def test_invoice_action_confirmation_page_says_what_happens_and_does_nothing(client, pushed, stripe_env, action):
    conn, invoice, bills = pushed
    stripe_env.mark()
    page = client.get(_action_url(invoice), {"action": action})
    body = page.content.decode()
    assert page.status_code == 200 and f'data-confirm="{action}"' in body
    for sentence in action_consequences(invoice, action):
        assert sentence.split(" (")[0] in body
    assert "200.00 USD" in body and invoice.stripe_invoice_id in body
    # The page and a POST without the confirmation leave Stripe and the invoice alone.
    resp = client.post(_action_url(invoice), {"action": action})
    assert resp.status_code == 302 and resp["Location"] == f"{_action_url(invoice)}?action={action}"
    client.post(_action_url(invoice), {"action": action, "confirmed": "no"})
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN
    assert stripe_env.requests(method="POST") == []


def test_invoice_void_runs_after_confirmation(client, pushed):
    conn, invoice, bills = pushed
    resp = client.post(_action_url(invoice), {"action": "void", "confirmed": "yes"}, follow=True)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.VOID
    assert set(Billable.objects.values_list("status", flat=True)) == {BillableStatus.UNBILLED}
    # Its confirmation page is no longer offered: the action is not possible now.
    resp = client.get(_action_url(invoice), {"action": "void"}, follow=True)
    assert resp.redirect_chain[-1][0] == reverse("ui:invoice_detail", args=[invoice.pk])
    assert any("not possible" in str(m) for m in resp.context["messages"])


def test_invoice_confirmation_page_for_delete_draft_counts_billables(client, finance_a, business_a, stripe_env):
    h.connect(client, finance_a, business_a)
    contact = h.contact(business_a)
    bills = [h.billable(business_a, contact, description=f"Draft {i}") for i in range(3)]
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk for b in bills], push=False).invoices[0]
    body = client.get(_action_url(invoice), {"action": "delete_draft"}).content.decode()
    assert "3 billable(s) become unbilled again" in body and "nothing was sent to Stripe yet" in body
    assert Invoice.objects.filter(pk=invoice.pk).exists()
    client.post(_action_url(invoice), {"action": "delete_draft", "confirmed": "yes"})
    assert not Invoice.objects.filter(pk=invoice.pk).exists()


def test_invoice_confirmation_page_refuses_other_actions_roles_and_businesses(client, pushed, staff_a, finance_b):
    conn, invoice, bills = pushed
    assert client.get(_action_url(invoice), {"action": "resend"}).status_code == 404
    assert client.get(_action_url(invoice), {"action": "bogus"}).status_code == 404
    assert client.get(_action_url(invoice)).status_code == 404
    client.force_login(staff_a)
    assert client.get(_action_url(invoice), {"action": "void"}).status_code == 403
    client.force_login(finance_b)
    assert client.get(_action_url(invoice), {"action": "void"}).status_code == 404


def test_admin_list_action_void_shows_intermediate_page_first(client, pushed, stripe_env):
    conn, invoice, bills = pushed
    url = reverse("admin:finance_invoice_changelist")
    stripe_env.mark()
    page = client.post(url, {"action": "stripe_void", "_selected_action": [invoice.pk]})
    body = page.content.decode()
    assert page.status_code == 200 and 'data-confirm="void"' in body and "A void is final" in body
    assert f'name="_selected_action" value="{invoice.pk}"' in body and 'name="confirmed" value="yes"' in body
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN and stripe_env.requests(method="POST") == []
    client.post(url, {"action": "stripe_void", "_selected_action": [invoice.pk], "confirmed": "yes"})
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.VOID


def test_admin_change_page_button_mark_uncollectible_confirms_first(client, pushed):
    conn, invoice, bills = pushed
    url = reverse("admin:finance_invoice_stripe_action", args=[invoice.pk])
    page = client.post(url, {"_stripe_action": "mark_uncollectible"})
    assert page.status_code == 200 and 'data-confirm="mark_uncollectible"' in page.content.decode()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN
    client.post(url, {"_stripe_action": "mark_uncollectible", "confirmed": "yes"})
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNCOLLECTIBLE
