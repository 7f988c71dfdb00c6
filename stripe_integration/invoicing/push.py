"""The push of a CRM invoice to Stripe, exactly once (issue 6).

Push state (`Invoice.push_status`, beside Stripe's own `status`):

    pending --claim--> pushing --create, add_lines, finalize, send--> pushed
                         |  \\--Stripe error--> failed --Retry--> pushing
                         \\--totals differ--> mismatch (stopped before sending; Retry
                                                       re-checks, Delete draft undoes)

`push_step` records the last step known done (created / lines / finalized / sent).

Exactly once, in three layers:
1. The claim. The invoice row is locked, marked `pushing`, its attempt counted and
   committed BEFORE any Stripe call; a second worker (a double click, a redelivered task)
   sees `pushing` with a live lease and leaves it (STRIPE_PUSH_LEASE_SECONDS; after the
   lease, a worker that died is taken over).
2. Idempotency keys derived from local ids, the same on every retry of a step:
   `crm-inv-<business>-<invoice>-<created µs>[-g<generation>]-<step>` (the creation time
   keeps a restored or recreated database from replaying another invoice's answer).
   Within Stripe's 24 hours a retried step replays the first answer; the gateway's own
   retries reuse it. The generation (`push_generation`) moves on only when Stripe says
   the invoice it made for us is gone (a draft deleted in Stripe): the next attempt then
   makes a new Stripe invoice under new keys instead of replaying the deleted one's.
3. Recovery that trusts Stripe over memory. Any attempt after the first re-reads the
   Stripe invoice first: by its id, or, when the id never got saved (the worker died
   between the call and the local save, the answer was lost), by listing the customer's
   invoices for `metadata.crm_invoice_id` + `crm_invoice_key`. Lines are recognised by the
   marker add_lines writes in the same request (`metadata.crm_lines`), finalization by
   Stripe's status. So a step is never repeated even after the keys expire.

Stripe calls for an invoice of up to 250 lines: create (pending_invoice_items_behavior=
exclude, auto_advance off), one add_lines, finalize (auto_advance = the business's
`automatic_collection`, on by default: Stripe retries declined automatic charges and
sends reminders from then on), send or pay = 4; a recovery adds one
read. Customers, tax rates, coupons and the inline product are made once, then reused.

Totals: after add_lines (the draft) and again after finalize, Stripe's subtotal, discount,
tax and total must equal the CRM's to the minor unit (`lines.py`); otherwise the
push stops before finalizing / sending with the differences saved on the invoice.

Nothing here holds a database transaction across a Stripe call (SQLite's IMMEDIATE
transactions would block every writer meanwhile): short locked updates before and after.
The actions on a pushed invoice (void, mark uncollectible, paid outside Stripe, resend,
delete draft) are in `actions.py`.
"""
from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from crm.audit import audit_record
from crm.models import Business
from finance.invoices import (
    BuildOptions, CreateResult, invoice_mark_billables_paid, invoice_release_billables, invoices_create_from_billables,
)
from finance.models import (
    CollectionMethod, Invoice, InvoicePushStatus, InvoicePushStep, InvoiceStatus, invoice_status_path,
)
from finance.money import from_minor

from ..gateway.client import CardDeclined, Gateway, GatewayError, IdempotencyConflict, InvoiceInfo, NotFound
from .lines import plan_lines, totals_difference
from ..models import IntegrationSettings, StripeConnection
from ..connect.oauth import connection_for_invoice, connection_get_active, gateway
from ..customers.cards import contact_collection_methods
from ..rules.eligibility import contact_outside_rules, outside_message, rules_evaluator
from ..rules.mapping import invoice_metadata
from ..runs import EventAction, EventKind, RunKind, track_run
from ..runs.tracking import note_failure

log = logging.getLogger(__name__)

STEP_ORDER = [InvoicePushStep.NONE, InvoicePushStep.CREATED, InvoicePushStep.LINES, InvoicePushStep.FINALIZED,
              InvoicePushStep.SENT]


class InvoicingError(Exception):
    """A push or an action cannot go on; `message` is fit to show a finance user."""

    def __init__(self, message: str, *, retryable: bool = False):
        self.message = message
        self.retryable = retryable
        super().__init__(message)


