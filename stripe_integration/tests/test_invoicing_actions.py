"""Actions on an invoice: each offered only where Stripe allows it, each changing Stripe and
the CRM together (void frees the billables, paid outside Stripe records a payment...)."""
import datetime
from decimal import Decimal

import pytest

from finance.models import Billable, BillableStatus, Invoice, InvoicePushStatus, Payment, PaymentMethod
from stripe_integration.invoicing import push as invoicing
from stripe_integration.invoicing.push import InvoicingError
from stripe_integration.invoicing.actions import invoice_action, invoice_actions
from stripe_integration.invoicing.out_of_band import OutOfBandPayment
from stripe_integration.tests import invoicing_helpers as h

pytestmark = pytest.mark.django_db

D = Decimal
PAID_BY_TRANSFER = OutOfBandPayment(paid_on=datetime.date(2026, 1, 5), method="bank_transfer", reference="BT-0001")


@pytest.fixture
def pushed(client, finance_a, business_a, stripe_env):
    conn = h.connect(client, finance_a, business_a)
    contact = h.contact(business_a)
    bills = [h.billable(business_a, contact, description=f"Work {i}") for i in range(2)]
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk for b in bills], push=False).invoices[0]
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    invoice.refresh_from_db()
    return conn, invoice, bills


def _remote_status(conn, invoice):
    return h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)["status"]


def test_open_invoice_offers_what_stripe_allows(pushed):
    conn, invoice, bills = pushed
    assert invoice_actions(invoice) == ["resend", "mark_paid_out_of_band", "mark_uncollectible", "void"]


def test_void_voids_in_stripe_and_returns_billables_to_unbilled(pushed):
    conn, invoice, bills = pushed
    message = invoice_action(invoice=invoice, action="void")
    invoice.refresh_from_db()
    assert invoice.status == "void" and invoice.voided_at and _remote_status(conn, invoice) == "void"
    assert "2 billable(s) are unbilled again" in message
    assert set(Billable.objects.values_list("status", "invoice_id")) == {(BillableStatus.UNBILLED, None)}
    assert invoice.lines.count() == 2  # the voided invoice keeps what it said
    assert invoice_actions(invoice) == []
    with pytest.raises(InvoicingError, match="not possible"):
        invoice_action(invoice=invoice, action="void")


def test_mark_uncollectible_then_paid_outside_stripe(pushed):
    conn, invoice, bills = pushed
    invoice_action(invoice=invoice, action="mark_uncollectible")
    invoice.refresh_from_db()
    assert invoice.status == "uncollectible" and _remote_status(conn, invoice) == "uncollectible"
    assert invoice_actions(invoice) == ["mark_paid_out_of_band", "void"]
    invoice_action(invoice=invoice, action="mark_paid_out_of_band", out_of_band=PAID_BY_TRANSFER)
    invoice.refresh_from_db()
    raw = h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)
    assert invoice.status == "paid" and raw["status"] == "paid" and invoice.paid_at
    payment = Payment.objects.get(invoice=invoice)
    assert (payment.method, payment.amount, payment.status) == (PaymentMethod.OUT_OF_BAND, D("200.00"), "succeeded")
    assert set(Billable.objects.values_list("status", flat=True)) == {BillableStatus.PAID}
    pay_calls = [r for r in h_requests(conn) if r["path"].endswith("/pay")]
    assert len(pay_calls) == 1


def h_requests(conn):
    import json
    import urllib.request

    from django.conf import settings

    with urllib.request.urlopen(settings.STRIPE_API_BASE + "/_sandbox/requests", timeout=10) as resp:
        rows = json.loads(resp.read())
    rows = rows["data"] if isinstance(rows, dict) else rows
    return [r for r in rows if r.get("account") == conn.stripe_user_id]


