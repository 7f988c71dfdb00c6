"""The tenant (Business), its staff memberships, and the CRM records.

Every domain row belongs to exactly one Business through a `business` foreign key
(`BusinessOwned`); reads go through `Model.objects.for_business(b)` and the admin / staff
UI scope every queryset and every foreign-key choice to the user's business.

Contacts use multi-table inheritance: `Contact` is what gets billed ("bill-to") and what
opportunities, tickets and Stripe customers point at; `Individual` and `Organization` add
their own fields. One foreign key serves both kinds everywhere.
"""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower

from crm.money_fields import CurrencyField, CurrencyValidator

# Upper-case ISO 4217 codes that Stripe supports (see crm.money_fields).
currency_validator = CurrencyValidator()
country_validator = RegexValidator(r"^[A-Z]{2}$", "Use a two-letter ISO 3166 country code, e.g. GB.")


class BusinessQuerySet(models.QuerySet):
    def for_business(self, business):
        return self.filter(business=business)

    def for_user(self, user):
        if user.is_superuser:
            return self
        return self.filter(business__memberships__user=user)


class Business(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    country = models.CharField(max_length=2, validators=[country_validator])
    default_currency = CurrencyField(default="USD")
    finance_enabled = models.BooleanField(default=False, help_text="Billing, invoices and the Stripe integration.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "businesses"
        ordering = ["name"]

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    FINANCE = "finance", "Finance"
    STAFF = "staff", "Staff"


# Roles allowed to manage billing (billables, invoices, the Stripe integration).
FINANCE_ROLES = frozenset({Role.OWNER, Role.FINANCE})


class Membership(models.Model):
    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["business", "user"], name="uniq_membership")]

    def __str__(self):
        return f"{self.user} @ {self.business} ({self.role})"

    @property
    def can_manage_finance(self):
        return self.role in FINANCE_ROLES


class BusinessOwned(models.Model):
    business = models.ForeignKey(Business, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BusinessQuerySet.as_manager()

    class Meta:
        abstract = True

    def check_same_business(self, **related):
        """A row may only point at rows of its own business (called from clean())."""
        errors = {}
        for field, obj in related.items():
            if obj is not None and self.business_id and obj.business_id != self.business_id:
                errors[field] = "Belongs to another business."
        if errors:
            raise ValidationError(errors)


class ContactKind(models.TextChoices):
    INDIVIDUAL = "individual", "Individual"
    ORGANIZATION = "organization", "Organization"


class Contact(BusinessOwned):
    """Anything that can be billed. Use Individual / Organization to create one."""

    kind = models.CharField(max_length=16, choices=ContactKind.choices, editable=False)
    name = models.CharField(max_length=200)
    phone = models.CharField(max_length=40, blank=True)
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    state = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True, validators=[country_validator])
    # Values of the business's contact custom fields (CustomFieldDefinition), checked by
    # crm.custom_fields.custom_values_clean in the services; key -> JSON value.
    custom_fields = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["business", "name"])]

    def clean(self):
        if not isinstance(self.custom_fields, dict):
            raise ValidationError({"custom_fields": "Custom fields are a JSON object of name: value."})

    def __str__(self):
        return self.name

    @property
    def billing_email(self):
        if self.kind == ContactKind.ORGANIZATION:
            return self.as_organization.billing_email
        return self.as_individual.email

    @property
    def specific(self):
        return self.as_organization if self.kind == ContactKind.ORGANIZATION else self.as_individual


class Organization(Contact):
    # Named parent links: the default reverse name `contact.organization` would clash
    # with Individual.organization.
    contact_ptr = models.OneToOneField(
        Contact, on_delete=models.CASCADE, parent_link=True, primary_key=True, related_name="as_organization"
    )
    billing_email = models.EmailField(blank=True)
    tax_id = models.CharField("tax / VAT id", max_length=50, blank=True)

    class Meta:
        # The Stripe import matches customers to contacts by lower-cased e-mail, a page
        # at a time: without it each page read every organization of the business.
        indexes = [models.Index(Lower("billing_email"), name="crm_org_billing_email_lower")]

    def save(self, *args, **kwargs):
        self.kind = ContactKind.ORGANIZATION
        super().save(*args, **kwargs)


class Individual(Contact):
    contact_ptr = models.OneToOneField(
        Contact, on_delete=models.CASCADE, parent_link=True, primary_key=True, related_name="as_individual"
    )
    email = models.EmailField(blank=True)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="people"
    )

    class Meta:
        indexes = [models.Index(Lower("email"), name="crm_individual_email_lower")]  # as Organization's

    def save(self, *args, **kwargs):
        self.kind = ContactKind.INDIVIDUAL
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        self.check_same_business(organization=self.organization)


class Opportunity(BusinessOwned):
    class Stage(models.TextChoices):
        LEAD = "lead", "Lead"
        QUALIFIED = "qualified", "Qualified"
        PROPOSAL = "proposal", "Proposal"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="opportunities")
    title = models.CharField(max_length=200)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.LEAD)
    value = models.DecimalField(max_digits=18, decimal_places=3, null=True, blank=True)
    currency = CurrencyField(blank=True)
    close_date = models.DateField(null=True, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name_plural = "opportunities"
        ordering = ["-created_at"]

    def __str__(self):
        return self.title

    def clean(self):
        self.check_same_business(contact=getattr(self, "contact", None))


class Ticket(BusinessOwned):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PENDING = "pending", "Pending"
        CLOSED = "closed", "Closed"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="tickets")
    subject = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.NORMAL)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.subject

    def clean(self):
        self.check_same_business(contact=getattr(self, "contact", None))


class CustomFieldType(models.TextChoices):
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    BOOL = "bool", "Yes / no"
    DATE = "date", "Date"
    EMAIL = "email", "E-mail"


class CustomFieldTarget(models.TextChoices):
    CONTACT = "contact", "Contacts"
    INVOICE = "invoice", "Invoices"
    PAYMENT = "payment", "Payments"


# A key is also a name in filter expressions (contact.custom_fields.<key>, CEL) and in forms.
custom_field_key_validator = RegexValidator(
    r"^[a-z][a-z0-9_]{0,39}$", "Use 1 to 40 lower-case letters, digits or _, starting with a letter.")


class CustomFieldDefinition(BusinessOwned):
    """A field the business adds to its contacts, invoices or payments (Upflow's custom
    fields). Values live in the row's `custom_fields` JSON, checked against these."""

    applies_to = models.CharField(max_length=8, choices=CustomFieldTarget.choices, default=CustomFieldTarget.CONTACT)
    key = models.CharField(max_length=40, validators=[custom_field_key_validator])
    label = models.CharField(max_length=100)
    field_type = models.CharField("type", max_length=8, choices=CustomFieldType.choices, default=CustomFieldType.TEXT)

    class Meta:
        ordering = ["applies_to", "key"]
        constraints = [models.UniqueConstraint(fields=["business", "applies_to", "key"], name="uniq_custom_field_key")]

    def __str__(self):
        return f"{self.label} ({self.get_applies_to_display().lower()}.{self.key})"


# The audit log lives in its own module (crm.audit); imported here so Django finds the model.
from crm.audit import AuditEntry  # noqa: E402,F401
