"""The push off the happy path (issue 12): an invoice Stripe pays at finalizing, a draft
deleted in Stripe, failures after finalizing and stuck pushes, automatic collection.
Everything goes through the sandbox over real HTTP and through the paths staff use (the
staff page, the admin, the month-end command)."""
from decimal import Decimal

import pytest
from django.urls import reverse

from finance.models import BillableStatus, Invoice, InvoicePushStatus
from stripe_integration.connect import oauth as services
from stripe_integration.invoicing import push as invoicing
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
    from stripe_integration.customers.links import customer_ensure

    customer = customer_ensure(connection=conn, contact=contact)
    # The customer holds a 100.00 credit in Stripe (e.g. an earlier overpayment).
    services.gateway().customer_update(account=conn.stripe_user_id, customer_id=customer,
                                       params={"balance": -10000}, idempotency_key="test-balance")
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.push_status == InvoicePushStatus.PUSHED
    b.refresh_from_db()
    assert b.status == BillableStatus.PAID


# --- item 8: a draft deleted in Stripe ------------------------------------------------------

@pytest.fixture
def _no_gateway_retries(settings):
    settings.STRIPE_MAX_RETRIES = 0
    settings.STRIPE_HTTP_TIMEOUT = 1.0


def _live_stripe_invoices(conn, invoice):
    return [r for r in h.stripe_invoices(conn, invoice.stripe_customer_id)]


def test_push_retry_after_draft_deleted_in_stripe_makes_a_new_invoice(client, env, business_a, _no_gateway_retries,
                                                                      django_capture_on_commit_callbacks):
    conn, contact, stripe_env = env
    b = h.billable(business_a, contact, unit_price=D("120.00"), vat_rate=D("20"))
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk], push=False).invoices[0]
    stripe_env.fault(r"^POST /v1/invoices/in_[^/]+/add_lines$", kind="500", count=1)
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "failed"
    invoice.refresh_from_db()
    gone = invoice.stripe_invoice_id
    assert gone
    services.gateway().invoice_delete(account=conn.stripe_user_id, invoice_id=gone)  # someone, in Stripe
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:finance_invoice_stripe_action", args=[invoice.pk]), {"_stripe_action": "retry"})
    invoice.refresh_from_db()
    assert invoice.push_status == InvoicePushStatus.PUSHED, invoice.last_error
    assert invoice.stripe_invoice_id != gone and invoice.push_generation == 1
    remote = _live_stripe_invoices(conn, invoice)
    assert [r.id for r in remote] == [invoice.stripe_invoice_id] and remote[0].total == 14400


def test_push_resumed_after_lost_answer_and_deleted_draft_gets_new_keys(env, business_a, _no_gateway_retries):
    from django.core.management import call_command

    conn, contact, stripe_env = env
    b = h.billable(business_a, contact, unit_price=D("50.00"))
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk], push=False).invoices[0]
    # Stripe makes the draft but the answer is lost: the CRM never learns its id.
    stripe_env.fault(r"^POST /v1/invoices$", kind="drop", count=1)
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "failed"
    invoice.refresh_from_db()
    assert invoice.stripe_invoice_id is None
    (made,) = h.stripe_invoices(conn, invoice.stripe_customer_id)
    services.gateway().invoice_delete(account=conn.stripe_user_id, invoice_id=made.id)
    call_command("stripe_invoice_unbilled", business=business_a.slug)  # month-end resumes it
    invoice.refresh_from_db()
    assert invoice.push_status == InvoicePushStatus.PUSHED, invoice.last_error
    assert invoice.status == "open" and invoice.stripe_invoice_id != made.id
    assert [r.id for r in _live_stripe_invoices(conn, invoice)] == [invoice.stripe_invoice_id]


# --- item 5: failures after finalizing, stuck pushes, the sweep and the runner ---------------

def _failed_at_send(business, contact, stripe_env):
    b = h.billable(business, contact, unit_price=D("75.00"))
    invoice = invoicing.invoices_generate(business=business, billable_ids=[b.pk], push=False).invoices[0]
    stripe_env.fault(r"^POST /v1/invoices/in_[^/]+/send$", kind="500", count=1)
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "failed"
    invoice.refresh_from_db()
    assert (invoice.status, invoice.push_status) == ("open", InvoicePushStatus.FAILED)
    return invoice


