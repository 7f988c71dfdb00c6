"""Runs and events (issue 15): every Stripe-facing job is a run with counts, Stripe request
ids and a log; failures are events with what to do, marked actioned by a person; the
pages are the business's own. Against the sandbox over real HTTP, with its faults."""
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from services.services import service_create
from stripe_integration.catalog import sync as catalog
from stripe_integration.invoicing import push as invoicing
from stripe_integration.models import (
    EventAction, EventKind, IntegrationEvent, IntegrationRun, RunKind, RunStatus, WebhookDelivery,
)
from stripe_integration.tests import invoicing_helpers as h
from stripe_integration.webhooks.catch_up import catch_up

pytestmark = pytest.mark.django_db


@pytest.fixture
def env(client, finance_a, business_a, stripe_env, settings):
    settings.STRIPE_MAX_RETRIES = 0  # one attempt per call: an injected fault fails the push at once
    conn = h.connect(client, finance_a, business_a)
    stripe_env.mark()
    return conn, h.contact(business_a), stripe_env


def _invoice(business, contact):
    billable = h.billable(business, contact)
    return invoicing.invoices_generate(business=business, billable_ids=[billable.pk], push=False).invoices[0]


def _runs(kind):
    return list(IntegrationRun.objects.filter(kind=kind).order_by("pk"))


def test_invoice_push_is_a_run_with_counts_and_the_stripe_request_ids(env, business_a):
    conn, contact, stripe_env = env
    invoice = _invoice(business_a, contact)

    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"

    [run] = _runs(RunKind.INVOICE_PUSH)
    assert (run.business, run.status, run.subject, run.livemode) == (business_a, RunStatus.COMPLETE, f"invoice:{invoice.pk}", False)
    assert run.counts == {"pushed": 1}
    assert run.finished_at >= run.started_at and run.duration is not None
    sandbox_ids = [r["request_id"] for r in stripe_env.requests() if r["path"].startswith("/v1/")]
    assert run.request_ids == sandbox_ids and len(sandbox_ids) >= 4  # customer, create, lines, finalize, send
    assert not run.events.exists()


def test_catalog_sync_and_catch_up_are_runs(env, business_a):
    conn, contact, stripe_env = env
    service = service_create(business=business_a, code="AUDIT", name="Audit", prices={"USD": Decimal("12.50"),
                                                                                     "EUR": Decimal("10")})
    catalog.service_sync(connection=conn, service=service)
    sync_run = catalog.catalog_sync_run(run=catalog.catalog_sync_create_run(business=business_a, connection=conn))
    assert sync_run.status == "succeeded"

    one, whole = _runs(RunKind.CATALOG_SYNC)
    assert (one.status, one.subject) == (RunStatus.COMPLETE, f"service:{service.pk}")
    assert one.counts == {"products_created": 1, "prices_created": 2} and one.request_ids
    assert whole.status == RunStatus.COMPLETE and whole.counts == {"products_unchanged": 1, "prices_unchanged": 2}
    assert whole.request_ids  # the product and price listings

    invoicing.invoice_push(invoice_id=_invoice(business_a, contact).pk)
    result = catch_up(connection=conn)
    [run] = _runs(RunKind.CATCH_UP)
    assert run.status == RunStatus.COMPLETE and run.subject == f"account:{conn.stripe_user_id}"
    assert run.counts["listed"] == result.listed > 0 and run.counts["stored"] == len(result.stored)
    assert len(run.request_ids) >= 1


def test_webhook_processing_is_one_run_per_batch(env, business_a, django_capture_on_commit_callbacks):
    conn, contact, stripe_env = env
    invoicing.invoice_push(invoice_id=_invoice(business_a, contact).pk)
    with django_capture_on_commit_callbacks(execute=True):
        result = catch_up(connection=conn)  # stores the events; the inbox drain runs on commit
    assert len(result.stored) >= 3
    assert WebhookDelivery.objects.filter(status="processed").count() == len(result.stored)
    runs = _runs(RunKind.WEBHOOK_PROCESSING)
    assert sum(r.counts.get("processed", 0) for r in runs) == len(result.stored)
    assert len(runs) == 1  # the drain took the batch: one run, not one per delivery
    assert all(r.status == RunStatus.COMPLETE for r in runs)
    assert any(r.request_ids for r in runs)  # the handlers read the invoice from Stripe


