"""The one door to Stripe: the only module of the app that imports `stripe`.

It wraps `stripe.StripeClient` (never the global `stripe.api_key`), takes the connected
account on every call made for a business (`Stripe-Account: acct_...`), returns plain
dataclasses, and turns `stripe.StripeError` into `GatewayError` subclasses whose
`user_message` is fit to show a finance user. Secrets never appear in messages or logs.

Configuration: STRIPE_SECRET_KEY, STRIPE_CONNECT_CLIENT_ID, STRIPE_API_BASE,
STRIPE_CONNECT_BASE (the offline sandbox sets the last two; see README).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import stripe
from django.conf import settings


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


def _request_id(exc: Any) -> str | None:
    return getattr(exc, "request_id", None)


def _map_error(exc: Exception) -> GatewayError:
    """stripe.StripeError (and subclasses) -> GatewayError. Order matters: subclasses first."""
    status = getattr(exc, "http_status", None)
    rid = _request_id(exc)
    stripe_message = getattr(exc, "user_message", None) or (getattr(exc, "_message", None)) or ""
    code = getattr(exc, "code", None)
    kwargs = {"code": code, "http_status": status, "request_id": rid}
    if isinstance(exc, stripe.oauth_error.OAuthError):
        oauth_code = exc.code if isinstance(exc.code, str) else None
        return OAuthFailed(_OAUTH_MESSAGES.get(oauth_code or "", f"Stripe could not complete the connection ({oauth_code or 'unknown error'})."), code=oauth_code, http_status=status)
    if isinstance(exc, stripe.CardError):
        return CardDeclined(f"The card was declined: {stripe_message}" if stripe_message else None, param=getattr(exc, "param", None), **kwargs)
    if isinstance(exc, stripe.RateLimitError):
        return RateLimited(**kwargs)
    if isinstance(exc, stripe.IdempotencyError):
        return IdempotencyConflict(**kwargs)
    if isinstance(exc, stripe.AuthenticationError):
        return AuthenticationFailed(**kwargs)
    if isinstance(exc, stripe.PermissionError):
        return AccessRevoked(**kwargs)
    if isinstance(exc, stripe.APIConnectionError):
        return StripeUnavailable(**kwargs)
    if isinstance(exc, stripe.InvalidRequestError):
        if status == 404 or code == "resource_missing":
            return NotFound(f"Stripe has no such object: {stripe_message}" if stripe_message else None, **kwargs)
        return InvalidRequest(f"Stripe rejected the request: {stripe_message}" if stripe_message else None, param=getattr(exc, "param", None), **kwargs)
    if isinstance(exc, stripe.StripeError):
        if code == "lock_timeout" or status == 429:
            return RateLimited(**kwargs)
        if status is None or status >= 500:
            return StripeUnavailable(**kwargs)
        return InvalidRequest(f"Stripe rejected the request: {stripe_message}" if stripe_message else None, **kwargs)
    return StripeUnavailable()


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


def _get(obj: Any, key: str, default: Any = None) -> Any:
    try:
        value = obj[key]
    except (KeyError, TypeError):
        return default
    return default if value is None else value


# --- the gateway --------------------------------------------------------------------
class Gateway:
    def __init__(self, *, secret_key: str, client_id: str = "", api_base: str = "", connect_base: str = "",
                 max_network_retries: int = 2, timeout: float = 30):
        if not secret_key:
            raise NotConfigured()
        self.client_id = client_id
        bases = {}
        if api_base:
            bases["api"] = api_base
            bases["files"] = api_base
        if connect_base:
            bases["connect"] = connect_base
        http_client = stripe.RequestsClient(timeout=timeout)
        self._client = stripe.StripeClient(
            secret_key, client_id=client_id or None, base_addresses=bases,
            max_network_retries=max_network_retries, http_client=http_client,
        )
        # OAuth codes are single-use: the exchange is never retried automatically.
        self._oauth_client = stripe.StripeClient(
            secret_key, client_id=client_id or None, base_addresses=bases,
            max_network_retries=0, http_client=http_client,
        )
        self.livemode = secret_key.startswith(("sk_live_", "rk_live_"))

    @classmethod
    def from_settings(cls) -> "Gateway":
        return cls(
            secret_key=settings.STRIPE_SECRET_KEY, client_id=settings.STRIPE_CONNECT_CLIENT_ID,
            api_base=settings.STRIPE_API_BASE, connect_base=settings.STRIPE_CONNECT_BASE,
        )

    @staticmethod
    def _options(account: str | None = None, idempotency_key: str | None = None) -> dict:
        options = {}
        if account:
            options["stripe_account"] = account
        if idempotency_key:
            options["idempotency_key"] = idempotency_key
        return options

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as exc:
            raise _map_error(exc) from None
        except (AttributeError, TypeError, ValueError) as exc:
            # stripe-python cannot parse some error bodies (an OAuth error code it does not
            # know makes it call .get() on a string): treat it as a failed call, not a crash.
            raise StripeUnavailable("Stripe answered with an error the app could not read.") from exc

    # --- Connect OAuth ---
    def oauth_authorize_url(self, *, redirect_uri: str, state: str, email: str = "", business_name: str = "",
                            scope: str = "read_write") -> str:
        if not self.client_id:
            raise NotConfigured()
        params: dict[str, Any] = {"response_type": "code", "scope": scope, "redirect_uri": redirect_uri, "state": state}
        prefill = {k: v for k, v in (("email", email), ("business_name", business_name)) if v}
        if prefill:
            params["stripe_user"] = prefill
        return self._client.oauth.authorize_url(params=params)

    def oauth_exchange_code(self, *, code: str) -> OAuthTokens:
        oauth = self._oauth_client.oauth
        try:
            resp = oauth.token(params={"grant_type": "authorization_code", "code": code})
        except stripe.StripeError as exc:
            raise _map_error(exc) from None
        except (AttributeError, TypeError, ValueError) as exc:
            raise OAuthFailed("Stripe refused the connection with an error the app does not know. Try connecting again.") from exc
        user_id = _get(resp, "stripe_user_id")
        if not user_id:
            raise OAuthFailed("Stripe's answer did not name the connected account.")
        return OAuthTokens(
            stripe_user_id=user_id, access_token=_get(resp, "access_token", ""),
            refresh_token=_get(resp, "refresh_token", ""), scope=_get(resp, "scope", ""),
            livemode=bool(_get(resp, "livemode", False)),
        )

    def oauth_deauthorize(self, *, stripe_user_id: str) -> None:
        self._call(self._client.oauth.deauthorize, params={"client_id": self.client_id, "stripe_user_id": stripe_user_id})

    # --- accounts ---
    def account_retrieve(self, *, account: str) -> AccountInfo:
        acct = self._call(self._client.v1.accounts.retrieve_current, options=self._options(account))
        profile = _get(acct, "business_profile", {}) or {}
        dashboard = _get(_get(acct, "settings", {}) or {}, "dashboard", {}) or {}
        return AccountInfo(
            id=acct["id"],
            display_name=_get(dashboard, "display_name") or _get(profile, "name") or _get(acct, "email", "") or acct["id"],
            email=_get(acct, "email", ""), country=_get(acct, "country", ""),
            default_currency=_get(acct, "default_currency", ""), charges_enabled=bool(_get(acct, "charges_enabled", False)),
        )

    # --- platform webhook endpoints ---
    def webhook_endpoints_list(self) -> list[WebhookEndpointInfo]:
        endpoints = []
        page = self._call(self._client.v1.webhook_endpoints.list, params={"limit": 100})
        for ep in page.auto_paging_iter():
            endpoints.append(self._endpoint(ep))
        return endpoints

    def webhook_endpoint_create(self, *, url: str, enabled_events: list[str], connect: bool, idempotency_key: str,
                                metadata: dict[str, str] | None = None) -> WebhookEndpointInfo:
        ep = self._call(
            self._client.v1.webhook_endpoints.create,
            params={"url": url, "enabled_events": enabled_events, "connect": connect, "metadata": metadata or {},
                    "description": "CRM: Connect events of connected businesses"},
            options=self._options(idempotency_key=idempotency_key),
        )
        return self._endpoint(ep)

    def webhook_endpoint_delete(self, *, endpoint_id: str) -> None:
        self._call(self._client.v1.webhook_endpoints.delete, endpoint_id)

    @staticmethod
    def _endpoint(ep) -> WebhookEndpointInfo:
        return WebhookEndpointInfo(
            id=ep["id"], url=_get(ep, "url", ""), connect=bool(_get(ep, "connect", False)),
            enabled_events=tuple(_get(ep, "enabled_events", []) or []), livemode=bool(_get(ep, "livemode", False)),
            metadata=dict(_get(ep, "metadata", {}) or {}), secret=_get(ep, "secret"),
        )
