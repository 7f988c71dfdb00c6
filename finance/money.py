"""Money arithmetic and Stripe minor units: the ONE place that computes invoice totals.

Pure Python on purpose (``decimal`` only, no Django, never ``float``) so the rules that
decide what a customer pays can be tested without a database.

Two precisions per currency, both taken from Stripe's "Supported currencies" page
(https://docs.stripe.com/currencies):

* ``exponent(c)``: how Stripe's API scales the amount (minor = amount * 10**exponent).
* ``decimal_places(c)``: the precision the app keeps, i.e. the finest amount Stripe
  will actually accept for a charge. It is coarser than the exponent in two cases:

  - Three-decimal currencies (BHD, JOD, KWD, OMR, TND): exponent 3, but Stripe requires
    the last digit of the minor amount to be 0 ("round amounts to the nearest ten",
    #three-decimal). We keep them at 2 decimal places and round ONCE, half-up, to that
    grid; the minor amount is then always a multiple of 10. Rounding to 3 places first
    and then to the nearest ten would round twice: KWD 1.2345 -> 1.235 -> 1240, whereas
    1.2345 is nearer 1.23 (1230). We return 1230.
    Their VAT is the exception (``tax_places``): Stripe computes a line's tax in its
    minor unit, 1 fils, so the app rounds tax to 3 places too, and a line's net and
    total follow. The invoice's total then goes back on the 10-fils grid through one
    rounding adjustment (``Totals.rounding``, at most 5 fils either way), which the
    push sends as a line of its own: so Stripe's total and amount due equal the CRM's to
    the fils AND end in 0, as card payments need.
  - ISK: exponent 2 for backwards compatibility, but since 2023-04-14 charges must be
    whole kronur, minor divisible by 100 (#special-cases; support.stripe.com/questions/
    deprecation-of-fractional-isk-charges-and-refunds). App precision: 0 places.

Rounding is ROUND_HALF_UP everywhere (ties go away from zero, so a credit is exactly
the negative of the matching charge), applied per line (and once per invoice for the
three-decimal rounding adjustment), on Decimals only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import (ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, DivisionByZero, InvalidOperation,
                     Overflow, localcontext)
from typing import Iterable

__all__ = [
    "SUPPORTED_CURRENCIES", "ZERO_DECIMAL_CURRENCIES", "THREE_DECIMAL_CURRENCIES",
    "WHOLE_UNIT_TWO_DECIMAL_CURRENCIES", "MAX_MINOR_AMOUNT", "UnsupportedCurrency", "NotRepresentable",
    "AmountOutOfRange", "normalize_currency", "max_amount", "check_amount", "exponent", "decimal_places", "quantize", "is_representable",
    "require_representable", "to_minor", "from_minor", "is_valid_minor",
    "LineInput", "LineAmounts", "Totals", "compute_line", "invoice_totals", "tax_places", "minor_units",
    "format_money",
]

# docs.stripe.com/currencies#zero-decimal. UGX is on this list and is treated as
# zero-decimal here; Stripe's "special cases" table has also carried a UGX note about
# backwards compatibility (two-decimal-style amounts divisible by 100) for some flows.
# We follow the documented zero-decimal list for charges and invoices; check that table
# before sending UGX payouts.
ZERO_DECIMAL_CURRENCIES = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())

# docs.stripe.com/currencies#three-decimal: minor = amount * 1000, last digit must be 0.
THREE_DECIMAL_CURRENCIES = frozenset("bhd jod kwd omr tnd".split())

# Two-decimal in the API (x100) but charges must be whole units (#special-cases). Only
# ISK has that rule for charges; HUF and TWD are "zero-decimal for payouts only" (manual
# payouts divisible by 100), so invoices in them keep 2 places and are not listed here.
WHOLE_UNIT_TWO_DECIMAL_CURRENCIES = frozenset({"isk"})

# Presentment currencies from docs.stripe.com/currencies#presentment-currencies (card
# payments; availability varies by account country). Stripe's list changes: a code that
# is missing raises UnsupportedCurrency; add it here once its exponent is checked.
SUPPORTED_CURRENCIES = frozenset("""
    usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl
    bsd bwp byn bzd cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd
    fkp gbp gel gip gmd gnf gtq gyd hkd hnl htg huf idr ils inr isk jmd jod jpy kes kgs
    khr kmf krw kwd kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk
    mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub
    rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs tnd top try ttd twd tzs uah
    ugx uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw
