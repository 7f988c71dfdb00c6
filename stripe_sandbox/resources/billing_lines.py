"""Invoice line items (`il_...`, object `line_item`) and the refresh of an
invoice's lines and totals.

Each line is backed by an invoice item (`parent.invoice_item_details`) and mirrors
it; the invoice keeps its lines' order (internal `_lines`). Stripe recomputes a
draft invoice's totals whenever its items, discounts or tax rates change, so every
change to a draft ends with `refresh()`. After finalization amounts never change.
"""

from __future__ import annotations

from ..schema import shape
from .billing_common import public
from .billing_tax import discount_terms
from .billing_totals import compute

LINES_SHOWN = 10  # an invoice embeds its first 10 lines; GET .../lines pages the rest
MAX_LINES = 250  # "Invoices can have at most 250 line items" (docs: invoice limits)



def new_line(ctx, item: dict) -> dict:
    line = shape(
        "line_item",
        id=ctx.new_id("il"),
        invoice=item["invoice"],
        livemode=False,
        parent={
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": item["id"], "proration": False,
                "proration_details": {"credited_items": None}, "subscription": None,
            },
            "subscription_item_details": None,
        },
    )
    _mirror(line, item)
    return line


def _mirror(line: dict, item: dict) -> None:
    for name in ("amount", "currency", "description", "discountable", "discounts", "metadata",
                 "period", "pricing", "quantity", "quantity_decimal"):
        line[name] = public(item[name])
    line["subtotal"] = item["amount"]


def lines_of(ctx, invoice: dict) -> list[dict]:
    # get(): a write request may change them (the framework journals what get() returns).
    return [ctx.get("line_item", lid) for lid in invoice["_lines"]]


def item_of(ctx, line: dict) -> dict:
    return ctx.find(line["parent"]["invoice_item_details"]["invoice_item"], "invoiceitem")


def lines_list(invoice: dict, lines: list[dict]) -> dict:
    return {
        "object": "list",
        "data": [public(ln) for ln in lines[:LINES_SHOWN]],
        "has_more": len(lines) > LINES_SHOWN,
        "url": f"/v1/invoices/{invoice['id']}/lines",
    }


def snapshot(invoice: dict) -> dict:
    return {k: public(invoice[k]) for k in invoice if not k.startswith("_") and k not in ("lines", "payments")}


def changes(before: dict, invoice: dict) -> dict:
    """previous_attributes: old values of what changed (hashes: changed keys only)."""
    out = {}
    for k, old in before.items():
        new = invoice.get(k)
        if new != old:
            if isinstance(old, dict) and isinstance(new, dict):
                out[k] = {kk: old.get(kk) for kk in set(old) | set(new) if old.get(kk) != new.get(kk)}
            else:
                out[k] = old
    return out


def refresh(ctx, invoice: dict) -> None:
    """Re-mirror the lines from their items and recompute the invoice's totals
    (drafts only: a finalized invoice's amounts are fixed)."""
    # Lines are read with find() and taken with get() (which journals a copy for
    # rollback) only when they change: adding one line to a long invoice stays cheap.
    lines = [ctx.find(lid, "line_item") for lid in invoice["_lines"]]
    if invoice["status"] == "draft":
        items = [item_of(ctx, ln) for ln in lines]
        customer = ctx.find(invoice["customer"], "customer") or {}
        result = compute(
            [{
                "amount": item["amount"],
                "discountable": item["discountable"],
                "product": ((item["pricing"] or {}).get("price_details") or {}).get("product"),
                "discounts": [_terms(ctx, d) for d in item["discounts"] or []],
                "tax_rates": item["tax_rates"] or [],
            } for item in items],
            invoice_discounts=[_terms(ctx, d) for d in invoice["discounts"]],
            default_tax_rates=invoice["default_tax_rates"],
            currency=invoice["currency"],
            tax_exempt=customer.get("tax_exempt"),
        )
        for n, (ln, item, res) in enumerate(zip(lines, items, result["lines"])):
            new = dict(ln)
            _mirror(new, item)
            new["discount_amounts"] = res["discount_amounts"]
            new["pretax_credit_amounts"] = [_pretax(d) for d in res["discount_amounts"]]
            new["taxes"] = res["taxes"]
            if new != ln:
                line = ctx.get("line_item", ln["id"])
                line.update(new)
                ctx.save(line)
                lines[n] = line
        for name in ("subtotal", "subtotal_excluding_tax", "total", "total_excluding_tax",
                     "total_discount_amounts", "total_taxes"):
            invoice[name] = result[name]
        invoice["total_pretax_credit_amounts"] = [_pretax(d) for d in result["total_discount_amounts"]]
        # A draft shows the customer's current balance as its starting balance;
        # finalization applies it (billing_invoices.finalize).
        balance = customer.get("balance") or 0
        invoice["starting_balance"] = balance
        due = max(invoice["total"] + balance, 0)
        invoice["amount_due"] = due
        invoice["amount_remaining"] = max(due - invoice["amount_paid"], 0)
    invoice["lines"] = lines_list(invoice, lines)
    ctx.save(invoice)


def _terms(ctx, discount_id: str) -> dict:
    return dict(discount_terms(ctx, discount_id), discount=discount_id)


def _pretax(d: dict) -> dict:
    return {"amount": d["amount"], "credit_balance_transaction": None, "discount": d["discount"],
            "type": "discount"}


def attach(ctx, invoice: dict, item: dict) -> dict:
    """Put an invoice item on a draft invoice as a new line (no refresh)."""
    item["invoice"] = invoice["id"]
    line = new_line(ctx, item)
    item["_line"] = line["id"]
    ctx.insert(line)
    invoice["_lines"].append(line["id"])
    ctx.save(item)
    return line


def detach(ctx, invoice: dict, item: dict) -> None:
    """Take an invoice item's line off a draft invoice (no refresh)."""
    line_id = item.pop("_line", None)
    if line_id in invoice["_lines"]:
        invoice["_lines"].remove(line_id)
        ctx.delete("line_item", line_id)
    item["invoice"] = None
    ctx.save(item)
