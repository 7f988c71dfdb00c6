"""Hosted pages, served like Stripe's without an API key on the sandbox's own address:
the hosted invoice page (`/hosted/invoices/{token}`, the invoice's
`hosted_invoice_url`) with its PDF, and payment receipts (`/hosted/receipts/{charge}`,
a charge's `receipt_url`). The Checkout page lives with Checkout Sessions
(payments_checkout.py) and shares the page frame and card form defined here.

Pages are plain HTML forms, usable without JavaScript and by a headless browser.
The card form takes Stripe's test numbers (spaces allowed): 4242 4242 4242 4242
pays, 4000 0000 0000 0002 is declined ("Your card was declined."), 4000 0000 0000
9995 fails for insufficient funds. Paying an open invoice charges the typed card
without saving it (as Stripe's page does), then hands the result to the billing
modules (`invoice_apply_payment` / `invoice_record_failed_attempt`) and redirects
(303) back to the page, which then shows "Paid" and a receipt link. The page also
offers ACH and SEPA bank debits (hosted_forms.py: "Payment processing" until they
settle) and sends 3-D Secure cards through the authentication page (payments_3ds.py).
"""

from __future__ import annotations

import html
import re
import time
from decimal import Decimal

from ..core import Response, route
from ..errors import StripeError, card_error
from .hosted_forms import bank_from_form, payment_forms
from .payments_cards import check_card, new_card_payment_method
from .payments_common import act_as_owner, exponent, format_amount

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;background:#f6f9fc;color:#1a1f36;margin:0}}
main{{max-width:44rem;margin:3rem auto;background:#fff;border-radius:8px;padding:2rem;
box-shadow:0 2px 8px rgba(0,0,0,.08)}}
table{{width:100%;border-collapse:collapse;margin:1rem 0}}
td,th{{padding:.4rem .6rem;text-align:left;vertical-align:top}} td:first-child,th:first-child{{padding-left:0}}
td:last-child,th:last-child{{padding-right:0}}
th{{color:#697386;font-weight:500;border-bottom:1px solid #e3e8ee}}
.num{{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}}
tr.total td{{font-weight:600;border-top:1px solid #e3e8ee}}
label{{display:block;margin-top:.8rem}} input{{width:100%;padding:.5rem;box-sizing:border-box}}
.row{{display:flex;gap:1rem}} .row label{{flex:1}}
button{{margin-top:1.2rem;width:100%;padding:.7rem;border:0;border-radius:6px;background:#635bff;
color:#fff;font-size:1rem}}
.status{{display:inline-block;padding:.15rem .5rem;border-radius:4px;background:#e3e8ee}}
.status-paid{{background:#d7f7c2;color:#05690d}} .status-void{{background:#ffe0e0}}
[role=alert]{{color:#df1b41;margin-top:.8rem}} .note{{color:#697386;font-size:.9rem}}
</style></head><body><main>{body}
<p class=note>stripe_sandbox: an offline stand-in for Stripe's hosted pages, test mode only.</p>
</main></body></html>"""

esc = html.escape


def page(title: str, body: str, status: int = 200) -> Response:
    return Response.html(_PAGE.format(title=esc(title), body=body), status)


def card_fields(values: dict | None = None, error: str | None = None) -> str:
    """The card inputs of a payment form (the number and CVC are never echoed back)."""
    v = values or {}
    alert = f"<p id=error role=alert>{esc(error)}</p>" if error else ""
    return f"""<label>Card number <input name=card_number inputmode=numeric autocomplete=cc-number
placeholder="4242 4242 4242 4242"></label>
<div class=row><label>Expiry <input name=exp autocomplete=cc-exp placeholder="MM / YY"
value="{esc(v.get('exp', ''))}"></label>
<label>CVC <input name=cvc inputmode=numeric autocomplete=cc-csc placeholder="123"></label></div>
<label>Name on card <input name=name autocomplete=cc-name value="{esc(v.get('name', ''))}"></label>{alert}"""


def card_from_form(ctx, form: dict) -> dict:
    """A new, unattached card PaymentMethod from the form; card errors carry the
    messages Stripe's payment forms show."""
    number = re.sub(r"[\s-]", "", form.get("card_number") or "")
    if len(number) < 12:
        raise card_error("Your card number is incomplete.", code="incomplete_number")
    if form.get("exp"):
        parts = re.findall(r"\d+", form["exp"])
        if len(parts) == 1 and len(parts[0]) == 4:  # "1234", typed without a separator
            parts = [parts[0][:2], parts[0][2:]]
        month, year = parts[:2] if len(parts) >= 2 else (None, None)
    else:
        month, year = form.get("exp_month") or None, form.get("exp_year") or None
    if not month or not year:
        raise card_error("Your card's expiration date is incomplete.", code="incomplete_expiry")
    cvc = (form.get("cvc") or "").strip()
    if not cvc:
        raise card_error("Your card's security code is incomplete.", code="incomplete_cvc")
    digits, exp_month, exp_year = check_card(ctx, number, month, year, cvc)
    name = (form.get("name") or "").strip() or None
    email = (form.get("email") or "").strip() or None
    return new_card_payment_method(ctx, digits, exp_month=exp_month, exp_year=exp_year, cvc=cvc,
                                   billing_details={"name": name, "email": email})


# ------------------------------------------------------------ invoice lookup


def _find_invoice(ctx, token: str) -> dict | None:
    """The invoice whose hosted token is `token`, with `ctx` acting for its account.
    The billing modules keep the token in the internal `_hosted_token` field; a scan
    of the invoices is fast enough at a sandbox's scale."""
    store = ctx.store
    for key, ids in store.index.items():
        if not key.endswith("/invoice"):
            continue
        for oid in ids:
            obj = store.objects.get(oid)
            if obj is not None and obj.get("_hosted_token") == token:
                act_as_owner(ctx, oid)
                return obj
    return None


def _lines(ctx, raw: dict, invoice: dict) -> list[dict]:
    if "_lines" in raw:
        from .billing_lines import lines_of

        return lines_of(ctx, raw)
    return invoice["lines"]["data"]


def _unit_amount(line: dict) -> str:
    pricing = line.get("pricing") or {}
    unit = pricing.get("unit_amount_decimal")
    if unit is None:
        return ""
    value = Decimal(unit)
    if value == value.to_integral_value():
        return format_amount(int(value), line["currency"])
    # Fractional minor units (unit_amount_decimal): show them as given.
    major = value.scaleb(-exponent(line["currency"]))
    return f"{line['currency'].upper()} {major.normalize():f}"


def _quantity(line: dict) -> str:
    """The quantity as given (`quantity_decimal` "28.5", not the truncated 28)."""
    q = line.get("quantity_decimal")
    if q not in (None, ""):
        value = Decimal(str(q))
        return format(value.normalize() if value != value.to_integral_value() else value.to_integral_value(), "f")
    return "" if line.get("quantity") is None else str(line["quantity"])


def _summary(ctx, inv: dict, lines: list[dict]) -> list[tuple[str, int, str]]:
    """(label, amount, key) rows under the lines, adding up to the total: the sum of
    the lines' amounts (before any discount), every discount (line and invoice
    level, as in `total_discount_amounts`), exclusive taxes; inclusive taxes are
    shown as included and not added. Stripe's own `subtotal` already has the line
    discounts taken off, so it would count them twice above a discount list."""
    rows = [("Subtotal", sum(ln["amount"] for ln in lines), "subtotal")]
    for d in inv.get("total_discount_amounts") or []:
        rows.append((_discount_label(ctx, d.get("discount")), -d["amount"], "discount"))
    for t in inv.get("total_taxes") or []:
        rows.append((_tax_label(ctx, t), t["amount"], "tax"))
    return rows


def _discount_label(ctx, discount_id) -> str:
    discount = ctx.find(discount_id) if isinstance(discount_id, str) else discount_id
    coupon = None
    if isinstance(discount, dict):
        source = discount.get("source") or {}
        coupon = source.get("coupon") or discount.get("coupon")
        if isinstance(coupon, str):
            coupon = ctx.find(coupon, "coupon")
    name = (coupon or {}).get("name") if isinstance(coupon, dict) else None
    return f"Discount ({esc(name)})" if name else "Discount"


def _tax_label(ctx, tax: dict) -> str:
    rate_id = ((tax.get("tax_rate_details") or {}).get("tax_rate"))
    rate = ctx.find(rate_id, "tax_rate") if isinstance(rate_id, str) else None
    if rate is None:
        return "Tax"
    inclusive = " included" if rate.get("inclusive") else ""
    percent = format(Decimal(str(rate.get("percentage"))).normalize(), "f")
    return f"{esc(rate.get('display_name') or 'Tax')} ({percent}%{inclusive})"


_STATUS = {"draft": "Draft", "open": "Open", "paid": "Paid", "uncollectible": "Uncollectible", "void": "Void"}
_PAYABLE = ("open", "uncollectible")


def _date(ts: int | None) -> str:
    return time.strftime("%B %-d, %Y", time.gmtime(ts)) if ts else ""


def _receipt_url(ctx, invoice: dict) -> str | None:
    """The receipt of the charge that paid the invoice (its latest paid payment)."""
    for payment in (invoice.get("payments") or {}).get("data") or []:
        ref = payment.get("payment") or {}
        charge = ctx.find(ref.get("charge"), "charge") if ref.get("charge") else None
        if charge is None and ref.get("payment_intent"):
            pi = ctx.find(ref["payment_intent"], "payment_intent")
            charge = ctx.find(pi["latest_charge"], "charge") if pi and pi["latest_charge"] else None
        if charge is not None and charge["status"] == "succeeded":
            return charge["receipt_url"]
    return None


def _pending_payment(ctx, inv: dict) -> dict | None:
    """The PaymentIntent of the invoice's open payment that is processing, if any."""
    for payment in (inv.get("payments") or {}).get("data") or []:
        pi = ctx.find((payment.get("payment") or {}).get("payment_intent"), "payment_intent")
        if payment.get("status") == "open" and pi is not None and pi["status"] == "processing":
            return pi
    return None


def _invoice_page(ctx, token: str, raw: dict, *, error: str | None = None, values: dict | None = None,
                  status: int = 200) -> Response:
    from .billing import invoice_get

    inv = invoice_get(ctx, raw["id"])
    cur = inv["currency"]
    money = lambda amount: format_amount(amount, cur)  # noqa: E731
    lines = _lines(ctx, raw, inv)
    rows = "".join(
        f"<tr><td>{esc(ln.get('description') or '')}</td><td class=num>{_quantity(ln)}</td>"
        f"<td class=num>{_unit_amount(ln)}</td><td class=num>{money(ln['amount'])}</td></tr>"
        for ln in lines
    )
    totals = [(label, money(amount), key) for label, amount, key in _summary(ctx, inv, lines)]
    totals.append(("Total", money(inv["total"]), "total"))
    if inv["amount_paid"]:
        totals.append(("Amount paid", money(inv["amount_paid"]), "amount-paid"))
    totals.append(("Amount due", money(inv["amount_remaining"]), "amount-due"))
    total_rows = "".join(
        f"<tr class=total><td colspan=3>{label}</td><td class=num id={key}>{value}</td></tr>"
        for label, value, key in totals
    )
    label = _STATUS.get(inv["status"], inv["status"] or "")
    due = f"<p>Due {_date(inv['due_date'])}</p>" if inv.get("due_date") and inv["status"] in _PAYABLE else ""
    who = esc(inv.get("customer_name") or inv.get("customer_email") or inv.get("customer") or "")
    email = esc(inv.get("customer_email") or "") if inv.get("customer_name") else ""
    pdf = f'<a id=pdf href="/hosted/invoices/{esc(token)}/pdf">Download invoice</a>'
    pending = _pending_payment(ctx, inv)
    if pending is not None and pending["status"] == "processing":
        action = (f"<p id=processing>Payment processing: the bank debit of {money(pending['amount'])} "
                  "takes a few days to complete.</p>")
    elif inv["status"] in _PAYABLE and inv["amount_remaining"] > 0:
        action = payment_forms(token, cur, money(inv["amount_remaining"]), values, error)
    elif inv["status"] == "paid":
        receipt = _receipt_url(ctx, inv)
        link = f' <a id=receipt href="{esc(receipt)}">View receipt</a>' if receipt else ""
        action = f"<p id=paid>Paid{' ' + _date((inv.get('status_transitions') or {}).get('paid_at'))}.{link}</p>"
    else:
        action = f"<p id=closed>This invoice is {label.lower()} and cannot be paid.</p>"
    body = f"""<p id=account>{esc(inv.get('account_name') or '')}</p>
<h1 id=invoice-number>Invoice {esc(inv.get('number') or '')}</h1>
<p><span id=status class="status status-{esc(inv['status'] or '')}">{esc(label)}</span></p>{due}
<p id=customer>Billed to {who}{'<br>' + email if email else ''}</p>
<table id=lines><tr><th>Description</th><th class=num>Qty</th><th class=num>Unit price</th>
<th class=num>Amount</th></tr>{rows}{total_rows}</table>
{action}<p>{pdf}</p>"""
    return page(f"Invoice {inv.get('number') or ''}", body, status)


_MISSING = "<h1>Invoice not found</h1><p id=error>This invoice link is not valid.</p>"


@route("GET", "/hosted/invoices/{token}", auth="public")
def invoice_page(ctx, params, token):
    raw = _find_invoice(ctx, token)
    if raw is None:
        return page("Invoice not found", _MISSING, 404)
    return _invoice_page(ctx, token, raw)


@route("POST", "/hosted/invoices/{token}", auth="public")
def invoice_pay(ctx, form, token):
    from .billing import invoice_apply_payment, invoice_record_failed_attempt, invoice_record_processing
    from .billing_common import emit
    from .payments import pay_for_invoice

    raw = _find_invoice(ctx, token)
    if raw is None:
        return page("Invoice not found", _MISSING, 404)
    if raw["status"] not in _PAYABLE or raw["amount_remaining"] <= 0:
        # Already paid (a second click) or closed: nothing to charge.
        return Response(303, b"", {"Location": f"/hosted/invoices/{token}"})
    if _pending_payment(ctx, raw) is not None:
        return Response(303, b"", {"Location": f"/hosted/invoices/{token}"})
    method = form.get("method") or "card"
    try:
        pm = card_from_form(ctx, form) if method == "card" else bank_from_form(ctx, form, method)
        pi, charge = pay_for_invoice(ctx, customer=raw["customer"], amount=raw["amount_remaining"],
                                     currency=raw["currency"], pm=pm, invoice_id=raw["id"],
                                     description=None, metadata={}, off_session=False)
    except StripeError as exc:
        if exc.type != "card_error" and method == "card":
            raise
        failed = exc.extra.get("payment_intent")
        if failed is not None:
            invoice_record_failed_attempt(ctx, raw["id"], payment_intent=failed,
                                          error=failed["last_payment_error"])
        return _invoice_page(ctx, token, raw, error=exc.message, values=form,
                             status=402 if exc.type == "card_error" else 400)
    if pi["status"] == "requires_action":  # 3-D Secure: the customer authenticates first
        invoice_record_processing(ctx, raw["id"], payment_intent=pi)
        emit(ctx, "invoice.payment_action_required", ctx.get("invoice", raw["id"]))
        return Response(303, b"", {"Location": pi["next_action"]["redirect_to_url"]["url"]})
    if pi["status"] == "processing":  # a bank debit: the invoice is paid when it settles
        invoice_record_processing(ctx, raw["id"], payment_intent=pi)
    else:
        invoice_apply_payment(ctx, raw["id"], payment_intent=pi, charge=charge)
    return Response(303, b"", {"Location": f"/hosted/invoices/{token}"})


# ---------------------------------------------------------------------- PDF


def _pdf_text(text: str) -> str:
    raw = text.encode("cp1252", "replace").decode("latin-1")
    return raw.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_document(lines: list[str], *, per_page: int = 50) -> bytes:
    """A small, valid PDF (Helvetica text, A4 pages) written by hand."""
    chunks = [lines[i:i + per_page] for i in range(0, len(lines), per_page)] or [[]]
    n = len(chunks)
    # Objects: 1 catalog, 2 pages, 3 font, then a page and its content per chunk.
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, chunk in enumerate(chunks):
        ops = "BT /F1 11 Tf 14 TL 56 790 Td " + " ".join(f"({_pdf_text(t)}) Tj T*" for t in chunk) + " ET"
        stream = ops.encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@route("GET", "/hosted/invoices/{token}/pdf", auth="public")
def invoice_pdf(ctx, params, token):
    from .billing import invoice_get

    raw = _find_invoice(ctx, token)
    if raw is None:
        return page("Invoice not found", _MISSING, 404)
    inv = invoice_get(ctx, raw["id"])
    cur = inv["currency"]

    def money(amount):
        return format_amount(amount, cur, symbol=False)

    text = [
        inv.get("account_name") or "",
        f"Invoice {inv.get('number') or ''}",
        f"Status: {_STATUS.get(inv['status'], inv['status'])}",
        f"Date of issue: {_date(inv.get('effective_at') or inv['created'])}",
        f"Billed to: {inv.get('customer_name') or inv.get('customer_email') or inv.get('customer')}",
        "",
    ]
    lines = _lines(ctx, raw, inv)
    for ln in lines:
        text.append(f"{ln.get('description') or ''}  x{_quantity(ln) or 1}  {money(ln['amount'])}")
    text.append("")
    text += [f"{html.unescape(label)}: {money(amount)}" for label, amount, _ in _summary(ctx, inv, lines)]
    text += [f"Total: {money(inv['total'])}", f"Amount due: {money(inv['amount_remaining'])}"]
    name = f"Invoice-{inv.get('number') or inv['id']}.pdf"
    return Response(200, pdf_document(text), {"Content-Type": "application/pdf",
                                              "Content-Disposition": f'inline; filename="{name}"'})


# ------------------------------------------------------------------ receipts


@route("GET", "/hosted/receipts/{charge}", auth="public")
def receipt(ctx, params, charge):
    from .payments import invoice_of_charge

    obj = act_as_owner(ctx, charge)
    if obj is None or obj.get("object") != "charge" or obj["status"] != "succeeded":
        return page("Receipt", "<h1>Receipt not found</h1>", 404)
    account = ctx.store.objects.get(ctx.account) or {}
    merchant = esc((account.get("business_profile") or {}).get("name") or "Sandbox merchant")
    details = obj["payment_method_details"]
    kind = details["type"]
    paid_with = (f"{details['card']['brand'].title()} - {details['card']['last4']}" if kind == "card" else
                 f"{'Bank account' if kind == 'us_bank_account' else 'SEPA Direct Debit'} - {details[kind]['last4']}")
    cur = obj["currency"]
    invoice_id = invoice_of_charge(ctx, charge)
    invoice = ctx.find(invoice_id, "invoice") if invoice_id else None
    rows = [("Amount paid", format_amount(obj["amount"], cur), "amount"),
            ("Date paid", _date(obj["created"]), "date"),
            ("Payment method", paid_with, "card")]
    if invoice is not None:
        rows.insert(0, ("Invoice number", esc(invoice.get("number") or ""), "invoice"))
    if obj["amount_refunded"]:
        rows.append(("Refunded", format_amount(obj["amount_refunded"], cur), "refunded"))
    table = "".join(f"<tr><td>{k}</td><td class=num id={key}>{v}</td></tr>" for k, v, key in rows)
    return page(f"Receipt from {merchant}", f"<h1>Receipt from {merchant}</h1><table>{table}</table>")