""".split()) | ZERO_DECIMAL_CURRENCIES | THREE_DECIMAL_CURRENCIES

# The largest amount Stripe takes in one charge, in minor units. Stripe's API reference
# (spec3.json, e.g. PaymentIntent `amount`): "The amount value supports up to eight digits
# (e.g., a value of 99999999 for a USD charge of $999,999.99)"; also
# docs.stripe.com/currencies#minimum-and-maximum-charge-amounts. An invoice is paid by
# one such charge, so no amount typed for one, and no invoice line, may be larger. The
# same 8 digits apply to every currency here (Stripe's page allows more for a few, e.g.
# IDR; keeping them at 8 digits refuses some amounts Stripe would take, never the reverse).
MAX_MINOR_AMOUNT = 99_999_999

_CODE = re.compile(r"[A-Za-z]{3}")
_GRID = {0: Decimal(1), 2: Decimal("0.01"), 3: Decimal("0.001")}
_HUNDRED = Decimal(100)
# Wide enough that products of 18-digit model values are exact; traps turn silent
# NaN/overflow into errors instead of wrong money.
_CTX = Context(prec=60, rounding=ROUND_HALF_UP,
               traps=[InvalidOperation, DivisionByZero, Overflow])


class UnsupportedCurrency(ValueError):
    """Not a three-letter ISO 4217 code that Stripe accepts (see SUPPORTED_CURRENCIES)."""


class NotRepresentable(ValueError):
    """The amount has more precision than Stripe accepts for its currency."""


class AmountOutOfRange(ValueError):
    """The amount is larger than Stripe accepts for its currency (MAX_MINOR_AMOUNT)."""


def normalize_currency(code: str) -> str:
    """'USD', 'usd', 'Usd' -> 'usd' (Stripe wants lowercase); anything else raises."""
    if not isinstance(code, str):
        raise TypeError(f"currency must be a str, got {type(code).__name__}")
    if not _CODE.fullmatch(code):
        raise UnsupportedCurrency(f"{code!r} is not a three-letter ISO 4217 currency code")
    lowered = code.lower()
    if lowered not in SUPPORTED_CURRENCIES:
        raise UnsupportedCurrency(f"currency {code.upper()} is not supported by Stripe")
    return lowered


def exponent(currency: str) -> int:
    """Stripe's API exponent: 0, 2 or 3 (ISK is 2: its API amounts are x100)."""
    c = normalize_currency(currency)
    if c in ZERO_DECIMAL_CURRENCIES:
        return 0
    if c in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def decimal_places(currency: str) -> int:
    """Places the app keeps: 0 for zero-decimal and ISK, 2 for the rest (incl. KWD...)."""
    c = normalize_currency(currency)
    if c in ZERO_DECIMAL_CURRENCIES or c in WHOLE_UNIT_TWO_DECIMAL_CURRENCIES:
        return 0
    return 2


def tax_places(currency: str) -> int:
    """Places a line's tax (and so its net and total) is rounded to: Stripe's minor unit
    for three-decimal currencies (Stripe rounds tax per line to 1 fils), else the app
    precision. Amounts typed by people (prices, discounts) stay at ``decimal_places``."""
    c = normalize_currency(currency)
    return exponent(c) if c in THREE_DECIMAL_CURRENCIES else decimal_places(c)


