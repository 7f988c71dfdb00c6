"""A CRM invoice's lines as Stripe `add_lines` entries, and the totals Stripe must show.

Every line keeps its quantity, its VAT and its discount visible on the Stripe invoice:
- price: the catalog's synced Stripe price when the billable used the list price
  (`catalog.sync.price_id_for`), else inline `price_data` (`unit_amount_decimal`, exact) on
  the service's synced product, or on one catch-all product per connection;
- quantity: `quantity`, or `quantity_decimal` for fractions;
- VAT: a Stripe tax rate per (percentage, inclusive/exclusive, the business's country),
  made once per connection and reused (`StripeBillingObject`);
- discount: a coupon on the line, `percent_off` when Stripe's rounding of the percentage
  gives the CRM's discount to the minor unit, else `amount_off` with the CRM's amount;
  coupons have deterministic ids (`crm_pct_12_5_<acct>`, `crm_off_usd_1500_<acct>`), made once.

Two cases cannot be sent as they are, and are sent exactly instead of approximately:
- Stripe rounds `quantity x unit_amount_decimal` to ITS minor unit, while the app keeps
  three-decimal currencies (KWD, BHD...) and ISK on a coarser grid (finance.money). When
  the two roundings differ, the line goes as quantity 1 at the CRM's line amount, with
  "qty x unit price" in its description.
- Stripe refuses negative prices and discounts on negative lines: a credit goes as a
  negative `amount` (after its discount), quantity and discount named in its description.

The app computes tax per line on the same rounded amounts Stripe uses, to Stripe's minor
unit (1 fils for three-decimal currencies, whose total then gets one rounding line back to
the 10-fils grid: `Plan.extra`), so the totals agree to the minor unit; `expected_stripe_totals` says what they must be, and the push
stops (mismatch) when Stripe says otherwise.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction

from finance.invoices import invoice_line_input
from finance.models import Invoice, InvoiceLine, LineType
from finance.money import (LineAmounts, compute_line, decimal_places, exponent, invoice_totals, minor_units,
                           normalize_currency, to_minor)

from ..gateway.client import Gateway, InvalidRequest
from ..models import BillingObjectKind, ServiceSync, StripeBillingObject, StripeConnection, SyncState

log = logging.getLogger(__name__)

_HUNDRED = Decimal(100)


def _decimal_str(value: Decimal) -> str:
    """Stripe's decimal strings: no exponent, no trailing zeros ("1234.5", "3")."""
    text = format(value.normalize(), "f")
    return text


def _round_minor(value: Decimal) -> int:
    # Stripe rounds a line's amount half away from zero to its minor unit.
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _money_text(amount: Decimal, currency: str) -> str:
    """"12.50 USD", "1,500 JPY"; a unit price finer than the currency shows all its digits."""
    value = abs(amount)
    shown = value.quantize(Decimal(1).scaleb(-decimal_places(currency)))
    return f"{shown if shown == value else value.normalize():,f} {currency.upper()}"


@dataclass
class LinePlan:
    """One add_lines entry before its Stripe ids are known."""

    line: InvoiceLine
    amounts: LineAmounts
    sent_amounts: LineAmounts  # as Stripe will compute it (credits carry no discount)
    params: dict
    tax_key: str | None = None
    coupon: tuple[str, dict] | None = None  # (coupon id, create params)
    catalog_price: bool = False
    inline_unit: str | None = None  # unit_amount_decimal of inline price_data


@dataclass
class Plan:
    lines: list[LinePlan] = field(default_factory=list)
    # Entries that are no CRM line: the rounding of a three-decimal currency's total.
    extra: list[dict] = field(default_factory=list)

    def params(self) -> list[dict]:
        """Every add_lines entry, in order."""
        return [*(p.params for p in self.lines), *self.extra]

    def expected(self, currency: str) -> dict[str, int]:
        return expected_stripe_totals([p.sent_amounts for p in self.lines], currency)

    def marker(self) -> str:
        """Names this set of lines in the invoice's metadata once add_lines ran."""
        digest = hashlib.sha256(",".join(str(p.line.pk) for p in self.lines).encode()).hexdigest()[:16]
        return f"{len(self.lines)}:{digest}"


