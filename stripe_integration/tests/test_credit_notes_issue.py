"""Credit notes made from the CRM (`credit_notes.issue`), against the sandbox over HTTP:
refunds, customer credit and lower amounts owed agree between the CRM and Stripe; exactly
one credit note whatever fails (double clicks, faults, a lost answer, a dead worker).

No webhook reaches the app here: the payment is learnt through the catch-up (the real
event intake), and the figures after a credit note come from the service's own read of
Stripe (the webhooks do the same: test_events_credit_notes.py)."""
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection as db_connection
from django.utils import timezone

from finance.models import CreditNote, CreditNotePushStatus, InvoiceStatus, PaymentStatus, Refund
from stripe_integration.connect.oauth import gateway
from stripe_integration.credit_notes.apply import key_prefix
from stripe_integration.credit_notes.issue import CreditNoteError, credit_note_create, credit_note_push
from stripe_integration.invoicing import push as invoicing
from stripe_integration.tests import invoicing_helpers as h
from stripe_integration.tests.stripe_http import StripeHTTP
from stripe_integration.webhooks.processing import deliveries_process_received

pytestmark = pytest.mark.django_db

D = Decimal
CREATE = r"^POST /v1/credit_notes$"


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.STRIPE_RETRY_BASE_DELAY = 0.01
    settings.STRIPE_RETRY_MAX_DELAY = 0.05
    settings.STRIPE_HTTP_TIMEOUT = 1.0


@pytest.fixture
def pushed(client, finance_a, business_a, stripe_env):
    conn = h.connect(client, finance_a, business_a)
    contact = h.contact(business_a)
    bills = [h.billable(business_a, contact, description=f"Work {i}") for i in range(2)]
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk for b in bills], push=False).invoices[0]
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    invoice.refresh_from_db()
    assert invoice.amount_remaining == D("200.00")
    s = StripeHTTP(stripe_env.base_url, stripe_env.secret_key, account=conn.stripe_user_id)
    return conn, invoice, s


@pytest.fixture
def paid(pushed, business_a):
    conn, invoice, s = pushed
    card = s.attach_card(invoice.stripe_customer_id)
    remote = s.pay(invoice.stripe_invoice_id, card["id"])
    assert remote["status"] == "paid", remote
    call_command("stripe_catch_up", "--business", business_a.slug)  # the events, through the real intake
    deliveries_process_received()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_paid == D("200.00")
    return conn, invoice, s


def _stripe_notes(conn, invoice):
    return gateway().credit_notes_list(account=conn.stripe_user_id, invoice_id=invoice.stripe_invoice_id)


def _writes(stripe_env, pattern):
    import re

    return [r for r in stripe_env.requests(method="POST") if re.match(pattern, f"POST {r['path']}")]


def test_credit_note_partial_refund_on_paid_invoice(paid, finance_a):
    conn, invoice, s = paid
    note = credit_note_create(invoice=invoice, amount="30.00", reason="product_unsatisfactory", memo="Late delivery",
                              mode="refund", user=finance_a, request_key="k1")
    assert note.push_status == CreditNotePushStatus.PUSHED, note.last_error
    assert (note.amount, note.refund_amount, note.credit_amount, note.pre_payment_amount) == (D("30"), D("30"), 0, 0)
    assert note.status == "issued" and note.number and note.created_by == finance_a
    # Stripe agrees: one credit note, its refund on the invoice's charge, the invoice's sums.
    [remote] = _stripe_notes(conn, invoice)
    assert remote.id == note.stripe_id and remote.amount == 3000 and remote.refund_amount == 3000
    assert remote.reason == "product_unsatisfactory" and remote.memo == "Late delivery"
    assert remote.metadata["crm_credit_note_key"] == key_prefix(note)
    stripe_invoice = h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)
    assert stripe_invoice["post_payment_credit_notes_amount"] == 3000
    refund = Refund.objects.get()
    assert refund.stripe_refund_id == note.stripe_refund_id == remote.refunds[0][0]
    assert refund.amount == D("30.00") and refund.status == "succeeded"
    assert refund.payment.status == PaymentStatus.PARTIALLY_REFUNDED
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert (invoice.credited_post_payment, invoice.amount_refunded, invoice.net_paid) == (D("30"), D("30"), D("170"))


