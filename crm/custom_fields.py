"""Custom fields (Upflow's): the business defines them (CustomFieldDefinition), contacts,
invoices and payments carry their values in a `custom_fields` JSON object.

One rule per type decides what a value may be and how it is stored (`value_coerce`):
text -> str (at most 500 characters), number -> int or float (finite), bool -> true/false,
date -> "YYYY-MM-DD", email -> a checked address. Services call `custom_values_clean`
before saving; forms (staff UI and admin) get their fields from `custom_form_fields`, so a
bad value is a form error, never a 500. The Stripe integration maps fields to Stripe
(stripe_integration.rules.mapping) and reads them in filter expressions.
"""
from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from crm.models import Business, CustomFieldDefinition, CustomFieldType

TEXT_MAX = 500
FORM_PREFIX = "cf_"
_TRUE = {"true", "yes", "1", "on", "y"}
_FALSE = {"false", "no", "0", "off", "n", ""}


def custom_field_definitions(*, business: Business | int, applies_to: str) -> list[CustomFieldDefinition]:
    business_id = business if isinstance(business, int) else business.pk
    return list(CustomFieldDefinition.objects.filter(business_id=business_id, applies_to=applies_to).order_by("key"))


def value_coerce(field_type: str, value: Any) -> Any:
    """The stored form of `value` for a field of `field_type`; None means "no value".
    Raises ValidationError with a message fit to show."""
    if value is None or (isinstance(value, str) and not value.strip() and field_type != CustomFieldType.BOOL):
        return None
    if field_type == CustomFieldType.TEXT:
        if not isinstance(value, (str, int, float, Decimal)) or isinstance(value, bool):
            raise ValidationError("Enter text.")
        text = str(value).strip()
        if len(text) > TEXT_MAX:
            raise ValidationError(f"At most {TEXT_MAX} characters.")
        return text
    if field_type == CustomFieldType.NUMBER:
        if isinstance(value, bool):
            raise ValidationError("Enter a number.")
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            raise ValidationError("Enter a number.") from None
        if not number.is_finite() or abs(number) >= Decimal(10) ** 15:
            raise ValidationError("Enter a number below 10^15.")
        if number == number.to_integral_value():
            return int(number)
        as_float = float(number)
        if not math.isfinite(as_float):
            raise ValidationError("Enter a number.")
        return as_float
    if field_type == CustomFieldType.BOOL:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, (str, int)) else None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError("Enter yes or no.")
    if field_type == CustomFieldType.DATE:
        if isinstance(value, datetime.datetime):
            value = value.date()
        if isinstance(value, datetime.date):
            return value.isoformat()
        if not isinstance(value, str):
            raise ValidationError("Enter a date as YYYY-MM-DD.")
        try:
            return datetime.date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            raise ValidationError("Enter a date as YYYY-MM-DD.") from None
    if field_type == CustomFieldType.EMAIL:
        if not isinstance(value, str):
            raise ValidationError("Enter an e-mail address.")
        address = value.strip()
        if len(address) > 254:
            raise ValidationError("Enter an e-mail address.")
        validate_email(address)
        return address
    raise ValidationError(f"Unknown field type {field_type!r}.")


def custom_values_clean(*, business: Business | int, applies_to: str, values: Any,
                        definitions: Iterable[CustomFieldDefinition] | None = None,
                        current: Mapping | None = None) -> dict:
    """`values` checked against the business's definitions for `applies_to`: unknown keys and
    bad values raise ValidationError({"custom_fields": [...]}); empty values are dropped.
    A key no longer defined is kept when its value is the row's `current` one (deleting a
    definition does not make every row holding it unsaveable)."""
    if not isinstance(values, Mapping):
        raise ValidationError({"custom_fields": "Custom fields are a JSON object of name: value."})
    defs = {d.key: d for d in (definitions if definitions is not None
                               else custom_field_definitions(business=business, applies_to=applies_to))}
    errors, cleaned = [], {}
    for key, value in values.items():
        definition = defs.get(key) if isinstance(key, str) else None
        if definition is None and isinstance(current, Mapping) and key in current and current[key] == value:
            cleaned[key] = value
            continue
        if definition is None:
            errors.append(f"{str(key)[:40]!r} is not a custom field of {applies_to}s in this business.")
            continue
        try:
            stored = value_coerce(definition.field_type, value)
        except ValidationError as exc:
            errors.append(f"{definition.label}: {' '.join(exc.messages)}")
            continue
        if stored is not None:
            cleaned[key] = stored
    if errors:
        raise ValidationError({"custom_fields": errors})
    return cleaned


def display_value(field_type: str, value: Any) -> str:
    if value is None:
        return "—"
    if field_type == CustomFieldType.BOOL:
        return "yes" if value else "no"
    return str(value)


def custom_values_display(*, business: Business | int, applies_to: str, values: Mapping | None,
                          definitions: Iterable[CustomFieldDefinition] | None = None) -> list[tuple[str, str]]:
    """(label, shown value) of each defined field that has a value, for the pages."""
    values = values if isinstance(values, Mapping) else {}
    if not values:
        return []
    if definitions is None:
        definitions = custom_field_definitions(business=business, applies_to=applies_to)
    return [(d.label, display_value(d.field_type, values[d.key])) for d in definitions if d.key in values]


# --- forms -----------------------------------------------------------------------------------
class _CoercedField(forms.CharField):
    """A text input whose value is checked by `value_coerce` (one rule for forms and services)."""

    def __init__(self, *, field_type: str, **kwargs):
        self.field_type = field_type
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        return value_coerce(self.field_type, value)


def custom_form_fields(definitions: Iterable[CustomFieldDefinition], values: Mapping | None = None) -> dict[str, forms.Field]:
    """Form fields (named `cf_<key>`) for the definitions, with `values` as initial data."""
    values = values if isinstance(values, Mapping) else {}
    fields: dict[str, forms.Field] = {}
    for d in definitions:
        initial = values.get(d.key)
        common = {"label": d.label, "required": False, "initial": initial,
                  "help_text": f"Custom field {d.key} ({d.get_field_type_display().lower()})."}
        if d.field_type == CustomFieldType.BOOL:
            field = forms.NullBooleanField(widget=forms.NullBooleanSelect, **common)
        elif d.field_type == CustomFieldType.DATE:
            field = _CoercedField(field_type=d.field_type, max_length=10, widget=forms.DateInput(attrs={"type": "date"}),
                                  **common)
        else:
            field = _CoercedField(field_type=d.field_type, max_length=TEXT_MAX, **common)
        fields[FORM_PREFIX + d.key] = field
    return fields


def custom_values_from_form(cleaned_data: Mapping, definitions: Iterable[CustomFieldDefinition]) -> dict:
    """The cleaned `cf_<key>` values of a form as a custom_fields dict (empty ones dropped)."""
    return {d.key: cleaned_data[FORM_PREFIX + d.key] for d in definitions
            if cleaned_data.get(FORM_PREFIX + d.key) is not None}
