"""Splitting past 250 lines (issue 12, item 3): no part is a negative invoice; credits go
on a part that stays positive, or wait (left unbilled) with the reason said."""
from decimal import Decimal

import pytest

from crm.tests.factories import IndividualFactory
from finance.invoices import CREDIT_WAITS, MAX_LINES, BuildOptions, invoices_create_from_billables
from finance.models import Billable, BillableStatus, LineType

pytestmark = pytest.mark.django_db

D = Decimal


def _bills(business, contact, charges, credits):
    rows = [Billable(business=business, bill_to=contact, quantity=D("1"), unit_price=price, currency="USD",
                     description=f"Item {i}") for i, price in enumerate(charges)]
    rows += [Billable(business=business, bill_to=contact, quantity=D("1"), unit_price=price, currency="USD",
                      description=f"Credit {i}", line_type=LineType.CREDIT) for i, price in enumerate(credits)]
    return Billable.objects.bulk_create(rows)


def _create(business, bills):
    return invoices_create_from_billables(business=business, billable_ids=[b.pk for b in bills], options=BuildOptions())


def test_split_puts_a_credit_on_a_part_that_stays_positive(business_a):
    contact = IndividualFactory(business=business_a)
    bills = _bills(business_a, contact, [D("1.00")] * MAX_LINES, [D("100.00")])
    result = _create(business_a, bills)
    assert len(result.invoices) == 2
    assert all(inv.total >= 0 for inv in result.invoices), [inv.total for inv in result.invoices]
    assert all(inv.lines.count() <= MAX_LINES for inv in result.invoices)
    assert sum(inv.total for inv in result.invoices) == D("150.00")
    assert not result.left_out


def test_split_credit_that_fits_no_part_waits_and_says_why(business_a):
    contact = IndividualFactory(business=business_a)
    # 300.00 of charges in two parts and credits of 200.00 + 90.00: whichever part takes the
    # 200.00 cannot also take the 90.00, and the other part is too small for it.
    bills = _bills(business_a, contact, [D("1.00")] * 300, [D("200.00"), D("90.00")])
    result = _create(business_a, bills)
    assert all(inv.total >= 0 for inv in result.invoices), [inv.total for inv in result.invoices]
    waiting = [b for b, reason in result.left_out if reason == CREDIT_WAITS]
    assert [b.description for b in waiting] == ["Credit 1"]
    assert Billable.objects.get(pk=waiting[0].pk).status == BillableStatus.UNBILLED
    assert sum(inv.total for inv in result.invoices) == D("100.00")