def test_credit_note_on_open_invoice_lowers_amount_due(pushed, finance_a):
    conn, invoice, s = pushed
    note = credit_note_create(invoice=invoice, amount=D("50"), reason="order_change", memo="", mode="pre_payment",
                              user=finance_a)
    assert note.push_status == CreditNotePushStatus.PUSHED, note.last_error
    assert (note.pre_payment_amount, note.refund_amount, note.stripe_refund_id) == (D("50"), 0, "")
    assert h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)["amount_remaining"] == 15000
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN
    assert (invoice.amount_remaining, invoice.credited_pre_payment) == (D("150"), D("50"))
    assert Refund.objects.count() == 0

    # The rest credited: Stripe marks the invoice paid, and so does the CRM.
    credit_note_create(invoice=invoice, amount="150", reason="", memo="", mode="pre_payment", user=finance_a)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_remaining == 0
    assert invoice.credited_pre_payment == D("200") and invoice.net_paid == 0


def test_credit_note_customer_credit_refunds_nothing(paid, finance_a):
    conn, invoice, s = paid
    note = credit_note_create(invoice=invoice, amount="40", reason="", memo="Goodwill", mode="credit", user=finance_a)
    assert note.push_status == CreditNotePushStatus.PUSHED, note.last_error
    assert (note.credit_amount, note.refund_amount, note.stripe_refund_id) == (D("40"), 0, "")
    customer = s.get(f"/v1/customers/{invoice.stripe_customer_id}")
    assert customer["balance"] == -4000  # what the customer may spend on the next invoice
    invoice.refresh_from_db()
    assert invoice.credited_post_payment == D("40") and invoice.amount_refunded == 0 and invoice.net_paid == D("200")
    assert Refund.objects.count() == 0


def test_credit_note_double_click_makes_one(paid, finance_a, stripe_env):
    conn, invoice, s = paid
    stripe_env.mark()
    first = credit_note_create(invoice=invoice, amount="10", reason="", memo="", mode="refund", user=finance_a,
                               request_key="same-page")
    again = credit_note_create(invoice=invoice, amount="10", reason="", memo="", mode="refund", user=finance_a,
                               request_key="same-page")
    assert again.pk == first.pk and CreditNote.objects.count() == 1
    assert len(_stripe_notes(conn, invoice)) == 1 and len(_writes(stripe_env, CREATE)) == 1
    # Pushing a pushed one again is a no-op.
    assert credit_note_push(credit_note_id=first.pk).stripe_id == first.stripe_id
    assert len(_writes(stripe_env, CREATE)) == 1


@pytest.mark.parametrize("kind", ["500", "timeout", "drop"])
def test_credit_note_fault_is_retried_with_the_same_key(paid, finance_a, stripe_env, kind):
    conn, invoice, s = paid
    stripe_env.mark()
    stripe_env.fault(CREATE, kind=kind, count=1, delay_ms=2500)
    note = credit_note_create(invoice=invoice, amount="25", reason="", memo="", mode="refund", user=finance_a)
    assert note.push_status == CreditNotePushStatus.PUSHED, note.last_error
    attempts = _writes(stripe_env, CREATE)
    assert len(attempts) == 2 and attempts[0]["idempotency_key"] == attempts[1]["idempotency_key"] == key_prefix(note)
    assert attempts[1]["replayed"] is (kind != "500")
    assert len(_stripe_notes(conn, invoice)) == 1 and Refund.objects.count() == 1


def test_credit_note_persistent_failure_is_shown_then_retry_makes_one(paid, finance_a, stripe_env):
    conn, invoice, s = paid
    stripe_env.fault(CREATE, kind="500")
    note = credit_note_create(invoice=invoice, amount="25", reason="", memo="", mode="refund", user=finance_a)
    assert note.push_status == CreditNotePushStatus.FAILED and "req_" in note.last_error
    assert _stripe_notes(conn, invoice) == []
    stripe_env.clear_faults()
    note = credit_note_push(credit_note_id=note.pk)
    assert note.push_status == CreditNotePushStatus.PUSHED and note.last_error == ""
    assert len(_stripe_notes(conn, invoice)) == 1


class WorkerDied(BaseException):
    """Raised from inside the database layer: the process is gone, nothing more runs."""


