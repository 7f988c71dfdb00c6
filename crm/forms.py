"""Staff UI forms. Each is built for one business: every foreign-key choice is limited
to it, so a crafted POST with another business's id fails as "not a valid choice".
The forms only validate input; crm.services does the writes."""
from django import forms

from crm.choice_fields import make_choices_safe
from crm.contact_lookup import ContactLookupWidget
from crm.custom_fields import FORM_PREFIX, custom_field_definitions, custom_form_fields, custom_values_from_form
from crm.models import Contact, CustomFieldTarget, Individual, Opportunity, Organization, Ticket
from crm.selectors import member_users

ADDRESS = ["phone", "address_line1", "address_line2", "city", "postal_code", "state", "country"]


class BusinessModelForm(forms.ModelForm):
    """`business` is required; `limit_choices` narrows the foreign keys to it."""

    def __init__(self, *args, business, **kwargs):
        super().__init__(*args, **kwargs)
        self.business = business
        self.limit_choices(business)
        make_choices_safe(self)  # a posted id no row can have is "not a valid choice", not a 500

    def limit_choices(self, business):
        pass

    def service_data(self) -> dict:
        """The cleaned values of the form's own fields, ready for a service call."""
        return {name: self.cleaned_data[name] for name in self.fields}


class _UpperCountryMixin:
    def clean_country(self):
        return (self.cleaned_data.get("country") or "").strip().upper()


class ContactCustomFieldsMixin:
    """The business's contact custom fields (`cf_<key>`), checked by their type; saved
    through the service as one `custom_fields` value (fields no longer defined are kept)."""

    def limit_choices(self, business):
        super().limit_choices(business)
        self.custom_definitions = custom_field_definitions(business=business, applies_to=CustomFieldTarget.CONTACT)
        self.fields.update(custom_form_fields(self.custom_definitions, self.instance.custom_fields))

    def service_data(self) -> dict:
        data = {name: value for name, value in super().service_data().items() if not name.startswith(FORM_PREFIX)}
        current = self.instance.custom_fields if isinstance(self.instance.custom_fields, dict) else {}
        defined = {d.key for d in self.custom_definitions}
        kept = {key: value for key, value in current.items() if key not in defined}
        data["custom_fields"] = {**kept, **custom_values_from_form(self.cleaned_data, self.custom_definitions)}
        return data


class IndividualForm(ContactCustomFieldsMixin, _UpperCountryMixin, BusinessModelForm):
    class Meta:
        model = Individual
        fields = ["name", "email", "organization", *ADDRESS]
        labels = {"organization": "Works at"}

    def limit_choices(self, business):
        super().limit_choices(business)
        self.fields["organization"].queryset = Organization.objects.for_business(business).order_by("name")


class OrganizationForm(ContactCustomFieldsMixin, _UpperCountryMixin, BusinessModelForm):
    class Meta:
        model = Organization
        fields = ["name", "billing_email", "tax_id", *ADDRESS]


def _contact_choices(business):
    return Contact.objects.for_business(business).order_by("name")


class OpportunityForm(BusinessModelForm):
    class Meta:
        model = Opportunity
        fields = ["title", "contact", "stage", "value", "currency", "close_date", "owner"]
        widgets = {"close_date": forms.DateInput(attrs={"type": "date"}),
                   "currency": forms.TextInput(attrs={"size": 3, "maxlength": 3}),
                   "contact": ContactLookupWidget}  # a search box and the matches, not every contact

    def limit_choices(self, business):
        self.fields["contact"].queryset = _contact_choices(business)
        self.fields["owner"].queryset = member_users(business=business)
        if not self.instance.pk and not self.initial.get("currency"):
            self.initial["currency"] = business.default_currency

    def clean_currency(self):
        return (self.cleaned_data.get("currency") or "").strip().upper()

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("value") is not None and not cleaned.get("currency"):
            self.add_error("currency", "Give the currency of the value.")
        return cleaned


class TicketForm(BusinessModelForm):
    class Meta:
        model = Ticket
        fields = ["subject", "contact", "status", "priority", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 6}), "contact": ContactLookupWidget}

    def limit_choices(self, business):
        self.fields["contact"].queryset = _contact_choices(business)
