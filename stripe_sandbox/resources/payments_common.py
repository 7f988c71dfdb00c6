"""Pieces the payment resources share: currencies and fees, per-object internal
state, answering declines, hosted pages acting for an account.

Two things the framework (core.py) does not offer, kept here:

* `internal(ctx, oid)`: state Stripe keeps but does not show (the test card behind a
  PaymentMethod, the `payment_intent_data` of a Checkout Session). Objects must carry
  exactly the fields stripe-python declares, so this lives in a separate stored
  record (object type `sandbox.internal`, never served) that `--state` saves with
  everything else, journaled like any object.
* `answering_declines`: a declined card is a 402 *and* a state change: Stripe keeps
  the failed PaymentIntent/SetupIntent and Charge and emits
  `payment_intent.payment_failed`, `charge.failed` ... The framework rolls back a
  request that raises, so a route that records a decline answers the error
  (`core.error_response`) instead of raising it, as the billing modules' `pay` does.

Hosted pages and receipts are served on the sandbox's own address
(billing_common.base_url, shared with the billing modules' hosted invoice links).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from decimal import Decimal

from ..core import error_response
from ..errors import StripeError
from .billing_common import round_half_up

# docs.stripe.com/currencies#zero-decimal and #three-decimal
ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())
# "ISK ... is represented as a two-decimal currency in the API for backwards
# compatibility" (amounts in hundredths, divisible by 100), but has no minor unit.
_DISPLAY_WHOLE = frozenset({"isk"})

_SYMBOLS = {
    "usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$",
    "nzd": "NZ$", "inr": "₹", "krw": "₩", "cny": "CN¥", "brl": "R$", "mxn": "MX$",
    "hkd": "HK$", "sgd": "SGD ", "chf": "CHF ",
}


def exponent(currency: str) -> int:
    c = currency.lower()
    return 0 if c in ZERO_DECIMAL else 3 if c in THREE_DECIMAL else 2


def format_amount(amount: int, currency: str, *, symbol: bool = True) -> str:
    """`1234, "usd"` -> "$12.34" ("USD 12.34" without symbol); JPY without
    decimals, BHD/KWD with three."""
    c = currency.lower()
    exp = exponent(c)
    value = Decimal(amount).scaleb(-exp)
    if c in _DISPLAY_WHOLE:
        exp = 0
    number = f"{abs(value):,.{exp}f}"
    prefix = _SYMBOLS.get(c, c.upper() + " ") if symbol else c.upper() + " "
    return f"{'-' if amount < 0 else ''}{prefix}{number}"


def processing_fee(amount: int, currency: str) -> int:
    """Stripe's standard card pricing, charged in the payment's currency (the sandbox
    does no currency conversion): 2.9% + 30 minor units for two-decimal currencies
    (stripe.com/pricing, US); the same 0.30 major units (300) for three-decimal ones;
    zero-decimal currencies pay 3.6% with no fixed part, Stripe Japan's card rate
    (stripe.com/jp/pricing)."""
    exp = exponent(currency)
    if exp == 0:
        return round_half_up(Decimal(amount) * Decimal("0.036"))
    return round_half_up(Decimal(amount) * Decimal("0.029")) + 30 * 10 ** (exp - 2)


# Stripe's minimum charge amounts (docs.stripe.com/currencies#minimum-and-maximum-
# charge-amounts) for the currencies it lists; others are not checked.
MINIMUM_CHARGE = {
    "usd": 50, "aed": 200, "aud": 50, "bgn": 100, "brl": 50, "cad": 50, "chf": 50,
    "czk": 1500, "dkk": 250, "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "inr": 50,
    "jpy": 50, "mxn": 1000, "myr": 200, "nok": 300, "nzd": 50, "pln": 200, "ron": 200,
    "sek": 300, "sgd": 50, "thb": 1000,
}


def fingerprint(ctx, secret: str) -> str:
    """Stable per account and card number, like Stripe's card fingerprints."""
    digest = hashlib.sha256(f"{ctx.account}|{secret}".encode()).digest()
    return base64.b64encode(digest).decode().replace("+", "").replace("/", "")[:16]


_INTERNAL = "sandbox.internal"


def internal(ctx, oid: str, *, create: bool = True) -> dict:
    """The internal state of object `oid`: a dict to change in place (journaled, saved
    with the store). With `create=False`, a missing record reads as {} and nothing is
    stored."""
    key = f"sandbox_{oid}"
    if ctx.find(key, _INTERNAL) is not None:
        rec = ctx.get(_INTERNAL, key)
        ctx.save(rec)
    elif create:
        rec = ctx.insert({"id": key, "object": _INTERNAL, "data": {}})
    else:
        return {}
    return rec["data"]


def is_recorded_decline(exc: StripeError) -> bool:
    """A card error raised after the failed attempt was stored (its body names the
    intent), as opposed to one raised before anything changed."""
    return exc.type == "card_error" and ("payment_intent" in exc.extra or "setup_intent" in exc.extra)


def answering_declines(fn):
    """Decorate a route handler whose declines are recorded: they are answered, not
    raised, so that the failed attempt and its events are kept."""
    @functools.wraps(fn)
    def handler(ctx, *args, **kwargs):
        try:
            return fn(ctx, *args, **kwargs)
        except StripeError as exc:
            if is_recorded_decline(exc):
                return error_response(ctx, exc)
            raise
    return handler


def act_as_owner(ctx, oid: str) -> dict | None:
    """For hosted pages (no API key): the object, with `ctx` now acting for the
    account that owns it, so that reads, writes and events are that account's."""
    owner = ctx.store.owner.get(oid)
    if owner is None:
        return None
    ctx.account = owner
    ctx.platform = ctx.store.accounts.get(owner, {}).get("platform") or owner
    return ctx.find(oid)
