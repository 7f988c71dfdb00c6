"""What staff do with an invoice once it is (or should be) in Stripe (issue 6).

Each action is offered only in the states where Stripe allows it (`invoice_actions`), and
checked again when it runs (the page may be stale):

    void                   open, uncollectible     -> void; its billables are unbilled again
    mark_uncollectible     open                    -> uncollectible
    mark_paid_out_of_band  open, uncollectible     -> paid; a manual payment (date, method,
                                                      reference; the amount Stripe had remaining)
                                                      is recorded and Stripe is told (`out_of_band.py`)
    resend                 open, send_invoice      Stripe e-mails it again
    delete_draft           draft, push not running -> gone, in Stripe and here; billables unbilled
    retry                  push failed / mismatch / stuck past its lease, while draft or
                           open (a failure after finalizing is finished: send or pay)
    approve                waiting for approval    -> approved, then pushed

Every Stripe write carries an idempotency key derived from the invoice (resend: per
minute, so a double click sends one e-mail). Statuses move only forward; the webhooks
(issue 7) move them the same way, so whichever arrives first wins and the other is a no-op.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from crm.audit import audit_record
from finance.invoices import invoice_delete_local
from finance.models import CollectionMethod, Invoice, InvoicePushStatus, InvoiceStatus

from ..gateway.client import GatewayError, InvalidRequest, NotFound
from .push import (
    InvoicingError, _find_remote, _update, idempotency_key, invoice_push_later, key_prefix, lease_seconds,
)
from ..models import IntegrationSettings
from ..runs.disable import integration_require_enabled
from ..connect.modes import mode_label
from ..connect.oauth import connection_for_invoice, gateway
from .out_of_band import OutOfBandPayment, OutOfBandRefused, invoice_pay_out_of_band

ACTION_LABELS = {
    "void": "Void",
    "mark_uncollectible": "Mark uncollectible",
    "mark_paid_out_of_band": "Mark paid outside Stripe",
    "resend": "Resend",
    "delete_draft": "Delete draft",
    "retry": "Retry",
    "approve": "Approve and send",
}


def _push_running(invoice: Invoice) -> bool:
    if invoice.push_status != InvoicePushStatus.PUSHING or not invoice.push_claimed_at:
        return False
    return (timezone.now() - invoice.push_claimed_at).total_seconds() < lease_seconds()


# Starts the message of a Delete draft under way, or that Stripe refused or could not do:
# the push sweep leaves such an invoice alone (someone meant to delete it, not to send
# it); Retry still works.
DELETE_FAILED = "Delete draft: "

def push_retryable(invoice: Invoice) -> bool:
    """A push that failed, stopped on a mismatch, or is stuck past its lease, on an invoice
    Stripe still lets us finish: a draft (create, lines, finalize) or an open one (a
    failure after finalizing: send or pay, which Stripe allows while open)."""
    if invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.OPEN):
        return False
    return invoice.push_status in (InvoicePushStatus.FAILED, InvoicePushStatus.MISMATCH) or (
        invoice.push_status == InvoicePushStatus.PUSHING and not _push_running(invoice))


def invoice_actions(invoice: Invoice, *, only_approved: bool | None = None) -> list[str]:
    """The actions Stripe allows on this invoice now, in display order."""
    actions = []
    in_stripe = bool(invoice.stripe_invoice_id)
    if in_stripe and invoice.status == InvoiceStatus.OPEN and invoice.collection_method == CollectionMethod.SEND_INVOICE:
        actions.append("resend")
    if in_stripe and invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
        actions.append("mark_paid_out_of_band")
    if in_stripe and invoice.status == InvoiceStatus.OPEN:
        actions.append("mark_uncollectible")
    if in_stripe and invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
        actions.append("void")
    if push_retryable(invoice):
        actions.append("retry")
    if invoice.status == InvoiceStatus.DRAFT and invoice.push_status != InvoicePushStatus.PUSHED:
        if invoice.push_status == InvoicePushStatus.PENDING and not invoice.approved:
            if only_approved is None:
                only_approved = IntegrationSettings.for_business(invoice.business).only_approved
            if only_approved:
                actions.append("approve")
        if not _push_running(invoice) and not invoice.payments.exists():
            actions.append("delete_draft")
    return actions


def invoice_action(*, invoice: Invoice, action: str, user=None, out_of_band: OutOfBandPayment | None = None,
                   ip: str | None = None, livemode: bool | None = None) -> str:
    """Run `action`; returns a message for the user. Raises InvoicingError with a clear
    message when the action is not allowed now or Stripe refuses it. Marking paid outside
    Stripe needs `out_of_band` (date, method, reference: `out_of_band.py`)."""
    invoice = Invoice.objects.select_related("business", "bill_to").get(pk=invoice.pk)  # fresh
    if action not in ACTION_LABELS:
        raise InvoicingError(f"Unknown action {action!r}.")
    integration_require_enabled(business=invoice.business)  # disabled or paused: refused, nothing done
    if livemode is not None and invoice.livemode is not None and invoice.livemode != livemode:
        # Once in Stripe (or sent), an invoice stays in its mode: the other mode's screens
        # show it not, and act on it not.
        raise InvoicingError(f"{invoice.number} is a {mode_label(invoice.livemode).lower()} invoice; you are in "
                             f"{mode_label(livemode).lower()}. Switch to {mode_label(invoice.livemode).lower()} to act on it.")
    if action not in invoice_actions(invoice):
        raise InvoicingError(f"{ACTION_LABELS[action]} is not possible on {invoice.number} now "
                             f"({invoice.get_status_display().lower()}, {invoice.get_push_status_display().lower()}).")
    remaining = invoice.amount_remaining
    message = _run(invoice, action, out_of_band, livemode)
    # The audit log (crm.audit): who did it, from where, and what it was about. An action
    # Stripe refused raised above and is not recorded as done.
    amount = remaining if action == "mark_paid_out_of_band" else invoice.total
    audit_record(business=invoice.business, user=user, action=f"invoice_{action}", obj=invoice, ip=ip,
                 detail=message, amount=amount, currency=invoice.currency)
    return message


def _run(invoice: Invoice, action: str, out_of_band: OutOfBandPayment | None, livemode: bool | None = None) -> str:
    if action == "retry":
        invoice_push_later(invoice_id=invoice.pk, takeover=invoice.push_status == InvoicePushStatus.PUSHING)
        return f"{invoice.number}: sending to Stripe again."
    if action == "approve":
        # Sent in the mode of whoever approved it, unless it already has one.
        mode = {"livemode": livemode} if livemode is not None and invoice.livemode is None else {}
        _update(invoice, approved=True, **mode)
        invoice_push_later(invoice_id=invoice.pk)
        return f"{invoice.number} approved; sending it to Stripe."
    if action == "delete_draft":
        return _delete_draft(invoice)
    connection = connection_for_invoice(invoice)
    if connection is None:
        raise InvoicingError(f"This business is not connected to Stripe in {mode_label(bool(invoice.livemode)).lower()}, "
                             "the invoice's mode.")
    gw, account = gateway(connection.livemode), connection.stripe_user_id
    try:
        if action == "void":
            remote = gw.invoice_void(account=account, invoice_id=invoice.stripe_invoice_id,
                                     idempotency_key=idempotency_key(invoice, "void"))
            released = invoice.billables.count()
            _update(invoice, remote)  # void: the billables are released with it
            return f"{invoice.number} is void; {released} billable(s) are unbilled again."
        if action == "mark_uncollectible":
            remote = gw.invoice_mark_uncollectible(account=account, invoice_id=invoice.stripe_invoice_id,
                                                   idempotency_key=idempotency_key(invoice, "uncollectible"))
            _update(invoice, remote)
            return f"{invoice.number} is marked uncollectible."
        if action == "resend":
            minute = timezone.now().strftime("%Y%m%d%H%M")
            gw.invoice_send(account=account, invoice_id=invoice.stripe_invoice_id,
                            idempotency_key=idempotency_key(invoice, f"resend-{minute}"))
            return f"{invoice.number} was sent again to the customer."
        if action == "mark_paid_out_of_band":
            return invoice_pay_out_of_band(invoice=invoice, gw=gw, account=account, details=out_of_band,
                                           idempotency_key=idempotency_key(invoice, "paid-out-of-band"),
                                           apply_remote=_update)
    except OutOfBandRefused as exc:
        raise InvoicingError(exc.message) from None
    except InvalidRequest as exc:
        _resync(invoice, gw, account)
        raise InvoicingError(exc.user_message) from None
    except GatewayError as exc:
        raise InvoicingError(exc.user_message, retryable=exc.retryable) from None
    raise AssertionError(action)  # every action above returns


def _resync(invoice: Invoice, gw, account: str) -> None:
    """Stripe refused because the invoice moved on (paid meanwhile...): show its state."""
    try:
        _update(invoice, gw.invoice_fetch(account=account, invoice_id=invoice.stripe_invoice_id))
    except GatewayError:
        pass


def _delete_draft(invoice: Invoice) -> str:
    """Delete the Stripe draft (found by id, or by metadata if its id was never saved),
    then the local invoice; its billables are unbilled again."""
    with transaction.atomic():
        row = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if _push_running(row) or row.status != InvoiceStatus.DRAFT:
            raise InvoicingError(f"{row.number} is being sent to Stripe or is no longer a draft: it cannot be deleted.")
        # Hold off pushes while Stripe's copy is deleted (they see a live "pushing"; the
        # sweep, seeing DELETE_FAILED, never takes it over should this process die here).
        row.push_status, row.push_claimed_at = InvoicePushStatus.PUSHING, timezone.now()
        row.last_error = f"{DELETE_FAILED}in progress (Stripe's draft is being deleted)."
        row.save(update_fields=["push_status", "push_claimed_at", "last_error", "updated_at"])
    connection = connection_for_invoice(invoice)
    deleted = []
    try:
        if invoice.stripe_invoice_id or invoice.push_attempts:
            if connection is None:
                raise InvoicingError("This business is not connected to Stripe, so its draft there cannot be deleted.")
            gw, account = gateway(connection.livemode), connection.stripe_user_id
            remote = _find_remote(gw, invoice, account)
            if remote is not None:
                if remote.status != "draft":
                    _update(invoice, remote)
                    raise InvoicingError(f"Stripe's invoice {remote.id} is {remote.status}, not a draft: void it instead.")
                try:
                    gw.invoice_delete(account=account, invoice_id=remote.id)
                except NotFound:
                    pass  # already gone: what we wanted
                deleted.append(remote.id)
    except (InvoicingError, GatewayError) as exc:
        message = exc.message if isinstance(exc, InvoicingError) else exc.user_message
        _update(invoice, push_status=InvoicePushStatus.FAILED, last_error=f"{DELETE_FAILED}{message}")
        raise InvoicingError(message) from None
    number = invoice.number
    invoice_delete_local(invoice=invoice)
    where = f" (and Stripe draft {deleted[0]})" if deleted else ""
    return f"Draft {number}{where} deleted; its billables are unbilled again."


__all__ = ["ACTION_LABELS", "invoice_action", "invoice_actions", "key_prefix"]
