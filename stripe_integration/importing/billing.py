"""Invoices, payments, refunds, disputes and credit notes, under the business's rules.

An imported invoice is linked to its Stripe invoice as a pushed one is
(`Invoice.stripe_invoice_id`, push status "pushed"), so the webhooks update it from then
on. Its status, dates and amounts, and all money after it (payments with their method,
fee and net; refunds; disputes; credit notes) come from the functions the webhook
handlers use (`webhooks/apply.py`, `webhooks/apply_disputes.py`,
`credit_notes/apply.py`): one mapping from Stripe objects to finance rows. Invoices and
payments are new rows a page at a time: their values come from the mapping's
query-free halves (`invoice_set_from_stripe`, `payment_from_intent`,
`payment_out_of_band`) and are written in one insert per page; refunds, disputes and
credit notes go through the webhooks' functions one by one.
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import EMPTY_VALUES
from django.db.models import Field, Q

from crm.bulk import insert_many
from crm.models import CustomFieldTarget
from finance.models import (
    CollectionMethod, Invoice, InvoiceLine, InvoicePushStatus, InvoicePushStep, InvoiceStatus, LineType, Payment,
)
from finance.money import from_minor

from ..credit_notes.apply import credit_note_apply_stripe
from ..gateway.credit_notes import credit_note_info
from ..models import ImportedObject, UncollectibleAs
from ..rules.mapping import mappings_for, payment_apply_from_stripe
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


# The fields whose values come from Stripe's strings as they are (no conversion, cut or
# default of ours makes them valid), checked per object; the others are valid by
# construction, and the database's constraints keep them too.
_CHECKED = {
    Invoice: ("currency", "collection_method", "stripe_invoice_id", "stripe_number", "stripe_customer_id",
              "hosted_invoice_url", "invoice_pdf_url", "subtotal", "total", "amount_paid", "amount_remaining"),
    Payment: ("currency", "stripe_payment_intent_id", "stripe_charge_id", "amount", "fee", "net", "amount_refunded"),
}
_UNCHECKED = {model: {f.name for f in model._meta.concrete_fields if f.name not in checked}
              for model, checked in _CHECKED.items()}
_SKIP, _UNSURE = object(), object()
_cleaners: dict[type, list[tuple[str, Callable]]] = {}


def _cleaner(field) -> Callable:
    """raw value -> what `clean_fields` sets for it (`field.clean(raw)`), `_SKIP` where it
    skips the field (blank and empty), or `_UNSURE` where Django's clean could refuse it or
    is not followed here (then `clean_fields` itself decides). For a str, a Decimal or None
    it runs Field.clean's steps (to_python; validate's choices, null and blank; each
    validator) without building messages. Of Django's empty values a str can only be ""
    and a Decimal none (comparing a Decimal with the others is slow)."""
    cls = type(field)
    if (cls.clean is not Field.clean or cls.validate is not Field.validate
            or cls.run_validators is not Field.run_validators or field.generated
            or list(field.empty_values) != list(EMPTY_VALUES)):
        return lambda raw: _UNSURE
    to_python, validators, blank, editable = field.to_python, field.validators, field.blank, field.editable
    choices = None
    if field.choices is not None:  # Field.validate's options, one level of groups
        choices = set()
        for key, label in field.choices:
            if isinstance(label, (list, tuple)):
                choices.update(k for k, _ in label)
            else:
                choices.add(key)

    def clean(raw):
        if type(raw) is str:
            if blank and raw == "":
                return _SKIP
        elif raw is None:
            return _SKIP if blank else _UNSURE
        elif type(raw) is not Decimal:
            return _UNSURE
        try:
            value = to_python(raw)
            if type(value) is str:
                empty = value == ""
            elif type(value) is Decimal:
                empty = False
            else:
                return _UNSURE
            if editable and ((choices is not None and not empty and value not in choices) or (not blank and empty)):
                return _UNSURE
            if not empty:
                for validator in validators:
                    validator(value)
        except ValidationError:
            return _UNSURE
        return value
    return clean


def _invalid(row) -> str:
    """Why the row's values from Stripe are not valid ("" if they are), without a query:
    what `clean_fields` says of the checked fields, and the values it sets on them. The
    common case (every value accepted) is decided by each field's `_cleaner`; any other
    goes through `clean_fields`, which gives the same verdict with Django's messages."""
    model = type(row)
    if model not in _cleaners:
        _cleaners[model] = [(f.attname, _cleaner(f)) for f in model._meta.fields if f.name in _CHECKED[model]]
    cleaned = []
    for attname, clean in _cleaners[model]:
        value = clean(getattr(row, attname))
        if value is _UNSURE:
            break
        if value is not _SKIP:
            cleaned.append((attname, value))
    else:
        for attname, value in cleaned:
            setattr(row, attname, value)
        return ""
    try:
        row.clean_fields(exclude=_UNCHECKED[model])
    except ValidationError as exc:
        return "; ".join(f"{name}: {' '.join(errors)}" for name, errors in exc.message_dict.items())[:200]
    return ""


