"""Page-by-page listing of a connected account's objects, for the import (issue 15).

One list call per page (`limit` up to 100, `starting_after` the last id of the previous
page, Stripe's cursor pagination), through `Gateway._call`: the shared rate limiter and
retries. Plain dicts out. Only the resources the import reads may be listed.
"""
from __future__ import annotations

from typing import Any

from .types import _plain

LISTABLE = frozenset({"customers", "products", "prices", "invoices", "payment_intents", "invoice_payments", "refunds",
                      "disputes", "credit_notes", "charges", "events"})


class ListingMixin:
    def list_page(self, *, account: str, resource: str, starting_after: str = "", limit: int = 100,
                  params: dict[str, Any] | None = None) -> tuple[list[dict], bool]:
        """One page of `resource` (newest first, after `starting_after`): (objects, has_more)."""
        if resource not in LISTABLE:
            raise ValueError(f"{resource} is not listed by the import.")
        query: dict[str, Any] = {**(params or {}), "limit": limit}
        if starting_after:
            query["starting_after"] = starting_after
        service = getattr(self._client.v1, resource)
        page = self._call(service.list, params=query, options=self._options(account))
        return [_plain(obj) for obj in page.data], bool(page.has_more)

    def invoice_lines_page(self, *, account: str, invoice_id: str, starting_after: str = "",
                           limit: int = 100) -> tuple[list[dict], bool]:
        """One page of an invoice's lines (a listed invoice carries only its first 10)."""
        query: dict[str, Any] = {"limit": limit}
        if starting_after:
            query["starting_after"] = starting_after
        page = self._call(self._client.v1.invoices.line_items.list, invoice_id, params=query,
                          options=self._options(account))
        return [_plain(obj) for obj in page.data], bool(page.has_more)
