"""GET /v1/account: the key's own account, or with Stripe-Account the connected
account; GET /v1/accounts/{id}: a platform reading one of its connected accounts."""

from __future__ import annotations

import stripe

from ..accounts import resolve_account
from ..core import route


@route("GET", "/v1/account", params=stripe.params.AccountRetrieveParams)
def retrieve_own(ctx, params):
    return ctx.store.objects[ctx.account]


@route("GET", "/v1/accounts/{account}", params=stripe.params.AccountRetrieveParams)
def retrieve(ctx, params, account):
    return ctx.store.objects[resolve_account(ctx.store, ctx.account, ctx.api_key, account)]
