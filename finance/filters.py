"""FilterSets for finance lists. Choices are limited to the business they are built for."""
import django_filters
from django import forms

from crm.filters import BusinessFilterSet, _search
from crm.models import Contact
from finance.models import Billable, BillableStatus


def _currencies(business):
    """Currencies the business has billables in (plus its default), for the select."""
    used = (
        Billable.objects.for_business(business).order_by().values_list("currency", flat=True).distinct()
    )
    return sorted(set(used) | {business.default_currency})


class BillableFilter(BusinessFilterSet):
    q = django_filters.CharFilter(label="Search", method="filter_q",
                                  widget=forms.TextInput(attrs={"placeholder": "Description or contact", "type": "search"}))
    status = django_filters.MultipleChoiceFilter(choices=BillableStatus.choices, widget=forms.CheckboxSelectMultiple)
    currency = django_filters.ChoiceFilter(choices=[], empty_label="Any currency")
    bill_to = django_filters.ModelChoiceFilter(queryset=Contact.objects.none(), label="Contact", empty_label="Any contact")
    # `effective_date` is annotated by finance.selectors.billable_list: the service date,
    # else the day the billable was recorded.
    date_from = django_filters.DateFilter(field_name="effective_date", lookup_expr="gte", label="From",
                                          widget=forms.DateInput(attrs={"type": "date"}))
    date_to = django_filters.DateFilter(field_name="effective_date", lookup_expr="lte", label="To",
                                        widget=forms.DateInput(attrs={"type": "date"}))

    business_querysets = {"bill_to": lambda b: Contact.objects.for_business(b).only("id", "name")}

    class Meta:
        model = Billable
        fields = ["q", "status", "currency", "bill_to", "date_from", "date_to"]

    def __init__(self, data=None, *args, business, **kwargs):
        super().__init__(data, *args, business=business, **kwargs)
        self.filters["currency"].extra["choices"] = [(c, c) for c in _currencies(business)]

    filter_q = staticmethod(_search(["description", "bill_to__name"]))