def _numbers(page: Page, stripe_invoices: list[dict]) -> dict[str, str | None]:
    """Local numbers per Stripe invoice id, unique in the business: Stripe's number (or the
    id of an invoice that has none), else that number with the id's end; None when both
    are taken. One query for the page."""
    wanted = {i["id"]: (i.get("number") or i["id"])[:40] for i in stripe_invoices}
    fallback = {sid: f"{number[:30]}-{sid[-8:]}" for sid, number in wanted.items()}
    # Unordered: Invoice's default order (-created_at) made SQLite read every invoice of
    # the business by its (business, created_at) index instead of looking the numbers up.
    taken = set(Invoice.objects.filter(business=page.business, number__in=[*wanted.values(), *fallback.values()])
                .order_by().values_list("number", flat=True))
    numbers = {}
    for sid, number in wanted.items():
        chosen = next((n for n in (number, fallback[sid]) if n not in taken), None)
        taken.add(chosen)
        numbers[sid] = chosen
    return numbers


def _services(page: Page, lines: list[dict]) -> dict[str, int]:
    """Imported prices -> services for the lines (the page loaded those of the first 10
    lines of each invoice; one query for the rest)."""
    price_ids = {((d.get("pricing") or {}).get("price_details") or {}).get("price") for d in lines} - {None, ""}
    services = {p: page.known[p].local_id for p in price_ids if p in page.known and page.known[p].kind == "prices"}
    unknown = price_ids - set(page.known)
    if unknown:
        services.update(ImportedObject.objects.filter(connection=page.connection, kind="prices", stripe_id__in=unknown)
                        .values_list("stripe_id", "local_id"))
    return services


def import_invoices(page: Page, stripe_invoices: list[dict]) -> None:
    """One page of invoices: a query for those already linked, one for number clashes,
    then the new invoices, their lines and their payments made outside Stripe in one
    insert each. Status, number, dates and amounts come from the webhooks' mapping
    (`invoice_set_from_stripe`)."""
    linked = {sid: (pk, business_id) for sid, pk, business_id in Invoice.objects.filter(
        stripe_invoice_id__in=[i["id"] for i in stripe_invoices]).values_list("stripe_invoice_id", "pk", "business_id")}
    todo = []
    for stripe_invoice in stripe_invoices:
        sid = stripe_invoice["id"]
        if sid in linked:
            pk, business_id = linked[sid]
            if business_id != page.business.pk:
                page.record("invoices", sid, "skipped", reason="linked to another business")
            else:
                page.record("invoices", sid, "matched", local_id=pk, reason="already linked (pushed from the CRM)")
            continue
        status, note = _rule_status(page, stripe_invoice.get("status") or "")
        if status is None:
            page.record("invoices", sid, "skipped", reason=note)
            continue
        customer = page.known.get(payments.id_of(stripe_invoice.get("customer")) or "")
        if customer is None or customer.local_id is None:
            page.record("invoices", sid, "skipped", reason="its customer was not imported")
            continue
        todo.append((stripe_invoice, status, note, customer.local_id))
    numbers = _numbers(page, [t[0] for t in todo])
    made = []
    for stripe_invoice, status, note, contact_id in todo:
        sid = stripe_invoice["id"]
        if numbers[sid] is None:
            page.record("invoices", sid, "skipped", reason="its number and the fallback number are taken")
            continue
        invoice = _invoice(page, stripe_invoice, numbers[sid], contact_id)
        payments.invoice_set_from_stripe(invoice=invoice, stripe_invoice={**stripe_invoice, "status": status})
        why = _invalid(invoice)
        if why:
            page.record("invoices", sid, "skipped", reason=f"invalid: {why}")
            continue
        made.append((invoice, stripe_invoice, status, note))
    insert_many([m[0] for m in made], key="stripe_invoice_id")
    lines = {m[1]["id"]: _all_lines(page, m[1]) for m in made}
    services = _services(page, [d for found in lines.values() for d in found])
    insert_many([_line(invoice, i, d, services)
                 for invoice, stripe_invoice, _, _ in made for i, d in enumerate(lines[stripe_invoice["id"]])])
    out_of_band = []
    for invoice, stripe_invoice, status, note in made:
        if status == "paid" and stripe_invoice.get("paid_out_of_band"):
            paid_at = payments.time_of((stripe_invoice.get("status_transitions") or {}).get("paid_at"))
            amount = payments.money_of(stripe_invoice.get("amount_paid"), invoice.currency)
            out_of_band.append(payments.payment_out_of_band(invoice=invoice, amount=amount, paid_at=paid_at, existing=None))
        page.record("invoices", stripe_invoice["id"], "created", local_id=invoice.pk, reason=note)
    insert_many([p for p in out_of_band if p is not None])


