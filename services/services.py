"""Writes to the service catalog. Keyword-only; every row is full_clean()ed before save().

The rule that matters: a service that is referenced (a billable or an invoice line points
at it, both PROTECT) is archived, never deleted, so the history that priced an invoice
keeps its service and nobody meets a ProtectedError.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Literal

from django.db import router, transaction
from django.db.models import ProtectedError, RestrictedError
from django.db.models.deletion import Collector

from crm.models import Business
from services.models import Service, ServicePrice
from services.signals import service_changed

DELETED = "deleted"
ARCHIVED = "archived"


def _sync_to_stripe(service: Service) -> None:
    """Announce the change (services.signals): the Stripe integration queues the service's
    sync for after the commit (nothing when the business has no Stripe connection)."""
    service_changed.send(sender=Service, service=service)


# What service_update may change. The business never changes: a service belongs to the
# business that created it (tenancy), and its prices have their own rows.
UPDATABLE_FIELDS = frozenset({"code", "name", "description", "active"})


def service_create(
    *,
    business: Business,
    code: str,
    name: str,
    description: str = "",
    active: bool = True,
    prices: Mapping[str, Decimal] | Iterable[tuple[str, Decimal]] = (),
) -> Service:
    """A new service with its list prices, given as {currency: amount} or (currency, amount) pairs."""
    items = prices.items() if isinstance(prices, Mapping) else prices
    with transaction.atomic():
        service = Service(business=business, code=code, name=name, description=description, active=active)
        service.full_clean()
        service.save()
        for currency, amount in items:
            price = ServicePrice(business=business, service=service, currency=currency, amount=amount)
            price.full_clean()
            price.save()
        _sync_to_stripe(service)
    return service


def service_update(*, service: Service, **fields) -> Service:
    """Change code, name, description or active; anything else is a TypeError."""
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"service_update() cannot change {', '.join(sorted(unknown))}")
    if not fields:
        return service
    for name, value in fields.items():
        setattr(service, name, value)
    with transaction.atomic():
        service.full_clean()
        service.save(update_fields=[*fields, "updated_at"])
        _sync_to_stripe(service)
    return service


def service_prices_changed(*, service: Service) -> None:
    """Tell the integrations that the service's prices were edited (the admin's price
    inline saves ServicePrice rows itself)."""
    _sync_to_stripe(service)


def service_archive(*, service: Service) -> Service:
    """Hide the service from new work; everything that references it stays intact."""
    if not service.active:
        return service
    return service_update(service=service, active=False)


def service_is_in_use(*, service: Service) -> bool:
    """Whether deleting would be blocked by rows that point at the service (PROTECT/RESTRICT).

    Asks Django's deletion collector, the same code that would raise ProtectedError,
    so a reference added later (say, a Stripe product link) counts without being listed here.
    """
    collector = Collector(using=router.db_for_write(Service), origin=service)
    try:
        collector.collect([service])
    except (ProtectedError, RestrictedError):
        return True
    return False


def service_delete_or_archive(*, service: Service) -> Literal["deleted", "archived"]:
    """Delete an unused service (its prices go with it); archive one that is in use."""
    with transaction.atomic():
        if service_is_in_use(service=service):
            service_archive(service=service)
            return ARCHIVED
        try:
            # A savepoint: a reference created since the check above rolls back only
            # the delete attempt, and the service is archived instead.
            with transaction.atomic():
                service.delete()
        except (ProtectedError, RestrictedError):
            service_archive(service=service)
            return ARCHIVED
    return DELETED
