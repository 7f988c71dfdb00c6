""""Invoice everything unbilled" from the staff UI (issue 14): what
`manage.py stripe_invoice_unbilled` does, with a preview first and a progress page.

`unbilled_preview` plans the invoices (finance.invoices.invoice_draft: one per bill-to and
currency, at most 250 lines, what is left out and why) and fingerprints the billables it
planned with. `invoice_run_start` makes exactly that plan or nothing: under the business's
row lock (the lock invoice creation and billable edits take) it re-plans and refuses if
the fingerprint moved, makes the invoices (invoices_generate, audited), records an
InvoiceRun and queues its pushes on commit. `invoice_run_push` (a thin task runs it)
resumes unfinished pushes, pushes each invoice (invoice_push: exactly once) and counts
outcomes on the run as they end, which the progress page polls.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from crm.models import Business
from finance.invoices import Draft, NothingToInvoice, billables_for_invoicing, invoice_draft
from finance.models import Invoice
from finance.money import format_money

from ..connect.oauth import connection_get_active
from ..models import InvoiceRun, InvoiceRunStatus
from ..models.invoicing import OK_OUTCOMES
from . import push as invoicing
from .push import InvoicingError


@dataclass
class UnbilledPreview:
    draft: Draft
    fingerprint: str
    unfinished: int  # pushes an earlier run or a worker left unfinished: resumed first

    @property
    def left_out_reasons(self) -> list[tuple[str, int]]:
        return sorted(Counter(reason for _, reason in self.draft.left_out).items())

    def summary(self) -> str:
        lines = [f"{len(self.draft.invoices)} invoice(s)"]
        for currency, total in self.draft.totals_by_currency().items():
            count = sum(1 for inv in self.draft.invoices if inv.currency == currency)
            lines.append(f"{currency}: {format_money(total, currency)} in {count} invoice(s)")
        lines += [f"left out: {n} billable(s): {reason}" for reason, n in self.left_out_reasons]
        return "\n".join(lines)


def _fingerprint(billables) -> str:
    digest = hashlib.sha256()
    for b in billables:
        digest.update(f"{b.pk}:{b.updated_at.isoformat()}:{b.status};".encode())
    return digest.hexdigest()


def unbilled_preview(*, business: Business) -> UnbilledPreview:
    """What "Invoice everything unbilled" would make now (no writes)."""
    billables = list(billables_for_invoicing(business=business))
    draft = invoice_draft(billables=billables, options=invoicing.build_options(business=business))
    return UnbilledPreview(draft=draft, fingerprint=_fingerprint(billables),
                           unfinished=invoicing.invoices_unfinished(business=business).count())


def invoice_run_active(*, business: Business) -> InvoiceRun | None:
    """The business's run under way: running, and heard from within the push lease (each
    push it finishes touches it). One silent for longer lost its worker: see below."""
    since = timezone.now() - timedelta(seconds=invoicing.lease_seconds())
    return InvoiceRun.objects.filter(business=business, status=InvoiceRunStatus.RUNNING, updated_at__gte=since).first()


def _end_stale_runs(business: Business) -> None:
    """Runs whose worker died: marked stopped, so the next run can start (it resumes their
    unsent invoices first, as the push sweep would)."""
    since = timezone.now() - timedelta(seconds=invoicing.lease_seconds())
    for run in InvoiceRun.objects.filter(business=business, status=InvoiceRunStatus.RUNNING, updated_at__lt=since):
        _finish(run.pk, InvoiceRunStatus.FAILED,
                error="No progress within the push lease: its worker stopped. The next run resumes its unsent invoices.")


def invoice_run_start(*, business: Business, user, fingerprint: str, ip: str | None = None,
                      livemode: bool | None = None) -> InvoiceRun:
    """Make the previewed invoices and queue their pushes (in `livemode`, the starter's
    current mode; None: the default connection's). Raises InvoicingError when the
    business is not connected, a run is under way, or the billables changed since the
    preview (then nothing is made: look again); NothingToInvoice when nothing qualifies."""
    if connection_get_active(business=business, livemode=livemode) is None:
        raise InvoicingError("This business is not connected to Stripe: connect it on the Stripe settings page first.")
    with transaction.atomic():
        Business.objects.select_for_update().filter(pk=business.pk).values_list("pk", flat=True).get()
        _end_stale_runs(business)
        running = invoice_run_active(business=business)
        if running is not None:
            raise InvoicingError(f"Invoice run {running.pk} is still running: wait for it to finish.")
        preview = unbilled_preview(business=business)
        if preview.fingerprint != fingerprint:
            raise InvoicingError("The unbilled billables changed since the preview (added, edited or invoiced "
                                 "meanwhile). Nothing was made: check the new preview and start again.")
        unfinished = list(invoicing.invoices_unfinished(business=business).values_list("pk", flat=True))
        result = invoicing.invoices_generate(business=business, push=False, user=user, ip=ip)
        made = [inv.pk for inv in result.invoices]
        if livemode is not None:
            Invoice.objects.filter(pk__in=made, livemode__isnull=True).update(livemode=livemode)
        run = InvoiceRun(business=business, started_by=user, invoice_ids=made + unfinished, made=len(made),
                         resumed=len(unfinished), summary=preview.summary())
        run.full_clean()
        run.save()
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id: int) -> None:
    from .tasks import invoice_run_push_task  # the tasks module imports this one

    invoice_run_push_task.delay(run_id)


def invoice_run_push(*, run_id: int) -> InvoiceRun:
    """Push every invoice of the run, recording each outcome on the run as it ends (the
    progress page polls it). Safe to run again (a redelivered task): invoices with an
    outcome in Stripe are not pushed again, and each invoice has one outcome, so none is
    counted twice."""
    run = InvoiceRun.objects.get(pk=run_id)
    if run.status != InvoiceRunStatus.RUNNING:
        return run
    try:
        for invoice_id in run.invoice_ids:
            if run.outcomes.get(str(invoice_id)) in OK_OUTCOMES:
                continue
            result = invoicing.invoice_push(invoice_id=invoice_id, takeover=True)
            with transaction.atomic():
                run = InvoiceRun.objects.select_for_update().get(pk=run.pk)
                run.outcomes[str(invoice_id)] = result.outcome
                run.save(update_fields=["outcomes", "updated_at"])
        _finish(run.pk, InvoiceRunStatus.DONE)
    except Exception as exc:  # noqa: BLE001 - recorded on the run for the page, then re-raised for the log
        _finish(run.pk, InvoiceRunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    return InvoiceRun.objects.get(pk=run.pk)


def _finish(run_id: int, status: str, error: str = "") -> None:
    InvoiceRun.objects.filter(pk=run_id, status=InvoiceRunStatus.RUNNING).update(
        status=status, error=error[:2000], finished_at=timezone.now(), updated_at=timezone.now())


def invoice_run_invoices(*, run: InvoiceRun):
    """The run's invoices, for its page."""
    return Invoice.objects.filter(business=run.business, pk__in=run.invoice_ids).select_related("bill_to").order_by("number")
