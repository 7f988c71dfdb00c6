"""Money in templates: `{{ amount|money:currency }}` -> "1,234.50 USD", "150,000 JPY".

The text is `finance.money.format_money`'s, the admin's too (one rule: the places the app
keeps, JPY/ISK 0, KWD 2; an unknown or empty code 2, so a half-typed record still
renders); a missing amount shows nothing.
"""
from django import template

from finance.money import format_money

register = template.Library()


@register.filter
def money(amount, currency=""):
    """`{{ invoice.total|money:invoice.currency }}`."""
    return format_money(amount, currency, empty="")


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
