"""Invoice total recalculation: the service, the task in eager mode, and the production
path through a real broker and a real Celery worker process (`worker` marker)."""
from decimal import Decimal

import pytest
from django.db import OperationalError, transaction

from config.celery import app as celery_app
from finance.models import Invoice
from finance.services import invoice_recalculate_totals, invoice_recalculate_totals_later
from finance.tasks import invoice_recalculate_totals_task
from finance.tests.factories import InvoiceFactory, InvoiceLineFactory

D = Decimal


def make_invoice(**kwargs):
    """USD invoice, 10.00 paid, with a VAT line, a discounted line and a credit."""
    invoice = InvoiceFactory(amount_paid=D("10.00"), **kwargs)
    line = lambda **kw: InvoiceLineFactory(invoice=invoice, **kw)  # noqa: E731
    line(position=1, unit_price=D("100.00"), vat_rate=D("20"), subtotal=D("100.00"), tax=D("20.00"), total=D("120.00"))
    line(position=2, quantity=D("2"), unit_price=D("50.00"), discount_amount=D("10.00"),
         subtotal=D("100.00"), total=D("90.00"))
    line(position=3, line_type="credit", unit_price=D("5.00"), subtotal=D("-5.00"), total=D("-5.00"))
    return invoice


EXPECTED = {
    "subtotal": D("195.00"),
    "discount_total": D("10.00"),
    "tax_total": D("20.00"),
    "total": D("205.00"),
    "amount_remaining": D("195.00"),
}


def totals(invoice):
    return {field: getattr(invoice, field) for field in EXPECTED}


@pytest.fixture
def eager_celery():
    """Eager tasks even when CELERY_BROKER_URL is set (the production-path CI run)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.mark.django_db
def test_invoice_recalculate_totals_sums_stored_lines():
    invoice = make_invoice()

    result = invoice_recalculate_totals(invoice_id=invoice.pk)

    assert totals(result) == EXPECTED
    invoice.refresh_from_db()
    assert totals(invoice) == EXPECTED


@pytest.mark.django_db
def test_invoice_recalculate_totals_without_lines_is_zero():
    invoice = InvoiceFactory(subtotal=D("50"), total=D("50"), amount_remaining=D("50"))

    invoice_recalculate_totals(invoice_id=invoice.pk)

    invoice.refresh_from_db()
    assert totals(invoice) == dict.fromkeys(EXPECTED, D("0"))


@pytest.mark.django_db
def test_invoice_recalculate_totals_task_runs_eagerly(eager_celery):
    invoice = make_invoice()

    invoice_recalculate_totals_task.delay(invoice.pk)

    invoice.refresh_from_db()
    assert totals(invoice) == EXPECTED


@pytest.mark.django_db
def test_invoice_recalculate_totals_later_runs_on_commit(eager_celery, django_capture_on_commit_callbacks):
    invoice = make_invoice()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        invoice_recalculate_totals_later(invoice=invoice)
        invoice.refresh_from_db()
        assert invoice.total == D("0")  # nothing before the commit

    assert len(callbacks) == 1
    invoice.refresh_from_db()
    assert totals(invoice) == EXPECTED


@pytest.mark.django_db
def test_invoice_recalculate_totals_later_not_enqueued_on_rollback(eager_celery, django_capture_on_commit_callbacks):
    invoice = make_invoice()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            invoice_recalculate_totals_later(invoice=invoice)
            raise RuntimeError("roll back")

    assert callbacks == []


def test_invoice_recalculate_totals_task_retry_policy():
    task = invoice_recalculate_totals_task
    assert task.autoretry_for == (OperationalError,)
    assert task.retry_backoff is True
    assert task.max_retries == 5


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_invoice_recalculate_totals_later_in_real_worker(celery_worker):
    invoice = make_invoice()

    with transaction.atomic():
        invoice_recalculate_totals_later(invoice=invoice)
    # Sent to the broker on commit; a separate worker process writes the totals.

    def recalculated():
        fresh = Invoice.objects.get(pk=invoice.pk)
        return fresh if fresh.total != 0 else None

    fresh = celery_worker.wait_for(recalculated, timeout=20, what="the worker to recalculate the invoice")
    assert totals(fresh) == EXPECTED
    assert "finance.tasks.invoice_recalculate_totals_task[" in celery_worker.log()
