"""Disputes from Stripe's dispute objects: the writes behind `handlers/disputes.py`.

The handlers pass the dispute as Stripe has it now (retrieved under the invoice's lock),
and the row follows it forward only (`finance.models.dispute_status_moves`: an older
state is ignored whole), so any order and any number of copies of the charge.dispute.*
events leave the same figures. The money it moved (funds withdrawn and reinstated, the
dispute fee net of a refunded fee) is summed from its balance transactions; the payment's
and the invoice's disputed amounts are then summed again from their disputes (a lost
dispute's amount), never added to.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance.models import DISPUTE_OPEN, Dispute, DisputeStatus, Invoice, Payment, dispute_status_moves

from .apply import money_of, time_of

FINAL = frozenset({DisputeStatus.WON, DisputeStatus.LOST, DisputeStatus.WARNING_CLOSED, DisputeStatus.PREVENTED})
_FIELDS = ("status", "amount", "currency", "reason", "evidence_due_by", "evidence_submitted", "fee",
           "funds_withdrawn", "funds_reinstated", "opened_at", "closed_at")


class UnknownDisputeStatus(ValueError):
    pass


def _funds(dispute: dict, currency: str) -> tuple[Decimal, Decimal, Decimal]:
    """(withdrawn, reinstated, fee) from the dispute's balance transactions, in its currency:
    the fee is what it costs in the end (Stripe gives the fee of a won dispute back)."""
    withdrawn = reinstated = fee = 0
    for txn in dispute.get("balance_transactions") or []:
        if not isinstance(txn, dict) or (txn.get("currency") or "").upper() != currency:
            continue
        amount = int(txn.get("amount") or 0)
        withdrawn += -amount if amount < 0 else 0
        reinstated += amount if amount > 0 else 0
        fee += int(txn.get("fee") or 0)
    return money_of(withdrawn, currency), money_of(reinstated, currency), money_of(max(fee, 0), currency)


def dispute_apply(*, payment: Payment, dispute: dict, seen_at: datetime | None) -> tuple[Dispute, bool]:
    """Create or bring up to date the dispute row for a Stripe dispute object on `payment`
    (whose invoice the caller holds locked). Returns (row, whether it changed)."""
    status = dispute.get("status")
    if status not in DisputeStatus.values:
        raise UnknownDisputeStatus(f"Unknown dispute status {status!r}.")
    row = Dispute.objects.select_for_update().filter(stripe_id=dispute["id"]).first()
    if row is not None and row.business_id != payment.business_id:
        raise ValueError(f"Dispute {dispute['id']} is recorded for another business.")
    if row is not None and not dispute_status_moves(row.status, status):
        return row, False  # an older state of the dispute, delivered late
    before = tuple(getattr(row, name) for name in _FIELDS) if row is not None else None
    currency = (dispute.get("currency") or payment.currency).upper()
    if row is None:
        row = Dispute(business=payment.business, payment=payment, invoice=payment.invoice, stripe_id=dispute["id"],
                      livemode=_mode_of(dispute, payment.livemode))
    same_state = before is not None and row.status == status
    row.status = status
    row.currency = currency
    row.amount = money_of(dispute.get("amount"), currency)
    row.reason = (dispute.get("reason") or "")[:40]
    details = dispute.get("evidence_details") or {}
    row.evidence_due_by = time_of(details.get("due_by")) or (row.evidence_due_by if same_state else None)
    row.evidence_submitted = row.evidence_submitted or bool(details.get("submission_count"))
    row.funds_withdrawn, row.funds_reinstated, row.fee = _funds(dispute, currency)
    row.opened_at = row.opened_at or time_of(dispute.get("created"))
    if status in FINAL and row.closed_at is None:
        row.closed_at = seen_at
    if before == tuple(getattr(row, name) for name in _FIELDS):
        return row, False
    row.full_clean()
    row.save()
    return row, True


def payment_refresh_disputed(*, payment: Payment) -> bool:
    """The payment's amount taken back by lost disputes (summed in Python: SQLite sums
    decimals as floats)."""
    lost = sum((d.amount_lost for d in payment.disputes.all() if d.currency == payment.currency), Decimal(0))
    if lost == payment.amount_disputed:
        return False
    payment.amount_disputed = lost
    payment.full_clean()
    payment.save(update_fields=["amount_disputed", "updated_at"])
    return True


def invoice_refresh_disputes(*, invoice: Invoice) -> list[str]:
    """The invoice's disputed amount (its lost disputes) and its flag: flagged while a
    dispute is open or once one is lost; a won (or closed) one clears it again."""
    disputes = list(invoice.disputes.all())
    lost = sum((d.amount_lost for d in disputes if d.currency == invoice.currency), Decimal(0))
    flagged = [d for d in disputes if d.status in DISPUTE_OPEN or d.status == DisputeStatus.LOST]
    disputed_at = min((d.opened_at for d in flagged if d.opened_at), default=None)
    changed = []
    for name, value in (("amount_disputed", lost), ("disputed", bool(flagged)), ("disputed_at", disputed_at)):
        if getattr(invoice, name) != value:
            setattr(invoice, name, value)
            changed.append(name)
    if changed:
        invoice.full_clean()
        invoice.save(update_fields=[*changed, "updated_at"])
    return changed


def _mode_of(obj, fallback):
    """The mode Stripe's object says (`livemode`), else that of what it belongs to."""
    mode = obj.get("livemode") if isinstance(obj, dict) else None
    return mode if isinstance(mode, bool) else fallback