def test_injected_failure_is_an_error_run_with_an_event_marked_actioned(env, business_a, client, finance_a):
    conn, contact, stripe_env = env
    invoice = _invoice(business_a, contact)
    stripe_env.fault(r"^POST /v1/invoices$", kind="500")

    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "failed"

    [run] = _runs(RunKind.INVOICE_PUSH)
    assert run.status == RunStatus.ERROR and run.counts == {"failed": 1}
    assert run.request_ids  # the failed call's id too
    [event] = run.events.all()
    assert (event.kind, event.action) == (EventKind.STRIPE_ERROR, EventAction.RETRY)
    assert event.action_url == reverse("ui:invoice_detail", args=[invoice.pk])
    assert event.actioned_at is None

    page = client.get(reverse("stripe_integration:event_list"), {"actioned": "no"})
    assert page.status_code == 200 and f'data-event="{event.pk}"' in page.content.decode()
    detail = client.get(reverse("stripe_integration:run_detail", args=[run.pk])).content.decode()
    assert run.request_ids[0] in detail and "Mark actioned" in detail

    resp = client.post(reverse("stripe_integration:event_actioned", args=[event.pk]))
    assert resp.status_code == 302
    event.refresh_from_db()
    assert event.actioned_by == finance_a and event.actioned_at is not None
    page = client.get(reverse("stripe_integration:event_list"), {"actioned": "no"})
    assert f'data-event="{event.pk}"' not in page.content.decode()
    assert f'data-event="{event.pk}"' in client.get(reverse("stripe_integration:event_list"), {"actioned": "yes"}).content.decode()


def test_revoked_platform_key_is_auth_failed_with_reconnect(env, business_a, settings):
    conn, contact, stripe_env = env
    invoice = _invoice(business_a, contact)
    settings.STRIPE_SECRET_KEY = "sk_test_"  # Stripe answers 401 to this key

    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "failed"

    [run] = _runs(RunKind.INVOICE_PUSH)
    assert run.status == RunStatus.AUTH_FAILED
    [event] = run.events.all()
    assert (event.kind, event.action) == (EventKind.AUTHENTICATION, EventAction.RECONNECT)
    assert event.action_url == reverse("stripe_integration:settings")


def test_timeout_and_rate_limit_are_classified(env, business_a, settings):
    conn, contact, stripe_env = env
    settings.STRIPE_HTTP_TIMEOUT = 0.5
    stripe_env.fault(r"^POST /v1/invoices$", kind="timeout", delay_ms=1500, count=1)
    invoicing.invoice_push(invoice_id=_invoice(business_a, contact).pk)
    stripe_env.clear_faults()
    stripe_env.fault(r"^POST /v1/invoices$", kind="429")
    invoicing.invoice_push(invoice_id=_invoice(business_a, contact).pk)

    timed_out, limited = _runs(RunKind.INVOICE_PUSH)
    assert timed_out.status == RunStatus.TIMED_OUT and timed_out.events.get().kind == EventKind.TIMEOUT
    assert limited.status == RunStatus.RATE_LIMITED and limited.events.get().kind == EventKind.RATE_LIMIT


def test_other_business_runs_and_events_are_404_and_staff_403(env, business_a, business_b, client, staff_a):
    other = IntegrationRun.objects.create(business=business_b, kind=RunKind.CATCH_UP, status=RunStatus.ERROR)
    event = IntegrationEvent.objects.create(business=business_b, run=other, kind=EventKind.STRIPE_ERROR, message="B's")
    assert client.get(reverse("stripe_integration:run_detail", args=[other.pk])).status_code == 404
    assert client.post(reverse("stripe_integration:event_actioned", args=[event.pk])).status_code == 404
    event.refresh_from_db()
    assert event.actioned_at is None
    assert "B&#x27;s" not in client.get(reverse("stripe_integration:event_list")).content.decode()
    assert f"#{other.pk}<" not in client.get(reverse("stripe_integration:run_list")).content.decode()
    admin_page = client.get(reverse("admin:stripe_integration_integrationrun_change", args=[other.pk]))
    assert admin_page.status_code in (302, 404)  # the admin's "does not exist" redirect
    client.force_login(staff_a)
    assert client.get(reverse("stripe_integration:run_list")).status_code == 403
    assert client.get(reverse("stripe_integration:event_list")).status_code == 403


def _make_runs(business, n):
    for i in range(n):
        run = IntegrationRun.objects.create(business=business, kind=RunKind.INVOICE_PUSH, status=RunStatus.ERROR,
                                            subject=f"invoice:{i}", counts={"failed": 1}, request_ids=["req_1"])
        IntegrationEvent.objects.create(business=business, run=run, kind=EventKind.STRIPE_ERROR, message=f"fail {i}",
                                        action=EventAction.RETRY, action_url="/x/")


@pytest.mark.parametrize("name", ["stripe_integration:run_list", "stripe_integration:event_list",
                                  "admin:stripe_integration_integrationrun_changelist",
                                  "admin:stripe_integration_integrationevent_changelist"])
