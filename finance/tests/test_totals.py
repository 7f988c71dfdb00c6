"""Line and invoice totals (finance.money.compute_line / invoice_totals). Pure Python."""
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finance.money import (
    AmountOutOfRange, is_valid_minor, max_amount, minor_units,
    LineAmounts, LineInput, Totals, UnsupportedCurrency, compute_line, from_minor,
    invoice_totals, is_representable, quantize, to_minor,
)

D = Decimal
prop = settings(database=None, deadline=None, max_examples=200)


def line(qty="1", price="100.00", currency="EUR", **kw):
    return LineInput(quantity=D(qty), unit_price=D(price), currency=currency, **kw)


# --- compute_line examples ------------------------------------------------------------

def test_compute_line_exclusive_vat_20_percent_on_100():
    a = compute_line(line(price="100.00", vat_rate=D("20")))
    assert (a.gross, a.discount, a.net, a.tax, a.total) == (D("100.00"), 0, D("100.00"), D("20.00"), D("120.00"))


def test_compute_line_inclusive_vat_20_percent_on_120():
    a = compute_line(line(price="120.00", vat_rate=D("20"), prices_include_vat=True))
    assert (a.gross, a.net, a.tax, a.total) == (D("120.00"), D("100.00"), D("20.00"), D("120.00"))


def test_compute_line_percent_discount_on_3_x_33_33():
    a = compute_line(line(qty="3", price="33.33", discount_percent=D("10")))
    assert a.gross == D("99.99")
    assert a.discount == D("10.00")  # 9.999 rounded half-up
    assert a.net == D("89.99")
    assert a.total == D("89.99")


def test_compute_line_percent_discount_then_exclusive_vat():
    a = compute_line(line(qty="3", price="33.33", discount_percent=D("10"), vat_rate=D("20")))
    assert (a.net, a.tax, a.total) == (D("89.99"), D("18.00"), D("107.99"))  # 17.998 -> 18.00


def test_compute_line_inclusive_vat_after_discount_amount():
    a = compute_line(line(price="120.00", discount_amount=D("12.00"), vat_rate=D("20"), prices_include_vat=True))
    assert (a.gross, a.discount, a.total) == (D("120.00"), D("12.00"), D("108.00"))
    assert (a.tax, a.net) == (D("18.00"), D("90.00"))


def test_compute_line_gross_rounds_half_up_per_line():
    a = compute_line(line(qty="1.5", price="0.33", currency="USD"))  # 0.495
    assert a.gross == D("0.50")


def test_compute_line_jpy_has_no_decimals():
    a = compute_line(line(qty="3", price="333", currency="JPY", vat_rate=D("10")))
    assert (a.gross, a.tax, a.total) == (D("999"), D("100"), D("1099"))  # 99.9 -> 100
    assert to_minor(a.total, "jpy") == 1099


def test_compute_line_kwd_tax_to_the_fils_and_total_on_stripes_grid():
    a = compute_line(line(qty="3", price="1.2345", currency="KWD", vat_rate=D("5")))
    assert a.gross == D("3.70")  # 3.7035: typed amounts stay on the 10-fils grid
    assert a.tax == D("0.185")  # to the fils, as Stripe rounds tax (issue 12, item 4)
    t = invoice_totals([a], "KWD")
    assert (t.total, t.rounding) == (D("3.89"), D("0.005"))  # back on the grid, once
    assert t.as_stripe_minor()["total"] == 3890 and t.as_stripe_minor()["total_taxes"] == 185


def test_compute_line_isk_whole_kronur():
    a = compute_line(line(qty="1", price="999.50", currency="ISK", vat_rate=D("24")))
    assert a.gross == D("1000")
    assert a.tax == D("240")
    assert to_minor(a.total, "isk") == 124000


def test_compute_line_credit_is_negative_mirror():
    kw = dict(qty="3", price="33.33", discount_percent=D("10"), vat_rate=D("20"))
    charge, credit = compute_line(line(**kw)), compute_line(line(is_credit=True, **kw))
    assert credit.total == D("-107.99")
    for field in ("gross", "discount", "net", "tax", "total"):
        assert getattr(credit, field) == -getattr(charge, field)


def test_compute_line_full_discount_is_zero():
    a = compute_line(line(price="50.00", discount_percent=D("100"), vat_rate=D("20")))
    assert (a.net, a.tax, a.total) == (0, 0, 0)


def test_compute_line_discount_amount_above_gross_raises():
    with pytest.raises(ValueError, match="exceeds"):
        compute_line(line(price="10.00", discount_amount=D("10.01")))