def test_paid_outside_stripe_tells_stripe_paid_out_of_band(pushed, stripe_env):
    conn, invoice, bills = pushed
    invoice_action(invoice=invoice, action="mark_paid_out_of_band", out_of_band=PAID_BY_TRANSFER)
    (call,) = [r for r in stripe_env.requests(method="POST") if r["path"].endswith("/pay")]
    assert call["idempotency_key"].endswith("-paid-out-of-band")
    assert Payment.objects.count() == 1


def test_resend_sends_again(pushed, stripe_env):
    conn, invoice, bills = pushed
    stripe_env.mark()
    assert "sent again" in invoice_action(invoice=invoice, action="resend")
    assert len([r for r in stripe_env.requests(method="POST") if r["path"].endswith("/send")]) == 1


def test_delete_draft_deletes_stripe_draft_and_frees_billables(client, finance_a, business_a, stripe_env):
    conn = h.connect(client, finance_a, business_a)
    contact = h.contact(business_a)
    # A mismatch leaves a Stripe draft behind (see test_invoicing_push).
    b = h.billable(business_a, contact, unit_price=D("0.03"), vat_rate=D("20"), prices_include_vat=True)
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk], push=False).invoices[0]
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "mismatch"
    invoice.refresh_from_db()
    assert invoice_actions(invoice) == ["retry", "delete_draft"]
    stripe_id = invoice.stripe_invoice_id
    invoice_action(invoice=invoice, action="delete_draft")
    assert not Invoice.objects.exists()
    assert stripe_env.requests(method="DELETE", path=f"/v1/invoices/{stripe_id}")
    assert h.stripe_invoices(conn, invoice.stripe_customer_id) == []
    b.refresh_from_db()
    assert (b.status, b.invoice_id) == (BillableStatus.UNBILLED, None)


def test_retry_after_failure_pushes_again(client, finance_a, business_a, stripe_env, django_capture_on_commit_callbacks):
    conn = h.connect(client, finance_a, business_a)
    contact = h.contact(business_a)
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[h.billable(business_a, contact).pk],
                                          push=False).invoices[0]
    stripe_env.fault(r"^POST /v1/invoices$", kind="500")
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "failed"
    invoice.refresh_from_db()
    assert "retry" in invoice_actions(invoice)
    stripe_env.clear_faults()
    with django_capture_on_commit_callbacks(execute=True):
        invoice_action(invoice=invoice, action="retry")
    invoice.refresh_from_db()
    assert invoice.push_status == InvoicePushStatus.PUSHED and invoice.status == "open"


def test_approve_sends_an_invoice_waiting_for_approval(client, finance_a, business_a, stripe_env,
                                                       django_capture_on_commit_callbacks):
    h.connect(client, finance_a, business_a)
    h.settings_for(business_a, only_approved=True)
    contact = h.contact(business_a)
    with django_capture_on_commit_callbacks(execute=True):
        invoice = invoicing.invoices_generate(business=business_a, billable_ids=[h.billable(business_a, contact).pk]).invoices[0]
    invoice.refresh_from_db()
    assert invoice.push_status == InvoicePushStatus.PENDING and "approve" in invoice_actions(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        invoice_action(invoice=invoice, action="approve")
    invoice.refresh_from_db()
    assert invoice.approved and invoice.push_status == InvoicePushStatus.PUSHED


def test_action_stripe_refuses_is_a_message_and_status_is_resynced(pushed):
    conn, invoice, bills = pushed
    import requests

    from django.conf import settings

    headers = {"Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}", "Stripe-Account": conn.stripe_user_id}
    # Voided in Stripe's dashboard, and the webhook has not arrived yet.
    requests.post(f"{settings.STRIPE_API_BASE}/v1/invoices/{invoice.stripe_invoice_id}/void", headers=headers,
                  timeout=10).raise_for_status()
    with pytest.raises(InvoicingError, match="(?i)invoice"):
        invoice_action(invoice=invoice, action="mark_uncollectible")
    invoice.refresh_from_db()
    assert invoice.status == "void"
