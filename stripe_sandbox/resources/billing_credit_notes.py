"""Credit notes (docs.stripe.com/api/credit_notes): create, preview, retrieve,
update, list, lines, void.

A credit note adjusts a finalized (open, paid or uncollectible) invoice. "A credit
note will first reduce the invoice's amount_remaining (and amount_due), but not below
zero. This amount is indicated by the credit note's pre_payment_amount. The excess
amount is indicated by post_payment_amount" (API reference), and the excess must be
split exactly into refunds (`refund_amount` makes one on the invoice's charge,
`refunds[]` links existing ones), customer balance credit (`credit_amount`) and
credit outside Stripe (`out_of_band_amount`). The invoice's
`pre_payment_credit_notes_amount` / `post_payment_credit_notes_amount` add them up;
an open invoice whose amount_remaining a credit note brings to zero is paid.
Voiding reverses the credit note's effects (not possible once it refunded money).
"""

from __future__ import annotations

from decimal import Decimal

import stripe

from ..core import apply_update, metadata_from, paginate, route
from ..errors import StripeError, invalid_request, parameter_missing
from ..schema import shape
from .billing_collect import _mark_paid
from .billing_common import base_url, emit, round_half_up, unexpected_state
from .billing_invoices import get_invoice
from .billing_lines import changes, lines_of, snapshot
from .payments_charges import check_refund_amount, new_refund
from .payments_common import format_amount

CREDITABLE = ("open", "paid", "uncollectible")
REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")


def _money(amount: int, currency: str) -> str:
    return format_amount(amount, currency)


def _issued(ctx, invoice_id: str) -> list[dict]:
    return [cn for cn in ctx.objects("credit_note") if cn["invoice"] == invoice_id and cn["status"] == "issued"]


