"""Invoices, payments, refunds, disputes and credit notes, under the business's rules.

An imported invoice is linked to its Stripe invoice as a pushed one is
(`Invoice.stripe_invoice_id`, push status "pushed"), so the webhooks update it from then
on. Its status, dates and amounts, and all money after it (payments with their method,
fee and net; refunds; disputes; credit notes) are written by the functions the webhook
handlers use (`webhooks/apply.py`, `webhooks/apply_disputes.py`,
`credit_notes/apply.py`): one mapping from Stripe objects to finance rows.
"""
from __future__ import annotations

from decimal import Decimal

from django.db.models import Q

from finance.models import (
    CollectionMethod, Invoice, InvoiceLine, InvoicePushStatus, InvoicePushStep, InvoiceStatus, LineType, Payment,
)
from finance.money import from_minor

from ..credit_notes.apply import credit_note_apply_stripe
from ..gateway.credit_notes import credit_note_info
from ..models import ImportedObject, UncollectibleAs
from ..webhooks import apply as payments
from ..webhooks.apply_disputes import UnknownDisputeStatus, dispute_apply, invoice_refresh_disputes, payment_refresh_disputed
from .outcome import Page


def _rule_status(page: Page, stripe_status: str) -> tuple[str | None, str]:
    """The status the invoice is imported with, or (None, why it is left out)."""
    rules = page.rules
    if stripe_status == "draft" and not rules.import_drafts:
        return None, "draft (rule: drafts are not imported)"
    if stripe_status == "void" and not rules.import_void:
        return None, "void (rule: void invoices are not imported)"
    if stripe_status == "uncollectible" and rules.uncollectible_as == UncollectibleAs.PAID:
        return "paid", "uncollectible, imported as paid (rule)"
    if stripe_status not in payments.STRIPE_INVOICE_STATUS:
        return None, f"unknown status {stripe_status!r}"
    return stripe_status, ""


def _number(page: Page, stripe_invoice: dict) -> str:
    wanted = (stripe_invoice.get("number") or stripe_invoice["id"])[:40]
    if not Invoice.objects.filter(business=page.business, number=wanted).exists():
        return wanted
    return f"{wanted[:30]}-{stripe_invoice['id'][-8:]}"


def _line(invoice: Invoice, position: int, data: dict, services: dict[str, int]) -> InvoiceLine:
    currency = invoice.currency
    amount = int(data.get("amount") or 0)
    quantity = Decimal(str(data.get("quantity") or 1))
    total = from_minor(abs(amount), currency)
    price_id = ((data.get("pricing") or {}).get("price_details") or {}).get("price")
    taxes = sum(int(t.get("amount") or 0) for t in data.get("taxes") or [] if isinstance(t, dict))
    return InvoiceLine(
        business=invoice.business, invoice=invoice, position=position, service_id=services.get(price_id),
        description=(data.get("description") or "Imported line")[:500], quantity=quantity,
        unit_price=(total / quantity).quantize(Decimal("0.001")), subtotal=total,
        tax=from_minor(abs(taxes), currency), total=from_minor(abs(amount + taxes), currency),
        line_type=LineType.CREDIT if amount < 0 else LineType.CHARGE, stripe_line_id=(data.get("id") or "")[:255],
    )


def _all_lines(page: Page, stripe_invoice: dict) -> list[dict]:
    """The invoice's lines: a listed invoice carries the first 10; the rest are listed
    (one more call per 100 lines, for the few invoices that have more)."""
    embedded = stripe_invoice.get("lines") or {}
    lines = list(embedded.get("data") or [])
    more = bool(embedded.get("has_more"))
    while more and lines:
        extra, more = page.gw.invoice_lines_page(account=page.connection.stripe_user_id,
                                                 invoice_id=stripe_invoice["id"], starting_after=lines[-1]["id"])
        page.job.pages += 1
        lines += extra
        more = more and bool(extra)
    return lines