def _dec(value, name: str = "amount") -> Decimal:
    """Accept Decimal or int only: a float has already lost the cents it claims to hold."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"{name} must be Decimal or int, not {type(value).__name__}"
                        + (" (floats are never accepted for money)" if isinstance(value, float) else ""))
    d = Decimal(value)
    if not d.is_finite():
        raise ValueError(f"{name} must be finite, got {d}")
    return d


def _round(value: Decimal, places: int) -> Decimal:
    try:
        result = value.quantize(_GRID[places], rounding=ROUND_HALF_UP, context=_CTX)
    except InvalidOperation:
        raise ValueError(f"amount {value} is too large") from None
    return result.copy_abs() if result.is_zero() else result  # no "-0.00" on invoices


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the app precision: JPY 0 places, USD 2, KWD 2 (see module doc), ISK 0."""
    return _round(_dec(amount), decimal_places(currency))


def is_representable(amount: Decimal, currency: str) -> bool:
    """True when Stripe can take the amount exactly (no rounding at the boundary)."""
    d = _dec(amount)
    return _round(d, decimal_places(currency)) == d


def require_representable(amount: Decimal, currency: str) -> Decimal:
    """Return the amount at app precision, or raise NotRepresentable instead of rounding."""
    d = _dec(amount)
    q = _round(d, decimal_places(currency))
    if q != d:
        raise NotRepresentable(
            f"{d} {normalize_currency(currency).upper()} cannot be charged exactly; "
            f"Stripe accepts {decimal_places(currency)} decimal place(s), nearest is {q}")
    return q


def max_amount(currency: str) -> Decimal:
    """The largest amount Stripe takes for `currency`, at app precision: USD 999,999.99,
    JPY 99,999,999, KWD 99,999.99, ISK 999,999."""
    largest = Decimal(MAX_MINOR_AMOUNT).scaleb(-exponent(currency), context=_CTX)
    return largest.quantize(_GRID[decimal_places(currency)], rounding=ROUND_DOWN, context=_CTX)


def check_amount(amount: Decimal, currency: str, *, name: str = "amount", per_unit: bool = False) -> Decimal:
    """An amount as typed for `currency`: at most ``max_amount`` either way, and no finer
    than Stripe accepts. An amount charged as such (a price, a discount, a payment) keeps
    the app precision (``decimal_places``: KWD 2, ISK 0); a unit price (``per_unit``) may
    use the currency's full exponent (KWD 1.235, sent as ``unit_amount_decimal``), as the
    line it makes is rounded once. Returns the amount unchanged; raises AmountOutOfRange,
    NotRepresentable or UnsupportedCurrency with a message that says why."""
    d = _dec(amount, name)
    code = normalize_currency(currency).upper()
    largest = max_amount(currency)
    if abs(d) > largest:
        raise AmountOutOfRange(f"{name} {d:,f} {code} is more than Stripe accepts: at most {largest:,f} {code}")
    places = exponent(currency) if per_unit else decimal_places(currency)
    if _round(d, places) != d:
        raise NotRepresentable(f"{name} {d:f} {code} has more decimals than {code} allows "
                               f"({places} decimal place{'' if places == 1 else 's'})")
    return d


def to_minor(amount: Decimal, currency: str, *, strict: bool = False) -> int:
    """Decimal -> Stripe integer: JPY 1500 -> 1500, USD 12.345 -> 1235, KWD 1.2345 -> 1230,
    ISK 1000 -> 100000. Rounds half-up (strict=True raises NotRepresentable instead).
    TypeError for float, ValueError for NaN/infinity."""
    q = require_representable(amount, currency) if strict else quantize(amount, currency)
    return int(q.scaleb(exponent(currency), context=_CTX))


def minor_units(amount: Decimal, currency: str) -> int:
    """Decimal -> Stripe integer, exactly, at the API exponent (no rounding to the charge
    grid): for computed figures such as a three-decimal currency's tax (KWD 0.062 -> 62).
    Raises NotRepresentable when the amount is finer than the exponent."""
    d = _dec(amount)
    places = exponent(currency)
    if _round(d, places) != d:
        raise NotRepresentable(f"{d} {normalize_currency(currency).upper()} is finer than Stripe's minor unit")
    return int(d.scaleb(places, context=_CTX))


