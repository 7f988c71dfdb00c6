"""FilterSets for the staff UI lists (and any later API). Every choice that names a row
is limited to the business passed in, so a crafted id of another business is a form
error, never a filter on foreign data."""
import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.forms.utils import flatatt
from django.utils.html import escape
from django.utils.safestring import mark_safe

from crm.audit import ACTION_LABELS, AuditEntry
from crm.choice_fields import make_choices_safe
from crm.contact_lookup import ContactLookupWidget
from crm.models import Contact, ContactKind, Opportunity, Organization, Ticket


class QuickSelect(forms.Select):
    """The same <select> as Django's, written by joining strings instead of rendering a
    template per option: a business's contact list (thousands of rows) costs a few
    milliseconds instead of most of the page's time (bench/finance_pages.py)."""

    def render(self, name, value, attrs=None, renderer=None):
        final = self.build_attrs(self.attrs, attrs)
        final["name"] = name
        chosen = {str(v) for v in self.format_value(value)}
        options = []
        for choice, label in self.choices:
            key = "" if choice is None else str(choice)
            selected = " selected" if key in chosen else ""
            options.append(f'<option value="{escape(key)}"{selected}>{escape(label)}</option>')
        return mark_safe(f"<select{flatatt(final)}>{''.join(options)}</select>")


class BusinessFilterSet(django_filters.FilterSet):
    """A FilterSet bound to one business: `business_querysets` maps a filter name to a
    callable(business) -> queryset used for its choices (drawn with QuickSelect unless
    the filter names its own widget)."""

    business_querysets: dict = {}

    def __init__(self, data=None, *args, business, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.business = business
        for name, make in self.business_querysets.items():
            self.filters[name].queryset = make(business)
            self.filters[name].extra.setdefault("widget", QuickSelect)

    @property
    def form(self):
        form = super().form
        make_choices_safe(form)  # ?organization=<20 digits> is an invalid choice, not a 500
        return form


def _contacts(business):
    return Contact.objects.for_business(business).only("id", "name")


def _search(fields):
    def method(queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        q = Q()
        for field in fields:
            q |= Q(**{f"{field}__icontains": value})
        return queryset.filter(q)

    return method


class ContactFilter(BusinessFilterSet):
    q = django_filters.CharFilter(
        label="Search", method="filter_q",
        widget=forms.TextInput(attrs={"placeholder": "Name, e-mail, phone, city, tax id", "type": "search"}),
    )
    kind = django_filters.ChoiceFilter(choices=ContactKind.choices, empty_label="Any kind")
    country = django_filters.CharFilter(lookup_expr="iexact", widget=forms.TextInput(attrs={"size": 3, "maxlength": 2}))
    organization = django_filters.ModelChoiceFilter(
        field_name="as_individual__organization", queryset=Organization.objects.none(),
        label="Works at", empty_label="Any organization",
    )

    business_querysets = {
        "organization": lambda b: Organization.objects.for_business(b).only("contact_ptr_id", "name"),
    }

    class Meta:
        model = Contact
        fields = ["q", "kind", "country", "organization"]

    filter_q = staticmethod(_search([
        "name", "phone", "city", "postal_code", "as_individual__email",
        "as_organization__billing_email", "as_organization__tax_id",
    ]))


class OpportunityFilter(BusinessFilterSet):
    q = django_filters.CharFilter(label="Search", method="filter_q",
                                  widget=forms.TextInput(attrs={"placeholder": "Title or contact", "type": "search"}))
    stage = django_filters.MultipleChoiceFilter(choices=Opportunity.Stage.choices, widget=forms.CheckboxSelectMultiple)
    contact = django_filters.ModelChoiceFilter(queryset=Contact.objects.none(), empty_label="Any contact",
                                              widget=ContactLookupWidget)
    owner = django_filters.ModelChoiceFilter(queryset=get_user_model().objects.none(), empty_label="Anyone")
    close_from = django_filters.DateFilter(field_name="close_date", lookup_expr="gte", label="Closes from",
                                           widget=forms.DateInput(attrs={"type": "date"}))
    close_to = django_filters.DateFilter(field_name="close_date", lookup_expr="lte", label="Closes by",
                                         widget=forms.DateInput(attrs={"type": "date"}))

    business_querysets = {
        "contact": _contacts,
        "owner": lambda b: get_user_model().objects.filter(memberships__business=b).order_by("username"),
    }

    class Meta:
        model = Opportunity
        fields = ["q", "stage", "contact", "owner", "close_from", "close_to"]

    filter_q = staticmethod(_search(["title", "contact__name"]))


class TicketFilter(BusinessFilterSet):
    q = django_filters.CharFilter(label="Search", method="filter_q",
                                  widget=forms.TextInput(attrs={"placeholder": "Subject, text or contact", "type": "search"}))
    status = django_filters.MultipleChoiceFilter(choices=Ticket.Status.choices, widget=forms.CheckboxSelectMultiple)
    priority = django_filters.ChoiceFilter(choices=Ticket.Priority.choices, empty_label="Any priority")
    contact = django_filters.ModelChoiceFilter(queryset=Contact.objects.none(), empty_label="Any contact",
                                              widget=ContactLookupWidget)

    business_querysets = {"contact": _contacts}

    class Meta:
        model = Ticket
        fields = ["q", "status", "priority", "contact"]

    filter_q = staticmethod(_search(["subject", "description", "contact__name"]))


class AuditFilter(BusinessFilterSet):
    """The audit log page (crm.audit_views)."""

    q = django_filters.CharFilter(label="Search", method="filter_q",
                                  widget=forms.TextInput(attrs={"placeholder": "Object, detail or user", "type": "search"}))
    action = django_filters.ChoiceFilter(choices=[], empty_label="Any action")
    user = django_filters.ModelChoiceFilter(queryset=get_user_model().objects.none(), empty_label="Anyone")
    date_from = django_filters.DateFilter(field_name="created_at", lookup_expr="date__gte", label="From",
                                          widget=forms.DateInput(attrs={"type": "date"}))
    date_to = django_filters.DateFilter(field_name="created_at", lookup_expr="date__lte", label="To",
                                        widget=forms.DateInput(attrs={"type": "date"}))

    business_querysets = {
        "user": lambda b: get_user_model().objects.filter(memberships__business=b).order_by("username"),
    }

    class Meta:
        model = AuditEntry
        fields = ["q", "action", "user", "date_from", "date_to"]

    def __init__(self, data=None, *args, business, **kwargs):
        super().__init__(data, *args, business=business, **kwargs)
        used = AuditEntry.objects.filter(business=business).order_by().values_list("action", flat=True).distinct()
        self.filters["action"].extra["choices"] = [(a, ACTION_LABELS.get(a, a)) for a in sorted(set(used))]

    filter_q = staticmethod(_search(["object_label", "object_id", "detail", "user__username"]))