@dataclass(frozen=True)
class PushResult:
    invoice_id: int
    outcome: str  # pushed | skipped | busy | awaiting_approval | failed | mismatch | gone
    message: str = ""
    retryable: bool = False


def lease_seconds() -> int:
    return int(getattr(settings, "STRIPE_PUSH_LEASE_SECONDS", 300))


def key_prefix(invoice: Invoice) -> str:
    """The stem of the push's idempotency keys and the `crm_invoice_key` metadata that
    recovery looks up. A new generation (`push_generation`, bumped only when Stripe says
    our invoice is gone) gets new keys: the old ones would replay answers about the
    deleted invoice for 24 hours."""
    created = int(invoice.created_at.timestamp() * 1_000_000)
    generation = f"-g{invoice.push_generation}" if invoice.push_generation else ""
    return f"crm-inv-{invoice.business_id}-{invoice.pk}-{created}{generation}"


def idempotency_key(invoice: Invoice, step: str) -> str:
    return f"{key_prefix(invoice)}-{step}"


def _step_done(invoice: Invoice, step: str) -> bool:
    return STEP_ORDER.index(invoice.push_step) >= STEP_ORDER.index(step)


# --- from billables to pushes ------------------------------------------------------------

def build_options(*, business: Business, po_number: str = "", approved: bool = False) -> BuildOptions:
    s = IntegrationSettings.for_business(business)
    rules = rules_evaluator(business=business)
    return BuildOptions(
        excluded_line_types=frozenset(s.excluded_line_types or []), line_order=s.line_order,
        collection_method=s.collection_method, days_until_due=s.days_until_due, send_due_date=s.send_due_date,
        footer=s.footer, po_number=po_number.strip(), approved=approved,
        # Contacts outside the Stripe rules are left out of new invoices, with the reason.
        contact_refusal=(lambda contact: (f"outside the Stripe rules: {why}" if (why := rules.reason(contact)) else ""))
        if rules.has_rules else None,
    )


def invoices_generate(*, business: Business, billable_ids=None, contact=None, currency: str | None = None,
                      po_number: str = "", approved: bool = False, push: bool = True, user=None,
                      ip: str | None = None, livemode: bool | None = None) -> CreateResult:
    """"Send to Stripe": build the local invoices from billables and queue their pushes
    once the transaction commits (each one recorded in the audit log, by `user` from
    `ip`; None: the month-end command). Raises finance.invoices.NothingToInvoice.
    `livemode`: the mode they are sent in (the sender's current mode); None: the default
    connection's, decided when the push claims them. Local drafts (push=False) have none."""
    options = build_options(business=business, po_number=po_number, approved=approved)
    with transaction.atomic():
        result = invoices_create_from_billables(business=business, billable_ids=billable_ids, contact=contact,
                                                currency=currency, options=options)
        # A contact may be collected otherwise than the business (customers/cards.py).
        own = contact_collection_methods(business=business, contact_ids={i.bill_to_id for i in result.invoices},
                                         livemode=livemode)
        for invoice in result.invoices:
            if own.get(invoice.bill_to_id, invoice.collection_method) != invoice.collection_method:
                invoice.collection_method = own[invoice.bill_to_id]
                if invoice.collection_method == CollectionMethod.CHARGE_AUTOMATICALLY:
                    invoice.due_date = invoice.days_until_due = None  # charged at once, nothing falls due
                _save(invoice, ["collection_method", "due_date", "days_until_due"])
        for invoice in result.invoices:
            audit_record(business=business, user=user, action="invoice_create", obj=invoice, ip=ip,
                         amount=invoice.total, currency=invoice.currency,
                         detail=f"Created from billables for {invoice.bill_to}" + (", to send to Stripe" if push else ""))
        if livemode is not None and connection_get_active(business=business, livemode=livemode) is None:
            livemode = None  # not connected in that mode: the push says so, the draft keeps no mode
        if push:
            for invoice in result.invoices:
                if livemode is not None:
                    invoice.livemode = livemode
                    _save(invoice, ["livemode"])
                invoice_push_later(invoice_id=invoice.pk)
    return result


