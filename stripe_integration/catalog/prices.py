"""Which synced Stripe price an invoice line may use: the rule behind
`catalog.price_id_for`, for many (service, currency, amount) at once, in two queries
whatever their number (issue 12, item 14: the push used to pay two queries per distinct
service on the invoice). Reads only; the catalog sync writes the rows it reads.
"""
from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db.models import Q

from finance.money import is_representable, to_minor

from ..models import PriceLink, ServiceSync, StripeConnection, SyncState


def price_ids_for(*, connection: StripeConnection,
                  wanted: Iterable[tuple[int, str, Decimal]]) -> dict[tuple[int, str, Decimal], str | None]:
    """{(service id, currency, amount): the active synced Stripe price of the service in
    the currency when the amount is exactly its synced list amount, else None}. None too
    for a service whose Stripe product drifted (changed by hand in Stripe: an invoice is
    not bet on it) and for an amount Stripe cannot take exactly (it goes inline)."""
    keys = list(dict.fromkeys(wanted))
    out: dict[tuple[int, str, Decimal], str | None] = dict.fromkeys(keys)
    minors = {}
    for key in keys:
        service_id, currency, amount = key
        try:
            if is_representable(amount, currency):
                minors[key] = to_minor(amount, currency)
        except (ValueError, TypeError):
            pass
    if not minors:
        return out
    service_ids = {key[0] for key in minors}
    drifted = set(ServiceSync.objects.filter(connection=connection, service_id__in=service_ids, state=SyncState.DRIFT)
                  .values_list("service_id", flat=True))
    wanted_q = Q()
    for (service_id, currency, _), minor in minors.items():
        if service_id not in drifted:
            wanted_q |= Q(service_id=service_id, currency=currency.upper(), amount_minor=minor)
    if not wanted_q:
        return out
    found = {}
    for service_id, currency, minor, price_id in (
            PriceLink.objects.filter(wanted_q, connection=connection, active=True)
            .order_by("service_id", "currency", "-created_at")
            .values_list("service_id", "currency", "amount_minor", "stripe_price_id")):
        found.setdefault((service_id, currency, minor), price_id)
    for key, minor in minors.items():
        if key[0] not in drifted:
            out[key] = found.get((key[0], key[1].upper(), minor))
    return out
