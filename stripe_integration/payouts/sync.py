"""Payout sync: a connected account's payouts and what each carried, into `Payout` and
`PayoutItem`, each item linked to the CRM payment, refund or dispute behind it and
through it to the invoice, with what does not match flagged.

Entry points: `payouts_sync_account(connection=...)` (one account; the periodic task and
`stripe_periodic` call it for every active connection, the runs helper wraps it) and
`payout_sync(connection=..., payout=...)` (one payout; the payout.* webhook handlers).
Both are idempotent: a payout and a balance transaction are unique by Stripe id, a second
sync creates nothing and rewrites only what changed. Money from Stripe's minor units
through `finance.money` (zero- and three-decimal currencies).
"""
from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from finance.models import Dispute, Payment, Refund
from finance.money import format_money, from_minor

from ..gateway.client import Gateway
from ..gateway.payouts import payout_balance_transactions, payouts_list
from ..models import ItemException, Payout, PayoutItem, StripeConnection
from ..webhooks.apply import id_of, time_of

log = logging.getLogger(__name__)

# How far back the periodic sync lists payouts (a payout is final within days; a
# longer look back only re-reads paid ones).
LOOK_BACK = timedelta(days=30)
_ITEM_FIELDS = ["type", "reporting_category", "amount", "fee", "net", "currency", "description", "fee_description",
                "source_id", "charge_id", "available_on", "payment", "refund", "dispute", "invoice", "exception",
                "exception_detail"]


def _counts() -> dict:
    return {"payouts": 0, "payouts_created": 0, "payouts_updated": 0, "items_created": 0, "items_updated": 0,
            "exceptions": 0}


def _gateway(livemode: bool) -> Gateway:
    from ..connect.oauth import gateway  # the platform's client for the connection's mode

    return gateway(livemode)


def payouts_sync_account(*, connection: StripeConnection, since=None, gw: Gateway | None = None) -> dict:
    """Every payout of the connection's account created since `since` (default: the last
    30 days), with its items. Returns counts (payouts seen, created, updated; items
    created, updated; exceptions now open on those payouts)."""
    gw = gw or _gateway(connection.livemode)
    since = since or timezone.now() - LOOK_BACK
    counts = _counts()
    for payout in payouts_list(gw, account=connection.stripe_user_id, created_gte=int(since.timestamp())):
        _add(counts, payout_sync(connection=connection, payout=payout, gw=gw))
    return counts


def payout_sync(*, connection: StripeConnection, payout: dict, gw: Gateway | None = None) -> dict:
    """One payout (as Stripe sent it) and, when they may have changed, its items."""
    counts = _counts()
    counts["payouts"] = 1
    currency = payout["currency"]
    values = {
        "business": connection.business, "connection": connection, "account": connection.stripe_user_id,
        "livemode": bool(payout.get("livemode")), "amount": from_minor(int(payout["amount"]), currency),
        "currency": currency.upper(), "status": payout["status"], "automatic": bool(payout.get("automatic")),
        "arrival_date": time_of(payout.get("arrival_date")), "stripe_created": time_of(payout.get("created")),
        "description": (payout.get("description") or "")[:255],
        "failure_message": (payout.get("failure_message") or "")[:500],
    }
    with transaction.atomic():
        row = Payout.objects.select_for_update().filter(stripe_id=payout["id"]).first()
        if row is None:
            try:
                with transaction.atomic():
                    row = Payout(stripe_id=payout["id"], **values)
                    row.full_clean(validate_unique=False)  # uniqueness: the database, below
                    row.save()
                counts["payouts_created"] = 1
            except IntegrityError:  # made meanwhile by the webhook or the periodic sync
                row = Payout.objects.select_for_update().get(stripe_id=payout["id"])
        if row.business_id != connection.business_id:
            log.warning("Payout %s belongs to another business; not synced for %s", payout["id"], connection.business)
            return counts
        status_changed = row.status != values["status"]
        changed = [k for k, v in values.items() if k not in ("business", "connection") and getattr(row, k) != v]
        if changed and not counts["payouts_created"]:
            for k in changed:
                setattr(row, k, values[k])
            row.save(update_fields=changed + ["updated_at"])
            counts["payouts_updated"] = 1
        # Items: on the first sync, when the status moves, and while some do not match yet
        # (their payment may have been recorded since). A paid, matched payout costs one call.
        if payout.get("automatic") and (row.items_synced_at is None or status_changed or row.exception_count
                                        or row.difference != 0):
            _sync_items(row, gw or _gateway(connection.livemode), counts)
        counts["exceptions"] = row.exception_count + (0 if row.balanced else 1)
    return counts


def _sync_items(row: Payout, gw: Gateway, counts: dict) -> None:
    txns = [t for t in payout_balance_transactions(gw, account=row.account, payout_id=row.stripe_id)
            if t.get("type") != "payout"]  # the payout's own transaction is the payout itself
    links = _links(row, txns)
    existing = {i.stripe_balance_transaction_id: i for i in PayoutItem.objects.filter(
        stripe_balance_transaction_id__in=[t["id"] for t in txns])}
    new, dirty = [], []
    for txn in txns:
        values = _item_values(txn, links)
        item = existing.get(txn["id"])
        if item is None:
            new.append(PayoutItem(business=row.business, payout=row, stripe_balance_transaction_id=txn["id"], **values))
            continue
        if item.payout_id != row.pk:
            log.warning("Balance transaction %s is on payout %s already", txn["id"], item.payout_id)
            continue
        if any(getattr(item, k if k not in ("payment", "refund", "dispute", "invoice") else f"{k}_id")
               != (v.pk if hasattr(v, "pk") else v) for k, v in values.items()):
            for k, v in values.items():
                setattr(item, k, v)
            dirty.append(item)
    PayoutItem.objects.bulk_create(new, ignore_conflicts=True)
    if dirty:
        PayoutItem.objects.bulk_update(dirty, _ITEM_FIELDS)
    counts["items_created"] += len(new)
    counts["items_updated"] += len(dirty)
    _refresh_totals(row)


