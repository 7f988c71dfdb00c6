"""Billables and invoice lines -> `finance.money` line inputs. The arithmetic itself lives
only in `finance.money` (compute_line / invoice_totals)."""
from decimal import Decimal

from finance.money import LineAmounts, LineInput, Totals, compute_line, invoice_totals


def billable_line_input(billable) -> LineInput:
    from finance.models import LineType

    return LineInput(
        quantity=billable.quantity, unit_price=billable.unit_price or Decimal("0"), currency=billable.currency,
        discount_percent=billable.discount_percent, discount_amount=billable.discount_amount,
        vat_rate=billable.vat_rate or Decimal("0"), prices_include_vat=billable.prices_include_vat,
        is_credit=billable.line_type == LineType.CREDIT,
    )


def billable_amounts(billable) -> LineAmounts:
    return compute_line(billable_line_input(billable))


def billables_totals(billables, currency: str) -> Totals:
    return invoice_totals((billable_line_input(b) for b in billables), currency)
