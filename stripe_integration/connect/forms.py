"""Forms of the integration's pages. Writes go through the services (customers/links.py)."""
from django import forms
from django.contrib.auth import get_user_model

from finance.models import LineType

from ..models import IntegrationSettings


class IntegrationSettingsForm(forms.ModelForm):
    """The business's choices on the settings page. The template renders every field listed
    here, so a new setting of IntegrationSettings only needs its name added to `fields`."""

    # --- invoices (issue 6): line types as a choice rather than raw JSON ---
    excluded_line_types = forms.TypedMultipleChoiceField(
        choices=LineType.choices, required=False, widget=forms.CheckboxSelectMultiple,
        label="Line types left out of invoices",
        help_text="Billables of the ticked types stay unbilled when invoices are made. Usually none.")

    # A post that leaves out an invoice choice keeps its current value (not an error).
    _KEEP_IF_MISSING = ("collection_method", "days_until_due", "line_order")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self._KEEP_IF_MISSING:
            self.fields[name].required = False
        # --- auto-disable (issue 15): the alert goes to members of this business only ---
        self.fields["alert_users"].queryset = get_user_model().objects.filter(
            memberships__business_id=self.instance.business_id).order_by("username")
        self.fields["alert_users"].widget = forms.CheckboxSelectMultiple(choices=self.fields["alert_users"].choices)
        self.fields["auto_disable_after"].required = False

    def clean(self):
        cleaned = super().clean()
        for name in (*self._KEEP_IF_MISSING, "auto_disable_after"):
            if cleaned.get(name) in (None, "") and name not in self.errors:
                cleaned[name] = getattr(self.instance, name)
        return cleaned

    def charges_left_out(self) -> bool:
        """Whether the form (as posted, else as saved) leaves charges out of invoices."""
        if self.is_bound and hasattr(self, "cleaned_data"):
            chosen = self.cleaned_data.get("excluded_line_types") or []
        else:
            chosen = self.instance.excluded_line_types or []
        return LineType.CHARGE in chosen

    class Meta:
        model = IntegrationSettings
        fields = ["auto_create_customers",
                  # --- invoices (issue 6) ---
                  "collection_method", "days_until_due", "send_due_date", "only_approved", "automatic_collection",
                  "excluded_line_types",
                  "line_order", "po_number_field", "footer",
                  # --- auto-disable (issue 15) ---
                  "auto_disable_after", "alert_users"]


class CustomerLinkForm(forms.Form):
    customer_id = forms.CharField(
        label="Stripe customer id", max_length=255,
        help_text="Paste the id of a customer of this business's Stripe account (cus_...).",
        widget=forms.TextInput(attrs={"placeholder": "cus_...", "autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_customer_id(self):
        return self.cleaned_data["customer_id"].strip()