def _sent(stripe_env, invoice):
    return [r for r in stripe_env.requests(method="POST") if r["path"] == f"/v1/invoices/{invoice.stripe_invoice_id}/send"]


def test_invoice_page_offers_retry_after_a_failure_past_finalize(client, env, business_a, _no_gateway_retries,
                                                                 django_capture_on_commit_callbacks):
    conn, contact, stripe_env = env
    invoice = _failed_at_send(business_a, contact, stripe_env)
    url = reverse("ui:invoice_detail", args=[invoice.pk])
    assert ">Retry</button>" in client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("ui:invoice_action", args=[invoice.pk]), {"action": "retry"}, follow=True)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.push_status) == ("open", InvoicePushStatus.PUSHED), invoice.last_error
    assert len(_sent(stripe_env, invoice)) == 2  # the failed send, then the retried one
    assert ">Retry</button>" not in client.get(url).content.decode()


def _age(invoice, seconds):
    from django.utils import timezone

    past = timezone.now() - timezone.timedelta(seconds=seconds)
    Invoice.objects.filter(pk=invoice.pk).update(push_claimed_at=past, created_at=past)


def test_invoice_pushes_sweep_retries_failed_stuck_and_never_started_pushes(env, business_a, _no_gateway_retries):
    from stripe_integration.invoicing.sweep import invoice_pushes_sweep

    conn, contact, stripe_env = env
    failed = _failed_at_send(business_a, contact, stripe_env)
    assert invoice_pushes_sweep() == 0  # just failed: its backoff has not passed
    _age(failed, 120)
    b = h.billable(business_a, contact, unit_price=D("10.00"))
    stuck = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk], push=False).invoices[0]
    Invoice.objects.filter(pk=stuck.pk).update(push_status=InvoicePushStatus.PUSHING, push_attempts=1)
    _age(stuck, 3600)  # a worker claimed it an hour ago and died
    b = h.billable(business_a, contact, unit_price=D("20.00"))
    lost = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk], push=False).invoices[0]
    _age(lost, 3600)
    Invoice.objects.filter(pk=lost.pk).update(push_claimed_at=None)  # its queued task was lost
    b = h.billable(business_a, contact, unit_price=D("0.03"), vat_rate=D("20"), prices_include_vat=True)
    mismatch = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk], push=False).invoices[0]
    assert invoicing.invoice_push(invoice_id=mismatch.pk).outcome == "mismatch"
    _age(mismatch, 3600)

    assert invoice_pushes_sweep() == 3
    for invoice in (failed, stuck, lost):
        invoice.refresh_from_db()
        assert (invoice.status, invoice.push_status) == ("open", InvoicePushStatus.PUSHED), invoice.last_error
        assert [r.id for r in h.stripe_invoices(conn, invoice.stripe_customer_id)
                if r.metadata.get("crm_invoice_id") == str(invoice.pk)] == [invoice.stripe_invoice_id]
    mismatch.refresh_from_db()
    assert mismatch.push_status == InvoicePushStatus.MISMATCH  # waits for a person
    assert invoice_pushes_sweep() == 0


def test_stripe_periodic_once_runs_the_beat_schedule_with_the_push_sweep(env, business_a, _no_gateway_retries,
                                                                         settings):
    from io import StringIO

    from django.core.management import call_command

    conn, contact, stripe_env = env
    assert "stripe-invoice-push-sweep" in settings.CELERY_BEAT_SCHEDULE
    failed = _failed_at_send(business_a, contact, stripe_env)
    _age(failed, 120)
    out = StringIO()
    call_command("stripe_periodic", once=True, stdout=out)
    for name in settings.CELERY_BEAT_SCHEDULE:
        assert f"{name}: ran" in out.getvalue()
    failed.refresh_from_db()
    assert failed.push_status == InvoicePushStatus.PUSHED, failed.last_error


# --- item 3: no credit-only part past 250 lines -----------------------------------------

