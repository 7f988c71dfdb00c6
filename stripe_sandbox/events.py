"""Events: every state change emits the event Stripe emits for it.

Handlers call `emit(ctx, "customer.updated", obj, previous_attributes)`. Events are
held on the request context and published only when the handler succeeds, so a
request that fails half-way emits nothing. Publishing stores the event in the
account's scope (GET /v1/events), counts the webhook endpoints it goes to
(`pending_webhooks`) and queues its deliveries (webhooks.py).

Which endpoints: an endpoint with `connect=false` gets its own account's events; one
with `connect=true` gets the events of the accounts connected to its (platform)
account, and only those (docs.stripe.com/connect/webhooks).
"""

from __future__ import annotations

import fnmatch

from .accounts import API_VERSION, platform_of
from .core import copy_json, new_id
from .schema import shape
from .spec_shapes import conform

EVENT_RETENTION_SECONDS = 30 * 24 * 3600  # "Events are kept for 30 days" (API reference)


def emit(ctx, event_type: str, obj: dict, previous_attributes: dict | None = None,
         *, account: str | None = None) -> dict:
    """Queue an event about `obj` for publication when the request succeeds.

    `account`: the account the event happens on, when not the request's own (the
    OAuth endpoints act as the platform but deauthorization happens on the
    connected account)."""
    scope = account or ctx.account
    if scope is None:
        raise RuntimeError("an event needs an account: set ctx.account on public routes")
    data = {"object": copy_json(obj)}
    if previous_attributes is not None:
        data["previous_attributes"] = copy_json(previous_attributes)
    event = shape(
        "event",
        id=new_id("evt"),
        account=scope if platform_of(ctx.store, scope) else None,
        api_version=API_VERSION,
        created=ctx.now(),
        data=data,
        livemode=False,
        pending_webhooks=0,
        request={"id": ctx.request_id, "idempotency_key": ctx.idempotency_key},
        type=event_type,
    )
    if previous_attributes is None:
        # Stripe sends previous_attributes only on *.updated events.
        del event["data"]["previous_attributes"]
    # Stored and delivered as the spec writes events (data.object included).
    event = conform(event)
    ctx.pending_events.append((scope, event))
    return event


def publish(sandbox, ctx) -> None:
    """Store and dispatch the events a successful request emitted (lock held)."""
    store = sandbox.store
    for scope, event in ctx.pending_events:
        endpoints = matching_endpoints(store, scope, event["type"])
        event["pending_webhooks"] = len(endpoints)
        store.insert(event, scope)
        sandbox.webhooks.enqueue(event, endpoints)
    ctx.pending_events.clear()


def matching_endpoints(store, scope: str, event_type: str) -> list[dict]:
    owners = [(scope, False)]
    platform = platform_of(store, scope)
    if platform:
        owners.append((platform, True))
    out = []
    for owner, connect in owners:
        for oid in store.ids(owner, "webhook_endpoint"):
            ep = store.objects[oid]
            # A Connect endpoint is one tied to the platform's application.
            if ep.get("deleted") or ep["status"] != "enabled" or bool(ep["application"]) != connect:
                continue
            enabled = ep["enabled_events"]
            if "*" in enabled or event_type in enabled:
                out.append(ep)
    return out


def type_matches(event_type: str, wanted: str) -> bool:
    """`type` filters accept a wildcard: `customer.*`."""
    return event_type == wanted or ("*" in wanted and fnmatch.fnmatchcase(event_type, wanted))
