"""`manage.py seed_demo_rules`: the demo business's Stripe rules and custom field mappings
(issue 15), after `seed_demo` (bin/run runs both). A filter that keeps one demo contact,
Diana Prince (US, no standing PO), out of Stripe, and the contact's `po` and the invoice's
`cost_center` custom fields mapped to Stripe metadata.

Idempotent: rules and mappings are made only when missing; a filter someone changed is
left as it is. Refuses to run unless DEBUG, like seed_demo.
"""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from crm.models import Business, CustomFieldDefinition, CustomFieldTarget

from ...models import CustomFieldMapping, StripeField, StripeRules
from ...rules.forms import filter_clean

DEMO_FILTER = 'contact.country != "US" || has(contact.custom_fields.po)'
MAPPINGS = [(CustomFieldTarget.CONTACT, "po", "po_number"), (CustomFieldTarget.INVOICE, "cost_center", "cost_center")]


class Command(BaseCommand):
    help = "Add the demo business's Stripe rules and custom field mappings (after seed_demo)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo_rules only runs with DEBUG on, like seed_demo.")
        business = Business.objects.filter(slug="demo").first()
        if business is None:
            raise CommandError("No demo business: run `manage.py seed_demo` first.")
        with transaction.atomic():
            rules = StripeRules.for_business(business)
            made = []
            if not rules.filter_expression:
                rules.filter_expression, _ = filter_clean(DEMO_FILTER, business_id=business.pk)
                rules.full_clean()
                rules.save()
                made.append("filter")
            for applies_to, key, metadata_key in MAPPINGS:
                field = CustomFieldDefinition.objects.filter(business=business, applies_to=applies_to, key=key).first()
                if field is None or CustomFieldMapping.objects.filter(field=field).exists():
                    continue
                mapping = CustomFieldMapping(business=business, field=field, stripe_field=StripeField.METADATA,
                                             metadata_key=metadata_key)
                mapping.full_clean()
                mapping.save()
                made.append(f"mapping {key}")
        self.stdout.write(f"Stripe rules of {business}: filter {rules.filter_expression!r}"
                          + (f" (made: {', '.join(made)})" if made else " (nothing new)"))
