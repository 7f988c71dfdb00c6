"""Invoice arithmetic: discounts, tax rates and totals, in integer minor units.

Everything is computed per line, rounded half away from zero to the minor unit,
then summed, as Stripe does with tax rates (support.stripe.com "Rounding rules":
tax is rounded per line item, and the invoice's tax is the sum of the rounded
line taxes). Zero-decimal (JPY) and three-decimal (KWD) currencies need nothing
special: amounts arrive and leave as integers of the currency's minor unit; the
rule that three-decimal amounts end in 0 is the caller's to keep.

Per line, in order:
1. amount = quantity x unit amount (rounded), which is the line's `amount` and
   `subtotal`.
2. Line discounts (the invoice item's `discounts`), in their order, each on what
   the previous ones left: percent_off -> round(rest x percent / 100),
   amount_off -> min(amount_off, rest).
3. Invoice discounts (the invoice's `discounts`), in order, over the lines they
   apply to (discountable, positive, and in the coupon's `applies_to.products` if
   it has one): percent_off per line as above; amount_off capped at what those
   lines have left and spread over them pro rata to what each has left, the
   rounding remainder going to the largest fractional shares (largest-remainder
   method, so the shares sum exactly to the coupon's amount).
4. Taxes on the discounted amount (`net`), with the item's tax rates, else the
   invoice's `default_tax_rates`: inclusive rates (total R%) are extracted,
   taxable = round(net x 100 / (100 + R)), their tax = net - taxable split per
   rate (the last rate takes the rounding difference); exclusive rates are added
   on the amount excluding inclusive tax: round(taxable x rate / 100).
   A customer with tax_exempt=exempt pays no tax (taxability_reason
   customer_exempt), =reverse owes none here (reverse_charge).

Invoice totals, with the definitions of Stripe's API reference:
- subtotal: the lines' amounts after line discounts, before invoice discounts and
  exclusive tax ("Item discounts are already incorporated").
- subtotal_excluding_tax: the same without the inclusive tax those amounts carry.
- total_discount_amounts: every discount's sum over the lines (line and invoice
  discounts alike); total = subtotal - invoice discounts + exclusive tax.
- total_excluding_tax = total - all tax; total_taxes: per tax rate, amounts and
  taxable amounts summed over the lines.
"""

from __future__ import annotations

from decimal import Decimal

from .billing_common import dec, round_half_up
from .billing_tax import coupon_amount_off

HUNDRED = Decimal(100)


def _percent_off(amount: int, percent) -> int:
    return round_half_up(Decimal(amount) * dec(percent) / HUNDRED)


def _applies(terms: dict, product: str | None) -> bool:
    products = (terms.get("applies_to") or {}).get("products")
    return not products or product in products


def _spread(total: int, weights: list[int]) -> list[int]:
    """`total` split pro rata to `weights` (all > 0), summing exactly to total."""
    whole = sum(weights)
    raw = [Decimal(total) * w / whole for w in weights]
    shares = [int(r) for r in raw]  # floor: all values are >= 0
    short = total - sum(shares)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - shares[i]), i))
    for i in order[:short]:
        shares[i] += 1
    return shares