def test_command_splitting_past_250_lines_makes_no_negative_stripe_invoice(env, business_a):
    from django.core.management import call_command

    from finance.models import Billable, LineType

    conn, contact, stripe_env = env
    rows = [Billable(business=business_a, bill_to=contact, quantity=D("1"), unit_price=D("1.00"), currency="USD",
                     description=f"Item {i}") for i in range(250)]
    rows.append(Billable(business=business_a, bill_to=contact, quantity=D("1"), unit_price=D("100.00"),
                         currency="USD", description="Goodwill credit", line_type=LineType.CREDIT))
    Billable.objects.bulk_create(rows)
    call_command("stripe_invoice_unbilled", business=business_a.slug)
    invoices = list(Invoice.objects.order_by("pk"))
    assert len(invoices) == 2 and all(inv.push_status == InvoicePushStatus.PUSHED for inv in invoices)
    remote = [h.stripe_invoice_raw(conn, inv.stripe_invoice_id) for inv in invoices]
    assert all(r["total"] >= 0 for r in remote), [r["total"] for r in remote]
    assert sum(r["total"] for r in remote) == 15000
    # The customer keeps no hidden credit balance for the next invoice to swallow.
    customer = services.gateway().customer_retrieve(account=conn.stripe_user_id,
                                                    customer_id=invoices[0].stripe_customer_id)
    assert customer["balance"] == 0


# --- item 6: automatic collection ---------------------------------------------------------

def _save_card(stripe_env, conn, customer_id, card):
    import requests

    headers = {"Authorization": f"Bearer {stripe_env.secret_key}", "Stripe-Account": conn.stripe_user_id}
    base = stripe_env.base_url
    pm = requests.post(f"{base}/v1/payment_methods/{card}/attach", data={"customer": customer_id},
                       headers=headers, timeout=10).json()["id"]
    requests.post(f"{base}/v1/customers/{customer_id}", headers=headers, timeout=10,
                  data={"invoice_settings[default_payment_method]": pm}).raise_for_status()


@pytest.mark.parametrize("automatic", [True, False])
def test_declined_automatic_charge_is_retried_by_stripe_when_the_business_lets_it(
        client, env, business_a, automatic, django_capture_on_commit_callbacks):
    from stripe_integration.customers.links import customer_ensure

    conn, contact, stripe_env = env
    h.settings_for(business_a, collection_method="charge_automatically", automatic_collection=automatic)
    _save_card(stripe_env, conn, customer_ensure(connection=conn, contact=contact), "pm_card_chargeCustomerFail")
    b = h.billable(business_a, contact, unit_price=D("60.00"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(SEND, {"billables": [b.pk]})
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.push_status) == ("open", InvoicePushStatus.PUSHED)
    assert "declined" in invoice.last_error.lower()
    raw = h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)
    assert raw["auto_advance"] is automatic
    assert (raw["next_payment_attempt"] is not None) is automatic
    assert ("will retry" in invoice.last_error) is automatic


def test_settings_page_turns_automatic_collection_off(client, env, business_a):
    from stripe_integration.models import IntegrationSettings

    assert IntegrationSettings.for_business(business_a).automatic_collection is True  # the default
    form = {"collection_method": "send_invoice", "days_until_due": 30, "line_order": "none",
            "po_number_field": "PO number", "auto_create_customers": "on"}
    resp = client.post(reverse("stripe_integration:integration_settings"), form)
    assert resp.status_code in (200, 302)
    assert IntegrationSettings.for_business(business_a).automatic_collection is False
    client.post(reverse("stripe_integration:integration_settings"), {**form, "automatic_collection": "on"})
    assert IntegrationSettings.for_business(business_a).automatic_collection is True


# --- item 4: three-decimal currencies with VAT ---------------------------------------------

@pytest.mark.parametrize("currency, price, vat, tax_fils, total_fils", [
    ("KWD", "1.230", "5", 62, 1290),     # tax 61.5 fils -> 62; 1.292 -> 1.290 (rounding -2 fils)
    ("BHD", "3.330", "10", 333, 3660),   # 3.663 -> 3.660
    ("JOD", "2.450", "16", 392, 2840),   # 2.842 -> 2.840
    ("OMR", "4.120", "5", 206, 4330),    # 4.326 -> 4.330 (+4 fils)
    ("TND", "7.770", "19", 1476, 9250),  # 9.246 -> 9.250
])
def test_push_three_decimal_currency_with_vat_equals_crm_to_the_fils_and_is_payable(
        env, business_a, currency, price, vat, tax_fils, total_fils):
    from finance.money import minor_units
    from stripe_integration.customers.links import customer_ensure

    conn, contact, stripe_env = env
    h.settings_for(business_a, collection_method="charge_automatically")
    _save_card(stripe_env, conn, customer_ensure(connection=conn, contact=contact), "pm_card_visa")
    b = h.billable(business_a, contact, currency=currency, unit_price=D(price), vat_rate=D(vat))
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk], push=False).invoices[0]
    result = invoicing.invoice_push(invoice_id=invoice.pk)
    assert result.outcome == "pushed", result.message
    invoice.refresh_from_db()
    raw = h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)
    assert (minor_units(invoice.tax_total, currency), minor_units(invoice.total, currency)) == (tax_fils, total_fils)
    assert sum(t["amount"] for t in raw["total_taxes"]) == tax_fils
    assert raw["total"] == raw["amount_due"] == total_fils and total_fils % 10 == 0  # cards need the last digit 0
    assert raw["status"] == "paid" and invoice.status == "paid"
    assert invoice.amount_paid == invoice.total