def invoice_push_later(*, invoice_id: int, takeover: bool = False) -> None:
    from .tasks import invoice_push_task  # the tasks module imports this one

    transaction.on_commit(lambda: invoice_push_task.delay(invoice_id, takeover))


# --- local saves ---------------------------------------------------------------------------

def _save(invoice: Invoice, fields: list[str]) -> None:
    """full_clean() the changed fields only (no queries: the unique number and the foreign
    keys are not among them), then save them."""
    names = set(fields)
    invoice.full_clean(exclude=[f.name for f in invoice._meta.fields if f.name not in names])
    invoice.save(update_fields=[*fields, "updated_at"])


def _update(invoice: Invoice, remote: InvoiceInfo | None = None, **values) -> Invoice:
    """Write push fields (and what Stripe says) under the row lock, so a webhook applied
    meanwhile is neither lost nor moved backwards; copy the result onto `invoice`."""
    with transaction.atomic():
        row = Invoice.objects.select_for_update().select_related("bill_to").get(pk=invoice.pk)
        changed = set(values)
        for name, value in values.items():
            setattr(row, name, value)
        if remote is not None:
            changed |= _apply_remote(row, remote)
        if changed:
            _save(row, sorted(changed))
        if "status" in changed:
            # The billables follow the invoice (the webhooks do the same when Stripe speaks first).
            if row.status == InvoiceStatus.VOID:
                invoice_release_billables(invoice=row)
            elif row.status == InvoiceStatus.PAID:
                invoice_mark_billables_paid(invoice=row)
    for f in invoice._meta.concrete_fields:
        setattr(invoice, f.attname, getattr(row, f.attname))
    return invoice


def _date(timestamp: int | None) -> datetime.date | None:
    if not timestamp:
        return None
    return timezone.localtime(datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)).date()


def _moment(timestamp: int | None) -> datetime.datetime | None:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc) if timestamp else None


def _apply_remote(row: Invoice, remote: InvoiceInfo) -> set[str]:
    """Stripe's facts onto the row. Status only moves forward, by the same rule as the
    webhooks (`finance.models.invoice_status_path`, which also lets a draft that Stripe
    paid at finalizing become paid): a webhook that already said paid or void wins over
    an older answer."""
    changed = set()

    def put(name, value):
        if value not in (None, "") and getattr(row, name) != value:
            setattr(row, name, value)
            changed.add(name)

    put("stripe_invoice_id", remote.id)
    put("stripe_customer_id", remote.customer)
    put("stripe_number", remote.number)
    put("hosted_invoice_url", remote.hosted_invoice_url)
    put("invoice_pdf_url", remote.invoice_pdf)
    put("due_date", _date(remote.due_date))
    put("finalized_at", _moment(remote.finalized_at))
    try:
        status = InvoiceStatus(remote.status)
    except ValueError:
        status = None
    if status and status != row.status and invoice_status_path(row.status, status) is not None:
        row.status = status
        changed.add("status")
        put("paid_at", _moment(remote.paid_at) if status == InvoiceStatus.PAID else None)
        put("voided_at", _moment(remote.voided_at) if status == InvoiceStatus.VOID else None)
    if remote.status != "draft" and row.status == status:
        put("amount_paid", from_minor(remote.amount_paid, row.currency))
        if getattr(row, "amount_remaining") != from_minor(remote.amount_remaining, row.currency):
            row.amount_remaining = from_minor(remote.amount_remaining, row.currency)
            changed.add("amount_remaining")
    return changed


# --- the push -------------------------------------------------------------------------------