def expected_stripe_totals(sent: list[LineAmounts], currency: str) -> dict[str, int]:
    """The Stripe invoice's figures (minor units) for lines sent as `sent`, through
    `Totals.as_stripe_minor()`. Discounts are item-level here, so Stripe's `subtotal`
    already has them taken off (see the Totals docstring)."""
    minor = invoice_totals(sent, currency).as_stripe_minor()
    return {
        "subtotal": minor["subtotal"] - minor["total_discount_amounts"],
        "discount": minor["total_discount_amounts"],
        "tax": minor["total_taxes"],
        "total": minor["total"],
    }


def totals_difference(expected: dict[str, int], remote) -> dict:
    """{field: {"crm", "stripe", "difference"}} for each figure that differs."""
    out = {}
    for name, want in expected.items():
        got = getattr(remote, name)
        if got != want:
            out[name] = {"crm": want, "stripe": got, "difference": got - want}
    return out


def _plan_line(line: InvoiceLine, currency: str, country: str) -> LinePlan:
    c = normalize_currency(currency)
    amounts = compute_line(invoice_line_input(line, currency))
    meta = {"crm_line_id": str(line.pk)}
    if line.billable_id:
        meta["crm_billable_id"] = str(line.billable_id)
    params: dict = {"description": line.description[:500], "metadata": meta}
    tax_key = None
    if line.vat_rate:
        tax_key = f"{_decimal_str(line.vat_rate)}|{'inclusive' if line.prices_include_vat else 'exclusive'}|{country}"
    plan = LinePlan(line=line, amounts=amounts, sent_amounts=amounts, params=params, tax_key=tax_key)
    qty_text = _decimal_str(line.quantity)
    if line.line_type == LineType.CREDIT:
        # amounts are negative: Stripe takes the credit after its discount as one amount.
        net_gross = amounts.gross - amounts.discount
        params["amount"] = to_minor(net_gross, c)
        note = f"{qty_text} x {_money_text(line.unit_price, c)}"
        if amounts.discount:
            note += f", less {_money_text(amounts.discount, c)} discount"
        params["description"] = f"{line.description} ({note})"[:500]
        params["discountable"] = False
        plan.sent_amounts = LineAmounts(net_gross, Decimal(0), amounts.net, amounts.tax, amounts.total,
                                        currency=c, prices_include_vat=amounts.prices_include_vat)
        return plan
    unit_minor = line.unit_price.scaleb(exponent(c))
    gross_minor = to_minor(amounts.gross, c)
    if _round_minor(line.quantity * unit_minor) == gross_minor:
        if line.quantity == line.quantity.to_integral_value():
            params["quantity"] = int(line.quantity)
        else:
            params["quantity_decimal"] = qty_text
        plan.catalog_price = bool(line.uses_list_price and line.service_id)
        plan.inline_unit = _decimal_str(unit_minor)
    else:
        # The app's grid is coarser than Stripe's minor unit here (see module doc).
        params["quantity"] = 1
        plan.inline_unit = str(gross_minor)
        params["description"] = f"{line.description} ({qty_text} x {_money_text(line.unit_price, c)})"[:500]
    if amounts.discount:
        discount_minor = to_minor(amounts.discount, c)
        pct = line.discount_percent
        if pct is not None and _round_minor(Decimal(gross_minor) * pct / _HUNDRED) == discount_minor:
            text = _decimal_str(pct)
            plan.coupon = (f"crm_pct_{text.replace('.', '_')}",
                           {"percent_off": text, "duration": "once", "name": f"{text}% off"})
        else:
            plan.coupon = (f"crm_off_{c}_{discount_minor}",
                           {"amount_off": discount_minor, "currency": c, "duration": "once",
                            "name": f"{_money_text(amounts.discount, c)} off"})
    return plan