def _invoice(page: Page, stripe_invoice: dict, number: str, contact_id: int) -> Invoice:
    """The new invoice as a draft linked to its Stripe invoice, with Stripe's totals (the
    webhooks' mapping then moves it to its status)."""
    currency = (stripe_invoice.get("currency") or "").upper()
    money = lambda key: from_minor(int(stripe_invoice.get(key) or 0), currency)  # noqa: E731
    total_tax = int(stripe_invoice.get("total") or 0) - int(stripe_invoice.get("total_excluding_tax") or stripe_invoice.get("total") or 0)
    discounts = sum(int(d.get("amount") or 0) for d in stripe_invoice.get("total_discount_amounts") or [])
    return Invoice(
        business=page.business, number=number, bill_to_id=contact_id, currency=currency,
        status=InvoiceStatus.DRAFT, collection_method=stripe_invoice.get("collection_method") or CollectionMethod.SEND_INVOICE,
        subtotal=money("subtotal"), total=money("total"), tax_total=from_minor(total_tax, currency),
        discount_total=from_minor(discounts, currency), amount_remaining=money("amount_remaining"),
        stripe_invoice_id=stripe_invoice["id"], push_status=InvoicePushStatus.PUSHED,
        push_step=InvoicePushStep.SENT if stripe_invoice.get("status") != "draft" else InvoicePushStep.CREATED,
        footer=(stripe_invoice.get("footer") or "")[:500],
    )


def import_invoice_payments(page: Page, links: list[dict]) -> None:
    """Which invoice a PaymentIntent pays (basil: PaymentIntents no longer name it)."""
    for link in links:
        payment = link.get("payment") or {}
        intent_id = payments.id_of(payment.get("payment_intent"))
        invoice = page.known.get(payments.id_of(link.get("invoice")) or "")
        if payment.get("type") != "payment_intent" or not intent_id or invoice is None or invoice.local_id is None:
            page.record("invoice_payments", link["id"], "skipped", reason="not a payment of an imported invoice")
            continue
        page.record("invoice_payments", link["id"], "matched", local_id=invoice.local_id, reason="links a payment",
                    ref=intent_id)


def import_payments(page: Page, intents: list[dict]) -> None:
    """One page of PaymentIntents: a query each for the invoices they pay (locked), the
    payments already recorded and the business's payment field mappings; the new
    payments in one insert (the webhooks' mapping, `payment_from_intent`), then what the
    webhooks keep on the invoice from its payments (amount refunded)."""
    links = dict(ImportedObject.objects.filter(connection=page.connection, kind="invoice_payments",
                                               ref__in=[i["id"] for i in intents], local_id__isnull=False)
                 .values_list("ref", "local_id"))
    # By pk (also the order the rows are locked in): Invoice's default order (-created_at)
    # made SQLite read every invoice of the business by its (business, created_at) index.
    invoices = (Invoice.objects.select_for_update().filter(business=page.business, pk__in=set(links.values()))
                .order_by("pk").in_bulk())
    existing = {p.stripe_payment_intent_id: p for p in Payment.objects.filter(
        stripe_payment_intent_id__in=[i["id"] for i in intents if i["id"] in links])}
    mappings = mappings_for(business_id=page.business.pk, applies_to=CustomFieldTarget.PAYMENT)
    made, touched = [], {}
    for intent in intents:
        invoice = invoices.get(links.get(intent["id"]))
        if invoice is None:
            page.record("payments", intent["id"], "skipped", reason="unapplied payment (pays no imported invoice)")
            continue
        invoice.business = page.business
        if intent["id"] in existing:  # recorded by a webhook already: brought up to date as the webhooks do
            payment, _ = payments.payment_apply_intent(invoice=invoice, intent=intent)
        else:
            payment = payments.payment_from_intent(invoice=invoice, intent=intent, existing=None)
        if payment is None:
            page.record("payments", intent["id"], "skipped", reason=f"nothing paid yet ({intent.get('status')})")
            continue
        touched[invoice.pk] = invoice
        if payment.pk is not None:
            page.record("payments", intent["id"], "created", local_id=payment.pk)
            continue
        why = _invalid(payment)
        if why:
            page.record("payments", intent["id"], "skipped", reason=f"invalid: {why}")
            continue
        made.append((payment, intent))
    insert_many([p for p, _ in made], key="stripe_payment_intent_id")
    for payment, intent in made:
        if mappings:  # mapped payment custom fields from the PaymentIntent's metadata
            payment_apply_from_stripe(payment=payment, metadata=intent.get("metadata"))
        page.record("payments", intent["id"], "created", local_id=payment.pk)
    payments.invoices_refresh_refunded(invoices=list(touched.values()))