def _claim(invoice_id: int, *, takeover: bool):
    now = timezone.now()
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("business", "bill_to").filter(pk=invoice_id).first()
        if invoice is None:
            return PushResult(invoice_id, "gone", "The invoice no longer exists (its draft was deleted).")
        if invoice.push_status == InvoicePushStatus.PUSHED:
            return PushResult(invoice_id, "skipped", f"{invoice.number} is already in Stripe.")
        if invoice.status == InvoiceStatus.VOID:
            return PushResult(invoice_id, "skipped", f"{invoice.number} is void.")
        live = invoice.push_claimed_at and (now - invoice.push_claimed_at).total_seconds() < lease_seconds()
        if invoice.push_status == InvoicePushStatus.PUSHING and live and not takeover:
            return PushResult(invoice_id, "busy", f"{invoice.number} is being sent to Stripe right now.")
        # Pushed in the mode it was sent in (the current mode of whoever sent it), else the
        # default connection's; once in Stripe it stays in that mode.
        connection = connection_for_invoice(invoice)
        if connection is None:
            message = "This business is not connected to Stripe: connect it on the Stripe settings page, then retry."
            changed = (invoice.push_status, invoice.last_error) != (InvoicePushStatus.FAILED, message)
            invoice.push_status, invoice.last_error = InvoicePushStatus.FAILED, message
            _save(invoice, ["push_status", "last_error"])
            if changed:  # the sweep retries this every few minutes: one entry, not one per sweep
                _audit_push(invoice, "failed", message)
            return PushResult(invoice_id, "failed", message)
        options = IntegrationSettings.for_business(invoice.business)
        if options.only_approved and not invoice.approved:
            return PushResult(invoice_id, "awaiting_approval",
                              f"{invoice.number} waits for approval: only approved invoices are sent.")
        invoice.livemode = connection.livemode
        invoice.push_status = InvoicePushStatus.PUSHING
        invoice.push_attempts += 1
        invoice.push_claimed_at = now
        invoice.last_error = ""
        invoice.push_mismatch = {}
        _save(invoice, ["livemode", "push_status", "push_attempts", "push_claimed_at", "last_error", "push_mismatch"])
    return invoice, connection, options


DISABLED_MESSAGE = ("The Stripe integration is disabled for this business: the invoice is sent when it is "
                    "re-enabled (Stripe ▸ Runs).")


def invoice_push(*, invoice_id: int, takeover: bool = False) -> PushResult:
    """Push one local invoice to Stripe (or finish a push that stopped). Safe to call any
    number of times, concurrently too: see the module doc. Stripe errors end as `failed`
    with Stripe's message (retryable ones are for the task to retry).

    Recorded as an invoice-push run (`runs.track_run`). While the business's integration
    is disabled nothing is claimed or called: the invoice keeps its state (outcome
    `disabled`) and re-enabling queues it again."""
    business_id = Invoice.objects.filter(pk=invoice_id).values_list("business_id", flat=True).first()
    if business_id is None:
        return PushResult(invoice_id, "gone", "The invoice no longer exists (its draft was deleted).")
    with track_run(business_id, RunKind.INVOICE_PUSH, subject=f"invoice:{invoice_id}") as run:
        if run.disabled:
            return PushResult(invoice_id, "disabled", DISABLED_MESSAGE)
        result = _invoice_push(invoice_id=invoice_id, takeover=takeover)
        run.count(result.outcome)
        if result.outcome == "failed" and run.failure is None:
            if "not connected to Stripe" in result.message:
                run.discard()  # no Stripe call made; the sweep asks again every minute
            else:
                run.fail(result.message)
        elif result.outcome == "mismatch":
            run.fail(result.message, kind=EventKind.VALIDATION, action=EventAction.RETRY)
        elif result.message:
            run.log(result.message)
        return result


def _invoice_push(*, invoice_id: int, takeover: bool = False) -> PushResult:
    from ..customers.links import CustomerLinkError

    claimed = _claim(invoice_id, takeover=takeover)
    if isinstance(claimed, PushResult):
        return claimed
    invoice, connection, options = claimed
    gw = gateway(connection.livemode)
    try:
        try:
            return _push(invoice, connection, options, gw)
        except NotFound:
            # An invoice step answered "no such invoice": if Stripe's draft is gone (deleted
            # in Stripe, the create key replaying its old answer), start a new generation
            # once; anything else stays the error it is.
            if not _remote_gone(gw, invoice, connection.stripe_user_id):
                raise
            _start_over(invoice)
            return _push(invoice, connection, options, gw)
    except GatewayError as exc:
        note_failure(exc)  # the run's status and event (runs.track_run)
        rid = f" (Stripe request {exc.request_id})" if exc.request_id else ""
        return _fail(invoice, exc.user_message + rid, retryable=exc.retryable)
    except (CustomerLinkError, InvoicingError) as exc:
        note_failure(exc)
        return _fail(invoice, exc.message, retryable=getattr(exc, "retryable", False))
    except Exception:
        # A bug must not leave the invoice "pushing" with no explanation; re-raised so the
        # worker logs it (the Retry resumes safely: see recovery).
        _fail(invoice, "The push stopped on an internal error; it was logged. Retry resumes it safely.", retryable=False)
        raise


