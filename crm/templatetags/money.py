"""Money in templates: `{{ amount|money:currency }}` -> "1,234.50 USD", "150,000 JPY".

Places come from `finance.money` when it is importable: `decimal_places` (the precision
the app keeps and charges: JPY/ISK 0, KWD 2, see its module doc), else `exponent`, else 2.
An unknown or empty currency code also falls back to 2, so a half-typed record still
renders instead of breaking the page.
"""
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

register = template.Library()

try:  # finance.money is written separately; the UI must not break without it
    from finance import money as _money
except Exception:  # pragma: no cover - depends on what is installed in the tree
    _money = None

_DEFAULT_PLACES = 2


def currency_places(currency) -> int:
    if _money is not None and currency:
        for name in ("decimal_places", "exponent"):
            func = getattr(_money, name, None)
            if func is None:
                continue
            try:
                return int(func(str(currency)))
            except (ValueError, TypeError):
                return _DEFAULT_PLACES
    return _DEFAULT_PLACES


def format_money(amount, currency) -> str:
    if amount is None or amount == "":
        return ""
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except (InvalidOperation, ValueError, TypeError):
        return str(amount)
    places = currency_places(currency)
    value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if value.is_zero():
        value = abs(value)  # never "-0.00"
    text = f"{value:,.{places}f}"
    return f"{text} {str(currency).upper()}" if currency else text


@register.filter
def money(amount, currency=""):
    """`{{ invoice.total|money:invoice.currency }}`."""
    return format_money(amount, currency)


def line_gross(billable):
    """Quantity x unit price, negative for a credit line: the billable's amount before
    discounts and VAT. The full breakdown belongs to `finance.totals.billable_amounts`;
    the lists show only this so they never depend on it."""
    quantity, unit_price = billable.quantity, billable.unit_price
    if quantity is None or unit_price is None:
        return None
    gross = quantity * unit_price
    return -gross if getattr(billable, "line_type", "charge") == "credit" else gross


@register.filter(name="line_gross")
def line_gross_filter(billable):
    """`{{ billable|line_gross|money:billable.currency }}`."""
    return line_gross(billable)