# --- item 14: queries per push do not grow with lines or services ---------------------------

def _push_queries(business, contact, services_used):
    from django.db import connection as db_connection
    from django.test.utils import CaptureQueriesContext

    ids = [h.billable(business, contact, description=f"L{i}", service=service, unit_price=None,
                      vat_rate=D("20")).pk for i, service in enumerate(services_used)]
    invoice = invoicing.invoices_generate(business=business, billable_ids=ids, push=False).invoices[0]
    with CaptureQueriesContext(db_connection) as ctx:
        assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    return len(ctx.captured_queries)


def test_push_queries_are_the_same_for_5_lines_of_1_service_and_40_lines_of_40_services(env, business_a):
    from services.services import service_create
    from stripe_integration.catalog import sync as catalog

    conn, contact, stripe_env = env
    catalogue = []
    for i in range(40):
        service = service_create(business=business_a, code=f"S{i}", name=f"Service {i}", prices={"USD": D(10 + i)})
        catalog.service_sync(connection=conn, service=service)
        catalogue.append(service)
    _push_queries(business_a, contact, catalogue[:1])  # the tax rate: made once, then reused
    few = _push_queries(business_a, contact, catalogue[:1] * 5)
    many = _push_queries(business_a, contact, catalogue)
    assert many == few, (few, many)


def test_invoice_pushes_sweep_leaves_a_draft_whose_delete_failed(client, env, business_a, _no_gateway_retries):
    from stripe_integration.invoicing.sweep import invoice_pushes_sweep

    conn, contact, stripe_env = env
    b = h.billable(business_a, contact, unit_price=D("30.00"))
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk], push=False).invoices[0]
    stripe_env.fault(r"^POST /v1/invoices/in_[^/]+/add_lines$", kind="500", count=1)
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "failed"
    stripe_env.fault(r"^DELETE /v1/invoices/in_[^/]+$", kind="500", count=1)
    client.post(reverse("ui:invoice_action", args=[invoice.pk]), {"action": "delete_draft", "confirmed": "yes"})
    invoice.refresh_from_db()
    assert invoice.push_status == InvoicePushStatus.FAILED and invoice.last_error.startswith("Delete draft")
    _age(invoice, 3600)
    assert invoice_pushes_sweep() == 0
    invoice.refresh_from_db()
    assert invoice.status == "draft" and h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)["status"] == "draft"


def test_invoice_pushes_sweep_leaves_a_draft_whose_delete_died_half_way(client, env, business_a, _no_gateway_retries):
    from django.db import connection as db_connection

    from stripe_integration.invoicing.sweep import invoice_pushes_sweep

    conn, contact, stripe_env = env
    b = h.billable(business_a, contact, unit_price=D("30.00"))
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk], push=False).invoices[0]
    stripe_env.fault(r"^POST /v1/invoices/in_[^/]+/add_lines$", kind="500", count=1)
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "failed"

    class Died(BaseException):
        pass

    def die_after_stripe(execute, sql, params, many, context):
        if sql.startswith('UPDATE "finance_billable"'):
            raise Died()  # the worker dies once Stripe's draft is deleted, before the local delete
        return execute(sql, params, many, context)

    from stripe_integration.invoicing.actions import invoice_action

    with db_connection.execute_wrapper(die_after_stripe), pytest.raises(Died):
        invoice_action(invoice=invoice, action="delete_draft")
    invoice.refresh_from_db()
    assert invoice.push_status == InvoicePushStatus.PUSHING
    _age(invoice, 3600)
    assert invoice_pushes_sweep() == 0  # not pushed again: someone meant to delete it
    assert h.stripe_invoices(conn, invoice.stripe_customer_id) == []
