"""Page-by-page listing of a connected account's objects, for the import (issue 15).

One list call per page (`limit` up to 100, `starting_after` the last id of the previous
page, Stripe's cursor pagination), through `Gateway._get_raw`: the shared rate limiter,
retries and error mapping of every call, and the answer's JSON read straight into plain
dicts (building stripe-python's objects was about half the time of listing a page of
invoices). Only the resources the import reads may be listed.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

LISTABLE = frozenset({"customers", "products", "prices", "invoices", "payment_intents", "invoice_payments", "refunds",
                      "disputes", "credit_notes", "charges", "events"})


class ListingMixin:
    def list_page(self, *, account: str, resource: str, starting_after: str = "", limit: int = 100,
                  params: dict[str, Any] | None = None) -> tuple[list[dict], bool]:
        """One page of `resource` (newest first, after `starting_after`): (objects, has_more)."""
        if resource not in LISTABLE:
            raise ValueError(f"{resource} is not listed by the import.")
        return self._list_page(f"/v1/{resource}", account=account, starting_after=starting_after, limit=limit,
                               params=params)

    def invoice_lines_page(self, *, account: str, invoice_id: str, starting_after: str = "",
                           limit: int = 100) -> tuple[list[dict], bool]:
        """One page of an invoice's lines (a listed invoice carries only its first 10)."""
        return self._list_page(f"/v1/invoices/{quote(invoice_id, safe='')}/lines", account=account,
                               starting_after=starting_after, limit=limit)

    def _list_page(self, path: str, *, account: str, starting_after: str, limit: int,
                   params: dict[str, Any] | None = None) -> tuple[list[dict], bool]:
        query: dict[str, Any] = {**(params or {}), "limit": limit}
        if starting_after:
            query["starting_after"] = starting_after
        page = self._get_raw("list", path, query, account)
        return page["data"], bool(page["has_more"])