def is_valid_minor(minor: int, currency: str) -> bool:
    """Whether Stripe accepts this minor amount: KWD multiples of 10, ISK of 100."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor must be int, not {type(minor).__name__}")
    return minor % 10 ** (exponent(currency) - decimal_places(currency)) == 0


# (exponent, decimal_places) per currency code as callers spell it ("usd", "USD"): the
# imports convert tens of thousands of amounts a page in a handful of currencies. Only
# codes that pass normalize_currency are kept (a bad one raises each time), so it holds
# at most the supported codes in each spelling met.
_PLACES: dict[str, tuple[int, int]] = {}


def _places(currency: str) -> tuple[int, int]:
    """(exponent(currency), decimal_places(currency)), remembered per code."""
    found = _PLACES.get(currency) if type(currency) is str else None
    if found is None:
        found = exponent(currency), decimal_places(currency)
        if type(currency) is str:
            _PLACES[currency] = found
    return found


def from_minor(minor: int, currency: str) -> Decimal:
    """Stripe integer -> Decimal, exact. Never rounds, because amounts read back from
    Stripe (e.g. fractional ISK charged before 2023) must be recorded as they are: such
    values come back with more places than ``decimal_places`` (is_representable is False)."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor must be int, not {type(minor).__name__}")
    exp, places = _places(currency)
    value = Decimal(minor).scaleb(-exp, context=_CTX)
    shown = _round(value, places)
    return shown if shown == value else _round(value, exp)


# --- lines and invoices ---------------------------------------------------------------

@dataclass(frozen=True)
class LineInput:
    """One invoice line as entered. Percentages are percent (Decimal("20") = 20 %).

    ``discount_amount`` is in the line's prices, i.e. VAT-inclusive when
    ``prices_include_vat``. Credits are positive prices with ``is_credit=True``.
    """
    quantity: Decimal
    unit_price: Decimal
    currency: str
    discount_percent: Decimal | None = None
    discount_amount: Decimal | None = None
    vat_rate: Decimal = Decimal(0)
    prices_include_vat: bool = False
    is_credit: bool = False

    def __post_init__(self):
        normalize_currency(self.currency)
        if _dec(self.quantity, "quantity") <= 0:
            raise ValueError("quantity must be > 0 (use is_credit for credits)")
        if _dec(self.unit_price, "unit_price") < 0:
            raise ValueError("unit_price must be >= 0; use is_credit=True for a credit line")
        if not 0 <= _dec(self.vat_rate, "vat_rate") <= _HUNDRED:
            raise ValueError("vat_rate is a percentage between 0 and 100")
        if self.discount_percent is not None and self.discount_amount is not None:
            raise ValueError("give discount_percent or discount_amount, not both")
        if self.discount_percent is not None and not 0 <= _dec(self.discount_percent, "discount_percent") <= _HUNDRED:
            raise ValueError("discount_percent must be between 0 and 100")
        if self.discount_amount is not None and _dec(self.discount_amount, "discount_amount") < 0:
            raise ValueError("discount_amount must be >= 0")