def _recipient(invoice: Invoice) -> str:
    """Who Stripe e-mails the invoice to: the customer's e-mail, kept equal to the bill-to
    contact's billing e-mail by customers.links."""
    try:
        email = invoice.bill_to.billing_email
    except Exception:  # noqa: BLE001 - a contact without its subclass row: say so, not fail the push
        email = ""
    return f"{invoice.bill_to} <{email}>" if email else f"{invoice.bill_to} (no e-mail on file)"


def _audit_push(invoice: Invoice, outcome: str, message: str) -> None:
    """A push attempt's outcome in the audit log (the invoice page's history)."""
    audit_record(business=invoice.business, user=None, action=f"invoice_push_{outcome}", obj=invoice,
                 amount=invoice.total, currency=invoice.currency,
                 detail=message or f"Attempt {invoice.push_attempts}: {invoice.get_push_status_display()}.")


def _fail(invoice: Invoice, message: str, *, retryable: bool) -> PushResult:
    log.warning("Invoice %s (id %s) push failed: %s", invoice.number, invoice.pk, message)
    _update(invoice, push_status=InvoicePushStatus.FAILED, last_error=message[:2000])
    _audit_push(invoice, "failed", message)
    return PushResult(invoice.pk, "failed", message, retryable=retryable)


def _mismatch(invoice: Invoice, diff: dict, stage: str) -> PushResult:
    cur = invoice.currency
    parts = [f"{name} CRM {from_minor(d['crm'], cur)} vs Stripe {from_minor(d['stripe'], cur)}" for name, d in diff.items()]
    message = (f"Stripe's totals differ from the CRM's after {stage}: {'; '.join(parts)} {cur}. "
               "Nothing was sent to the customer. Delete the draft, or retry to check again.")
    _update(invoice, push_status=InvoicePushStatus.MISMATCH, push_mismatch={"stage": stage, "currency": cur, **diff},
            last_error=message)
    _audit_push(invoice, "mismatch", message)
    return PushResult(invoice.pk, "mismatch", message)


def _find_remote(gw: Gateway, invoice: Invoice, account: str) -> InvoiceInfo | None:
    if invoice.stripe_invoice_id:
        try:
            return gw.invoice_fetch(account=account, invoice_id=invoice.stripe_invoice_id)
        except NotFound:
            return None
    if not invoice.stripe_customer_id:
        return None
    since = int(invoice.created_at.timestamp()) - 86400  # margin for clocks; created is after it
    found = gw.invoice_find_by_metadata(
        account=account, customer=invoice.stripe_customer_id, created_gte=since,
        metadata={"crm_invoice_id": str(invoice.pk), "crm_invoice_key": key_prefix(invoice)},
    )
    if len(found) > 1:
        log.error("Invoice %s has %d Stripe invoices: %s", invoice.pk, len(found), [f.id for f in found])
    return min(found, key=lambda f: (f.created, f.id)) if found else None


def _remote_gone(gw: Gateway, invoice: Invoice, account: str) -> bool:
    """Whether the Stripe invoice saved on a local draft no longer exists in Stripe."""
    if not invoice.stripe_invoice_id or invoice.status != InvoiceStatus.DRAFT:
        return False
    try:
        gw.invoice_fetch(account=account, invoice_id=invoice.stripe_invoice_id)
    except NotFound:
        return True
    return False


