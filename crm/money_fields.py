"""Currency codes and amounts as they are typed: checked where they are typed (issue 12).

The rules (the currencies Stripe supports, their exponents, the largest amount Stripe
accepts) live in one place, `finance.money`, which is pure Python. crm and services sit
below finance, so they do not import it: as DESIGN.md says for a lower app that needs an
answer from above, the module is named in settings (`MONEY_RULES_MODULE`, default
"finance.money") and loaded when first used.

- `CurrencyField`: a 3-letter code, normalised to upper case ("usd" -> "USD") before it is
  validated, refused with a message when Stripe does not support it.
- `money_errors(currency, **amounts)`: per-field messages for amounts beyond what Stripe
  accepts for the currency or finer than its precision; models call it from `clean()`.
"""
import importlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.deconstruct import deconstructible


def money_rules():
    return importlib.import_module(getattr(settings, "MONEY_RULES_MODULE", "finance.money"))


@deconstructible(path="crm.money_fields.CurrencyValidator")
class CurrencyValidator:
    """Refuses a code Stripe does not support, saying so."""

    def __call__(self, value):
        rules = money_rules()
        try:
            rules.normalize_currency(value)
        except (rules.UnsupportedCurrency, TypeError) as exc:
            message = str(exc)
            raise ValidationError(message[:1].upper() + message[1:] + ".", code="unsupported_currency") from None

    def __eq__(self, other):
        return isinstance(other, CurrencyValidator)

    def __hash__(self):
        return hash(CurrencyValidator)


class CurrencyField(models.CharField):
    """An ISO 4217 code that Stripe supports, stored in upper case."""

    default_validators = [CurrencyValidator()]

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 3)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return value.strip().upper() if isinstance(value, str) else value


def money_errors(currency, *, per_unit=(), **amounts) -> dict:
    """{field: message} for each amount Stripe would not take in `currency` (None and
    amounts of an unsupported currency are skipped: the currency field says why). Fields
    named in `per_unit` are unit prices (finance.money.check_amount)."""
    rules = money_rules()
    try:
        rules.normalize_currency(currency)
    except (rules.UnsupportedCurrency, TypeError):
        return {}
    errors = {}
    for name, amount in amounts.items():
        if amount is None:
            continue
        try:
            rules.check_amount(amount, currency, name=name.replace("_", " "), per_unit=name in per_unit)
        except (rules.AmountOutOfRange, rules.NotRepresentable) as exc:
            message = str(exc)
            errors[name] = message[:1].upper() + message[1:] + "."
        except (TypeError, ValueError):
            continue  # not a number at all: the field's own validation says so
    return errors


def check_money(currency, *, per_unit=(), **amounts) -> None:
    """Raise ValidationError({field: message}) for the amounts `money_errors` refuses."""
    errors = money_errors(currency, per_unit=per_unit, **amounts)
    if errors:
        raise ValidationError(errors)
