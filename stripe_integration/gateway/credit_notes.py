"""Stripe's credit notes, through the gateway (issue 13): create, preview, retrieve, list
by invoice, void. A mixin the `Gateway` class (client.py) inherits, so calls go through
its `_call` (shared rate limiter, retries under the caller's idempotency key) and come out
as `CreditNoteInfo` (amounts in minor units). Only the gateway imports `stripe`; this
module needs nothing of it beyond what `_call` does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .types import _get, _plain


@dataclass(frozen=True)
class CreditNoteInfo:
    """A Stripe credit note. `refunds` pairs each refund id with the amount this credit
    note refunded through it; `credit_amount` (to the customer's balance) is what the
    post-payment amount has beyond its refunds and what was settled outside Stripe."""
    id: str
    invoice: str
    currency: str
    amount: int
    status: str
    type: str
    number: str = ""
    reason: str = ""
    memo: str = ""
    pre_payment_amount: int = 0
    post_payment_amount: int = 0
    out_of_band_amount: int = 0
    refunds: tuple[tuple[str, int], ...] = ()
    created: int = 0
    voided_at: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def refund_amount(self) -> int:
        return sum(amount for _, amount in self.refunds)

    @property
    def credit_amount(self) -> int:
        return max(self.post_payment_amount - self.refund_amount - self.out_of_band_amount, 0)


def _id(value: Any) -> str:
    if isinstance(value, str):
        return value
    return _get(value, "id", "") or ""


def credit_note_info(obj: Any) -> CreditNoteInfo:
    data = _plain(obj)
    refunds = tuple(
        (_id(r.get("refund")), int(r.get("amount_refunded") or 0))
        for r in (data.get("refunds") or []) if isinstance(r, dict) and _id(r.get("refund"))
    )
    return CreditNoteInfo(
        id=data["id"], invoice=_id(data.get("invoice")), currency=(data.get("currency") or "").upper(),
        amount=int(data.get("amount") or 0), status=data.get("status") or "issued", type=data.get("type") or "",
        number=data.get("number") or "", reason=data.get("reason") or "", memo=data.get("memo") or "",
        pre_payment_amount=int(data.get("pre_payment_amount") or 0),
        post_payment_amount=int(data.get("post_payment_amount") or 0),
        out_of_band_amount=int(data.get("out_of_band_amount") or 0), refunds=refunds,
        created=int(data.get("created") or 0), voided_at=data.get("voided_at"),
        metadata=dict(data.get("metadata") or {}),
    )


class CreditNotesMixin:
    """Credit-note calls of `Gateway` (every one scoped to the connected account)."""

    def credit_note_create(self, *, account: str, params: dict[str, Any], idempotency_key: str) -> CreditNoteInfo:
        return credit_note_info(self._call(self._client.v1.credit_notes.create, params=params,
                                           options=self._options(account, idempotency_key)))

    def credit_note_preview(self, *, account: str, params: dict[str, Any]) -> CreditNoteInfo:
        """What the credit note would be (GET /v1/credit_notes/preview): nothing is made."""
        preview = self._call(self._client.v1.credit_notes.preview, params=params, options=self._options(account))
        return credit_note_info({**_plain(preview), "id": _get(preview, "id") or "preview"})

    def credit_note_retrieve(self, *, account: str, credit_note_id: str) -> CreditNoteInfo:
        return credit_note_info(self._call(self._client.v1.credit_notes.retrieve, credit_note_id,
                                           options=self._options(account)))

    def credit_notes_list(self, *, account: str, invoice_id: str) -> list[CreditNoteInfo]:
        """Every credit note of a Stripe invoice (all pages)."""
        params: dict[str, Any] = {"invoice": invoice_id, "limit": 100}
        out = []
        while True:
            page = self._call(self._client.v1.credit_notes.list, params=params, options=self._options(account))
            data = list(page.data)
            out.extend(credit_note_info(c) for c in data)
            if not page.has_more or not data:
                return out
            params = {**params, "starting_after": data[-1]["id"]}

    def credit_note_void(self, *, account: str, credit_note_id: str, idempotency_key: str) -> CreditNoteInfo:
        return credit_note_info(self._call(self._client.v1.credit_notes.void_credit_note, credit_note_id,
                                           options=self._options(account, idempotency_key)))
