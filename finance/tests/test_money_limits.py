"""Amounts and currencies are refused where they are typed when Stripe would not take
them (issue 12, item 12): beyond Stripe's maximum for the currency, finer than its
precision, a currency Stripe does not support. Codes are normalised to upper case."""
from decimal import Decimal

import pytest
from django.urls import reverse

from crm.tests.factories import IndividualFactory
from finance.models import Billable, Payment
from finance.money import AmountOutOfRange, NotRepresentable, check_amount, max_amount
from finance.tests.factories import InvoiceFactory
from services.models import ServicePrice
from services.tests.factories import ServiceFactory

D = Decimal
BILLABLE_ADD = reverse("admin:finance_billable_add")


def _billable(contact, **overrides):
    return {"bill_to": contact.pk, "description": "Work", "quantity": "1", "unit_price": "100", "currency": "USD",
            "vat_rate": "0", "line_type": "charge", **overrides}


def _errors(response):
    form = response.context["adminform"].form
    return {name: " ".join(messages) for name, messages in form.errors.items()}


@pytest.mark.parametrize("currency, amount, largest", [
    ("USD", "999999.99", "999999.99"), ("jpy", "99999999", "99999999"), ("KWD", "99999.99", "99999.99"),
    ("ISK", "999999", "999999"),
])
def test_check_amount_takes_up_to_stripes_maximum(currency, amount, largest):
    assert max_amount(currency) == D(largest)
    assert check_amount(D(amount), currency) == D(amount)


@pytest.mark.parametrize("currency, amount, error, says", [
    ("USD", "1000000.00", AmountOutOfRange, "at most 999,999.99 USD"),
    ("USD", "99999999999999", AmountOutOfRange, "more than Stripe accepts"),
    ("JPY", "100000000", AmountOutOfRange, "at most 99,999,999 JPY"),
    ("USD", "0.001", NotRepresentable, "2 decimal places"),
    ("JPY", "100.5", NotRepresentable, "0 decimal places"),
    ("ISK", "10.50", NotRepresentable, "0 decimal places"),
    ("KWD", "1.235", NotRepresentable, "2 decimal places"),
])
def test_check_amount_refuses_what_stripe_would_not_take(currency, amount, error, says):
    with pytest.raises(error, match=says):
        check_amount(D(amount), currency)


@pytest.mark.parametrize("currency, amount, ok", [
    ("KWD", "1.235", True), ("ISK", "10.50", True), ("USD", "12.345", False), ("JPY", "1.5", False),
])
def test_check_amount_per_unit_allows_the_currency_exponent(currency, amount, ok):
    if ok:
        assert check_amount(D(amount), currency, per_unit=True) == D(amount)
    else:
        with pytest.raises(NotRepresentable, match="more decimals than"):
            check_amount(D(amount), currency, per_unit=True)


@pytest.mark.django_db
@pytest.mark.parametrize("overrides, field, says", [
    ({"unit_price": "99999999999999"}, "unit_price", "more than Stripe accepts: at most 999,999.99 USD"),
    ({"unit_price": "0.001"}, "unit_price", "more decimals than USD allows"),
    ({"unit_price": "12.345"}, "unit_price", "more decimals than USD allows (2 decimal places)"),
    ({"unit_price": "100.5", "currency": "JPY"}, "unit_price", "more decimals than JPY allows"),
    ({"discount_amount": "0.005"}, "discount_amount", "more decimals than USD allows"),
    ({"currency": "XYZ"}, "currency", "XYZ is not supported by Stripe"),
    ({"currency": "U$D"}, "currency", "not a three-letter ISO 4217 currency code"),
    ({"quantity": "2", "unit_price": "600000"}, "quantity", "more than Stripe accepts"),
    ({"unit_price": "900000", "vat_rate": "20"}, "quantity", "more than Stripe accepts"),
])
def test_billable_admin_refuses_amounts_stripe_would_not_take(client, finance_a, business_a, overrides, field, says):
    contact = IndividualFactory(business=business_a)
    client.force_login(finance_a)
    response = client.post(BILLABLE_ADD, _billable(contact, **overrides))
    assert response.status_code == 200
    assert says in _errors(response).get(field, "")
    assert not Billable.objects.exists()


@pytest.mark.django_db
def test_billable_admin_normalises_a_lower_case_currency(client, finance_a, business_a):
    contact = IndividualFactory(business=business_a)
    client.force_login(finance_a)
    response = client.post(BILLABLE_ADD, _billable(contact, currency="usd", unit_price="999999.99"))
    assert response.status_code == 302
    assert Billable.objects.get().currency == "USD"


@pytest.mark.django_db
def test_service_admin_price_refuses_amounts_and_currencies_stripe_would_not_take(client, finance_a, business_a):
    client.force_login(finance_a)
    data = {"code": "BIG", "name": "Big", "active": "on", "prices-TOTAL_FORMS": 3, "prices-INITIAL_FORMS": 0,
            "prices-MIN_NUM_FORMS": 0, "prices-MAX_NUM_FORMS": 1000,
            "prices-0-currency": "USD", "prices-0-amount": "99999999999999",
            "prices-1-currency": "XYZ", "prices-1-amount": "10",
            "prices-2-currency": "JPY", "prices-2-amount": "10.5"}
    response = client.post(reverse("admin:services_service_add"), data)
    assert response.status_code == 200
    errors = [dict(form.errors) for form in response.context["inline_admin_formsets"][0].formset.forms]
    assert "more than Stripe accepts" in " ".join(errors[0]["amount"])
    assert "XYZ is not supported by Stripe" in " ".join(errors[1]["currency"])
    assert "more decimals than JPY allows" in " ".join(errors[2]["amount"])
    assert not ServicePrice.objects.exists()


@pytest.mark.django_db
def test_service_admin_price_normalises_a_lower_case_currency(client, finance_a, business_a):
    client.force_login(finance_a)
    data = {"code": "LOW", "name": "Low", "active": "on", "prices-TOTAL_FORMS": 1, "prices-INITIAL_FORMS": 0,
            "prices-MIN_NUM_FORMS": 0, "prices-MAX_NUM_FORMS": 1000,
            "prices-0-currency": "eur", "prices-0-amount": "120.00"}
    assert client.post(reverse("admin:services_service_add"), data).status_code == 302
    assert ServicePrice.objects.get().currency == "EUR"


@pytest.mark.django_db
def test_payment_admin_refuses_an_amount_stripe_would_not_take(admin_client, business_a):
    # Adding a payment by hand is a superuser's (finance users get payments from Stripe).
    client = admin_client
    invoice = InvoiceFactory(business=business_a)
    data = {"invoice": invoice.pk, "amount": "12345678901234", "currency": "usd", "status": "succeeded",
            "method": "out_of_band", "fee": "0", "net": "0", "amount_refunded": "0",
            "refunds-TOTAL_FORMS": 0, "refunds-INITIAL_FORMS": 0, "refunds-MIN_NUM_FORMS": 0, "refunds-MAX_NUM_FORMS": 1000}
    response = client.post(reverse("admin:finance_payment_add"), data)
    assert response.status_code == 200
    assert "more than Stripe accepts" in _errors(response)["amount"]
    assert not Payment.objects.exists()
