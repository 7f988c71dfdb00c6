"""Custom fields <-> Stripe (Upflow's custom fields), per business (CustomFieldMapping).

CRM -> Stripe: a contact's mapped values go into its customer's metadata and the writable
native fields (email, description, tax_exempt) when the customer is created or pushed
(customers/links.py); an invoice's mapped values into the Stripe invoice's metadata at
push (invoicing/push.py). Stripe -> CRM: when a customer arrives (found, linked, the answer
to a push, or a `customer.updated` webhook) its metadata and native fields, read-only ones too (delinquent,
discount coupon, default payment method, tax location country), set the contact's
mapped custom fields; invoice and payment webhooks do the same for invoices and payments.
Only values Stripe has are taken (a key absent in Stripe leaves the CRM's value), and a
value that does not fit the field's type is skipped and logged, never an error.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

from crm.custom_fields import value_coerce
from crm.models import Contact, CustomFieldTarget, CustomFieldType
from crm.services import contact_custom_fields_set
from finance.custom_values import invoice_custom_fields_set, payment_custom_fields_set
from finance.models import Invoice, Payment

from ..gateway.types import customer_native_fields
from ..models import CustomFieldMapping, StripeField

log = logging.getLogger(__name__)
TAX_EXEMPT_VALUES = ("none", "exempt", "reverse")
METADATA_VALUE_MAX = 500  # Stripe's limit per metadata value


def mappings_for(*, business_id: int, applies_to: str) -> list[CustomFieldMapping]:
    return list(CustomFieldMapping.objects.filter(business_id=business_id, field__applies_to=applies_to)
                .select_related("field"))


def _to_stripe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)[:METADATA_VALUE_MAX]


def _tax_exempt(field_type: str, value: Any) -> str | None:
    if field_type == CustomFieldType.BOOL:
        return "exempt" if value else "none"
    text = str(value).strip().lower()
    return text if text in TAX_EXEMPT_VALUES else None


def outgoing(values: Mapping | None, mappings: list[CustomFieldMapping], *, unset_missing: bool) -> tuple[dict, dict]:
    """(metadata, native params) for Stripe from a row's custom field values. With
    `unset_missing`, a mapped metadata key without a value is sent as "" (Stripe's unset)."""
    values = values if isinstance(values, Mapping) else {}
    metadata, native = {}, {}
    for m in mappings:
        value = values.get(m.field.key)
        if m.stripe_field == StripeField.METADATA:
            if value is not None:
                metadata[m.metadata_key] = _to_stripe(value)
            elif unset_missing:
                metadata[m.metadata_key] = ""
        elif value is None:
            continue
        elif m.stripe_field in (StripeField.EMAIL, StripeField.DESCRIPTION):
            native[m.stripe_field] = str(value)
        elif m.stripe_field == StripeField.TAX_EXEMPT:
            exempt = _tax_exempt(m.field.field_type, value)
            if exempt is not None:
                native["tax_exempt"] = exempt
    return metadata, native


def contact_outgoing(contact: Contact, *, unset_missing: bool = False) -> tuple[dict, dict]:
    mappings = mappings_for(business_id=contact.business_id, applies_to=CustomFieldTarget.CONTACT)
    return outgoing(contact.custom_fields, mappings, unset_missing=unset_missing)


def invoice_metadata(invoice: Invoice) -> dict:
    mappings = mappings_for(business_id=invoice.business_id, applies_to=CustomFieldTarget.INVOICE)
    return outgoing(invoice.custom_fields, mappings, unset_missing=False)[0]


def incoming(mappings: list[CustomFieldMapping], *, metadata: Mapping | None, native: Mapping | None = None) -> dict:
    """The custom field values Stripe holds for these mappings (keys Stripe lacks left out)."""
    metadata, native = metadata or {}, native or {}
    values = {}
    for m in mappings:
        if m.stripe_field == StripeField.METADATA:
            raw = metadata.get(m.metadata_key)
            if raw is None or raw == "":
                continue
        else:
            if m.stripe_field not in native:
                continue
            raw = native[m.stripe_field]
            if m.stripe_field == StripeField.TAX_EXEMPT and m.field.field_type == CustomFieldType.BOOL and raw is not None:
                raw = raw != "none"
            if raw is None and m.field.field_type == CustomFieldType.BOOL:
                raw = False
            if raw is None:
                values[m.field.key] = None  # Stripe has no value now (e.g. the discount ended)
                continue
        try:
            values[m.field.key] = value_coerce(m.field.field_type, raw)
        except ValidationError as exc:
            log.warning("Stripe value for custom field %s (business %s) skipped: %s", m.field.key, m.business_id,
                        " ".join(exc.messages))
    return values


def contact_apply_from_stripe(*, contact: Contact, customer: Any) -> dict:
    """Set the contact's mapped custom fields from a Stripe customer (a webhook's object,
    or the gateway's CustomerInfo). Not announced back to Stripe (it would only echo)."""
    mappings = mappings_for(business_id=contact.business_id, applies_to=CustomFieldTarget.CONTACT)
    if not mappings:
        return {}
    if hasattr(customer, "native"):  # CustomerInfo
        metadata, native = customer.metadata, customer.native
    else:
        metadata, native = (customer.get("metadata") or {}), customer_native_fields(customer)
    values = incoming(mappings, metadata=metadata, native=native)
    if values:
        try:
            contact_custom_fields_set(contact=contact, values=values, announce=False)
        except ValidationError as exc:
            log.warning("Stripe values for contact %s not applied: %s", contact.pk, exc.messages)
            return {}
    return values


def invoice_apply_from_stripe(*, invoice: Invoice, metadata: Mapping | None) -> dict:
    mappings = mappings_for(business_id=invoice.business_id, applies_to=CustomFieldTarget.INVOICE)
    values = incoming(mappings, metadata=metadata) if mappings else {}
    if values:
        invoice_custom_fields_set(invoice=invoice, values=values)
    return values


def payment_apply_from_stripe(*, payment: Payment, metadata: Mapping | None) -> dict:
    mappings = mappings_for(business_id=payment.business_id, applies_to=CustomFieldTarget.PAYMENT)
    values = incoming(mappings, metadata=metadata) if mappings else {}
    if values:
        payment_custom_fields_set(payment=payment, values=values)
    return values