@pytest.mark.parametrize("kw", [
    dict(discount_percent=D("10"), discount_amount=D("1")),
    dict(discount_percent=D("100.01")),
    dict(discount_percent=D("-1")),
    dict(discount_amount=D("-0.01")),
    dict(qty="0"),
    dict(qty="-1"),
    dict(price="-5.00"),
    dict(vat_rate=D("-1")),
    dict(vat_rate=D("120")),
    dict(vat_rate=D("NaN")),
])
def test_line_input_invalid_values_raise_value_error(kw):
    with pytest.raises(ValueError):
        line(**kw)


def test_line_input_float_raises_type_error():
    with pytest.raises(TypeError):
        LineInput(quantity=D(1), unit_price=9.99, currency="usd")
    with pytest.raises(TypeError):
        LineInput(quantity=1.0, unit_price=D("9.99"), currency="usd")
    with pytest.raises(TypeError):
        line(vat_rate=0.2)


def test_line_input_unknown_currency_raises():
    with pytest.raises(UnsupportedCurrency):
        line(currency="ZZZ")


def test_line_amounts_rejects_inconsistent_figures():
    with pytest.raises(ValueError):
        LineAmounts(D("10.00"), D("0.00"), D("10.00"), D("2.00"), D("12.01"), "usd")
    with pytest.raises(ValueError):
        LineAmounts(D("10.001"), D("0.00"), D("10.001"), D("0.00"), D("10.001"), "usd")


# --- invoice_totals examples ----------------------------------------------------------

def test_invoice_totals_mixed_currencies_refused():
    with pytest.raises(ValueError, match="one currency"):
        invoice_totals([line(currency="EUR"), line(currency="USD")], "EUR")
    with pytest.raises(ValueError):
        invoice_totals([compute_line(line(currency="usd"))], "eur")


def test_invoice_totals_currency_is_case_insensitive():
    t = invoice_totals([line(currency="eur"), compute_line(line(currency="EUR"))], "Eur")
    assert t.currency == "eur"
    assert t.total == D("200.00")


def test_invoice_totals_empty_invoice_is_zero():
    t = invoice_totals([], "JPY")
    assert (t.subtotal, t.discount, t.tax, t.total) == (0, 0, 0, 0)


def test_invoice_totals_exclusive_maps_to_stripe_fields():
    t = invoice_totals([line(price="100.00", vat_rate=D("20"))], "eur")
    assert (t.subtotal, t.discount, t.tax, t.total) == (D("100.00"), 0, D("20.00"), D("120.00"))
    assert t.as_stripe_minor() == {"subtotal": 10000, "total_discount_amounts": 0, "total_taxes": 2000,
                                   "total_excluding_tax": 10000, "total": 12000}


def test_invoice_totals_inclusive_maps_to_stripe_fields():
    t = invoice_totals([line(price="120.00", vat_rate=D("20"), prices_include_vat=True)], "eur")
    # App: excluding VAT + VAT = total. Stripe: subtotal includes inclusive tax.
    assert (t.subtotal, t.tax, t.included_tax, t.total) == (D("100.00"), D("20.00"), D("20.00"), D("120.00"))
    assert t.as_stripe_minor() == {"subtotal": 12000, "total_discount_amounts": 0, "total_taxes": 2000,
                                   "total_excluding_tax": 10000, "total": 12000}


def test_invoice_totals_mixed_tax_behaviour_with_discount():
    t = invoice_totals([
        line(price="120.00", vat_rate=D("20"), prices_include_vat=True, discount_percent=D("10")),
        line(qty="2", price="50.00", vat_rate=D("10"), discount_amount=D("5.00")),
    ], "eur")
    # line 1: 120 - 12 = 108 incl. 18 VAT; line 2: 100 - 5 = 95 + 9.50 VAT
    assert t.total == D("212.50")
    assert t.tax == D("27.50") and t.included_tax == D("18.00") and t.exclusive_tax == D("9.50")
    assert t.discount == D("17.00")
    assert t.subtotal == D("202.00")  # 120 - 18 + 100
    # Stripe: total = subtotal - discounts + exclusive tax
    assert t.stripe_subtotal - t.discount + t.exclusive_tax == t.total


def test_invoice_totals_credit_line_reduces_total():
    t = invoice_totals([line(price="100.00", vat_rate=D("20")),
                        line(price="30.00", vat_rate=D("20"), is_credit=True)], "eur")
    assert (t.subtotal, t.tax, t.total) == (D("70.00"), D("14.00"), D("84.00"))


def test_totals_rejects_figures_that_do_not_add_up():
    with pytest.raises(ValueError):
        Totals("usd", D("100.00"), D("0.00"), D("20.00"), D("119.99"))


# --- properties -----------------------------------------------------------------------

CURRENCIES = ["usd", "EUR", "jpy", "KRW", "vnd", "kwd", "BHD", "isk", "huf"]