def import_invoice(page: Page, stripe_invoice: dict) -> None:
    sid = stripe_invoice["id"]
    existing = Invoice.objects.filter(stripe_invoice_id=sid).only("pk", "business_id").first()
    if existing is not None:
        if existing.business_id != page.business.pk:
            page.record("invoices", sid, "skipped", reason="linked to another business")
        else:
            page.record("invoices", sid, "matched", local_id=existing.pk, reason="already linked (pushed from the CRM)")
        return
    status, note = _rule_status(page, stripe_invoice.get("status") or "")
    if status is None:
        page.record("invoices", sid, "skipped", reason=note)
        return
    customer = page.known.get(payments.id_of(stripe_invoice.get("customer")) or "")
    if customer is None or customer.local_id is None:
        page.record("invoices", sid, "skipped", reason="its customer was not imported")
        return
    currency = (stripe_invoice.get("currency") or "").upper()
    money = lambda key: from_minor(int(stripe_invoice.get(key) or 0), currency)  # noqa: E731
    total_tax = int(stripe_invoice.get("total") or 0) - int(stripe_invoice.get("total_excluding_tax") or stripe_invoice.get("total") or 0)
    discounts = sum(int(d.get("amount") or 0) for d in stripe_invoice.get("total_discount_amounts") or [])
    invoice = Invoice(
        business=page.business, number=_number(page, stripe_invoice), bill_to_id=customer.local_id, currency=currency,
        status=InvoiceStatus.DRAFT, collection_method=stripe_invoice.get("collection_method") or CollectionMethod.SEND_INVOICE,
        subtotal=money("subtotal"), total=money("total"), tax_total=from_minor(total_tax, currency),
        discount_total=from_minor(discounts, currency), amount_remaining=money("amount_remaining"),
        stripe_invoice_id=sid, push_status=InvoicePushStatus.PUSHED,
        push_step=InvoicePushStep.SENT if stripe_invoice.get("status") != "draft" else InvoicePushStep.CREATED,
        footer=(stripe_invoice.get("footer") or "")[:500],
    )
    invoice.full_clean()
    invoice.save()
    lines = _all_lines(page, stripe_invoice)
    price_ids = [((d.get("pricing") or {}).get("price_details") or {}).get("price") for d in lines]
    services = {r.stripe_id: r.local_id for r in page.known.values() if r.kind == "prices" and r.stripe_id in price_ids}
    unknown = {p for p in price_ids if p and p not in page.known}
    if unknown:  # prices of the lines beyond the first 10 (the page loaded the others)
        services.update(ImportedObject.objects.filter(connection=page.connection, kind="prices", stripe_id__in=unknown)
                        .values_list("stripe_id", "local_id"))
    InvoiceLine.objects.bulk_create([_line(invoice, i, d, services) for i, d in enumerate(lines)])
    # Status, number, dates, amounts paid and remaining, credited: the webhooks' function.
    payments.invoice_apply_stripe(invoice=invoice, stripe_invoice={**stripe_invoice, "status": status})
    if status == "paid" and stripe_invoice.get("paid_out_of_band"):
        payments.payment_record_out_of_band(invoice=invoice, amount=money("amount_paid"),
                                            paid_at=payments.time_of((stripe_invoice.get("status_transitions") or {}).get("paid_at")))
    page.record("invoices", sid, "created", local_id=invoice.pk, reason=note)


def import_invoice_payment(page: Page, link: dict) -> None:
    """Which invoice a PaymentIntent pays (basil: PaymentIntents no longer name it)."""
    payment = link.get("payment") or {}
    intent_id = payments.id_of(payment.get("payment_intent"))
    invoice = page.known.get(payments.id_of(link.get("invoice")) or "")
    if payment.get("type") != "payment_intent" or not intent_id or invoice is None or invoice.local_id is None:
        page.record("invoice_payments", link["id"], "skipped", reason="not a payment of an imported invoice")
        return
    page.record("invoice_payments", link["id"], "matched", local_id=invoice.local_id, reason="links a payment",
                ref=intent_id)


def import_payment(page: Page, intent: dict, links: dict[str, int]) -> None:
    invoice_id = links.get(intent["id"])
    if invoice_id is None:
        page.record("payments", intent["id"], "skipped", reason="unapplied payment (pays no imported invoice)")
        return
    invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
    payment, _ = payments.payment_apply_intent(invoice=invoice, intent=intent)
    if payment is None:
        page.record("payments", intent["id"], "skipped", reason=f"nothing paid yet ({intent.get('status')})")
        return
    page.record("payments", intent["id"], "created", local_id=payment.pk)


def _payment_of(page: Page, obj: dict) -> Payment | None:
    charge_id, intent_id = payments.id_of(obj.get("charge")), payments.id_of(obj.get("payment_intent"))
    match = Q(pk__in=[])
    if charge_id:
        match |= Q(stripe_charge_id=charge_id)
    if intent_id:
        match |= Q(stripe_payment_intent_id=intent_id)
    return Payment.objects.select_related("invoice").filter(match, business=page.business).first()


def import_refund(page: Page, refund: dict) -> None:
    payment = _payment_of(page, refund)
    if payment is None:
        page.record("refunds", refund["id"], "skipped", reason="its payment was not imported")
        return
    created = payments.refunds_apply(payment=payment, refunds=[refund])
    payments.invoice_refresh_refunded(invoice=payment.invoice)
    page.record("refunds", refund["id"], "created" if created else "matched", local_id=payment.pk)


def import_dispute(page: Page, dispute: dict) -> None:
    payment = _payment_of(page, dispute)
    if payment is None:
        page.record("disputes", dispute["id"], "skipped", reason="its payment was not imported")
        return
    try:
        row, _ = dispute_apply(payment=payment, dispute=dispute, seen_at=payments.time_of(dispute.get("created")))
    except UnknownDisputeStatus as exc:
        page.record("disputes", dispute["id"], "skipped", reason=str(exc)[:200])
        return
    payment_refresh_disputed(payment=payment)
    invoice = Invoice.objects.get(pk=payment.invoice_id)
    invoice_refresh_disputes(invoice=invoice)
    page.record("disputes", dispute["id"], "created", local_id=row.pk)


def import_credit_note(page: Page, note: dict) -> None:
    info = credit_note_info(note)
    invoice = Invoice.objects.filter(business=page.business, stripe_invoice_id=info.invoice).first()
    if invoice is None:
        page.record("credit_notes", info.id, "skipped", reason="its invoice was not imported")
        return
    row, _ = credit_note_apply_stripe(invoice=invoice, info=info)
    page.record("credit_notes", info.id, "created", local_id=row.pk)