def _start_over(invoice: Invoice) -> None:
    """Stripe's draft of this invoice is gone: forget it and move to a new generation of
    keys, so the next create makes a new Stripe invoice. Only for a local draft (Stripe
    deletes only drafts; a finalized invoice is never re-created)."""
    log.warning("Invoice %s (id %s): Stripe invoice %s is gone; pushing a new one.", invoice.number, invoice.pk,
                invoice.stripe_invoice_id)
    _update(invoice, stripe_invoice_id=None, push_step=InvoicePushStep.NONE,
            push_generation=invoice.push_generation + 1)


def _create_params(invoice: Invoice, options: IntegrationSettings) -> dict:
    params = {
        "customer": invoice.stripe_customer_id, "currency": invoice.currency.lower(),
        "collection_method": invoice.collection_method, "auto_advance": False,
        "pending_invoice_items_behavior": "exclude", "description": f"Invoice {invoice.number}",
        # Mapped invoice custom fields first: our own keys win (rules/mapping.py refuses crm_ keys).
        "metadata": {**invoice_metadata(invoice),
                     "crm_invoice_id": str(invoice.pk), "crm_invoice_number": invoice.number,
                     "crm_business_id": str(invoice.business_id), "crm_invoice_key": key_prefix(invoice)},
    }
    if invoice.collection_method == CollectionMethod.SEND_INVOICE:
        if invoice.days_until_due is None and invoice.due_date:
            end_of_day = datetime.datetime.combine(invoice.due_date, datetime.time(23, 59, 59))
            params["due_date"] = int(timezone.make_aware(end_of_day).timestamp())
        else:
            params["days_until_due"] = invoice.days_until_due if invoice.days_until_due is not None else options.days_until_due
    if invoice.footer:
        params["footer"] = invoice.footer
    if invoice.po_number and options.po_number_field:
        params["custom_fields"] = [{"name": options.po_number_field[:40], "value": invoice.po_number[:140]}]
    return params


def _choose_collection(gw: Gateway, invoice: Invoice, account: str, options: IntegrationSettings) -> None:
    """charge_automatically needs a saved card; without one the invoice is sent instead."""
    if invoice.collection_method != CollectionMethod.CHARGE_AUTOMATICALLY:
        return
    if gw.customer_default_payment_method(account=account, customer_id=invoice.stripe_customer_id):
        return
    days = options.days_until_due
    _update(invoice, collection_method=CollectionMethod.SEND_INVOICE, days_until_due=days,
            due_date=timezone.localdate() + datetime.timedelta(days=days))