@dataclass(frozen=True)
class LineAmounts:
    """A computed line, all negative for a credit. Gross and discount are at app precision
    (``decimal_places``); net, tax and total at ``tax_places`` (finer only for
    three-decimal currencies, whose tax Stripe rounds to the fils).

    gross    quantity x unit_price, rounded (VAT-inclusive if prices_include_vat)
    discount taken off gross (same VAT basis as gross)
    net      amount excluding VAT after discount: gross - discount (exclusive) or
             gross - discount - tax (inclusive)
    tax      VAT: net x rate (exclusive) or the part included in gross - discount
    total    net + tax, what the customer pays for the line
    ``subtotal`` (= net + discount) is the line's share of Totals.subtotal.
    """
    gross: Decimal
    discount: Decimal
    net: Decimal
    tax: Decimal
    total: Decimal
    currency: str
    prices_include_vat: bool = False

    def __post_init__(self):
        # Anyone may build one (e.g. from stored lines); refuse figures that break the sums.
        c = normalize_currency(self.currency)
        for name in ("gross", "discount", "net", "tax", "total"):
            places = decimal_places(c) if name in ("gross", "discount") else tax_places(c)
            value = _dec(getattr(self, name), name)
            if _round(value, places) != value:
                raise ValueError(f"{name} {value} is not at {c.upper()} precision")
        included = self.tax if self.prices_include_vat else 0
        if self.net + self.tax != self.total or self.gross - self.discount - included != self.net:
            raise ValueError(f"inconsistent line amounts: {self}")

    @property
    def subtotal(self) -> Decimal:
        return self.net + self.discount


@dataclass(frozen=True)
class Totals:
    """Invoice totals; ``subtotal - discount + tax == total`` always holds.

    subtotal      sum of line subtotals, excluding all VAT, before discounts, plus
                  ``rounding``
    rounding      what brings a three-decimal currency's total back to the 10-fils grid
                  card payments need (0 elsewhere): a line of its own on Stripe's invoice
    discount      sum of line discounts
    tax           ALL VAT, inclusive and exclusive
    included_tax  the part of ``tax`` that was already inside VAT-inclusive prices
    total         what the customer pays

    Mapping to a Stripe invoice (fields of stripe.Invoice, docs.stripe.com/api/invoices),
    per field via ``minor_units``; ``as_stripe_minor()`` returns them side by side:
      total                == invoice.total
      tax                  == sum(invoice.total_taxes[].amount)   (both tax behaviours)
      discount             == sum(invoice.total_discount_amounts[].amount)
      stripe_subtotal      == invoice.subtotal: line amounts INCLUDING inclusive tax,
                              before discounts and exclusive tax (= subtotal + included_tax)
      total_excluding_tax  == invoice.total_excluding_tax (= total - tax)
    Stripe's field doc says item-level discounts are "already incorporated" in
    invoice.subtotal: if discounts are sent per item, compare invoice.subtotal with
    ``stripe_subtotal - discount`` instead. The equalities hold when Stripe computes tax
    per line on the same (rounded) amounts, which is why the app rounds per line.
    """
    currency: str
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal
    included_tax: Decimal = Decimal(0)
    rounding: Decimal = Decimal(0)

    def __post_init__(self):
        normalize_currency(self.currency)
        if self.subtotal - self.discount + self.tax != self.total:
            raise ValueError(f"totals do not add up: {self}")

    @property
    def exclusive_tax(self) -> Decimal:
        return self.tax - self.included_tax

    @property
    def stripe_subtotal(self) -> Decimal:
        return self.subtotal + self.included_tax

    @property
    def total_excluding_tax(self) -> Decimal:
        return self.total - self.tax

    def as_stripe_minor(self) -> dict[str, int]:
        """Integers keyed by the Stripe invoice field they should equal (lists summed)."""
        c = self.currency
        return {"subtotal": minor_units(self.stripe_subtotal, c),
                "total_discount_amounts": minor_units(self.discount, c),
                "total_taxes": minor_units(self.tax, c),
                "total_excluding_tax": minor_units(self.total_excluding_tax, c),
                "total": minor_units(self.total, c)}


