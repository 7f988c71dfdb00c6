"""`{% custom_values row "invoice" as values %}`: (label, value) of a row's defined custom
fields that have a value (crm.custom_fields), for the invoice and payment pages. The
definitions are read once per template render (a page lists many payments)."""
from django import template

from crm.custom_fields import custom_field_definitions, custom_values_display

register = template.Library()


@register.simple_tag(takes_context=True)
def custom_values(context, row, applies_to):
    if not row.custom_fields:
        return []
    cache = context.render_context.setdefault("custom_field_definitions", {})
    key = (row.business_id, applies_to)
    if key not in cache:
        cache[key] = custom_field_definitions(business=row.business_id, applies_to=applies_to)
    return custom_values_display(business=row.business_id, applies_to=applies_to, values=row.custom_fields,
                                 definitions=cache[key])