def _payments_of(page: Page, objects: list[dict]) -> dict[str, Payment | None]:
    """The business's payment each refund or dispute of the page is about (by its charge,
    else its PaymentIntent), with its invoice: one query for the page."""
    charges = {payments.id_of(o.get("charge")) for o in objects} - {None}
    intents = {payments.id_of(o.get("payment_intent")) for o in objects} - {None}
    rows = list(Payment.objects.select_related("invoice").filter(
        Q(stripe_charge_id__in=charges) | Q(stripe_payment_intent_id__in=intents), business=page.business))
    for payment in rows:
        payment.business = payment.invoice.business = page.business
    by_charge = {p.stripe_charge_id: p for p in rows if p.stripe_charge_id}
    by_intent = {p.stripe_payment_intent_id: p for p in rows if p.stripe_payment_intent_id}
    return {o["id"]: by_charge.get(payments.id_of(o.get("charge"))) or by_intent.get(payments.id_of(o.get("payment_intent")))
            for o in objects}


def import_refunds(page: Page, refunds: list[dict]) -> None:
    """A page of refunds: their payments in one query, each refund written by the
    webhooks' `refunds_apply`, then the refunded amount of their invoices at once."""
    found, invoices = _payments_of(page, refunds), {}
    for refund in refunds:
        payment = found[refund["id"]]
        if payment is None:
            page.record("refunds", refund["id"], "skipped", reason="its payment was not imported")
            continue
        created = payments.refunds_apply(payment=payment, refunds=[refund])
        invoices[payment.invoice_id] = payment.invoice
        page.record("refunds", refund["id"], "created" if created else "matched", local_id=payment.pk)
    payments.invoices_refresh_refunded(invoices=list(invoices.values()))


def import_disputes(page: Page, disputes: list[dict]) -> None:
    """A page of disputes: their payments in one query, then each through the webhooks'
    functions (the dispute, its payment's and its invoice's disputed figures)."""
    found = _payments_of(page, disputes)
    for dispute in disputes:
        payment = found[dispute["id"]]
        if payment is None:
            page.record("disputes", dispute["id"], "skipped", reason="its payment was not imported")
            continue
        try:
            row, _ = dispute_apply(payment=payment, dispute=dispute, seen_at=payments.time_of(dispute.get("created")))
        except UnknownDisputeStatus as exc:
            page.record("disputes", dispute["id"], "skipped", reason=str(exc)[:200])
            continue
        payment_refresh_disputed(payment=payment)
        invoice = Invoice.objects.get(pk=payment.invoice_id)
        invoice_refresh_disputes(invoice=invoice)
        page.record("disputes", dispute["id"], "created", local_id=row.pk)


def import_credit_notes(page: Page, notes: list[dict]) -> None:
    """A page of credit notes: their invoices in one query, each note written by the
    webhooks' `credit_note_apply_stripe`."""
    infos = [credit_note_info(note) for note in notes]
    invoices = {i.stripe_invoice_id: i for i in Invoice.objects.filter(
        business=page.business, stripe_invoice_id__in={info.invoice for info in infos if info.invoice})}
    for invoice in invoices.values():
        invoice.business = page.business
    for info in infos:
        invoice = invoices.get(info.invoice)
        if invoice is None:
            page.record("credit_notes", info.id, "skipped", reason="its invoice was not imported")
            continue
        row, _ = credit_note_apply_stripe(invoice=invoice, info=info)
        page.record("credit_notes", info.id, "created", local_id=row.pk)
