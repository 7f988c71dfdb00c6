"""The push off the happy path (issue 12): an invoice Stripe pays at finalizing, a draft
deleted in Stripe, failures after finalizing and stuck pushes, automatic collection.
Everything goes through the sandbox over real HTTP and through the paths staff use (the
staff page, the admin, the month-end command)."""
from decimal import Decimal

import pytest
from django.urls import reverse

from finance.models import BillableStatus, Invoice, InvoicePushStatus
from stripe_integration import invoicing, services
from stripe_integration.tests import invoicing_helpers as h

pytestmark = pytest.mark.django_db

D = Decimal
SEND = "/invoices/send/"


@pytest.fixture
def env(client, finance_a, business_a, stripe_env):
    conn = h.connect(client, finance_a, business_a)
    return conn, h.contact(business_a, name="Acme Buyer"), stripe_env


# --- item 7: paid at finalizing -----------------------------------------------------------

def test_push_invoice_paid_at_finalize_by_full_discount_is_paid_here(client, env, business_a,
                                                                     django_capture_on_commit_callbacks):
    conn, contact, stripe_env = env
    bills = [h.billable(business_a, contact, unit_price=D("250.00"), vat_rate=D("20"), discount_percent=D("100")),
             h.billable(business_a, contact, unit_price=D("40.00"), discount_amount=D("40.00"))]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(SEND, {"billables": [b.pk for b in bills]})
    invoice = Invoice.objects.get()
    assert invoice.push_status == InvoicePushStatus.PUSHED, invoice.last_error
    assert h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)["status"] == "paid"
    assert invoice.status == "paid" and invoice.paid_at is not None
    assert invoice.amount_remaining == 0
    assert {b.status for b in invoice.billables.all()} == {BillableStatus.PAID}


def test_push_invoice_paid_at_finalize_by_customer_credit_balance_is_paid_here(env, business_a):
    conn, contact, stripe_env = env
    b = h.billable(business_a, contact, unit_price=D("80.00"))
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk], push=False).invoices[0]
    from stripe_integration.customers import customer_ensure

    customer = customer_ensure(connection=conn, contact=contact)
    # The customer holds a 100.00 credit in Stripe (e.g. an earlier overpayment).
    services.gateway().customer_update(account=conn.stripe_user_id, customer_id=customer,
                                       params={"balance": -10000}, idempotency_key="test-balance")
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.push_status == InvoicePushStatus.PUSHED
    b.refresh_from_db()
    assert b.status == BillableStatus.PAID