def test_credit_note_answer_lost_recovers_by_metadata(paid, finance_a, stripe_env):
    """Stripe made the credit note, then the worker died before saving the answer, and the
    lease ran out: the next attempt finds it by metadata instead of making a second one,
    even with a new idempotency key (Stripe's 24 hours past)."""
    conn, invoice, s = paid
    state = {"dead": False}

    def die_at_record(execute, sql, params, many, context):
        if state["dead"]:
            raise WorkerDied("dead")
        if sql.startswith('UPDATE "finance_creditnote"') and '"stripe_id"' in sql:
            state["dead"] = True
            raise WorkerDied("died before saving Stripe's answer")
        return execute(sql, params, many, context)

    with db_connection.execute_wrapper(die_at_record):
        with pytest.raises(WorkerDied):
            credit_note_create(invoice=invoice, amount="20", reason="", memo="", mode="refund", user=finance_a)
    note = CreditNote.objects.get()
    assert note.push_status == CreditNotePushStatus.PUSHING and note.stripe_id is None
    assert credit_note_push(credit_note_id=note.pk).push_status == CreditNotePushStatus.PUSHING  # lease still runs
    # The keys expired meanwhile: a create now would make a second credit note.
    CreditNote.objects.filter(pk=note.pk).update(push_claimed_at=timezone.now() - timezone.timedelta(hours=1))
    stripe_env.mark()
    note = credit_note_push(credit_note_id=note.pk)
    assert note.push_status == CreditNotePushStatus.PUSHED and note.stripe_id
    assert _writes(stripe_env, CREATE) == []
    assert [n.id for n in _stripe_notes(conn, invoice)] == [note.stripe_id]
    invoice.refresh_from_db()
    assert invoice.amount_refunded == D("20") and Refund.objects.count() == 1


@pytest.mark.parametrize("amount,field", [
    ("abc", "amount"), ("-5", "amount"), ("0", "amount"), ("NaN", "amount"), ("Infinity", "amount"),
    ("10.001", "amount"), ("200.01", "amount"), ("1e30", "amount"),
])
def test_credit_note_bad_amount_is_refused_before_stripe(paid, finance_a, stripe_env, amount, field):
    conn, invoice, s = paid
    with pytest.raises(CreditNoteError) as exc:
        credit_note_create(invoice=invoice, amount=amount, reason="", memo="", mode="refund", user=finance_a)
    assert exc.value.field == field
    assert CreditNote.objects.count() == 0 and _stripe_notes(conn, invoice) == []


def test_credit_note_refund_limited_to_what_is_left(paid, finance_a):
    conn, invoice, s = paid
    credit_note_create(invoice=invoice, amount="150", reason="", memo="", mode="refund", user=finance_a)
    invoice.refresh_from_db()
    with pytest.raises(CreditNoteError, match="At most 50.00 USD"):
        credit_note_create(invoice=invoice, amount="60", reason="", memo="", mode="credit", user=finance_a)
    with pytest.raises(CreditNoteError) as exc:
        credit_note_create(invoice=invoice, amount="10", reason="", memo="", mode="pre_payment", user=finance_a)
    assert exc.value.field == "mode"
    with pytest.raises(CreditNoteError) as exc:
        credit_note_create(invoice=invoice, amount="10", reason="because", memo="", mode="refund", user=finance_a)
    assert exc.value.field == "reason"


def test_credit_note_stripe_refusal_is_a_failed_note_not_a_crash(paid, finance_a):
    """The CRM's figures are stale (a refund made in Stripe it has not heard of): Stripe
    refuses the credit note; the row says why, nothing else changes."""
    conn, invoice, s = paid
    payment = invoice.payments.get()
    s.refund(payment.stripe_payment_intent_id, 19000)  # the app hears nothing of it
    note = credit_note_create(invoice=invoice, amount="50", reason="", memo="", mode="refund", user=finance_a)
    assert note.push_status == CreditNotePushStatus.FAILED and "Stripe rejected the request" in note.last_error
    assert _stripe_notes(conn, invoice) == []


def test_credit_note_void_from_the_crm_restores_the_amount_owed(pushed, finance_a):
    from stripe_integration.credit_notes.issue import credit_note_void

    conn, invoice, s = pushed
    note = credit_note_create(invoice=invoice, amount="30", reason="", memo="", mode="pre_payment", user=finance_a)
    note = credit_note_void(credit_note=note)
    assert note.status == "void" and note.voided_at is not None
    assert s.get(f"/v1/credit_notes/{note.stripe_id}")["status"] == "void"
    invoice.refresh_from_db()
    assert (invoice.amount_remaining, invoice.credited_pre_payment) == (D("200"), 0)
    with pytest.raises(CreditNoteError):
        credit_note_void(credit_note=note)  # void is final
