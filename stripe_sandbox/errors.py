"""Stripe's error responses.

Raise `StripeError` (or one of the helpers below) anywhere inside a route handler;
the framework turns it into Stripe's JSON error body and status code. The body is
`{"error": {"type", "code", "message", "param", "doc_url", "request_log_url"}}`,
the keys that do not apply left out (Stripe's `api_errors` schema);
stripe-python picks its exception class from the status code (400/404 ->
InvalidRequestError, 401 -> AuthenticationError, 402 -> CardError, 403 ->
PermissionError, 429 -> RateLimitError, others -> APIError) and from
`type == "idempotency_error"`.

OAuth endpoints answer in OAuth's own shape (`{"error": "invalid_grant",
"error_description": ...}`), raised as `OAuthError`.
"""

from __future__ import annotations


class StripeError(Exception):
    """An error answered to the client in Stripe's JSON error format."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        # Extra keys some errors carry (card errors: decline_code, charge, payment_intent).
        self.extra = extra or {}

    def body(self, request_id: str) -> dict:
        err = {
            "code": self.code,
            "doc_url": f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
            if self.code
            else None,
            "message": self.message,
            "param": self.param,
            "request_log_url": f"https://dashboard.stripe.com/test/logs/{request_id}",
            "type": self.type,
        }
        if self.extra:
            from .spec_shapes import conform  # errors.py is imported by schema.py

            # Card errors carry the intent and payment method as the spec writes them.
            err.update({k: conform(v) for k, v in self.extra.items()})
        # Stripe leaves out what does not apply (no `code`, `param`, `doc_url: null`).
        return {"error": {k: v for k, v in err.items() if v is not None}}


class OAuthError(Exception):
    """An error from connect.stripe.com's OAuth endpoints: `error` is a string there."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self, request_id: str) -> dict:
        return {"error": self.error, "error_description": self.description}


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, message, param=param, code=code)


def parameter_unknown(path: str) -> StripeError:
    return StripeError(400, f"Received unknown parameter: {path}", code="parameter_unknown", param=path)


def parameter_missing(path: str) -> StripeError:
    return StripeError(400, f"Missing required param: {path}.", code="parameter_missing", param=path)


def resource_missing(object_name: str, object_id: str, *, param: str | None = "id") -> StripeError:
    """404 for an object named in the URL; a missing object named by a body
    parameter is a 400 with the same code (pass `param=` to get that)."""
    status = 404 if param in (None, "id") else 400
    return StripeError(
        status,
        f"No such {object_name}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def card_error(message: str, *, code: str, decline_code: str | None = None, param: str | None = None, **extra) -> StripeError:
    if decline_code:
        extra["decline_code"] = decline_code
    return StripeError(402, message, type="card_error", code=code, param=param, extra=extra)


def mask_key(key: str) -> str:
    """How Stripe echoes a key in messages: prefix, stars, last four."""
    prefix, _, rest = key.partition("_")
    mode, _, secret = rest.partition("_")
    if not secret:
        return key[:3] + "*" * max(len(key) - 7, 0) + key[-4:]
    return f"{prefix}_{mode}_" + "*" * max(len(secret) - 4, 0) + secret[-4:]


def account_access_denied(api_key: str, account: str) -> StripeError:
    # Stripe's wording for a Stripe-Account the key may not act for, including a
    # connected account whose authorization was revoked (docs: "Connect: making API
    # calls for connected accounts").
    return StripeError(
        403,
        f"The provided key '{mask_key(api_key)}' does not have access to account "
        f"'{account}' (or that account does not exist). Application access may have been revoked.",
        type="invalid_request_error",
        code="account_invalid",
    )