def compute_line(line: LineInput) -> LineAmounts:
    """Compute one line, rounding half-up at each step that produces money:
    gross, discount, tax. Everything else is an exact sum of rounded figures."""
    c = normalize_currency(line.currency)
    places, tplaces = decimal_places(c), tax_places(c)
    with localcontext(_CTX):
        gross = _round(_dec(line.quantity) * _dec(line.unit_price), places)
        if line.discount_percent is not None:
            discount = _round(gross * _dec(line.discount_percent) / _HUNDRED, places)
        elif line.discount_amount is not None:
            discount = _round(_dec(line.discount_amount), places)
            if discount > gross:
                raise ValueError(f"discount {discount} exceeds the line amount {gross}")
        else:
            discount = _round(Decimal(0), places)
        rate = _dec(line.vat_rate)
        if line.prices_include_vat:
            # tax = total - total/(1+r) = total*r/(100+r) with r in percent; one rounding
            # of the tax itself, so net = total - tax is exact and the line always adds up.
            total = gross - discount
            tax = _round(total * rate / (_HUNDRED + rate), tplaces)
            net = total - tax
        else:
            net = gross - discount
            tax = _round(net * rate / _HUNDRED, tplaces)
            total = net + tax
    largest = max_amount(c)
    if max(gross, total) > largest:
        raise AmountOutOfRange(f"the line comes to {max(gross, total):,f} {c.upper()}, more than Stripe accepts "
                               f"(at most {largest:,f} {c.upper()})")
    sign = -1 if line.is_credit else 1
    figures = [_round(sign * v, p) for v, p in ((gross, places), (discount, places), (net, tplaces), (tax, tplaces),
                                                  (total, tplaces))]
    return LineAmounts(*figures, currency=c, prices_include_vat=line.prices_include_vat)


def invoice_totals(lines: Iterable[LineInput | LineAmounts], currency: str) -> Totals:
    """Sum lines (computing any LineInput) into Totals. Sums are exact: every line is
    already rounded, so sum(line.total) + Totals.rounding == Totals.total to the minor
    unit (rounding is 0 but for three-decimal currencies, see the module doc).
    Raises ValueError if any line's currency differs from ``currency``."""
    c = normalize_currency(currency)
    zero = _round(Decimal(0), tax_places(c))
    subtotal = discount = tax = included = total = zero
    with localcontext(_CTX):
        for i, line in enumerate(lines):
            if not isinstance(line, (LineInput, LineAmounts)):
                raise TypeError(f"line {i} is a {type(line).__name__}, not LineInput/LineAmounts")
            if normalize_currency(line.currency) != c:
                raise ValueError(f"line {i} is in {line.currency.upper()}, invoice is in "
                                 f"{c.upper()}: one currency per invoice")
            amounts = compute_line(line) if isinstance(line, LineInput) else line
            subtotal += amounts.subtotal
            discount += amounts.discount
            tax += amounts.tax
            total += amounts.total
            if amounts.prices_include_vat:
                included += amounts.tax
        # Three-decimal currencies: back on the charge grid (module doc), in one step.
        rounding = _round(total, decimal_places(c)) - total
    return Totals(c, subtotal + rounding, discount, tax, total + rounding, included, rounding)


# --- showing money ---------------------------------------------------------------------
def format_money(amount, currency, *, empty: str = "-") -> str:
    """The one way money is shown, in the admin, the staff UI and the commands:
    '1,234.50 USD', '1,500 JPY', '12.345 KWD'.

    At the finest places any figure of the app carries in that currency (`tax_places`):
    JPY and ISK 0; three-decimal currencies 3, because their VAT, line totals and the
    rounding adjustment are kept to the fils as Stripe computes them (prices typed by
    people stay at 10 fils and show a trailing 0, as Stripe's Dashboard shows them); the
    rest 2. An unknown or empty code 2, so a half-typed record still renders. Rounded half
    up, never '-0.00'. A missing amount shows `empty` (admin columns '-', templates '')."""
    if amount is None or amount == "":
        return empty
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except (InvalidOperation, ValueError, TypeError):
        return f"{amount} {currency or ''}".strip()
    try:
        places = tax_places(str(currency))
    except ValueError:  # UnsupportedCurrency, or no code at all
        places = 2
    value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if value.is_zero():
        value = abs(value)  # no "-0.00"
    text = f"{value:,.{places}f}"
    return f"{text} {str(currency).upper()}" if currency else text
