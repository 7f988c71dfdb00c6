"""The one door to Stripe: the only module of the app that imports `stripe`.

It wraps `stripe.StripeClient` (never the global `stripe.api_key`), takes the connected
account on every call made for a business (`Stripe-Account: acct_...`), returns plain
dataclasses, and turns `stripe.StripeError` into `GatewayError` subclasses whose
`user_message` is fit to show a finance user. Secrets never appear in messages or logs.

Configuration: the secret key and Connect client id of a mode (connect/modes.py:
STRIPE_TEST_/STRIPE_LIVE_SECRET_KEY, or STRIPE_SECRET_KEY alone), STRIPE_API_BASE,
STRIPE_CONNECT_BASE (the offline sandbox sets the last two; see README).
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import stripe
from django.conf import settings

from . import ratelimit, request_ids
from .credit_notes import CreditNoteInfo, CreditNotesMixin  # noqa: F401  (CreditNoteInfo re-exported)
from .listing import ListingMixin
from .types import (  # noqa: F401  (re-exported: the app imports them from here)
    LIVE_KEY_PREFIXES,
    WEBHOOK_SECRET_PREFIX,
    is_live_key,
    AccessRevoked,
    AccountInfo,
    AuthenticationFailed,
    CardDeclined,
    CustomerInfo,
    GatewayError,
    IdempotencyConflict,
    InvalidRequest,
    InvoiceInfo,
    NotConfigured,
    NotFound,
    OAuthFailed,
    OAuthTokens,
    PriceInfo,
    ProductInfo,
    RateLimited,
    StripeUnavailable,
    TaxIdInfo,
    TimedOut,
    WebhookEndpointInfo,
    WebhookSignatureInvalid,
    _OAUTH_MESSAGES,
    _customer_info,
    _get,
    _invoice_info,
    _mapping,
    _plain,
    _price_info,
    _product_info,
)

log = logging.getLogger(__name__)


def _request_id(exc: Any) -> str | None:
    return getattr(exc, "request_id", None)


def _response_request_id(result: Any) -> str | None:
    if isinstance(result, stripe.StripeResponse):  # a raw request's answer (`_get_raw`)
        return result.request_id
    return getattr(getattr(result, "last_response", None), "request_id", None)


def _log_call(name: str, kwargs: dict, request_id: str | None, error) -> None:
    """One log line per Stripe call (each retry too) with Stripe's request id, the id to
    quote to Stripe support; the connected account, never parameters (they carry e-mails)."""
    account = (kwargs.get("options") or {}).get("stripe_account") or kwargs.get("stripe_account")
    request_ids.note(request_id)  # the current run's list (runs.track_run), if any
    log.log(logging.WARNING if error else logging.INFO, "Stripe call %s %s", name, "failed" if error else "ok",
            extra={"stripe_call": name, "stripe_request_id": request_id, "stripe_account": account,
                   "stripe_error": error})


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
        # The SDK folds requests' Timeout into APIConnectionError, naming it in the message.
        if "Timeout" in str(exc):
            return TimedOut(**kwargs)
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


# --- retries (issue 6: one limiter, our own retries) ---
# Method names of the SDK's services that are safe to repeat as they are: reads (GET) and
# DELETE (a repeat finds the object gone; Stripe ignores idempotency keys on both).
_READ_CALLS = frozenset({"retrieve", "retrieve_current", "list", "list_lines", "search", "delete", "preview"})
# Keys of raw_request's keyword arguments that it reads as options (or pops), not parameters.
_RAW_REQUEST_OPTIONS = frozenset({"api_key", "stripe_version", "stripe_account", "stripe_context",
                                  "max_network_retries", "idempotency_key", "content_type", "headers",
                                  "base", "usage"})
# OAuth endpoints take no idempotency key: retried only when Stripe performed nothing (429).
_OAUTH_CALLS = frozenset({"deauthorize", "token"})


def _header(exc: Any, name: str) -> str | None:
    headers = getattr(exc, "headers", None) or {}
    for key, value in headers.items():
        if key.lower() == name:
            return str(value).lower()
    return None


def _should_retry(exc: Exception, *, replay_safe: bool) -> bool:
    """Stripe's retry advice (docs.stripe.com/error-low-level#idempotency, /rate-limits):
    429 (rate_limit, lock_timeout) was not performed: always retry, after backing off.
    `Stripe-Should-Retry` decides next when present. Connection errors, timeouts, 409
    (idempotency_key_in_use) and 5xx are retried only when replaying is safe: a read, or a
    write carrying its idempotency key (every write here does, see `_call`)."""
    status = getattr(exc, "http_status", None)
    if status == 429:
        return True
    advice = _header(exc, "stripe-should-retry")
    if advice == "false":
        return False
    if advice == "true":
        return replay_safe
    if isinstance(exc, stripe.APIConnectionError):
        return replay_safe
    return replay_safe and status is not None and (status == 409 or status >= 500)


# --- the gateway --------------------------------------------------------------------
class Gateway(CreditNotesMixin, ListingMixin):
    def __init__(self, *, secret_key: str, client_id: str = "", api_base: str = "", connect_base: str = "",
                 max_network_retries: int = 0, timeout: float = 30, max_retries: int | None = None):
        if not secret_key:
            raise NotConfigured()
        self.client_id = client_id
        # Retries are ours (`_call`): through the shared limiter, counted, with the same
        # idempotency key; the SDK's own (max_network_retries) stay off.
        self._limiter = ratelimit.limiter_for(secret_key=secret_key)
        self._max_retries = getattr(settings, "STRIPE_MAX_RETRIES", 6) if max_retries is None else max_retries
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
        self.livemode = is_live_key(secret_key)

    @classmethod
    def from_settings(cls, *, secret_key: str | None = None, client_id: str | None = None,
                      max_retries: int | None = None) -> "Gateway":
        """A client with the settings' bases and timeout; the key and client id of one mode
        (connect.modes picks them), STRIPE_SECRET_KEY's by default."""
        return cls(
            secret_key=settings.STRIPE_SECRET_KEY if secret_key is None else secret_key,
            client_id=settings.STRIPE_CONNECT_CLIENT_ID if client_id is None else client_id,
            api_base=settings.STRIPE_API_BASE, connect_base=settings.STRIPE_CONNECT_BASE,
            timeout=getattr(settings, "STRIPE_HTTP_TIMEOUT", 30), max_retries=max_retries,
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
        """Make one Stripe call through the shared rate limiter, retrying what Stripe says
        may be retried (see `_should_retry`) with backoff and jitter, up to STRIPE_MAX_RETRIES.

        A POST without an idempotency key gets one here, ONCE, so every retry carries the
        same key and Stripe replays instead of repeating (the SDK would make a new key per
        attempt). OAuth calls get no key and are retried only when nothing was performed."""
        name = getattr(fn, "__name__", "")
        kind = "oauth" if name in _OAUTH_CALLS else "read" if name in _READ_CALLS else "write"
        if kind == "write":
            options = dict(kwargs.get("options") or {})
            if not options.get("idempotency_key"):
                options["idempotency_key"] = "crm-auto-" + uuid.uuid4().hex
            kwargs["options"] = options
        return self._attempts(name, kind, fn, args, kwargs)

    def _get_raw(self, name: str, path: str, params: dict[str, Any], account: str | None = None) -> dict:
        """A GET of `path` through stripe-python's raw request (its own encoding of `params`,
        its error classes) and `_attempts` (the limiter, retries, error mapping, request
        ids): the answer's JSON as plain dicts, with no StripeObject built from it."""
        clash = set(params) & _RAW_REQUEST_OPTIONS
        if clash:  # raw_request would take them as request options, not send them
            raise ValueError(f"Parameters {sorted(clash)} cannot be sent through a raw request.")
        options = {"stripe_account": account} if account else {}
        resp = self._attempts(name, "read", self._client.raw_request, ("get", path), {**params, **options})
        return json.loads(resp.body)

    def _attempts(self, name: str, kind: str, fn, args, kwargs):
        attempt = 0
        while True:
            slot = self._limiter.acquire()
            try:
                result = fn(*args, **kwargs)
                _log_call(name, kwargs, _response_request_id(result), None)
                return result
            except stripe.StripeError as exc:
                _log_call(name, kwargs, _request_id(exc), getattr(exc, "http_status", None) or type(exc).__name__)
                if attempt >= self._max_retries or not _should_retry(exc, replay_safe=kind != "oauth"):
                    raise _map_error(exc) from None
                delay = ratelimit.backoff_delay(attempt)
                if getattr(exc, "http_status", None) == 429:
                    # Everyone sharing the limiter waits, not only this worker.
                    self._limiter.pause(delay)
                log.info("Stripe call %s failed (%s, status %s); retry %d in %.2fs", name, type(exc).__name__,
                         getattr(exc, "http_status", None), attempt + 1, delay)
                time.sleep(delay)
                attempt += 1
            except (AttributeError, TypeError, ValueError) as exc:
                # stripe-python cannot parse some error bodies (an OAuth error code it does not
                # know makes it call .get() on a string): treat it as a failed call, not a crash.
                raise StripeUnavailable("Stripe answered with an error the app could not read.") from exc
            finally:
                self._limiter.release(slot)  # the window counts from the answer (see ratelimit)

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
        slot = self._limiter.acquire()  # counted like every call, never retried (codes are single-use)
        try:
            resp = oauth.token(params={"grant_type": "authorization_code", "code": code})
        except stripe.StripeError as exc:
            _log_call("token", {}, _request_id(exc), getattr(exc, "http_status", None) or type(exc).__name__)
            raise _map_error(exc) from None
        except (AttributeError, TypeError, ValueError) as exc:
            raise OAuthFailed("Stripe refused the connection with an error the app does not know. Try connecting again.") from exc
        finally:
            self._limiter.release(slot)
        _log_call("token", {}, _response_request_id(resp), None)
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
    def platform_account_id(self) -> str:
        """The platform's own account (the key's): the readiness check's one call."""
        return self._call(self._client.v1.accounts.retrieve_current)["id"]

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

    # --- webhooks, payments and refunds (issue 7) ---
    # Reads for the event handlers, which fetch the current object rather than trust the
    # order events arrive in, and for the catch-up; plus the one write a saved card needs.
    # Plain dicts out (`_plain`), every call scoped to the connected account.
    def events_list(self, *, account: str, created_gte: int, page_size: int = 100):
        """Every event of the account created at or after `created_gte` (newest first),
        paging through all of them; a generator, so a failure mid-way raises GatewayError."""
        params: dict[str, Any] = {"created": {"gte": int(created_gte)}, "limit": page_size}
        while True:
            page = self._call(self._client.v1.events.list, params=params, options=self._options(account))
            data = list(page.data)
            for event in data:
                yield _plain(event)
            if not page.has_more or not data:
                return
            params = {**params, "starting_after": data[-1]["id"]}

    def invoice_retrieve(self, *, account: str, invoice_id: str) -> dict:
        return _plain(self._call(self._client.v1.invoices.retrieve, invoice_id, options=self._options(account)))

    def invoice_payments_list(self, *, account: str, invoice_id: str | None = None,
                              payment_intent_id: str | None = None) -> list[dict]:
        """The invoice payments (basil+: what links a PaymentIntent to its invoice) of an
        invoice, or the one of a PaymentIntent."""
        params: dict[str, Any] = {"limit": 100}
        if invoice_id:
            params["invoice"] = invoice_id
        if payment_intent_id:
            params["payment"] = {"type": "payment_intent", "payment_intent": payment_intent_id}
        out = []
        while True:
            page = self._call(self._client.v1.invoice_payments.list, params=params, options=self._options(account))
            data = list(page.data)
            out.extend(_plain(p) for p in data)
            if not page.has_more or not data:
                return out
            params = {**params, "starting_after": data[-1]["id"]}

    def payment_intent_retrieve(self, *, account: str, payment_intent_id: str) -> dict:
        """With its latest charge and that charge's balance transaction (fee, net)."""
        return _plain(self._call(
            self._client.v1.payment_intents.retrieve, payment_intent_id,
            params={"expand": ["latest_charge.balance_transaction"]}, options=self._options(account),
        ))

    def refunds_list(self, *, account: str, charge_id: str) -> list[dict]:
        params: dict[str, Any] = {"charge": charge_id, "limit": 100}
        out = []
        while True:
            page = self._call(self._client.v1.refunds.list, params=params, options=self._options(account))
            data = list(page.data)
            out.extend(_plain(r) for r in data)
            if not page.has_more or not data:
                return out
            params = {**params, "starting_after": data[-1]["id"]}

    def setup_intent_retrieve(self, *, account: str, setup_intent_id: str) -> dict:
        return _plain(self._call(self._client.v1.setup_intents.retrieve, setup_intent_id, options=self._options(account)))

    def payment_method_retrieve(self, *, account: str, payment_method_id: str) -> dict:
        return _plain(self._call(self._client.v1.payment_methods.retrieve, payment_method_id, options=self._options(account)))

    def customer_retrieve(self, *, account: str, customer_id: str) -> dict:
        return _plain(self._call(self._client.v1.customers.retrieve, customer_id, options=self._options(account)))

    def customer_default_payment_method_set(self, *, account: str, customer_id: str, payment_method_id: str,
                                            idempotency_key: str) -> dict:
        return _plain(self._call(
            self._client.v1.customers.update, customer_id,
            params={"invoice_settings": {"default_payment_method": payment_method_id}},
            options=self._options(account, idempotency_key),
        ))

    # --- catalog and customers (issue 5) ---
    # Products, prices and customers of a connected account (`account` on every call).
    # Writes take the caller's deterministic idempotency key: a retried task replays the
    # first answer instead of making a second object.
    def _list_all(self, method, params: dict, account: str) -> list:
        out = []
        params = {**params, "limit": 100}
        while True:
            page = self._call(method, params=params, options=self._options(account))
            data = list(page.data)
            out.extend(data)
            if not page.has_more or not data:
                return out
            params = {**params, "starting_after": data[-1]["id"]}

    def product_create(self, *, account: str, params: dict[str, Any], idempotency_key: str) -> tuple[ProductInfo, PriceInfo | None]:
        """Create a product (with `default_price_data`, its default price in the same call);
        returns the product and that price (None without default_price_data)."""
        product = self._call(
            self._client.v1.products.create, params={**params, "expand": ["default_price"]},
            options=self._options(account, idempotency_key),
        )
        default = _get(product, "default_price")
        return _product_info(product), (_price_info(default) if default and not isinstance(default, str) else None)

    def product_update(self, *, account: str, product_id: str, params: dict[str, Any], idempotency_key: str) -> ProductInfo:
        return _product_info(self._call(
            self._client.v1.products.update, product_id, params=params, options=self._options(account, idempotency_key),
        ))

    def product_retrieve(self, *, account: str, product_id: str) -> ProductInfo:
        return _product_info(self._call(self._client.v1.products.retrieve, product_id, options=self._options(account)))

    def products_list(self, *, account: str) -> list[ProductInfo]:
        """Every product of the account, active and archived."""
        return [_product_info(p) for p in self._list_all(self._client.v1.products.list, {}, account)]

    def price_create(self, *, account: str, params: dict[str, Any], idempotency_key: str) -> PriceInfo:
        return _price_info(self._call(
            self._client.v1.prices.create, params=params, options=self._options(account, idempotency_key),
        ))

    def price_update(self, *, account: str, price_id: str, params: dict[str, Any], idempotency_key: str) -> PriceInfo:
        return _price_info(self._call(
            self._client.v1.prices.update, price_id, params=params, options=self._options(account, idempotency_key),
        ))

    def prices_list(self, *, account: str, product_id: str | None = None) -> list[PriceInfo]:
        """Every price of the account (or of one product), active and archived."""
        params = {"product": product_id} if product_id else {}
        return [_price_info(p) for p in self._list_all(self._client.v1.prices.list, params, account)]

    def customer_create(self, *, account: str, params: dict[str, Any], idempotency_key: str) -> CustomerInfo:
        return _customer_info(self._call(
            self._client.v1.customers.create, params={**params, "expand": ["tax_ids"]},
            options=self._options(account, idempotency_key),
        ))

    def customer_update(self, *, account: str, customer_id: str, params: dict[str, Any], idempotency_key: str) -> CustomerInfo:
        return _customer_info(self._call(
            self._client.v1.customers.update, customer_id, params={**params, "expand": ["tax_ids"]},
            options=self._options(account, idempotency_key),
        ))

    def customer_fetch(self, *, account: str, customer_id: str) -> CustomerInfo:
        """The customer as CustomerInfo (`deleted=True` for a deleted one); NotFound when the
        id does not exist on this account. `tax_ids` is includable: Stripe sends it only when
        expanded, and a deleted customer cannot be expanded, hence a second read if needed."""
        customer = self._call(self._client.v1.customers.retrieve, customer_id, options=self._options(account))
        if not _get(customer, "deleted", False) and _get(customer, "tax_ids") is None:
            customer = self._call(self._client.v1.customers.retrieve, customer_id, params={"expand": ["tax_ids"]},
                                  options=self._options(account))
        return _customer_info(customer)

    def customers_list_by_email(self, *, account: str, email: str) -> list[CustomerInfo]:
        return [_customer_info(c) for c in self._list_all(self._client.v1.customers.list, {"email": email}, account)]

    def customer_tax_id_create(self, *, account: str, customer_id: str, type: str, value: str,
                               idempotency_key: str) -> TaxIdInfo:
        tax_id = self._call(
            self._client.v1.customers.tax_ids.create, customer_id, params={"type": type, "value": value},
            options=self._options(account, idempotency_key),
        )
        return TaxIdInfo(id=tax_id["id"], type=_get(tax_id, "type", ""), value=_get(tax_id, "value", ""))

    def customer_tax_id_delete(self, *, account: str, customer_id: str, tax_id: str) -> None:
        self._call(self._client.v1.customers.tax_ids.delete, customer_id, tax_id, options=self._options(account))

    # --- invoices (issue 6) ---
    # The push of one CRM invoice: create the draft, add every line in one call, finalize,
    # send (or charge). Each write takes the caller's idempotency key, derived from local
    # ids, so a retried step replays Stripe's first answer. Recovery lists the customer's
    # invoices to find one by its metadata (Stripe's list has no metadata filter).
    def invoice_create(self, *, account: str, params: dict[str, Any], idempotency_key: str) -> InvoiceInfo:
        return _invoice_info(self._call(self._client.v1.invoices.create, params=params,
                                        options=self._options(account, idempotency_key)))

    def invoice_add_lines(self, *, account: str, invoice_id: str, lines: list[dict[str, Any]],
                          invoice_metadata: dict[str, str], idempotency_key: str) -> InvoiceInfo:
        return _invoice_info(self._call(
            self._client.v1.invoices.add_lines, invoice_id,
            params={"lines": lines, "invoice_metadata": invoice_metadata},
            options=self._options(account, idempotency_key),
        ))

    def invoice_finalize(self, *, account: str, invoice_id: str, idempotency_key: str,
                         auto_advance: bool = False) -> InvoiceInfo:
        # The app sends (or charges) itself right after, having checked the totals;
        # auto_advance says whether Stripe then keeps collecting (retries, reminders).
        return _invoice_info(self._call(self._client.v1.invoices.finalize_invoice, invoice_id,
                                        params={"auto_advance": auto_advance},
                                        options=self._options(account, idempotency_key)))

    def invoice_send(self, *, account: str, invoice_id: str, idempotency_key: str) -> InvoiceInfo:
        return _invoice_info(self._call(self._client.v1.invoices.send_invoice, invoice_id,
                                        options=self._options(account, idempotency_key)))

    def invoice_pay(self, *, account: str, invoice_id: str, idempotency_key: str,
                    paid_out_of_band: bool = False) -> InvoiceInfo:
        params = {"paid_out_of_band": True} if paid_out_of_band else {}
        return _invoice_info(self._call(self._client.v1.invoices.pay, invoice_id, params=params,
                                        options=self._options(account, idempotency_key)))

    def invoice_void(self, *, account: str, invoice_id: str, idempotency_key: str) -> InvoiceInfo:
        return _invoice_info(self._call(self._client.v1.invoices.void_invoice, invoice_id,
                                        options=self._options(account, idempotency_key)))

    def invoice_mark_uncollectible(self, *, account: str, invoice_id: str, idempotency_key: str) -> InvoiceInfo:
        return _invoice_info(self._call(self._client.v1.invoices.mark_uncollectible, invoice_id,
                                        options=self._options(account, idempotency_key)))

    def invoice_delete(self, *, account: str, invoice_id: str) -> None:
        self._call(self._client.v1.invoices.delete, invoice_id, options=self._options(account))

    def invoice_fetch(self, *, account: str, invoice_id: str) -> InvoiceInfo:
        return _invoice_info(self._call(self._client.v1.invoices.retrieve, invoice_id, options=self._options(account)))

    def invoice_find_by_metadata(self, *, account: str, customer: str, metadata: dict[str, str],
                                 created_gte: int | None = None) -> list[InvoiceInfo]:
        """The customer's invoices whose metadata holds every pair of `metadata`."""
        params: dict[str, Any] = {"customer": customer, "limit": 100}
        if created_gte is not None:
            params["created"] = {"gte": int(created_gte)}
        found = []
        while True:
            page = self._call(self._client.v1.invoices.list, params=params, options=self._options(account))
            data = list(page.data)
            for inv in data:
                meta = _mapping(_get(inv, "metadata"))
                if all(meta.get(k) == v for k, v in metadata.items()):
                    found.append(_invoice_info(inv))
            if not page.has_more or not data:
                return found
            params = {**params, "starting_after": data[-1]["id"]}

    def tax_rate_create(self, *, account: str, percentage: str, inclusive: bool, country: str, display_name: str,
                        metadata: dict[str, str], idempotency_key: str) -> str:
        params: dict[str, Any] = {"percentage": percentage, "inclusive": inclusive, "display_name": display_name,
                                  "metadata": metadata}
        if country:
            params["country"] = country
        rate = self._call(self._client.v1.tax_rates.create, params=params, options=self._options(account, idempotency_key))
        return rate["id"]

    def coupon_ensure(self, *, account: str, coupon_id: str, params: dict[str, Any], idempotency_key: str) -> str:
        """Create the coupon with the given id; one that already exists is what we want."""
        try:
            coupon = self._call(self._client.v1.coupons.create, params={"id": coupon_id, **params},
                                options=self._options(account, idempotency_key))
        except InvalidRequest as exc:
            if exc.code == "resource_already_exists":
                return coupon_id
            raise
        return coupon["id"]

    def customer_default_payment_method(self, *, account: str, customer_id: str) -> str:
        """The customer's saved card for invoices ("" when none): what charge_automatically needs."""
        customer = self._call(self._client.v1.customers.retrieve, customer_id, options=self._options(account))
        pm = _get(_get(customer, "invoice_settings", {}) or {}, "default_payment_method", "")
        return pm if isinstance(pm, str) else _get(pm, "id", "")

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

    def webhook_endpoint_update_events(self, *, endpoint_id: str, enabled_events: list[str]) -> WebhookEndpointInfo:
        """Subscribe an existing endpoint to exactly `enabled_events` (its secret stays)."""
        ep = self._call(self._client.v1.webhook_endpoints.update, endpoint_id,
                        params={"enabled_events": enabled_events})
        return self._endpoint(ep)

    def webhook_endpoint_delete(self, *, endpoint_id: str) -> None:
        self._call(self._client.v1.webhook_endpoints.delete, endpoint_id)

    @staticmethod
    def _endpoint(ep) -> WebhookEndpointInfo:
        return WebhookEndpointInfo(
            id=ep["id"], url=_get(ep, "url", ""), connect=bool(_get(ep, "connect", False)),
            enabled_events=tuple(_get(ep, "enabled_events", []) or []), livemode=bool(_get(ep, "livemode", False)),
            metadata=_mapping(_get(ep, "metadata")), secret=_get(ep, "secret"),
        )


def webhook_verify(*, payload: bytes, header: str | None, secrets, tolerance: int) -> None:
    """Check a webhook delivery's `Stripe-Signature` with stripe-python's own verifier
    (`stripe.WebhookSignature.verify_header`: HMAC-SHA256 of "<t>.<body>", constant-time
    compare, `t` no older than `tolerance` seconds) under each secret in turn, as the
    endpoint may have several active (a secret being rolled). Raise WebhookSignatureInvalid
    when none verifies. Stripe's verifier does not refuse a timestamp in the future: the
    intake checks that itself."""
    reason = "No signature matches the payload under any active secret."
    try:
        payload.decode("utf-8")  # Stripe signs UTF-8 JSON; its verifier would raise on anything else
    except UnicodeDecodeError:
        raise WebhookSignatureInvalid("The payload is not UTF-8, so Stripe did not sign it.") from None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
        except stripe.SignatureVerificationError as exc:
            # Only Stripe's own wording; neither the secret nor the payload is kept.
            reason = str(exc.user_message or reason)
            continue
        return
    raise WebhookSignatureInvalid(reason)
