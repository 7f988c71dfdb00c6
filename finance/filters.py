"""FilterSets for finance lists. Choices are limited to the business they are built for."""
import django_filters
from django import forms
from django.db.models import Q

from crm.contact_lookup import ContactLookupWidget
from crm.filters import BusinessFilterSet, _search
from crm.models import Contact
from finance import clock
from finance.models import Billable, BillableStatus, Invoice, InvoiceStatus


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
    bill_to = django_filters.ModelChoiceFilter(queryset=Contact.objects.none(), label="Contact", empty_label="Any contact",
                                              widget=ContactLookupWidget)
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


# --- invoices (issue 14) ------------------------------------------------------------------

# Beside Stripe's five statuses, two conditions finance teams filter on as if they were
# statuses: a bank debit under way ("processing", annotated by the selector) and a
# chargeback (`disputed`). Rows matching any chosen entry are shown.
INVOICE_STATUS_CHOICES = [*InvoiceStatus.choices, ("processing", "Payment processing"), ("disputed", "Disputed")]


def _invoice_currencies(business):
    used = Invoice.objects.for_business(business).order_by().values_list("currency", flat=True).distinct()
    return sorted(set(used) | {business.default_currency})


class InvoiceFilter(BusinessFilterSet):
    q = django_filters.CharFilter(label="Search", method="filter_q",
                                  widget=forms.TextInput(attrs={"placeholder": "Number or contact", "type": "search"}))
    status = django_filters.MultipleChoiceFilter(choices=INVOICE_STATUS_CHOICES, method="filter_status",
                                                 widget=forms.CheckboxSelectMultiple)
    overdue = django_filters.BooleanFilter(method="filter_overdue", label="Overdue only",
                                           widget=forms.CheckboxInput)
    currency = django_filters.ChoiceFilter(choices=[], empty_label="Any currency")
    bill_to = django_filters.ModelChoiceFilter(queryset=Contact.objects.none(), label="Contact", empty_label="Any contact",
                                              widget=ContactLookupWidget)
    # The issue date is when the invoice was finalized (Stripe's `status_transitions.
    # finalized_at`): a draft has none yet.
    issued_from = django_filters.DateFilter(field_name="finalized_at", lookup_expr="date__gte", label="Issued from",
                                            widget=forms.DateInput(attrs={"type": "date"}))
    issued_to = django_filters.DateFilter(field_name="finalized_at", lookup_expr="date__lte", label="Issued to",
                                          widget=forms.DateInput(attrs={"type": "date"}))
    due_from = django_filters.DateFilter(field_name="due_date", lookup_expr="gte", label="Due from",
                                         widget=forms.DateInput(attrs={"type": "date"}))
    due_to = django_filters.DateFilter(field_name="due_date", lookup_expr="lte", label="Due to",
                                       widget=forms.DateInput(attrs={"type": "date"}))

    business_querysets = {"bill_to": lambda b: Contact.objects.for_business(b).only("id", "name").order_by("name", "pk")}

    class Meta:
        model = Invoice
        fields = ["q", "status", "overdue", "currency", "bill_to", "issued_from", "issued_to", "due_from", "due_to"]

    def __init__(self, data=None, *args, business, **kwargs):
        super().__init__(data, *args, business=business, **kwargs)
        self.filters["currency"].extra["choices"] = [(c, c) for c in _invoice_currencies(business)]

    filter_q = staticmethod(_search(["number", "stripe_number", "bill_to__name"]))

    def filter_status(self, queryset, name, value):
        if not value:
            return queryset
        q = Q(status__in=[v for v in value if v in InvoiceStatus.values])
        if "processing" in value:
            q |= Q(payment_processing=True)
        if "disputed" in value:
            q |= Q(disputed=True)
        return queryset.filter(q)

    def filter_overdue(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(overdue_q(today=clock.today()))


def overdue_q(*, today) -> Q:
    """THE rule for "overdue": open (Stripe still collecting) and past its due date."""
    return Q(status=InvoiceStatus.OPEN, due_date__lt=today)