def _credited_per_line(ctx, invoice_id: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for cn in _issued(ctx, invoice_id):
        for ln in cn["lines"]["data"]:
            if ln["invoice_line_item"]:
                out[ln["invoice_line_item"]] = out.get(ln["invoice_line_item"], 0) + ln["amount"]
    return out


def _share(value: int, part: int, whole: int) -> int:
    return round_half_up(Decimal(value) * part / whole) if whole else 0


def _invoice_line_credit(ctx, invoice: dict, spec: dict, n: int, credited: dict[str, int]) -> dict:
    prefix = f"lines[{n}]"
    line_id = spec.get("invoice_line_item")
    if not line_id:
        raise parameter_missing(f"{prefix}[invoice_line_item]")
    line = next((ln for ln in lines_of(ctx, invoice) if ln["id"] == line_id), None)
    if line is None:
        raise invalid_request(f"The invoice line item {line_id} is not on invoice {invoice['id']}.",
                              param=f"{prefix}[invoice_line_item]", code="resource_missing")
    if "amount" in spec and "quantity" in spec:
        raise invalid_request(f"You may only specify one of these parameters: {prefix}[amount], "
                              f"{prefix}[quantity].", code="parameters_exclusive")
    if "amount" in spec:
        amount = spec["amount"]
    elif "quantity" in spec:
        if not line["quantity"] or spec["quantity"] > line["quantity"]:
            raise invalid_request(f"The quantity ({spec['quantity']}) exceeds the line's quantity "
                                  f"({line['quantity']}).", param=f"{prefix}[quantity]")
        amount = _share(line["amount"], spec["quantity"], line["quantity"])
    else:
        amount = line["amount"]
    if amount < 0:
        raise invalid_request("Invalid non-negative integer", param=f"{prefix}[amount]")
    left = line["amount"] - credited.get(line_id, 0)
    if amount > left:
        cur = invoice["currency"]
        raise invalid_request(
            f"The credit amount of line {line_id} ({_money(amount, cur)}) exceeds what remains creditable "
            f"on it ({_money(left, cur)}).", param=f"{prefix}[amount]",
        )
    discount = _share(sum(d["amount"] for d in line["discount_amounts"] or []), amount, line["amount"])
    taxes = [dict(t, amount=_share(t["amount"], amount, line["amount"]),
                  taxable_amount=_share(t["taxable_amount"], amount, line["amount"]))
             for t in line["taxes"] or []]
    return {"type": "invoice_line_item", "invoice_line_item": line_id, "amount": amount,
            "discount_amount": discount, "discount_amounts": [
                dict(d, amount=_share(d["amount"], amount, line["amount"])) for d in line["discount_amounts"] or []],
            "taxes": taxes, "quantity": spec.get("quantity", line["quantity"]),
            "description": spec.get("description") or line["description"],
            "unit_amount": None, "unit_amount_decimal": None, "metadata": spec.get("metadata") or {}}


def _custom_line_credit(spec: dict, n: int) -> dict:
    prefix = f"lines[{n}]"
    for name in ("tax_rates", "tax_amounts"):
        if spec.get(name):
            raise invalid_request(f"stripe_sandbox does not model taxes on custom credit note lines ({name}).",
                                  param=f"{prefix}[{name}]")
    if not spec.get("description"):
        raise parameter_missing(f"{prefix}[description]")
    if "unit_amount" not in spec:
        raise parameter_missing(f"{prefix}[unit_amount]")
    quantity = spec.get("quantity", 1)
    if quantity < 1:
        raise invalid_request("Invalid positive integer", param=f"{prefix}[quantity]")
    unit = spec["unit_amount"]
    return {"type": "custom_line_item", "invoice_line_item": None, "amount": unit * quantity,
            "discount_amount": 0, "discount_amounts": [], "taxes": [], "quantity": quantity,
            "description": spec["description"], "unit_amount": unit, "unit_amount_decimal": str(unit),
            "metadata": spec.get("metadata") or {}}


def _lines(ctx, invoice: dict, params: dict) -> list[dict]:
    credited = _credited_per_line(ctx, invoice["id"])
    out = []
    for n, spec in enumerate(params.get("lines") or []):
        if spec.get("type") == "invoice_line_item":
            line = _invoice_line_credit(ctx, invoice, spec, n, credited)
            credited[line["invoice_line_item"]] = credited.get(line["invoice_line_item"], 0) + line["amount"]
        elif spec.get("type") == "custom_line_item":
            line = _custom_line_credit(spec, n)
        else:
            raise parameter_missing(f"lines[{n}][type]")
        out.append(line)
    return out


def _invoice_charge(ctx, invoice: dict) -> dict | None:
    """The succeeded charge that paid the invoice (the last one)."""
    for payment in reversed(invoice["payments"]["data"]):
        if payment["status"] != "paid":
            continue
        pi = ctx.find(payment["payment"].get("payment_intent"), "payment_intent")
        if pi and pi["latest_charge"]:
            return ctx.find(pi["latest_charge"], "charge")
    return None


def build(ctx, params: dict) -> tuple[dict, dict]:
    """The credit note `params` describe (not stored), and its invoice (taken with get)."""
    if "invoice" not in params:
        raise parameter_missing("invoice")
    for name in ("shipping_cost",):
        if name in params:
            raise invalid_request(f"stripe_sandbox does not model {name} on credit notes.", param=name)
    invoice = get_invoice(ctx, params["invoice"])
    cur = invoice["currency"]
    if invoice["status"] not in CREDITABLE:
        raise unexpected_state(
            f"You can only create a credit note for a finalized invoice that is open, paid or uncollectible; "
            f"invoice {invoice['id']} is {invoice['status']}."
        )
    if "lines" not in params and "amount" not in params:
        raise invalid_request("One of `amount`, `lines`, or `shipping_cost` must be provided.")
    lines = _lines(ctx, invoice, params)
    if lines:
        subtotal = sum(ln["amount"] for ln in lines)
        discount = sum(ln["discount_amount"] for ln in lines)
        exclusive = sum(t["amount"] for ln in lines for t in ln["taxes"] if t["tax_behavior"] == "exclusive")
        inclusive = sum(t["amount"] for ln in lines for t in ln["taxes"] if t["tax_behavior"] != "exclusive")
        total = subtotal - discount + exclusive
        if "amount" in params and params["amount"] != total:
            raise invalid_request(f"The amount ({_money(params['amount'], cur)}) must equal the total of the "
                                  f"lines ({_money(total, cur)}).", param="amount")
    else:
        total = subtotal = params["amount"]
        discount = exclusive = inclusive = 0
    if total <= 0:
        raise invalid_request("The credit note total must be positive.", param="amount")
    issued = sum(cn["total"] for cn in _issued(ctx, invoice["id"]))
    if issued + total > invoice["total"]:
        raise invalid_request(
            f"The credit note total ({_money(total, cur)}) exceeds what remains creditable on invoice "
            f"{invoice['id']} ({_money(invoice['total'] - issued, cur)}: its total less the credit notes "
            "already issued).", param="amount",
        )
    pre = min(total, invoice["amount_remaining"]) if invoice["status"] != "paid" else 0
    post = total - pre
    refunds_linked = []
    for n, spec in enumerate(params.get("refunds") or []):
        refund = ctx.find(spec.get("refund"), "refund")
        if refund is None:
            raise invalid_request(f"No such refund: '{spec.get('refund')}'", param=f"refunds[{n}][refund]",
                                  code="resource_missing")
        refunds_linked.append({"amount_refunded": spec.get("amount_refunded", refund["amount"]),
                               "refund": refund["id"], "type": "refund", "payment_record_refund": None})
    refund_amount = params.get("refund_amount", 0)
    credit_amount = params.get("credit_amount", 0)
    out_of_band = params.get("out_of_band_amount", 0)
    for name, value in (("refund_amount", refund_amount), ("credit_amount", credit_amount),
                        ("out_of_band_amount", out_of_band)):
        if value < 0:
            raise invalid_request("Invalid non-negative integer", param=name)
    split = refund_amount + credit_amount + out_of_band + sum(r["amount_refunded"] for r in refunds_linked)
    if split != post:
        raise invalid_request(
            f"The sum of refunds, credit amount, and out of band amount ({_money(split, cur)}) must equal "
            f"the credit note post_payment_amount ({_money(post, cur)})."
        )
    if params.get("reason") is not None and params["reason"] not in REASONS:
        raise invalid_request(f"Invalid reason: must be one of {', '.join(REASONS)}", param="reason")
    now = ctx.now()
    cid = ctx.new_id("cn")
    count = len([cn for cn in ctx.objects("credit_note") if cn["invoice"] == invoice["id"]])
    note = shape(
        "credit_note",
        id=cid,
        amount=total,
        amount_shipping=0,
        created=now,
        currency=cur,
        customer=invoice["customer"],
        customer_balance_transaction=None,
        discount_amount=discount,
        discount_amounts=[],
        effective_at=params.get("effective_at", now),
        invoice=invoice["id"],
        lines={"object": "list", "data": [], "has_more": False, "url": f"/v1/credit_notes/{cid}/lines"},
        livemode=False,
        memo=params.get("memo"),
        metadata=metadata_from(params),
        number=f"{invoice['number']}-CN-{count + 1:02d}",
        out_of_band_amount=out_of_band or None,
        pdf=f"{base_url(ctx)}/hosted/credit_notes/{cid}/pdf",
        post_payment_amount=post,
        pre_payment_amount=pre,
        pretax_credit_amounts=[],
        reason=params.get("reason"),
        refunds=refunds_linked,
        shipping_cost=None,
        status="issued",
        subtotal=subtotal,
        subtotal_excluding_tax=subtotal - inclusive,
        total=total,
        total_excluding_tax=total - exclusive - inclusive,
        total_taxes=[t for ln in lines for t in ln["taxes"]],
        # "A pre_payment credit note means it was issued when the invoice was open" (spec).
        type="post_payment" if invoice["status"] == "paid" else "pre_payment",
        voided_at=None,
    )
    for ln in lines:
        note["lines"]["data"].append(shape(
            "credit_note_line_item", id=ctx.new_id("cnli"), livemode=False, tax_rates=[],
            pretax_credit_amounts=[{"amount": d["amount"], "credit_balance_transaction": None,
                                    "discount": d.get("discount"), "type": "discount"}
                                   for d in ln["discount_amounts"]],
            **ln,
        ))
    note["_refund_amount"] = refund_amount
    note["_credit_amount"] = credit_amount
    return note, invoice


def _adjust_balance(ctx, customer_id: str, amount: int, note: dict, invoice: dict) -> str:
    """Move the customer's balance by `amount` (negative: a credit) and record it."""
    customer = ctx.get("customer", customer_id)
    old = customer.get("balance") or 0
    customer["balance"] = old + amount
    ctx.save(customer)
    txn = shape(
        "customer_balance_transaction", id=ctx.new_id("cbtxn"), amount=amount, created=ctx.now(),
        credit_note=note["id"], currency=note["currency"], customer=customer_id, description=None,
        ending_balance=customer["balance"], invoice=invoice["id"], livemode=False, metadata={},
        type="credit_note",
    )
    ctx.insert(txn)
    emit(ctx, "customer.updated", customer, {"balance": old})
    return txn["id"]


def _public(note: dict) -> dict:
    return {k: v for k, v in note.items() if not k.startswith("_")}


@route("POST", "/v1/credit_notes", params=stripe.params.CreditNoteCreateParams)
def create(ctx, params):
    note, invoice = build(ctx, params)
    refund_amount, credit_amount = note.pop("_refund_amount"), note.pop("_credit_amount")
    before = snapshot(invoice)
    if refund_amount:
        charge = _invoice_charge(ctx, invoice)
        if charge is None:
            raise invalid_request(f"Invoice {invoice['id']} has no charge to refund.", param="refund_amount")
        charge = ctx.get("charge", charge["id"])
        try:
            check_refund_amount(charge, refund_amount)
        except StripeError as exc:
            exc.param = "refund_amount"
            raise
        refund = new_refund(ctx, charge, refund_amount)
        note["refunds"].append({"amount_refunded": refund_amount, "refund": refund["id"], "type": "refund",
                                "payment_record_refund": None})
    if credit_amount:
        note["customer_balance_transaction"] = _adjust_balance(ctx, invoice["customer"], -credit_amount,
                                                               note, invoice)
    pre, post = note["pre_payment_amount"], note["post_payment_amount"]
    invoice["pre_payment_credit_notes_amount"] = (invoice.get("pre_payment_credit_notes_amount") or 0) + pre
    invoice["post_payment_credit_notes_amount"] = (invoice.get("post_payment_credit_notes_amount") or 0) + post
    paid_now = False
    if pre:
        invoice["amount_due"] -= pre
        invoice["amount_remaining"] -= pre
        if invoice["amount_remaining"] == 0 and invoice["status"] in ("open", "uncollectible"):
            _mark_paid(invoice, ctx.now())
            paid_now = True
    ctx.insert(note)
    ctx.save(invoice)
    ctx.emit("credit_note.created", note)
    emit(ctx, "invoice.updated", invoice, changes(before, invoice))
    if paid_now:
        emit(ctx, "invoice.paid", invoice)
    return note


@route("GET", "/v1/credit_notes/preview", params=stripe.params.CreditNotePreviewParams)
def preview(ctx, params):
    note, _invoice = build(ctx, params)
    return _public(note)


@route("GET", "/v1/credit_notes/{id}", params=stripe.params.CreditNoteRetrieveParams)
def retrieve(ctx, params, id):  # noqa: A002 (the spec's path name)
    return ctx.get("credit_note", id)


@route("POST", "/v1/credit_notes/{id}", params=stripe.params.CreditNoteUpdateParams)
def update(ctx, params, id):  # noqa: A002
    note = ctx.get("credit_note", id)
    previous = apply_update(note, params, ("memo", "metadata"))
    if previous:
        ctx.save(note)
        ctx.emit("credit_note.updated", note, previous)
    return note


@route("GET", "/v1/credit_notes", params=stripe.params.CreditNoteListParams)
def list_(ctx, params):
    checks = [(k, params[k]) for k in ("customer", "invoice") if k in params]
    return ctx.list("credit_note", params, url="/v1/credit_notes",
                    where=lambda cn: all(cn.get(k) == v for k, v in checks))


@route("GET", "/v1/credit_notes/{credit_note}/lines", params=stripe.params.CreditNoteListLinesParams)
def list_lines(ctx, params, credit_note):
    note = ctx.get("credit_note", credit_note)
    return paginate(list(note["lines"]["data"]), params, url=f"/v1/credit_notes/{credit_note}/lines",
                    object_name="credit_note_line_item")


@route("POST", "/v1/credit_notes/{id}/void", params=stripe.params.CreditNoteVoidCreditNoteParams)
def void(ctx, params, id):  # noqa: A002
    note = ctx.get("credit_note", id)
    if note["status"] == "void":
        raise invalid_request(f"Credit note {id} is already voided.")
    if note["refunds"]:
        raise invalid_request(f"Credit note {id} can't be voided: it refunded a payment, and refunds can't be "
                              "reversed.")
    invoice = get_invoice(ctx, note["invoice"])
    pre, post = note["pre_payment_amount"], note["post_payment_amount"]
    if pre and invoice["status"] == "paid":
        raise unexpected_state(f"Credit note {id} can't be voided: its invoice {invoice['id']} is paid now.")
    if pre and invoice["status"] == "void":
        raise unexpected_state(f"Credit note {id} can't be voided: its invoice {invoice['id']} is void.")
    before = snapshot(invoice)
    if note["customer_balance_transaction"]:
        txn = ctx.find(note["customer_balance_transaction"], "customer_balance_transaction")
        _adjust_balance(ctx, invoice["customer"], -txn["amount"], note, invoice)
    invoice["pre_payment_credit_notes_amount"] -= pre
    invoice["post_payment_credit_notes_amount"] -= post
    invoice["amount_due"] += pre
    invoice["amount_remaining"] += pre
    ctx.save(invoice)
    note.update(status="void", voided_at=ctx.now())
    ctx.save(note)
    ctx.emit("credit_note.voided", note)
    emit(ctx, "invoice.updated", invoice, changes(before, invoice))
    return note
