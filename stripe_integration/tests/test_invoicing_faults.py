"""Exactly once: faults at every step of the push (the sandbox's fault injection), a worker
that dies between a Stripe call and the local save, keys that expired, concurrent clicks.

After retries there is exactly one Stripe invoice per local invoice, its lines are there
once, and every billable is on exactly one invoice."""
import threading
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from finance.models import Billable, BillableStatus, Invoice, InvoicePushStatus
from stripe_integration.invoicing import push as invoicing
from stripe_integration.tests import invoicing_helpers as h

pytestmark = pytest.mark.django_db

D = Decimal
STEPS = {
    "create": r"^POST /v1/invoices$",
    "add_lines": r"^POST /v1/invoices/in_[^/]+/add_lines$",
    "finalize": r"^POST /v1/invoices/in_[^/]+/finalize$",
    "send": r"^POST /v1/invoices/in_[^/]+/send$",
}


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.STRIPE_RETRY_BASE_DELAY = 0.01
    settings.STRIPE_RETRY_MAX_DELAY = 0.05
    settings.STRIPE_HTTP_TIMEOUT = 1.0


@pytest.fixture
def setup(client, finance_a, business_a, stripe_env):
    conn = h.connect(client, finance_a, business_a)
    contact = h.contact(business_a)
    bills = [h.billable(business_a, contact, description=f"Work {i}", quantity=D(i + 1), unit_price=D("12.50"),
                        vat_rate=D("20")) for i in range(3)]
    result = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk for b in bills], push=False)
    invoice = result.invoices[0]
    stripe_env.mark()  # count only the push's requests
    return conn, invoice, bills


def _assert_exactly_once(conn, invoice, bills, stripe_env):
    invoice.refresh_from_db()
    assert invoice.push_status == InvoicePushStatus.PUSHED, invoice.last_error
    assert invoice.status == "open"
    remote = h.stripe_invoices(conn, invoice.stripe_customer_id)
    assert [r.id for r in remote] == [invoice.stripe_invoice_id]
    assert remote[0].metadata["crm_invoice_id"] == str(invoice.pk)
    assert remote[0].total == 9000  # (12.50 x 6) x 1.2, in cents: the lines went in once
    lines = h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)["lines"]["data"]
    assert sorted(ln["metadata"]["crm_billable_id"] for ln in lines) == sorted(str(b.pk) for b in bills)
    for b in bills:
        b.refresh_from_db()
        assert (b.status, b.invoice_id) == (BillableStatus.INVOICED, invoice.pk)
    assert Invoice.objects.count() == 1


def _writes(stripe_env, pattern):
    import re

    return [r for r in stripe_env.requests(method="POST") if re.match(pattern, f"POST {r['path']}")]


@pytest.mark.parametrize("step", list(STEPS))
@pytest.mark.parametrize("kind", ["500", "timeout", "drop"])
def test_push_fault_at_each_step_makes_one_invoice(setup, stripe_env, step, kind):
    conn, invoice, bills = setup
    stripe_env.fault(STEPS[step], kind=kind, count=1, delay_ms=2500)
    result = invoicing.invoice_push(invoice_id=invoice.pk)
    assert result.outcome == "pushed", result
    _assert_exactly_once(conn, invoice, bills, stripe_env)
    attempts = _writes(stripe_env, STEPS[step])
    # The gateway retried the step with the SAME idempotency key; Stripe replayed it
    # when the first attempt had gone through (timeout, drop).
    assert len(attempts) == 2
    assert attempts[0]["idempotency_key"] == attempts[1]["idempotency_key"]
    assert attempts[1]["replayed"] is (kind != "500")


@pytest.mark.parametrize("step", list(STEPS))
def test_push_persistent_failure_is_shown_then_retry_makes_one_invoice(setup, stripe_env, step):
    conn, invoice, bills = setup
    stripe_env.fault(STEPS[step], kind="500")
    result = invoicing.invoice_push(invoice_id=invoice.pk)
    assert (result.outcome, result.retryable) == ("failed", True)
    invoice.refresh_from_db()
    assert invoice.push_status == InvoicePushStatus.FAILED
    assert "Stripe could not be reached or had an error" in invoice.last_error and "req_" in invoice.last_error
    stripe_env.clear_faults()
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    _assert_exactly_once(conn, invoice, bills, stripe_env)


class WorkerDied(BaseException):
    """Raised from inside the database layer: the process is gone, nothing more runs."""


def _die_after(step_value):
    """A query wrapper that kills the push at the local save of `step_value` (the Stripe
    call before it has already happened) and lets nothing run after that."""
    state = {"dead": False}

    def wrapper(execute, sql, params, many, context):
        if state["dead"]:
            raise WorkerDied("dead")
        if sql.startswith('UPDATE "finance_invoice"') and '"push_step"' in sql and step_value in (params or ()):
            state["dead"] = True
            raise WorkerDied(f"died before saving {step_value}")
        return execute(sql, params, many, context)

    return wrapper


