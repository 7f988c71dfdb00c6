"""Connect OAuth for standard accounts, as connect.stripe.com serves it
(docs.stripe.com/connect/oauth-reference), on the sandbox's one base address.

GET /oauth/authorize shows a consent page (plain HTML forms, usable by a headless
browser: buttons "Authorize" and "Deny"); its POST redirects to `redirect_uri` with
`code` or `error=access_denied`. POST /oauth/token trades a code (single use,
5 minutes) or a refresh token for an access token; POST /oauth/deauthorize
revokes. Errors use OAuth's shape: {"error": "invalid_grant", "error_description"}.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode, urlsplit, urlunsplit

import stripe

from .accounts import authenticate, connect_account, deauthorize, issue_tokens
from .core import Response, new_id, random_token, route
from .errors import OAuthError, StripeError, mask_key
from .schema import validate

CODE_TTL_SECONDS = 300  # "Authorization codes expire after 5 minutes" (OAuth reference)
SCOPES = ("read_write", "read_only")


def issue_code(sandbox, *, client_id, email, scope="read_write", platform=None,
               business_name=None, redirect_uri=None) -> str:
    code = "ac_" + random_token(32)
    sandbox.store.oauth_codes[code] = {
        "client_id": client_id,
        "email": email or f"{new_id('user').lower()}@example.test",
        "business_name": business_name or None,
        "scope": scope,
        "platform": platform,
        "redirect_uri": redirect_uri,
        "created": sandbox.clock.now(),
        "used": False,
    }
    sandbox.store.dirty = True
    return code


# ------------------------------------------------------------------ consent page

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;background:#f6f9fc;color:#1a1f36;margin:0}}
main{{max-width:28rem;margin:4rem auto;background:#fff;border-radius:8px;padding:2rem;
box-shadow:0 2px 8px rgba(0,0,0,.08)}}
dt{{font-weight:600;margin-top:.6rem}} dd{{margin:0}} label{{display:block;margin-top:.8rem}}
input[type=text],input[type=email]{{width:100%;padding:.4rem;box-sizing:border-box}}
.actions{{display:flex;gap:1rem;margin-top:1.5rem}}
button{{padding:.6rem 1.2rem;border-radius:6px;border:1px solid #635bff;font-size:1rem}}
button[value=authorize]{{background:#635bff;color:#fff}} button[value=deny]{{background:#fff;color:#635bff}}
.note{{color:#697386;font-size:.9rem}}
</style></head><body><main>{body}</main></body></html>"""


def _page(title: str, body: str, status: int = 200) -> Response:
    return Response.html(_PAGE.format(title=html.escape(title), body=body), status)


def _error_page(message: str) -> Response:
    return _page("Connect error", f"<h1>Something went wrong</h1><p id=error>{html.escape(message)}</p>", 400)


def _check_request(params: dict) -> str | None:
    for name in ("client_id", "redirect_uri", "scope", "state", "response_type", "email", "business_name"):
        if not isinstance(params.get(name, ""), str):
            return f"Invalid {name}: expected a string."
    client_id = params.get("client_id") or ""
    if not client_id.startswith("ca_"):
        return f"Invalid client_id: {client_id!r}. Connect client ids start with ca_."
    if params.get("response_type", "code") != "code":
        return "Invalid response_type: the only supported value is code."
    if params.get("scope", "read_only") not in SCOPES:
        return f"Invalid scope: must be one of {', '.join(SCOPES)}."
    if not params.get("redirect_uri"):
        return "No redirect_uri: stripe_sandbox has no application settings to fall back on."
    return None


@route("GET", "/oauth/authorize", auth="public")
def authorize_page(ctx, params):
    problem = _check_request(params)
    if problem:
        return _error_page(problem)
    user = params.get("stripe_user") if isinstance(params.get("stripe_user"), dict) else {}
    email = user.get("email", "")
    business = user.get("business_name", "")
    scope = params.get("scope", "read_only")
    store = ctx.store
    platform = store.client_ids.get(params["client_id"])
    existing = next(
        (a for a, m in store.accounts.items() if platform and m["platform"] == platform and m["email"] == email),
        None,
    ) if email else None
    who = (
        f"Your existing account <code id=account>{existing}</code> ({html.escape(email)}) will be connected."
        if existing else
        "A Stripe test account will be created for the email below, or reused if it connected before."
    )
    hidden = "".join(
        f'<input type=hidden name="{k}" value="{html.escape(str(params.get(k, d)))}">'
        for k, d in (("client_id", ""), ("redirect_uri", ""), ("state", ""), ("scope", scope))
    )
    body = f"""<h1>Connect your Stripe account</h1>
<p>An application wants to connect to your Stripe account.</p>
<dl><dt>Application</dt><dd id=client_id>{html.escape(params['client_id'])}</dd>
<dt>Access requested</dt><dd id=scope>{html.escape(scope)}</dd>
<dt>Redirects to</dt><dd id=redirect_uri>{html.escape(params['redirect_uri'])}</dd></dl>
<p class=note id=who>{who}</p>
<form method=post action="/oauth/authorize">{hidden}
<label>Email <input type=email name=email value="{html.escape(email)}"></label>
<label>Business name <input type=text name=business_name value="{html.escape(business)}"></label>
<div class=actions>
<button type=submit name=decision value=authorize>Authorize</button>
<button type=submit name=decision value=deny>Deny</button>
</div></form>
<p class=note>stripe_sandbox: an offline stand-in for connect.stripe.com, test mode only.</p>"""
    return _page("Connect with Stripe", body)


