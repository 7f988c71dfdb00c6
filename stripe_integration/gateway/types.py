"""What the gateway hands back: its exceptions and its plain results.

Split from `client.py` (the only module that imports `stripe`) to keep that module to
the calls themselves; nothing here needs the SDK. Import these names from
`stripe_integration.gateway.client`, which re-exports them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Stripe's live-key and signing-secret prefixes, written in two parts so that no committed
# line looks like a live key or a signing secret to a secret scanner.
LIVE_KEY_PREFIXES = ("sk" "_live_", "rk" "_live_")
WEBHOOK_SECRET_PREFIX = "whsec" "_"


def is_live_key(key: str) -> bool:
    return key.startswith(LIVE_KEY_PREFIXES)


# --- errors --------------------------------------------------------------------------
class GatewayError(Exception):
    """A Stripe call failed. `user_message` is safe to show; `retryable` says whether the
    same call (with the same idempotency key) may succeed later."""

    default_message = "Stripe could not complete the request."
    retryable = False

    def __init__(self, user_message: str | None = None, *, code: str | None = None,
                 http_status: int | None = None, request_id: str | None = None, param: str | None = None):
        self.user_message = user_message or self.default_message
        self.code = code
        self.http_status = http_status
        self.request_id = request_id
        self.param = param
        super().__init__(self.user_message)


class NotConfigured(GatewayError):
    default_message = "Stripe is not configured: set STRIPE_SECRET_KEY and STRIPE_CONNECT_CLIENT_ID."


class CardDeclined(GatewayError):
    default_message = "The card was declined."


class RateLimited(GatewayError):
    default_message = "Stripe is rate limiting requests; it will be retried shortly."
    retryable = True


class IdempotencyConflict(GatewayError):
    default_message = "Stripe refused a repeated request whose details changed (idempotency key reused)."


class AuthenticationFailed(GatewayError):
    default_message = "Stripe rejected the platform's API key. Check STRIPE_SECRET_KEY."


class AccessRevoked(GatewayError):
    default_message = "This Stripe account is no longer connected to the app (access may have been revoked). Connect it again."


class NotFound(GatewayError):
    default_message = "Stripe has no such object on this account."


class InvalidRequest(GatewayError):
    default_message = "Stripe rejected the request."


class StripeUnavailable(GatewayError):
    default_message = "Stripe could not be reached or had an error; try again in a moment."
    retryable = True


class TimedOut(StripeUnavailable):
    """No answer within STRIPE_HTTP_TIMEOUT: a StripeUnavailable (same message, retried the
    same way) that the runs record as timed out (issue 15)."""


class OAuthFailed(GatewayError):
    default_message = "Stripe could not complete the connection."


_OAUTH_MESSAGES = {
    "invalid_grant": "The authorization code is invalid, expired or already used. Start the connection again.",
    "invalid_client": "Stripe does not recognise this platform's client id (STRIPE_CONNECT_CLIENT_ID).",
    "invalid_request": "Stripe rejected the connection request.",
    "invalid_scope": "Stripe rejected the requested access scope.",
    "unsupported_grant_type": "Stripe rejected the connection request (unsupported grant type).",
    "access_denied": "The Stripe account owner declined the connection.",
}


# --- plain results ------------------------------------------------------------------
@dataclass(frozen=True)
class OAuthTokens:
    stripe_user_id: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    scope: str
    livemode: bool


@dataclass(frozen=True)
class AccountInfo:
    id: str
    display_name: str
    email: str
    country: str
    default_currency: str
    charges_enabled: bool


@dataclass(frozen=True)
class WebhookEndpointInfo:
    id: str
    url: str
    connect: bool
    enabled_events: tuple[str, ...]
    livemode: bool
    metadata: dict = field(default_factory=dict)
    secret: str | None = field(default=None, repr=False)  # only returned at creation


def _mapping(value: Any) -> dict:
    """A StripeObject (or dict, or None) as a plain dict. stripe-python 15 objects are not
    mappings (no keys(), iterating raises): `dict(obj)` worked only while dj-stripe patched
    StripeObject with dict methods at start-up."""
    if value is None:
        return {}
    return value.to_dict() if hasattr(value, "to_dict") else dict(value)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    try:
        value = obj[key]
    except (KeyError, TypeError):
        return default
    return default if value is None else value


# --- webhooks, payments and refunds (issue 7) ---
def _plain(obj: Any) -> dict:
    """A StripeObject as plain nested dicts and lists (what the handlers work with), JSON
    as Stripe sent it (for_json: the SDK's Decimals of *_decimal fields back to strings)."""
    return obj.to_dict(for_json=True) if hasattr(obj, "to_dict") else dict(obj)


# --- catalog and customers (issue 5) ---
# Plain results of the product, price and customer calls made by `catalog/` and
# `customers/`. Only the fields the app compares or shows are kept.
@dataclass(frozen=True)
class ProductInfo:
    id: str
    name: str
    description: str
    active: bool
    default_price: str  # "" when the product has none
    metadata: dict = field(default_factory=dict)
    updated: int = 0


@dataclass(frozen=True)
class PriceInfo:
    id: str
    product: str
    currency: str  # lowercase, as Stripe sends it
    unit_amount: int | None
    active: bool
    lookup_key: str  # "" when the price has none
    metadata: dict = field(default_factory=dict)
    recurring: bool = False  # type=recurring: a subscription's price (invoice items refuse it)


@dataclass(frozen=True)
class TaxIdInfo:
    id: str
    type: str
    value: str


@dataclass(frozen=True)
class CustomerInfo:
    id: str
    deleted: bool = False
    name: str = ""
    email: str = ""
    metadata: dict = field(default_factory=dict)
    tax_ids: tuple[TaxIdInfo, ...] = ()
    # Stripe's native customer fields that custom fields may map to (customer_native_fields).
    native: dict = field(default_factory=dict)


def _id_of(value: Any) -> str | None:
    """An expandable field's id, whether Stripe sent the id or the expanded object."""
    if value is None or isinstance(value, str):
        return value or None
    return _get(value, "id", None)


def customer_native_fields(obj: Any) -> dict[str, Any]:
    """The native customer fields custom fields can map to, where each lives on Stripe's
    customer object (spec3.json, `customer`): `email`, `description`, `tax_exempt`,
    `delinquent`, `discount` (its coupon's id: `discount.source.coupon`), the
    `invoice_settings.default_payment_method` id, and `tax.location.country`. `tax` is
    sent only when expanded: without it the country is absent (not None), so a mapping
    leaves the custom field as it is."""
    discount = _get(obj, "discount", None)
    coupon = None
    if discount is not None:
        source = _get(discount, "source", None)
        coupon = _id_of(_get(source, "coupon", None)) if source is not None else None
        coupon = coupon or _id_of(_get(discount, "coupon", None)) or _get(discount, "id", None)
    settings = _get(obj, "invoice_settings", None) or {}
    native = {
        "email": _get(obj, "email", None), "description": _get(obj, "description", None),
        "tax_exempt": _get(obj, "tax_exempt", None), "delinquent": _get(obj, "delinquent", None),
        "discount": coupon, "default_payment_method": _id_of(_get(settings, "default_payment_method", None)),
    }
    tax = _get(obj, "tax", None)
    if tax is not None:
        location = _get(tax, "location", None)
        native["tax_location_country"] = _get(location, "country", None) if location is not None else None
    return native


def _product_info(obj: Any) -> ProductInfo:
    default = _get(obj, "default_price", "")
    if not isinstance(default, str):  # expanded
        default = _get(default, "id", "")
    return ProductInfo(
        id=obj["id"], name=_get(obj, "name", ""), description=_get(obj, "description", ""),
        active=bool(_get(obj, "active", False)), default_price=default,
        metadata=_mapping(_get(obj, "metadata")), updated=int(_get(obj, "updated", 0) or 0),
    )


def _price_info(obj: Any) -> PriceInfo:
    product = _get(obj, "product", "")
    if not isinstance(product, str):
        product = _get(product, "id", "")
    amount = _get(obj, "unit_amount")
    return PriceInfo(
        id=obj["id"], product=product, currency=_get(obj, "currency", ""),
        unit_amount=int(amount) if amount is not None else None, active=bool(_get(obj, "active", False)),
        lookup_key=_get(obj, "lookup_key", ""), metadata=_mapping(_get(obj, "metadata")),
        recurring=_get(obj, "type", "one_time") == "recurring",
    )


def _customer_info(obj: Any) -> CustomerInfo:
    if _get(obj, "deleted", False):
        return CustomerInfo(id=obj["id"], deleted=True)
    tax_ids = _get(_get(obj, "tax_ids", {}) or {}, "data", []) or []
    return CustomerInfo(
        id=obj["id"], name=_get(obj, "name", ""), email=_get(obj, "email", ""),
        metadata=_mapping(_get(obj, "metadata")),
        tax_ids=tuple(TaxIdInfo(id=t["id"], type=_get(t, "type", ""), value=_get(t, "value", "")) for t in tax_ids),
        native=customer_native_fields(obj),
    )


# --- invoices (issue 6) ---
@dataclass(frozen=True)
class InvoiceInfo:
    """A Stripe invoice as the push and the invoice page need it. Amounts are integers in
    the currency's minor unit; `tax` and `discount` sum `total_taxes` and
    `total_discount_amounts`."""

    id: str
    status: str
    currency: str
    customer: str
    number: str = ""
    collection_method: str = ""
    subtotal: int = 0
    discount: int = 0
    tax: int = 0
    total_excluding_tax: int = 0
    total: int = 0
    amount_due: int = 0
    amount_paid: int = 0
    amount_remaining: int = 0
    hosted_invoice_url: str = ""
    invoice_pdf: str = ""
    due_date: int | None = None
    created: int = 0
    finalized_at: int | None = None
    paid_at: int | None = None
    voided_at: int | None = None
    metadata: dict = field(default_factory=dict)


def _invoice_info(obj: Any) -> InvoiceInfo:
    customer = _get(obj, "customer", "")
    if not isinstance(customer, str):
        customer = _get(customer, "id", "")
    transitions = _get(obj, "status_transitions", {}) or {}
    return InvoiceInfo(
        id=obj["id"], status=_get(obj, "status", ""), currency=_get(obj, "currency", ""), customer=customer,
        number=_get(obj, "number", ""), collection_method=_get(obj, "collection_method", ""),
        subtotal=int(_get(obj, "subtotal", 0)),
        discount=sum(int(_get(d, "amount", 0)) for d in _get(obj, "total_discount_amounts", []) or []),
        tax=sum(int(_get(t, "amount", 0)) for t in _get(obj, "total_taxes", []) or []),
        total_excluding_tax=int(_get(obj, "total_excluding_tax", 0)), total=int(_get(obj, "total", 0)),
        amount_due=int(_get(obj, "amount_due", 0)), amount_paid=int(_get(obj, "amount_paid", 0)),
        amount_remaining=int(_get(obj, "amount_remaining", 0)),
        hosted_invoice_url=_get(obj, "hosted_invoice_url", ""), invoice_pdf=_get(obj, "invoice_pdf", ""),
        due_date=_get(obj, "due_date"), created=int(_get(obj, "created", 0)),
        finalized_at=_get(transitions, "finalized_at"), paid_at=_get(transitions, "paid_at"),
        voided_at=_get(transitions, "voided_at"), metadata=_mapping(_get(obj, "metadata")),
    )


class WebhookSignatureInvalid(Exception):
    """A webhook's Stripe-Signature does not verify under any of the secrets given
    (missing or malformed header, no matching signature, or older than the tolerance)."""