def _lease_expires(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(push_claimed_at=timezone.now() - timezone.timedelta(hours=1))


@pytest.mark.parametrize("step,saved", [("create", "created"), ("add_lines", "lines"), ("finalize", "finalized"),
                                        ("send", "sent")])
def test_worker_dying_between_call_and_save_recovers_one_invoice(setup, stripe_env, step, saved):
    conn, invoice, bills = setup
    with db_connection.execute_wrapper(_die_after(saved)):
        with pytest.raises(WorkerDied):
            invoicing.invoice_push(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    assert invoice.push_status == InvoicePushStatus.PUSHING  # the trace it leaves
    # A redelivered task within the lease leaves it alone ...
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "busy"
    _lease_expires(invoice)
    # ... and after it, takes over and finishes without repeating what Stripe has.
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    _assert_exactly_once(conn, invoice, bills, stripe_env)
    assert len(_writes(stripe_env, STEPS["create"])) == 1
    assert len(_writes(stripe_env, STEPS["add_lines"])) == 1
    assert len(_writes(stripe_env, STEPS["finalize"])) == 1


def _advance_sandbox_clock(stripe_env, seconds):
    stripe_env._call("POST", "/_sandbox/clock", {"advance_seconds": seconds})


@pytest.mark.parametrize("saved", ["created", "lines"])
def test_recovery_after_idempotency_keys_expired_finds_invoice_by_metadata(setup, stripe_env, saved):
    conn, invoice, bills = setup
    with db_connection.execute_wrapper(_die_after(saved)):
        with pytest.raises(WorkerDied):
            invoicing.invoice_push(invoice_id=invoice.pk)
    _advance_sandbox_clock(stripe_env, 25 * 3600)  # past Stripe's 24 h: keys no longer replay
    _lease_expires(invoice)
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    _assert_exactly_once(conn, invoice, bills, stripe_env)
    assert len(_writes(stripe_env, STEPS["create"])) == 1
    assert len(_writes(stripe_env, STEPS["add_lines"])) == 1
    # The recovery read: the customer's invoices, matched on metadata (id never saved) ...
    if saved == "created":
        assert stripe_env.requests(method="GET", path="/v1/invoices")
    else:  # ... or the invoice by its saved id.
        assert stripe_env.requests(method="GET", path=f"/v1/invoices/{invoice.stripe_invoice_id}")


@pytest.mark.parametrize("code", ["rate_limit", "lock_timeout"])
def test_push_429_is_retried_with_backoff_and_same_key(setup, stripe_env, code):
    conn, invoice, bills = setup
    stripe_env.fault(STEPS["add_lines"], kind="429", count=2, code=code)
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    _assert_exactly_once(conn, invoice, bills, stripe_env)
    attempts = _writes(stripe_env, STEPS["add_lines"])
    assert [a["status"] for a in attempts] == [429, 429, 200]
    assert len({a["idempotency_key"] for a in attempts}) == 1


def test_idempotency_keys_derive_from_local_ids_and_repeat_on_retry(setup, stripe_env):
    conn, invoice, bills = setup
    stripe_env.fault(STEPS["finalize"], kind="500")
    invoicing.invoice_push(invoice_id=invoice.pk)
    first = {r["path"]: r["idempotency_key"] for r in stripe_env.requests(method="POST")}
    stripe_env.clear_faults()
    stripe_env.mark()
    invoicing.invoice_push(invoice_id=invoice.pk)
    second = {r["path"]: r["idempotency_key"] for r in stripe_env.requests(method="POST")}
    prefix = f"crm-inv-{invoice.business_id}-{invoice.pk}-"
    finalize = f"/v1/invoices/{Invoice.objects.get().stripe_invoice_id}/finalize"
    assert first[finalize] == second[finalize] and first[finalize].startswith(prefix)
    assert first["/v1/invoices"].startswith(prefix) and first["/v1/invoices"].endswith("-create")


def test_push_twice_in_a_row_makes_nothing_new(setup, stripe_env):
    conn, invoice, bills = setup
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    calls = len(stripe_env.requests())
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "skipped"
    assert len(stripe_env.requests()) == calls
    _assert_exactly_once(conn, invoice, bills, stripe_env)


# --- two people at the same moment (PostgreSQL: real row locks between connections) -------

needs_postgres = pytest.mark.skipif(
    db_connection.vendor != "postgresql",
    reason="needs PostgreSQL: SQLite serialises every writer, so the race this test proves safe cannot happen "
           "(CI runs the suite on PostgreSQL too)",
)


def _together(n, fn):
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(i):
        from django.db import connections

        try:
            barrier.wait(timeout=10)
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


@pytest.mark.postgres
@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_two_clicks_on_send_to_stripe_make_one_invoice(client, finance_a, business_a, stripe_env):
    from finance.invoices import NothingToInvoice

    conn = h.connect(client, finance_a, business_a)
    contact = h.contact(business_a)
    ids = [h.billable(business_a, contact, description=f"Work {i}").pk for i in range(5)]

    def click():
        try:
            result = invoicing.invoices_generate(business=business_a, billable_ids=ids, push=False)
        except NothingToInvoice:
            return None
        return [invoicing.invoice_push(invoice_id=inv.pk).outcome for inv in result.invoices]

    results, errors = _together(2, click)
    assert not errors, errors
    assert sorted(map(str, results)) == sorted(["None", "['pushed']"])
    invoice = Invoice.objects.get()
    assert set(Billable.objects.values_list("invoice_id", flat=True)) == {invoice.pk}
    assert [r.id for r in h.stripe_invoices(conn, invoice.stripe_customer_id)] == [invoice.stripe_invoice_id]


@pytest.mark.postgres
@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_pushing_one_invoice_make_one_stripe_invoice(client, finance_a, business_a, stripe_env):
    conn = h.connect(client, finance_a, business_a)
    contact = h.contact(business_a)
    ids = [h.billable(business_a, contact, description=f"Work {i}").pk for i in range(5)]
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=ids, push=False).invoices[0]
    results, errors = _together(2, lambda: invoicing.invoice_push(invoice_id=invoice.pk, takeover=True).outcome)
    assert not errors, errors
    assert "pushed" in results
    invoice.refresh_from_db()
    if invoice.push_status != InvoicePushStatus.PUSHED:  # both ran; the later one may still be finishing
        assert invoicing.invoice_push(invoice_id=invoice.pk, takeover=True).outcome in ("pushed", "skipped")
    assert [r.id for r in h.stripe_invoices(conn, invoice.stripe_customer_id)] == [invoice.stripe_invoice_id]