def _refresh_totals(row: Payout) -> None:
    gross = fees = net = Decimal("0")
    count = exceptions = 0
    for amount, fee, item_net, exception in row.items.values_list("amount", "fee", "net", "exception"):
        gross += amount
        fees += fee
        net += item_net
        count += 1
        exceptions += bool(exception)
    row.gross, row.fees, row.net, row.item_count, row.exception_count = gross, fees, net, count, exceptions
    row.items_synced_at = timezone.now()
    row.save(update_fields=["gross", "fees", "net", "item_count", "exception_count", "items_synced_at", "updated_at"])


# --- linking a balance transaction to the CRM ------------------------------------------
def _source(txn: dict) -> dict:
    source = txn.get("source")
    return source if isinstance(source, dict) else {"id": source} if isinstance(source, str) else {}


def _charge_of(source: dict) -> str:
    """The charge behind a charge, a refund or a dispute (ids or expanded objects)."""
    if source.get("object") == "charge" or str(source.get("id", "")).startswith(("ch_", "py_")):
        return source.get("id") or ""
    return id_of(source.get("charge")) or ""


def _links(row: Payout, txns: list[dict]) -> dict:
    """The business's payments, refunds and disputes the transactions name: a fixed
    number of queries whatever the number of transactions."""
    charges, intents, refunds, disputes = set(), set(), set(), set()
    for txn in txns:
        source = _source(txn)
        sid = source.get("id") or ""
        charges.add(_charge_of(source))
        if source.get("payment_intent"):
            intents.add(id_of(source.get("payment_intent")))
        if sid.startswith(("re_", "pyr_")):
            refunds.add(sid)
        if sid.startswith(("dp_", "du_")):
            disputes.add(sid)
    business = row.business
    payments = Payment.objects.filter(business=business).select_related("invoice")
    by_charge = {p.stripe_charge_id: p for p in payments.filter(stripe_charge_id__in=charges - {""})}
    by_intent = {p.stripe_payment_intent_id: p for p in payments.filter(stripe_payment_intent_id__in=intents - {None})}
    return {
        "charge": by_charge, "intent": by_intent,
        "refund": {r.stripe_refund_id: r for r in Refund.objects.filter(business=business, stripe_refund_id__in=refunds)
                   .select_related("payment__invoice")},
        "dispute": {d.stripe_id: d for d in Dispute.objects.filter(business=business, stripe_id__in=disputes)
                    .select_related("payment", "invoice")},
    }


def _item_values(txn: dict, links: dict) -> dict:
    currency = txn["currency"]
    source = _source(txn)
    sid = source.get("id") or ""
    charge_id = _charge_of(source)
    payment = links["charge"].get(charge_id) or links["intent"].get(id_of(source.get("payment_intent")))
    refund = links["refund"].get(sid)
    dispute = links["dispute"].get(sid)
    if payment is None and refund is not None:
        payment = refund.payment
    if payment is None and dispute is not None:
        payment = dispute.payment
    invoice = dispute.invoice if dispute is not None else payment.invoice if payment is not None else None
    amount = from_minor(int(txn["amount"]), currency)
    exception, detail = ItemException.NONE, ""
    if invoice is None and _is_customer_money(txn, sid):
        exception = ItemException.NO_INVOICE
        detail = (f"No CRM payment or invoice for {txn['type']} {sid or '(no source)'}"
                  f"{f' (charge {charge_id})' if charge_id and charge_id != sid else ''}: a payment made outside "
                  "the CRM's invoices, or one the app has not recorded yet.")
    elif txn["type"] in ("charge", "payment") and payment is not None and payment.amount != amount:
        exception = ItemException.AMOUNT_MISMATCH
        detail = (f"Stripe's charge is {format_money(amount, currency)}; the CRM's payment is "
                  f"{format_money(payment.amount, payment.currency)}.")
    elif txn["type"] in ("refund", "payment_refund") and refund is not None and refund.amount != -amount:
        exception = ItemException.AMOUNT_MISMATCH
        detail = (f"Stripe's refund is {format_money(-amount, currency)}; the CRM's refund is "
                  f"{format_money(refund.amount, refund.currency)}.")
    fee_details = txn.get("fee_details") or []
    return {
        "type": txn["type"], "reporting_category": txn.get("reporting_category") or "",
        "amount": amount, "fee": from_minor(int(txn.get("fee") or 0), currency),
        "net": from_minor(int(txn["net"]), currency), "currency": currency.upper(),
        "description": (txn.get("description") or "")[:500],
        "fee_description": ", ".join(d.get("description") or d.get("type") or "" for d in fee_details)[:255],
        "source_id": sid, "charge_id": charge_id, "available_on": time_of(txn.get("available_on")),
        "payment": payment, "refund": refund, "dispute": dispute, "invoice": invoice,
        "exception": exception, "exception_detail": detail[:500],
    }


# Balance transactions that are a customer's money (a charge, its refunds and disputes):
# each should be an invoice's. Others (a failed payout's return, Stripe's own fees and
# adjustments) have none, and are no exception.
_CUSTOMER_TYPES = {"charge", "payment", "refund", "payment_refund", "payment_failure_refund", "refund_failure",
                   "payment_reversal"}


def _is_customer_money(txn: dict, source_id: str) -> bool:
    if txn["type"] in _CUSTOMER_TYPES:
        return True
    return source_id.startswith(("dp_", "du_")) or txn.get("reporting_category") in ("dispute", "dispute_reversal")


def _add(total: dict, part: dict) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v
