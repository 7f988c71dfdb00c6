"""The rules page's form (staff UI) and the admin's: lists limited to the business's
contacts, the filter checked by `filter_compile` (a syntax or type error is a form error
with CEL's message, never a 500)."""
from django import forms

from crm.choice_fields import make_choices_safe
from crm.custom_fields import custom_field_definitions
from crm.models import Contact, CustomFieldDefinition, CustomFieldTarget

from ..models import FILTER_MAX_LENGTH, StripeRules
from .expressions import FilterError, filter_compile


def filter_clean(expression, *, business_id: int):
    """(expression, compiled filter or None); ValidationError with the reason."""
    expression = (expression or "").strip()
    try:
        compiled = filter_compile(expression, definitions=custom_field_definitions(
            business=business_id, applies_to=CustomFieldTarget.CONTACT))
    except FilterError as exc:
        raise forms.ValidationError(exc.message) from None
    return expression, compiled


class StripeRulesForm(forms.ModelForm):
    filter_expression = forms.CharField(
        required=False, max_length=FILTER_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=StripeRules._meta.get_field("filter_expression").help_text)

    class Meta:
        model = StripeRules
        fields = ["include_contacts", "exclude_contacts", "filter_expression", "account_code_field"]
        widgets = {"include_contacts": forms.SelectMultiple(attrs={"size": 8}),
                   "exclude_contacts": forms.SelectMultiple(attrs={"size": 8})}

    def __init__(self, *args, business, **kwargs):
        super().__init__(*args, **kwargs)
        self.business = business
        contacts = Contact.objects.for_business(business).order_by("name")
        self.fields["include_contacts"].queryset = contacts
        self.fields["exclude_contacts"].queryset = contacts
        self.fields["account_code_field"].queryset = CustomFieldDefinition.objects.for_business(business).filter(
            applies_to=CustomFieldTarget.CONTACT)
        make_choices_safe(self)
        self.compiled = None

    def clean_filter_expression(self):
        expression, self.compiled = filter_clean(self.cleaned_data.get("filter_expression"),
                                                 business_id=self.business.pk)
        return expression