@st.composite
def line_inputs(draw, currency):
    qty = D(draw(st.integers(1, 10**6))).scaleb(-draw(st.integers(0, 3)))
    price = D(draw(st.integers(0, 10**9))).scaleb(-draw(st.integers(0, 4)))
    # Lines Stripe accepts: at most max_amount with up to 30 % VAT on top (larger ones are
    # refused, see test_compute_line_refuses_a_line_beyond_stripes_maximum).
    price = min(price, (max_amount(currency) / qty / D("1.3")).quantize(D("0.0001"), rounding=ROUND_DOWN))
    kw = dict(vat_rate=D(draw(st.integers(0, 3000))).scaleb(-2),
              prices_include_vat=draw(st.booleans()), is_credit=draw(st.booleans()))
    kind = draw(st.sampled_from(["none", "percent", "amount"]))
    if kind == "percent":
        kw["discount_percent"] = D(draw(st.integers(0, 10000))).scaleb(-2)
    elif kind == "amount":
        gross = quantize(qty * price, currency)
        kw["discount_amount"] = gross * D(draw(st.integers(0, 10**4))).scaleb(-4)
    return LineInput(quantity=qty, unit_price=price, currency=currency, **kw)


invoices = st.sampled_from(CURRENCIES).flatmap(
    lambda c: st.tuples(st.just(c), st.lists(line_inputs(c), max_size=12)))


@prop
@given(invoices)
def test_invoice_totals_invariant_subtotal_minus_discount_plus_tax(invoice):
    currency, lines = invoice
    t = invoice_totals(lines, currency)
    assert t.subtotal - t.discount + t.tax == t.total
    m = t.as_stripe_minor()
    assert m["subtotal"] - m["total_discount_amounts"] + minor_units(t.exclusive_tax, currency) == m["total"]
    assert is_valid_minor(m["total"], currency)  # what is due can be charged to a card
    assert m["total_excluding_tax"] == m["total"] - m["total_taxes"]


@prop
@given(invoices)
def test_invoice_totals_equal_sum_of_line_totals(invoice):
    currency, lines = invoice
    computed = [compute_line(x) for x in lines]
    t = invoice_totals(lines, currency)
    assert t.total == sum((a.total for a in computed), D(0)) + t.rounding
    assert t.tax == sum((a.tax for a in computed), D(0))
    # to the minor unit, as Stripe sums integer line amounts (plus the rounding line)
    assert minor_units(t.total, currency) == sum(minor_units(a.total, currency) for a in computed) + minor_units(
        t.rounding, currency)
    # precomputed lines give the same totals
    assert invoice_totals(computed, currency) == t


@prop
@given(st.sampled_from(CURRENCIES).flatmap(line_inputs))
def test_compute_line_figures_are_consistent_and_on_grid(li):
    a = compute_line(li)
    for v in (a.gross, a.discount):  # typed amounts: on the charge grid
        assert is_representable(v, li.currency)
        assert from_minor(to_minor(v, li.currency), li.currency) == v
    for v in (a.net, a.tax, a.total):  # computed with the tax: to Stripe's minor unit
        assert from_minor(minor_units(v, li.currency), li.currency) == v
    sign = -1 if li.is_credit else 1
    assert sign * a.discount >= 0 and sign * a.tax >= 0 and sign * a.total >= 0
    assert a.net + a.tax == a.total
    if li.prices_include_vat:
        assert a.total == a.gross - a.discount
    else:
        assert a.net == a.gross - a.discount
    assert abs(a.gross - sign * li.quantity * li.unit_price) <= D("0.5")


@prop
@given(st.sampled_from(CURRENCIES).flatmap(line_inputs))
def test_compute_line_credit_mirrors_charge(li):
    fields = dict(li.__dict__)
    fields["is_credit"] = not li.is_credit
    a, b = compute_line(li), compute_line(LineInput(**fields))
    assert (a.gross, a.discount, a.net, a.tax, a.total) == (-b.gross, -b.discount, -b.net, -b.tax, -b.total)


@pytest.mark.parametrize("currency, price, vat", [("USD", "1000000.00", "0"), ("USD", "900000.00", "20"),
                                                  ("JPY", "100000000", "0"), ("KWD", "100000.00", "0")])
def test_compute_line_refuses_a_line_beyond_stripes_maximum(currency, price, vat):
    with pytest.raises(AmountOutOfRange, match="more than Stripe accepts"):
        compute_line(LineInput(quantity=D("1"), unit_price=D(price), currency=currency, vat_rate=D(vat)))


def test_compute_line_takes_stripes_maximum_itself():
    assert compute_line(LineInput(quantity=D("1"), unit_price=D("999999.99"), currency="USD")).total == D("999999.99")
