"""Events (docs.stripe.com/api/events): list and retrieve, in the account's scope
(Stripe-Account shows a connected account's events), kept 30 days."""

from __future__ import annotations

import stripe

from ..core import route
from ..errors import invalid_request, resource_missing
from ..events import EVENT_RETENTION_SECONDS, type_matches


@route("GET", "/v1/events/{event}", params=stripe.params.EventRetrieveParams)
def retrieve(ctx, params, event):
    obj = ctx.get("event", event)
    if obj["created"] < ctx.now() - EVENT_RETENTION_SECONDS:
        raise resource_missing("event", event)
    return obj


@route("GET", "/v1/events", params=stripe.params.EventListParams)
def list_(ctx, params):
    if "type" in params and "types" in params:
        raise invalid_request(
            "You may only specify one of these parameters: type, types.", code="parameters_exclusive"
        )
    wanted = params.get("types") or ([params["type"]] if "type" in params else None)
    if wanted is not None and len(wanted) > 20:
        raise invalid_request("You may pass at most 20 event types in `types`.", param="types")
    oldest = ctx.now() - EVENT_RETENTION_SECONDS
    delivered = params.get("delivery_success")

    def where(e):
        return (
            e["created"] >= oldest
            and (wanted is None or any(type_matches(e["type"], w) for w in wanted))
            # "delivery_success=false: events still pending or that failed all
            # delivery attempts to a webhook endpoint".
            and (delivered is None or (e["pending_webhooks"] == 0) == delivered)
        )

    return ctx.list("event", params, url="/v1/events", where=where)
