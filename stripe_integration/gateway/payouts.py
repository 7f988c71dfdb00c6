"""Payouts and balance transactions through the gateway (issue 15, "Payouts and fees").
Part of the one door to Stripe: it calls the SDK only through `Gateway._call`; the
payout sync (`stripe_integration.payouts.sync`) calls it. Results are plain dicts as
Stripe sent them; lists are read page by page (100 a page) to their end.
"""
from __future__ import annotations

from collections.abc import Iterator

from .client import Gateway
from .types import _plain

PAGE_SIZE = 100


def _pages(gw: Gateway, method, params: dict, account: str) -> Iterator[dict]:
    params = {**params, "limit": PAGE_SIZE}
    while True:
        page = gw._call(method, params=params, options=gw._options(account))
        data = [_plain(o) for o in page.data]
        yield from data
        if not page.has_more or not data:
            return
        params = {**params, "starting_after": data[-1]["id"]}


def payouts_list(gw: Gateway, *, account: str, created_gte: int | None = None) -> Iterator[dict]:
    """The account's payouts, newest first (those created from `created_gte` on)."""
    params = {"created": {"gte": created_gte}} if created_gte else {}
    return _pages(gw, gw._client.v1.payouts.list, params, account)


def payout_retrieve(gw: Gateway, *, account: str, payout_id: str) -> dict:
    """The payout now (raises NotFound when Stripe has none by that id)."""
    return _plain(gw._call(gw._client.v1.payouts.retrieve, payout_id, options=gw._options(account)))


def payout_balance_transactions(gw: Gateway, *, account: str, payout_id: str) -> Iterator[dict]:
    """What an automatic payout carried (Stripe: list balance transactions with
    `payout=po_...`), each with its `source` expanded (the charge, refund, dispute...)."""
    return _pages(gw, gw._client.v1.balance_transactions.list,
                  {"payout": payout_id, "expand": ["data.source"]}, account)