def _push(invoice: Invoice, connection: StripeConnection, options: IntegrationSettings, gw: Gateway) -> PushResult:
    from ..customers.links import customer_ensure

    account = connection.stripe_user_id
    lines = list(invoice.lines.select_related("service").order_by("position", "pk"))
    if not lines:
        raise InvoicingError(f"{invoice.number} has no lines: there is nothing to send.")
    if not invoice.stripe_invoice_id:
        # Not in Stripe yet: a contact outside the rules is never invoiced through Stripe.
        # (One created before the rules changed may still be finished.)
        reason = contact_outside_rules(contact=invoice.bill_to)
        if reason:
            raise InvoicingError(f"Not sent: {outside_message(invoice.bill_to, reason)}")
    if not invoice.stripe_customer_id:
        _update(invoice, stripe_customer_id=customer_ensure(connection=connection, contact=invoice.bill_to))

    remote = None
    if invoice.push_attempts > 1 or invoice.stripe_invoice_id:
        remote = _find_remote(gw, invoice, account)
        if remote is None and invoice.stripe_invoice_id:
            if invoice.status != InvoiceStatus.DRAFT:
                raise InvoicingError(f"Stripe no longer has invoice {invoice.stripe_invoice_id}, which was "
                                     f"{invoice.get_status_display().lower()}: check the Stripe account.")
            _start_over(invoice)  # the draft was deleted in Stripe: a new one, with new keys
        if remote is not None and not _step_done(invoice, InvoicePushStep.CREATED):
            _update(invoice, push_step=InvoicePushStep.CREATED, stripe_invoice_id=remote.id)

    plan = plan_lines(gw=gw, connection=connection, invoice=invoice, lines=lines)
    expected, marker = plan.expected(invoice.currency), plan.marker()

    if remote is None:
        _choose_collection(gw, invoice, account, options)
        params = _create_params(invoice, options)
        try:
            remote = gw.invoice_create(account=account, params=params, idempotency_key=idempotency_key(invoice, "create"))
        except IdempotencyConflict:
            # The parameters changed since a first attempt whose answer we lost (e.g. the
            # settings were edited): whatever that attempt made is found by metadata.
            remote = _find_remote(gw, invoice, account)
            if remote is None:
                raise
        _update(invoice, remote, push_step=InvoicePushStep.CREATED)

    if not _step_done(invoice, InvoicePushStep.LINES):
        if remote.status == "draft" and remote.metadata.get("crm_lines") != marker:
            remote = gw.invoice_add_lines(account=account, invoice_id=remote.id, lines=plan.params(),
                                          invoice_metadata={"crm_lines": marker},
                                          idempotency_key=idempotency_key(invoice, "lines"))
        _update(invoice, push_step=InvoicePushStep.LINES)

    if remote.status == "draft":
        diff = totals_difference(expected, remote)
        if diff:
            return _mismatch(invoice, diff, "adding the lines")
        # Automatic collection (IntegrationSettings.automatic_collection) starts only now:
        # the draft was created with auto_advance off, so Stripe never finalizes a draft
        # whose totals the app has not checked.
        remote = gw.invoice_finalize(account=account, invoice_id=remote.id, idempotency_key=idempotency_key(invoice, "finalize"),
                                     auto_advance=options.automatic_collection)
    diff = totals_difference(expected, remote)
    if diff:
        _update(invoice, remote)
        return _mismatch(invoice, diff, "finalizing")
    if not _step_done(invoice, InvoicePushStep.FINALIZED):
        _update(invoice, remote, push_step=InvoicePushStep.FINALIZED)

    payment_error = ""
    if not _step_done(invoice, InvoicePushStep.SENT) and remote.status == "open":
        if invoice.collection_method == CollectionMethod.SEND_INVOICE:
            remote = gw.invoice_send(account=account, invoice_id=remote.id, idempotency_key=idempotency_key(invoice, "send"))
        else:
            try:
                remote = gw.invoice_pay(account=account, invoice_id=remote.id, idempotency_key=idempotency_key(invoice, "pay"))
            except CardDeclined as exc:
                # The invoice is in Stripe and open: a decline is shown on the invoice, not
                # a failed push. With automatic collection on, Stripe retries the charge
                # (Smart Retries) and the webhooks record the outcome; off, staff collect.
                payment_error = exc.user_message + (
                    " Stripe will retry the charge automatically." if options.automatic_collection else
                    " Stripe will not retry it (automatic collection is off in the settings).")
    _update(invoice, remote, push_step=InvoicePushStep.SENT, push_status=InvoicePushStatus.PUSHED,
            last_error=payment_error)
    sent = (f"sent to {_recipient(invoice)}" if invoice.collection_method == CollectionMethod.SEND_INVOICE
            else "charged to the saved payment method")
    _audit_push(invoice, "pushed", f"In Stripe as {invoice.stripe_number or invoice.stripe_invoice_id}, finalized and "
                                   f"{sent}." + (f" {payment_error}" if payment_error else ""))
    return PushResult(invoice.pk, "pushed", payment_error)


# --- for the command, the admin and the UI ----------------------------------------------

def invoices_unfinished(*, business: Business, contact=None, currency: str | None = None):
    """Invoices whose push has not ended well: pending, pushing, failed (not mismatch,
    which waits for a person)."""
    qs = Invoice.objects.for_business(business).filter(
        push_status__in=[InvoicePushStatus.PENDING, InvoicePushStatus.PUSHING, InvoicePushStatus.FAILED],
    ).exclude(status=InvoiceStatus.VOID).order_by("pk")
    if contact is not None:
        qs = qs.filter(bill_to=contact)
    if currency:
        qs = qs.filter(currency=currency.upper())
    return qs