def _redirect(uri: str, query: dict) -> Response:
    parts = urlsplit(uri)
    extra = urlencode({k: v for k, v in query.items() if v not in (None, "")})
    joined = f"{parts.query}&{extra}" if parts.query else extra
    return Response.redirect(urlunsplit(parts._replace(query=joined)))


@route("POST", "/oauth/authorize", auth="public")
def authorize_submit(ctx, params):
    problem = _check_request(params)
    if problem:
        return _error_page(problem)
    state = params.get("state")
    if params.get("decision") != "authorize":
        return _redirect(params["redirect_uri"], {
            "error": "access_denied",
            "error_description": "The user denied your request",
            "state": state,
        })
    scope = params.get("scope", "read_only")
    code = issue_code(
        ctx.sandbox, client_id=params["client_id"], email=(params.get("email") or "").strip(),
        scope=scope, business_name=(params.get("business_name") or "").strip(),
        redirect_uri=params["redirect_uri"],
    )
    return _redirect(params["redirect_uri"], {"code": code, "scope": scope, "state": state})


# ------------------------------------------------------------------ token API


def _platform(ctx, raw: dict) -> str:
    """The calling platform, from `client_secret` or the Authorization header."""
    key = raw.pop("client_secret", None) or ctx.api_key
    if not key:
        raise OAuthError(
            401, "invalid_client",
            "No authentication was provided. Send your secret API key using the Authorization "
            "header, or as a client_secret POST parameter.",
        )
    try:
        rec = authenticate(ctx.store, ctx.now(), key)
    except StripeError as exc:
        raise OAuthError(401, "invalid_client", exc.message) from None
    if rec["platform"] is not None:
        raise OAuthError(401, "invalid_client", f"The key {mask_key(key)} belongs to a connected account, not a platform.")
    ctx.account = ctx.platform = rec["account"]
    ctx.api_key = key
    return rec["account"]


@route("POST", "/oauth/token", auth="oauth")
def token(ctx, raw):
    platform = _platform(ctx, raw)
    grant = raw.get("grant_type")
    if grant not in ("authorization_code", "refresh_token"):
        raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant type: {grant}")
    params = validate(stripe.OAuth.OAuthTokenParams, raw)
    store = ctx.store
    if grant == "refresh_token":
        rt = params.get("refresh_token")
        rec = store.refresh_tokens.get(rt or "")
        if rec is None or rec["platform"] != platform:
            raise OAuthError(400, "invalid_grant", f"Refresh token does not exist: {rt}")
        return issue_tokens(store, rec["account"], platform, rec["scope"], refresh=rt)
    code = params.get("code")
    rec = store.oauth_codes.get(code or "")
    if rec is None or (rec["platform"] not in (None, platform)):
        raise OAuthError(400, "invalid_grant", f"Authorization code does not exist: {code}")
    if rec["used"]:
        raise OAuthError(400, "invalid_grant", f"Authorization code provided has already been used: {code}")
    if ctx.now() - rec["created"] > CODE_TTL_SECONDS:
        raise OAuthError(400, "invalid_grant", f"Authorization code expired: {code}")
    rec["used"] = True
    if rec["client_id"]:
        store.client_ids[rec["client_id"]] = platform
    account = connect_account(ctx, platform, rec["email"], business_name=rec["business_name"])
    return issue_tokens(store, account["id"], platform, rec["scope"])


@route("POST", "/oauth/deauthorize", auth="oauth")
def deauthorize_account(ctx, raw):
    platform = _platform(ctx, raw)
    params = validate(stripe.OAuth.OAuthDeauthorizeParams, raw)
    client_id = params.get("client_id")
    if not client_id:
        raise OAuthError(400, "invalid_request", "No client_id provided.")
    account = params["stripe_user_id"]
    meta = ctx.store.accounts.get(account)
    if meta is None or meta["platform"] != platform or meta["revoked"]:
        raise OAuthError(
            401, "invalid_client",
            f"This application is not connected to stripe account {account}, or that account does not exist.",
        )
    deauthorize(ctx, platform, account, client_id)
    return {"stripe_user_id": account}
