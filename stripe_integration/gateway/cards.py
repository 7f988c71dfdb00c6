"""Saved cards through the gateway (issue 13, "save a card"): a Checkout Session in setup
mode for a customer, and the customer's default card as plain data. Part of the one door
to Stripe: it calls the SDK only through `Gateway._call` (rate limit, retries, errors
mapped to the gateway's exceptions); the customers package and the webhook handlers call it.
"""
from __future__ import annotations

from dataclasses import dataclass

from .client import Gateway
from .types import _get, _plain


@dataclass(frozen=True)
class CardInfo:
    id: str
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None


def card_info(payment_method: dict | None) -> CardInfo | None:
    """A card PaymentMethod as plain data (None for anything that is not a card)."""
    if not isinstance(payment_method, dict) or payment_method.get("type") != "card":
        return None
    card = payment_method.get("card") or {}
    return CardInfo(id=payment_method.get("id") or "", brand=card.get("brand") or "", last4=card.get("last4") or "",
                    exp_month=card.get("exp_month"), exp_year=card.get("exp_year"))


def checkout_setup_session_create(gw: Gateway, *, account: str, customer_id: str, currency: str, success_url: str,
                                  cancel_url: str, idempotency_key: str, metadata: dict[str, str]) -> dict:
    """A Checkout Session in setup mode: the customer saves a card on Stripe's page.
    Returns {"id", "url", "expires_at"}."""
    session = gw._call(gw._client.v1.checkout.sessions.create, params={
        "mode": "setup", "customer": customer_id, "currency": currency.lower(),
        "payment_method_types": ["card"], "success_url": success_url, "cancel_url": cancel_url,
        "metadata": metadata, "setup_intent_data": {"metadata": metadata},
    }, options=gw._options(account, idempotency_key))
    return {"id": _get(session, "id"), "url": _get(session, "url"), "expires_at": _get(session, "expires_at")}


def customer_default_card(gw: Gateway, *, account: str, customer_id: str) -> CardInfo | None:
    """The customer's default card for invoices, or None."""
    customer = _plain(gw._call(gw._client.v1.customers.retrieve, customer_id,
                               params={"expand": ["invoice_settings.default_payment_method"]},
                               options=gw._options(account)))
    return card_info((customer.get("invoice_settings") or {}).get("default_payment_method"))
