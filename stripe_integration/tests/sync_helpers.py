"""Helpers of the catalog and customer sync tests: connect a business through the real
OAuth flow, and act on its Stripe account the way a person in the Stripe dashboard would,
over raw HTTP (tests may not import `stripe`)."""
from __future__ import annotations

import requests

from stripe_integration.models import StripeConnection
from stripe_integration.tests import oauth_helpers as oauth
from stripe_integration.tests.stripe_http import form_encode

TIMEOUT = 15


def connect(client, user, business) -> StripeConnection:
    client.force_login(user)
    oauth.connect(client)
    return StripeConnection.objects.get(business=business, status="connected")


def stripe_call(stripe_env, method: str, path: str, *, account: str, params: dict | None = None) -> dict:
    """One Stripe API call with the platform key on the connected account."""
    headers = {"Authorization": f"Bearer {stripe_env.secret_key}", "Stripe-Account": account}
    data = form_encode(params or {})
    if method == "GET":
        resp = requests.get(stripe_env.base_url + path, params=data, headers=headers, timeout=TIMEOUT)
    else:
        resp = requests.request(method, stripe_env.base_url + path, data=data, headers=headers, timeout=TIMEOUT)
    body = resp.json()
    assert resp.status_code < 500, body
    return body


def writes(stripe_env) -> list[dict]:
    """The API writes (POST/DELETE under /v1/) made since the test began."""
    return [r for r in stripe_env.requests() if r["method"] in ("POST", "DELETE") and r["path"].startswith("/v1/")]
