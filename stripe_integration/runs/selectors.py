"""Reads of runs, events and the integration's state, for the pages and the admin."""
from crm.selectors import _filtered

from ..models import IntegrationEvent, IntegrationRun, IntegrationSettings
from .filters import EventFilter, RunFilter


def run_list(*, business, filters=None):
    qs = IntegrationRun.objects.filter(business=business).defer("log").order_by("-created_at", "-pk")
    return _filtered(RunFilter, business=business, filters=filters, queryset=qs)


def run_get(*, business, pk) -> IntegrationRun:
    return IntegrationRun.objects.get(business=business, pk=pk)


def run_events(*, run: IntegrationRun):
    return run.events.select_related("actioned_by").order_by("created_at", "pk")


def event_list(*, business, filters=None):
    qs = (IntegrationEvent.objects.filter(business=business).select_related("run", "actioned_by")
          .defer("run__log", "run__request_ids").order_by("-created_at", "-pk"))
    return _filtered(EventFilter, business=business, filters=filters, queryset=qs)


def event_get(*, business, pk) -> IntegrationEvent:
    return IntegrationEvent.objects.get(business=business, pk=pk)


def integration_state(*, business) -> IntegrationSettings | None:
    """The business's settings row when its integration is disabled, else None (banner)."""
    return IntegrationSettings.objects.filter(business=business, disabled=True).only(
        "disabled", "disabled_at", "disabled_reason", "business").first()
