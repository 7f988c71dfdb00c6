"""Which contacts the integration may take to Stripe (m3ter's account rules), and how
custom fields map to Stripe (Upflow's custom fields). Evaluated by stripe_integration.rules.
"""
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from crm.models import BusinessOwned, Contact, CustomFieldDefinition, CustomFieldTarget, CustomFieldType

# Long enough for any real filter; short enough that no expression can be costly to
# parse or evaluate (cel-python has no evaluation budget of its own).
FILTER_MAX_LENGTH = 1000


class StripeRules(BusinessOwned):
    """Include list (if not empty: only these contacts), exclude list (always wins), and a
    CEL filter on the contact's fields and custom fields (see rules/expressions.py)."""

    business = models.OneToOneField("crm.Business", on_delete=models.CASCADE, related_name="stripe_rules")
    include_contacts = models.ManyToManyField(
        Contact, blank=True, related_name="+", verbose_name="only these contacts",
        help_text="When any are chosen, only these contacts go to Stripe (the filter still applies).")
    exclude_contacts = models.ManyToManyField(
        Contact, blank=True, related_name="+", verbose_name="never these contacts",
        help_text="Never synced or invoiced through Stripe, whatever the other rules say.")
    filter_expression = models.TextField(
        blank=True, max_length=FILTER_MAX_LENGTH,
        help_text='A CEL expression; contacts for which it is not true stay out of Stripe. '
                  'E.g. contact.country == "GB" && has(contact.custom_fields.po)')
    account_code_field = models.ForeignKey(
        CustomFieldDefinition, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        limit_choices_to={"applies_to": CustomFieldTarget.CONTACT},
        verbose_name="external account code",
        help_text="A contact custom field whose value Stripe's customer metadata carries as crm_account_code, "
                  "instead of our contact id (contacts without a value keep our id).")

    class Meta:
        verbose_name = "Stripe rules"
        verbose_name_plural = "Stripe rules"

    def __str__(self):
        return f"Stripe rules of {self.business}"

    def clean(self):
        self.check_same_business(account_code_field=self.account_code_field)
        if self.account_code_field is not None and self.account_code_field.applies_to != CustomFieldTarget.CONTACT:
            raise ValidationError({"account_code_field": "Choose a contact custom field."})

    @classmethod
    def for_business(cls, business):
        obj, _ = cls.objects.get_or_create(business=business)
        return obj


class StripeField(models.TextChoices):
    """Where a custom field's value lives in Stripe."""

    METADATA = "metadata", "Metadata key (both ways)"
    EMAIL = "email", "Customer e-mail (both ways)"
    DESCRIPTION = "description", "Customer description (both ways)"
    TAX_EXEMPT = "tax_exempt", "Customer tax exempt: none / exempt / reverse (both ways)"
    DELINQUENT = "delinquent", "Customer delinquent (read-only: Stripe -> CRM only)"
    DISCOUNT = "discount", "Customer discount's coupon (read-only: Stripe -> CRM only)"
    DEFAULT_PAYMENT_METHOD = "default_payment_method", "Customer default payment method (read-only: Stripe -> CRM only)"
    TAX_LOCATION_COUNTRY = "tax_location_country", "Customer tax location country (read-only: Stripe -> CRM only)"


# Native customer fields the CRM may write (Stripe's customer update takes them); the
# others Stripe computes (delinquent, tax location) or sets by other calls.
WRITABLE_NATIVE = frozenset({StripeField.EMAIL, StripeField.DESCRIPTION, StripeField.TAX_EXEMPT})
# Our own metadata keys (customers/links.py, invoicing/push.py): never mapped over.
RESERVED_PREFIX = "crm_"
metadata_key_validator = RegexValidator(r"^[A-Za-z0-9_\-.]{1,40}$", "Use 1 to 40 letters, digits, _, - or .")


class CustomFieldMapping(BusinessOwned):
    """A custom field <-> a Stripe metadata key or native customer field."""

    field = models.OneToOneField(CustomFieldDefinition, on_delete=models.CASCADE, related_name="stripe_mapping",
                                 verbose_name="custom field")
    stripe_field = models.CharField(max_length=24, choices=StripeField.choices, default=StripeField.METADATA)
    metadata_key = models.CharField(max_length=40, blank=True, validators=[metadata_key_validator],
                                    help_text="For a metadata mapping: the key in the Stripe object's metadata.")

    class Meta:
        ordering = ["field__applies_to", "field__key"]
        constraints = [models.UniqueConstraint(fields=["business", "field"], name="uniq_custom_field_mapping")]

    def __str__(self):
        target = f"metadata.{self.metadata_key}" if self.stripe_field == StripeField.METADATA else self.stripe_field
        return f"{self.field.key} <-> {target}"

    @property
    def writable(self) -> bool:
        return self.stripe_field == StripeField.METADATA or self.stripe_field in WRITABLE_NATIVE

    def clean(self):
        definition = getattr(self, "field", None)
        self.check_same_business(field=definition)
        errors = {}
        if self.stripe_field == StripeField.METADATA:
            if not self.metadata_key:
                errors["metadata_key"] = "Name the metadata key."
            elif self.metadata_key.startswith(RESERVED_PREFIX):
                errors["metadata_key"] = f"Keys starting with {RESERVED_PREFIX} are the integration's own."
        elif self.metadata_key:
            errors["metadata_key"] = "Only a metadata mapping names a key."
        if definition is not None and self.stripe_field != StripeField.METADATA:
            if definition.applies_to != CustomFieldTarget.CONTACT:
                errors["stripe_field"] = "Invoice and payment custom fields map to metadata keys only."
            elif self.stripe_field == StripeField.DELINQUENT and definition.field_type != CustomFieldType.BOOL:
                errors["stripe_field"] = "Delinquent is yes/no: map it to a yes/no custom field."
            elif self.stripe_field == StripeField.EMAIL and definition.field_type != CustomFieldType.EMAIL:
                errors["stripe_field"] = "Map the customer e-mail to an e-mail custom field."
        if definition is not None and self.stripe_field == StripeField.METADATA and self.metadata_key:
            clash = (CustomFieldMapping.objects.filter(business_id=self.business_id, metadata_key=self.metadata_key,
                                                       field__applies_to=definition.applies_to)
                     .exclude(pk=self.pk).exists())
            if clash:
                errors["metadata_key"] = "Another custom field already maps to this key."
        if errors:
            raise ValidationError(errors)