def compute(lines: list[dict], *, invoice_discounts: list[dict], default_tax_rates: list[dict],
            currency: str, tax_exempt: str | None) -> dict:
    """`lines`: [{"amount", "discountable", "product", "discounts": [terms],
    "tax_rates": [tax_rate objects]}], terms being a coupon's terms with its
    discount's id as "discount". Returns {"lines": [{"discount_amounts", "taxes",
    "net"}], and the invoice's total fields}."""
    rest = [ln["amount"] for ln in lines]
    per_line = [dict() for _ in lines]  # discount id -> amount, in application order
    item_discount = [0] * len(lines)

    for i, ln in enumerate(lines):
        for terms in ln["discounts"]:
            if rest[i] <= 0 or not _applies(terms, ln.get("product")):
                cut = 0
            elif terms.get("percent_off") is not None:
                cut = _percent_off(rest[i], terms["percent_off"])
            else:
                cut = min(coupon_amount_off(terms, currency) or 0, rest[i])
            per_line[i][terms["discount"]] = per_line[i].get(terms["discount"], 0) + cut
            rest[i] -= cut
            item_discount[i] += cut

    after_items = list(rest)
    invoice_level = 0
    for terms in invoice_discounts:
        targets = [i for i, ln in enumerate(lines)
                   if ln["discountable"] and rest[i] > 0 and _applies(terms, ln.get("product"))]
        if terms.get("percent_off") is not None:
            cuts = {i: _percent_off(rest[i], terms["percent_off"]) for i in targets}
        elif targets:
            budget = min(coupon_amount_off(terms, currency) or 0, sum(rest[i] for i in targets))
            cuts = dict(zip(targets, _spread(budget, [rest[i] for i in targets])))
        else:
            cuts = {}
        for i, ln in enumerate(lines):
            if ln["discountable"] or i in cuts:
                cut = cuts.get(i, 0)
                per_line[i][terms["discount"]] = per_line[i].get(terms["discount"], 0) + cut
                rest[i] -= cut
                invoice_level += cut

    out_lines = []
    total_taxes: dict[tuple, dict] = {}
    exclusive_tax = inclusive_tax = 0
    subtotal_excluding_tax = 0
    for i, ln in enumerate(lines):
        rates = ln["tax_rates"] or default_tax_rates
        taxes, incl, excl = _taxes(rest[i], rates, tax_exempt)
        inclusive_tax += incl
        exclusive_tax += excl
        # The subtotal's inclusive tax is that of the amount before invoice discounts.
        incl_before = _taxes(after_items[i], rates, tax_exempt)[1]
        subtotal_excluding_tax += after_items[i] - incl_before
        for t in taxes:
            key = (t["tax_rate_details"]["tax_rate"], t["tax_behavior"], t["taxability_reason"])
            agg = total_taxes.setdefault(key, dict(t, amount=0, taxable_amount=0))
            agg["amount"] += t["amount"]
            agg["taxable_amount"] += t["taxable_amount"]
        out_lines.append({
            "net": rest[i],
            "discount_amounts": [{"amount": a, "discount": d} for d, a in per_line[i].items()],
            "taxes": taxes,
        })

    discount_totals: dict[str, int] = {}
    for amounts in per_line:
        for d, a in amounts.items():
            discount_totals[d] = discount_totals.get(d, 0) + a
    subtotal = sum(after_items)
    total = subtotal - invoice_level + exclusive_tax
    return {
        "lines": out_lines,
        "subtotal": subtotal,
        "subtotal_excluding_tax": subtotal_excluding_tax,
        "total_discount_amounts": [{"amount": a, "discount": d} for d, a in discount_totals.items()],
        "total_taxes": list(total_taxes.values()),
        "total": total,
        "total_excluding_tax": total - exclusive_tax - inclusive_tax,
        "tax": exclusive_tax + inclusive_tax,
    }


def _taxes(net: int, rates: list[dict], tax_exempt: str | None) -> tuple[list[dict], int, int]:
    """(taxes, inclusive tax, exclusive tax) of one line's discounted amount."""
    if not rates:
        return [], 0, 0
    reason = {"exempt": "customer_exempt", "reverse": "reverse_charge"}.get(tax_exempt or "none")
    inclusive = [r for r in rates if r["inclusive"]]
    exclusive = [r for r in rates if not r["inclusive"]]
    taxes = []
    taxable = net
    incl_total = 0
    if inclusive and reason is None:
        pct = sum(dec(r["percentage"]) for r in inclusive)
        taxable = round_half_up(Decimal(net) * HUNDRED / (HUNDRED + pct))
        incl_total = net - taxable
        left = incl_total
        for n, r in enumerate(inclusive):
            last = n == len(inclusive) - 1
            amount = left if last else round_half_up(Decimal(taxable) * dec(r["percentage"]) / HUNDRED)
            left -= amount
            taxes.append(_tax(r, amount, taxable, "inclusive", None))
    else:
        taxes.extend(_tax(r, 0, net, "inclusive", reason) for r in inclusive)
    excl_total = 0
    for r in exclusive:
        amount = 0 if reason else round_half_up(Decimal(taxable) * dec(r["percentage"]) / HUNDRED)
        excl_total += amount
        taxes.append(_tax(r, amount, taxable, "exclusive", reason))
    return taxes, incl_total, excl_total


def _tax(rate: dict, amount: int, taxable: int, behavior: str, reason: str | None) -> dict:
    return {
        "amount": amount,
        "tax_behavior": behavior,
        "tax_rate_details": {"tax_rate": rate["id"]},
        # Manual tax rates carry no taxability decision of Stripe Tax.
        "taxability_reason": reason or "not_available",
        "taxable_amount": taxable,
        "type": "tax_rate_details",
    }
