from decimal import Decimal

import pytest

from finance.models import LineType
from finance.tests.factories import BillableFactory
from finance.totals import billables_totals
from services.tests.factories import ServicePriceFactory

pytestmark = pytest.mark.django_db


def test_billable_defaults_to_list_price_and_marks_it(business_a):
    price = ServicePriceFactory(service__business=business_a, currency="EUR", amount=Decimal("80.00"))
    billable = BillableFactory.build(business=business_a, bill_to=BillableFactory(business=business_a).bill_to,
                                     service=price.service, currency="EUR", unit_price=None)
    billable.full_clean()
    assert billable.unit_price == Decimal("80.00")
    assert billable.uses_list_price is True


def test_billable_negotiated_price_is_not_list_price(business_a):
    price = ServicePriceFactory(service__business=business_a, currency="EUR", amount=Decimal("80.00"))
    billable = BillableFactory.build(business=business_a, bill_to=BillableFactory(business=business_a).bill_to,
                                     service=price.service, currency="EUR", unit_price=Decimal("70.00"))
    billable.full_clean()
    assert billable.uses_list_price is False


def test_billables_totals_charge_minus_credit_with_vat(business_a):
    charge = BillableFactory(business=business_a, quantity=Decimal("2"), unit_price=Decimal("50.00"),
                             vat_rate=Decimal("20"), discount_percent=Decimal("10"))
    credit = BillableFactory(business=business_a, quantity=Decimal("1"), unit_price=Decimal("10.00"),
                             line_type=LineType.CREDIT)
    totals = billables_totals([charge, credit], "USD")
    # charge: 100.00 - 10% = 90.00 net, +18.00 VAT = 108.00; credit -10.00
    assert totals.total == Decimal("98.00")
    assert totals.tax == Decimal("18.00")
    assert totals.subtotal - totals.discount + totals.tax == totals.total
