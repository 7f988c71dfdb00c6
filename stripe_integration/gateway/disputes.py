"""Disputes through the gateway (issue 13): Stripe's current dispute, with its balance
transactions, as a plain dict. Part of the one door to Stripe: it calls the SDK only
through `Gateway._call`; the dispute webhook handlers call it, so every charge.dispute.*
event applies the dispute as Stripe has it now, whatever order the events came in.
"""
from __future__ import annotations

from .client import Gateway
from .types import _plain


def dispute_retrieve(gw: Gateway, *, account: str, dispute_id: str) -> dict:
    """The dispute now (raises NotFound when Stripe has none by that id)."""
    return _plain(gw._call(gw._client.v1.disputes.retrieve, dispute_id, options=gw._options(account)))
