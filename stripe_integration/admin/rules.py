"""Admin pages of the rules and the custom field mappings (issue 15), owner/finance only,
scoped to the member's business like every admin page (crm.admin_base). The filter is
checked as on the staff UI's rules page (a syntax or type error is a form error); the
"Test this filter" preview is on that page (stripe_integration:rules)."""
from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from crm.admin_base import BusinessScopedAdminMixin

from ..models import FILTER_MAX_LENGTH, CustomFieldMapping, StripeRules
from ..rules.forms import filter_clean


class StripeRulesAdminForm(forms.ModelForm):
    filter_expression = forms.CharField(required=False, max_length=FILTER_MAX_LENGTH,
                                        widget=forms.Textarea(attrs={"rows": 3}),
                                        help_text=StripeRules._meta.get_field("filter_expression").help_text)

    class Meta:
        model = StripeRules
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        business_id = self.instance.business_id or getattr(cleaned.get("business"), "pk", None)
        if business_id is not None and "filter_expression" in cleaned:
            try:
                cleaned["filter_expression"], _ = filter_clean(cleaned["filter_expression"], business_id=business_id)
            except forms.ValidationError as exc:
                self.add_error("filter_expression", exc)
        return cleaned


@admin.register(StripeRules)
class StripeRulesAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    finance_only = True
    form = StripeRulesAdminForm
    list_display = ("business", "filter_expression", "account_code_field", "preview_link")
    filter_horizontal = ("include_contacts", "exclude_contacts")
    readonly_fields = ("preview_link", "created_at", "updated_at")

    @admin.display(description="test this filter")
    def preview_link(self, obj):
        return format_html('<a href="{}">Rules page (preview)</a>', reverse("stripe_integration:rules"))


@admin.register(CustomFieldMapping)
class CustomFieldMappingAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    """E-mail, description and tax exempt flow both ways; delinquent, discount, default
    payment method and tax location country only from Stripe to the CRM (Stripe sets
    them): their choices say so."""

    finance_only = True
    list_display = ("field", "stripe_field", "metadata_key", "direction")
    list_filter = ("stripe_field",)
    list_select_related = ("field",)
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="direction")
    def direction(self, obj):
        return "both ways" if obj.writable else "Stripe -> CRM only"