class _Objects:
    """The connection's reusable Stripe objects, loaded in one query, made when missing."""

    def __init__(self, *, gw: Gateway, connection: StripeConnection):
        self.gw = gw
        self.connection = connection
        self.account = connection.stripe_user_id
        self.known = {(o.kind, o.key): o.stripe_id
                      for o in StripeBillingObject.objects.filter(connection=connection)}

    def _remember(self, kind: str, key: str, stripe_id: str) -> str:
        row = StripeBillingObject(business_id=self.connection.business_id, connection=self.connection, kind=kind,
                                  key=key, stripe_id=stripe_id)
        row.full_clean(exclude=["business", "connection"], validate_constraints=False)
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:
            # Another worker made it at the same moment: its object serves as well as ours.
            stripe_id = StripeBillingObject.objects.get(connection=self.connection, kind=kind, key=key).stripe_id
        self.known[(kind, key)] = stripe_id
        return stripe_id

    def _key(self, kind: str, key: str) -> str:
        return f"crm-{kind}-{self.connection.pk}-{self.connection.stripe_user_id}-{key}"

    def tax_rate(self, key: str) -> str:
        found = self.known.get((BillingObjectKind.TAX_RATE, key))
        if found:
            return found
        pct, behaviour, country = key.split("|")
        stripe_id = self.gw.tax_rate_create(
            account=self.account, percentage=pct, inclusive=behaviour == "inclusive", country=country,
            display_name="VAT", metadata={"crm_tax_key": key}, idempotency_key=self._key("txr", key),
        )
        return self._remember(BillingObjectKind.TAX_RATE, key, stripe_id)

    def coupon(self, coupon_id: str, params: dict) -> str:
        found = self.known.get((BillingObjectKind.COUPON, coupon_id))
        if found:
            return found
        # The account in the id too: Stripe scopes ids per account, the sandbox (as of
        # writing) makes client-chosen ids unique across all accounts.
        stripe_id = self.gw.coupon_ensure(account=self.account, coupon_id=f"{coupon_id}_{self.account}", params=params,
                                          idempotency_key=self._key("coupon", coupon_id))
        return self._remember(BillingObjectKind.COUPON, coupon_id, stripe_id)

    def inline_product(self) -> str:
        found = self.known.get((BillingObjectKind.PRODUCT, "inline"))
        if found:
            return found
        product_id = f"crm_inline_{self.account}"
        try:
            product, _ = self.gw.product_create(
                account=self.account, idempotency_key=self._key("product", "inline"),
                params={"id": product_id, "name": "Services (negotiated prices)",
                        "metadata": {"crm_role": "inline_invoice_lines"}},
            )
            product_id = product.id
        except InvalidRequest as exc:
            if exc.code != "resource_already_exists":
                raise
        return self._remember(BillingObjectKind.PRODUCT, "inline", product_id)


def plan_lines(*, gw: Gateway, connection: StripeConnection, invoice: Invoice, lines: list[InvoiceLine]) -> Plan:
    """The add_lines entries of `lines`, making any tax rate, coupon or product they need
    first (once per connection). DB queries: a fixed few, whatever the number of lines
    and services (the catalog prices of all lines in one `price_ids_for`)."""
    from ..catalog.prices import price_ids_for

    country = (invoice.business.country or "").upper()
    plan = Plan(lines=[_plan_line(line, invoice.currency, country) for line in lines])
    rounding = invoice_totals([p.sent_amounts for p in plan.lines], invoice.currency).rounding
    if rounding:
        # Three-decimal currencies: the tax is exact to the fils (as Stripe computes it),
        # and this line puts the total back on the 10-fils grid card payments need
        # (finance.money). No tax, no discount: it is part of what is due, nothing more.
        c = normalize_currency(invoice.currency)
        plan.extra.append({
            "amount": minor_units(rounding, c), "discountable": False,
            "description": f"Rounding to the nearest {_money_text(Decimal(1).scaleb(-decimal_places(c)), c)}",
            "metadata": {"crm_role": "rounding"},
        })
    objects = _Objects(gw=gw, connection=connection)
    services = {p.line.service_id: p.line.service for p in plan.lines if p.line.service_id}
    prices = price_ids_for(connection=connection, wanted=[(p.line.service_id, invoice.currency, p.line.unit_price)
                                                          for p in plan.lines if p.catalog_price])
    products = dict(
        ServiceSync.objects.filter(connection=connection, service_id__in=list(services), state=SyncState.SYNCED)
        .exclude(stripe_product_id="").values_list("service_id", "stripe_product_id")
    ) if services else {}
    for p in plan.lines:
        params = p.params
        if p.tax_key:
            params["tax_rates"] = [objects.tax_rate(p.tax_key)]
        if p.coupon:
            params["discounts"] = [{"coupon": objects.coupon(*p.coupon)}]
        if "amount" in params:
            continue
        price = None
        if p.catalog_price:
            price = prices[(p.line.service_id, invoice.currency, p.line.unit_price)]
        if price:
            params["pricing"] = {"price": price}
        else:
            product = products.get(p.line.service_id) or objects.inline_product()
            params["price_data"] = {"currency": invoice.currency.lower(), "product": product,
                                    "unit_amount_decimal": p.inline_unit}
    return plan
