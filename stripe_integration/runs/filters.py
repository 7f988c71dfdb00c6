"""FilterSets of the runs and events pages (staff UI), django-filter."""
import django_filters
from django import forms

from crm.filters import BusinessFilterSet

from ..models import EventKind, IntegrationEvent, IntegrationRun, RunKind, RunStatus

_DATE = {"widget": forms.DateInput(attrs={"type": "date"})}


class RunFilter(BusinessFilterSet):
    kind = django_filters.ChoiceFilter(choices=RunKind.choices, empty_label="Any job")
    status = django_filters.ChoiceFilter(choices=RunStatus.choices, empty_label="Any status")
    date_from = django_filters.DateFilter(field_name="created_at", lookup_expr="date__gte", label="From", **_DATE)
    date_to = django_filters.DateFilter(field_name="created_at", lookup_expr="date__lte", label="To", **_DATE)

    class Meta:
        model = IntegrationRun
        fields = ["kind", "status", "date_from", "date_to"]


class EventFilter(BusinessFilterSet):
    kind = django_filters.ChoiceFilter(choices=EventKind.choices, empty_label="Any kind")
    status = django_filters.ChoiceFilter(field_name="run__status", choices=RunStatus.choices, label="Run status",
                                         empty_label="Any run status")
    actioned = django_filters.ChoiceFilter(choices=[("no", "Not actioned"), ("yes", "Actioned")], method="filter_actioned",
                                           empty_label="Actioned or not")
    date_from = django_filters.DateFilter(field_name="created_at", lookup_expr="date__gte", label="From", **_DATE)
    date_to = django_filters.DateFilter(field_name="created_at", lookup_expr="date__lte", label="To", **_DATE)

    class Meta:
        model = IntegrationEvent
        fields = ["kind", "status", "actioned", "date_from", "date_to"]

    @staticmethod
    def filter_actioned(queryset, name, value):
        return queryset.filter(actioned_at__isnull=value == "no")
