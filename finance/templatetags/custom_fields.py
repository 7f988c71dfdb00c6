"""`{% custom_values row "invoice" as values %}`: (label, value) of a row's defined custom
fields that have a value (crm.custom_fields), for the invoice and payment pages."""
from django import template

from crm.custom_fields import custom_values_display

register = template.Library()


@register.simple_tag
def custom_values(row, applies_to):
    return custom_values_display(business=row.business_id, applies_to=applies_to, values=row.custom_fields)
