"""The billable form of the staff UI (issue 14). Choices are limited to the business;
the form validates input and finance.billables writes. An empty unit price means the
service's list price in the chosen currency (the model's rule); the service choices
show their list prices, and "Use list price" fills it in without JavaScript."""
from django import forms
from django.db.models import Q

from crm.contact_lookup import ContactLookupWidget
from crm.forms import BusinessModelForm
from crm.models import Contact
from finance.billables import EDITABLE_FIELDS
from finance.money import format_money
from finance.models import Billable
from services.models import Service

FORM_FIELDS = [f for f in EDITABLE_FIELDS if f not in ("opportunity", "ticket")]


def _service_label(service: Service) -> str:
    prices = " · ".join(format_money(p.amount, p.currency) for p in service.prices.all())
    return f"{service.code} - {service.name}" + (f" ({prices})" if prices else "")


class ServiceChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return _service_label(obj)


class BillableForm(BusinessModelForm):
    service = ServiceChoiceField(queryset=Service.objects.none(), required=False, empty_label="No service (free text)")

    class Meta:
        model = Billable
        fields = FORM_FIELDS
        widgets = {
            "service_date": forms.DateInput(attrs={"type": "date"}),
            "currency": forms.TextInput(attrs={"size": 3, "maxlength": 3}),
            "description": forms.TextInput(),
            "bill_to": ContactLookupWidget,  # a search box and the matches, not every contact
        }
        labels = {"bill_to": "Bill to", "line_type": "Type"}

    def limit_choices(self, business):
        self.fields["bill_to"].queryset = Contact.objects.for_business(business).order_by("name", "pk")
        services = Service.objects.for_business(business).prefetch_related("prices").order_by("code")
        current = self.instance.service_id if self.instance.pk else None
        self.fields["service"].queryset = services.filter(Q(active=True) | Q(pk=current))
        if not self.instance.pk and not self.initial.get("currency"):
            self.initial["currency"] = business.default_currency

    def clean_currency(self):
        return (self.cleaned_data.get("currency") or "").strip().upper()

    def list_price_currency(self) -> str:
        return (self.data.get("currency") or "").strip().upper()

    def list_price(self):
        """The chosen service's list price in the chosen currency, or None (for "Use list
        price"); reads the submitted values, valid or not."""
        service, currency = self.data.get("service"), self.list_price_currency()
        if not (service and currency):
            return None
        try:
            chosen = self.fields["service"].queryset.get(pk=service)
        except (Service.DoesNotExist, ValueError, TypeError):
            return None
        price = chosen.price_for(currency)
        return price.amount if price else None
