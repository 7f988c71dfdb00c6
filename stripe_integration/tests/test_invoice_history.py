"""The invoice's history and the audit log: invoices created, pushes, actions (who, from
where, how much) and Stripe events with what each changed, in time order on the invoice
page; an action Stripe or the app refused is not recorded as done."""
import pytest
from django.urls import reverse

from crm.audit import AuditEntry
from stripe_integration.invoicing import push as invoicing
from stripe_integration.invoicing.actions import invoice_action
from stripe_integration.invoicing.push import InvoicingError
from stripe_integration.tests import invoicing_helpers as h

pytestmark = pytest.mark.django_db


def _entries(invoice):
    return list(AuditEntry.objects.filter(object_type="finance.invoice", object_id=str(invoice.pk))
                .order_by("created_at", "pk"))


@pytest.fixture
def pushed(client, finance_a, business_a, stripe_env):
    conn = h.connect(client, finance_a, business_a)
    contact = h.contact(business_a, name="Ada Lovelace", email="ada@example.com")
    bills = [h.billable(business_a, contact, description=f"Work {i}") for i in range(2)]
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk for b in bills], push=False,
                                          user=finance_a, ip="203.0.113.9").invoices[0]
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    invoice.refresh_from_db()
    return conn, invoice


def test_invoice_history_create_push_and_void_recorded(client, pushed, finance_a):
    conn, invoice = pushed
    client.post(reverse("ui:invoice_action", args=[invoice.pk]), {"action": "void", "confirmed": "yes"},
                REMOTE_ADDR="198.51.100.7")
    created, push, void = _entries(invoice)
    assert (created.action, created.user, created.ip_address, created.amount, created.currency) == (
        "invoice_create", finance_a, "203.0.113.9", invoice.total, "USD")
    assert push.action == "invoice_push_pushed" and push.user is None
    assert invoice.stripe_number in push.detail and "sent to Ada Lovelace <ada@example.com>" in push.detail
    assert (void.action, void.user, void.ip_address, void.amount) == ("invoice_void", finance_a, "198.51.100.7", invoice.total)
    assert "is void" in void.detail and void.business == invoice.business

    html = client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    history = html.split("data-history")[1]
    positions = [history.index(f'data-action="{a}"') for a in ("invoice_create", "invoice_push_pushed", "invoice_void")]
    assert positions == sorted(positions)
    assert "198.51.100.7" in history and "finance_a" in history
    assert "Ada Lovelace &lt;ada@example.com&gt;" in html.split("data-sent-to")[1].split("</dd>")[0]
    assert "data-issued>" + invoice.finalized_at.strftime("%Y-%m-%d") in html


def test_invoice_history_paid_outside_stripe_records_amount_remaining(pushed, finance_a):
    import datetime

    from stripe_integration.invoicing.out_of_band import OutOfBandPayment

    conn, invoice = pushed
    owed = invoice.amount_remaining
    invoice_action(invoice=invoice, action="mark_paid_out_of_band", user=finance_a, ip="192.0.2.1",
                   out_of_band=OutOfBandPayment(paid_on=datetime.date(2026, 1, 5), method="cash", reference="R-1"))
    entry = _entries(invoice)[-1]
    assert (entry.action, entry.amount, entry.ip_address) == ("invoice_mark_paid_out_of_band", owed, "192.0.2.1")


def test_invoice_history_refused_action_not_recorded(pushed, finance_a):
    conn, invoice = pushed
    before = len(_entries(invoice))
    with pytest.raises(InvoicingError):
        invoice_action(invoice=invoice, action="delete_draft", user=finance_a)  # not a draft
    with pytest.raises(InvoicingError):
        invoice_action(invoice=invoice, action="no_such_action", user=finance_a)
    assert len(_entries(invoice)) == before


def test_invoice_history_failed_push_recorded(client, finance_a, business_a, stripe_env):
    h.connect(client, finance_a, business_a)
    bill = h.billable(business_a, h.contact(business_a))
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[bill.pk], push=False).invoices[0]
    # The business disconnects before the push: it fails with the reason, recorded.
    client.post("/integrations/stripe/disconnect/", {"confirmed": "yes"}, REMOTE_ADDR="198.51.100.2")
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "failed"
    create, failed = _entries(invoice)
    assert create.user is None and failed.action == "invoice_push_failed" and "not connected" in failed.detail
    disconnect = AuditEntry.objects.get(action="stripe_disconnect")
    assert (disconnect.user, disconnect.ip_address, disconnect.business) == (finance_a, "198.51.100.2", business_a)


def test_invoice_history_other_business_not_shown(client, pushed, finance_b):
    conn, invoice = pushed
    client.force_login(finance_b)
    assert client.get(reverse("ui:invoice_detail", args=[invoice.pk])).status_code == 404
    assert client.get("/audit/").content.decode().count("data-action=") == 0


def test_invoice_history_repeated_sweep_failure_recorded_once(client, finance_a, business_a, stripe_env):
    h.connect(client, finance_a, business_a)
    bill = h.billable(business_a, h.contact(business_a))
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[bill.pk], push=False).invoices[0]
    client.post("/integrations/stripe/disconnect/", {"confirmed": "yes"})
    for _ in range(3):
        assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "failed"
    assert [e.action for e in _entries(invoice)] == ["invoice_create", "invoice_push_failed"]
