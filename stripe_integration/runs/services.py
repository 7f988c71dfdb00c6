"""Writes of the runs pages: marking an event actioned (who and when)."""
from django.utils import timezone

from crm.audit import audit_record

from ..models import IntegrationEvent


def event_mark_actioned(*, event: IntegrationEvent, user, ip: str | None = None) -> IntegrationEvent:
    """Mark the event resolved by `user` now; an event already marked keeps its first mark."""
    if event.actioned_at is not None:
        return event
    event.actioned_at, event.actioned_by = timezone.now(), user
    event.full_clean(exclude=["business", "run", "actioned_by"])
    event.save(update_fields=["actioned_at", "actioned_by", "updated_at"])
    audit_record(business=event.business, user=user, action="integration_event_actioned", obj=event, ip=ip,
                 detail=f"{event.get_kind_display()}: {event.message[:500]}")
    return event