def test_list_pages_query_count_is_constant(client, finance_a, business_a, name):
    client.force_login(finance_a)
    url = reverse(name)

    def queries():
        with CaptureQueriesContext(db_connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    _make_runs(business_a, 5)
    few = queries()
    _make_runs(business_a, 45)
    assert queries() == few


def test_webhook_run_bookkeeping_costs_a_few_queries_per_batch_whatever_its_size(env, business_a):
    from stripe_integration.webhooks.processing import deliveries_process_received

    conn, contact, stripe_env = env
    for _ in range(3):
        invoicing.invoice_push(invoice_id=_invoice(business_a, contact).pk)
    catch_up(connection=conn)  # stored, not processed (on-commit callbacks do not run here)
    waiting = WebhookDelivery.objects.filter(status="received").count()
    assert waiting >= 9
    with CaptureQueriesContext(db_connection) as ctx:
        assert deliveries_process_received() == waiting
    runs_sql = [q["sql"] for q in ctx.captured_queries
                if "integrationrun" in q["sql"] or "integrationevent" in q["sql"]
                or q["sql"].startswith('UPDATE "stripe_integration_integrationsettings"')]
    assert len(runs_sql) <= 2  # one bulk insert of the run, one streak update
    [run] = _runs(RunKind.WEBHOOK_PROCESSING)
    assert run.counts == {"processed": waiting} and run.status == RunStatus.COMPLETE


def test_a_queued_catalog_sync_waits_then_runs_as_the_same_run(env, business_a, django_capture_on_commit_callbacks):
    conn, contact, stripe_env = env
    service_create(business=business_a, code="AUDIT", name="Audit", prices={"USD": Decimal("12.50")})
    with django_capture_on_commit_callbacks(execute=False) as queued:
        sync_run = catalog.catalog_sync_start(business=business_a)
    [run] = _runs(RunKind.CATALOG_SYNC)
    assert (run.status, run.subject) == (RunStatus.WAITING, f"sync_run:{sync_run.pk}")
    for callback in queued:
        callback()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETE and run.counts["products_created"] == 1
    assert len(_runs(RunKind.CATALOG_SYNC)) == 1


@pytest.mark.parametrize("fault, first_failure", [("429", RunStatus.RATE_LIMITED), ("500", RunStatus.ERROR)])
def test_a_transient_failure_with_a_retry_planned_is_awaiting_retry_then_the_retry_ends_the_run(
        env, business_a, fault, first_failure):
    """A worker's push that fails on a transient error (rate limited, Stripe 5xx) and that
    Celery will retry ends `awaiting_retry` (no auto-disable streak); the retry is a run
    that ends complete. Without a retry left (eager Celery, the embedded default), the
    same failure ends failed."""
    from celery.exceptions import Retry

    from stripe_integration.invoicing.tasks import invoice_push_task
    from stripe_integration.models import IntegrationSettings

    conn, contact, stripe_env = env
    invoice = _invoice(business_a, contact)
    stripe_env.fault(r"^POST /v1/invoices$", kind=fault)
    with pytest.raises(Retry):
        invoice_push_task(invoice.pk)  # as a worker runs it: not eager, retries left
    (waiting,) = _runs(RunKind.INVOICE_PUSH)
    assert waiting.status == RunStatus.AWAITING_RETRY and waiting.finished_at is not None
    assert waiting.events.get().action == EventAction.RETRY
    assert "invoice_push" not in IntegrationSettings.for_business(business_a).failed_streaks

    invoice_push_task.apply(args=[invoice.pk])  # eager: no retry planned, the failure is final
    assert _runs(RunKind.INVOICE_PUSH)[-1].status == first_failure
    assert IntegrationSettings.for_business(business_a).failed_streaks["invoice_push"] == 1

    stripe_env.clear_faults()
    assert invoice_push_task(invoice.pk) == "pushed"  # the retry
    assert _runs(RunKind.INVOICE_PUSH)[-1].status == RunStatus.COMPLETE
    assert [r.status for r in _runs(RunKind.INVOICE_PUSH)] == [RunStatus.AWAITING_RETRY, first_failure,
                                                                RunStatus.COMPLETE]


def test_no_retry_is_planned_for_an_eager_task_or_one_out_of_retries():
    from types import SimpleNamespace

    from stripe_integration.tasks import retries_left

    def task(is_eager, retries):
        return SimpleNamespace(request=SimpleNamespace(is_eager=is_eager, retries=retries), max_retries=6)

    assert retries_left(task(False, 0)) and retries_left(task(False, 5))
    assert not retries_left(task(False, 6)) and not retries_left(task(True, 0))


def test_a_failure_that_is_not_transient_is_never_awaiting_retry(business_a):
    """A refusal (Stripe's 400), or a job's own error wrapping a transient one that it
    calls final, fails the run even with a retry planned; a transient one does not."""
    from stripe_integration.gateway.client import InvalidRequest, RateLimited
    from stripe_integration.invoicing.push import InvoicingError
    from stripe_integration.runs import retry_planned, track_run

    def final(exc):
        with retry_planned(), track_run(business_a, RunKind.INVOICE_PUSH, subject="invoice:1") as run:
            run.fail(exc)
        return _runs(RunKind.INVOICE_PUSH)[-1].status

    assert final(InvalidRequest("No such tax rate")) == RunStatus.ERROR
    try:
        try:
            raise RateLimited()
        except RateLimited:
            raise InvoicingError("Given up", retryable=False) from None
    except InvoicingError as wrapped:
        assert final(wrapped) == RunStatus.RATE_LIMITED  # classified by its cause, and final
    assert final(RateLimited()) == RunStatus.AWAITING_RETRY
