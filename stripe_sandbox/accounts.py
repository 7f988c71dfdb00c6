"""Keys, platform accounts and Connect.

Each distinct `sk_test_...` key is its own platform account, created on first use; so
is each sandbox live key (the live prefix followed by `sandbox_`, see LIVE_SANDBOX_PREFIXES):
a live-mode platform whose objects, events and connected accounts carry `livemode: true`,
so that test and live side by side can be tried offline. Any other live key (a real one)
is refused: the sandbox never takes a real secret.
A connected (standard) account belongs to the platform that connected it, one per
platform and email, reused when the same email connects again. An OAuth access
token is a secret key that acts as its connected account. Deauthorizing revokes
the connection and the account's access tokens.
"""

from __future__ import annotations

from stripe._api_version import _ApiVersion

from .core import Ctx, new_id, random_token
from .errors import StripeError, account_access_denied, mask_key
from .schema import shape

API_VERSION = _ApiVersion.CURRENT
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
# Built by concatenation so that no live-key-looking literal sits in the repository.
LIVE_KEY_PREFIXES = tuple(p + "_" + "live" + "_" for p in ("sk", "rk"))
LIVE_SANDBOX_PREFIXES = tuple(p + "sandbox_" for p in LIVE_KEY_PREFIXES)


def is_live_account(store, account: str | None) -> bool:
    meta = store.accounts.get(account or "")
    return bool(meta and meta.get("livemode"))


def authenticate(store, now: int, api_key: str | None) -> dict:
    """The key's record {"account", "platform"}; creates a platform for a new test key."""
    if not api_key:
        raise StripeError(
            401,
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
            "or we can help at https://support.stripe.com/.",
        )
    rec = store.api_keys.get(api_key)
    if rec is not None:
        if rec.get("revoked"):
            raise StripeError(401, f"Expired API Key provided: {mask_key(api_key)}", code="api_key_expired")
        return rec
    livemode = api_key.startswith(LIVE_SANDBOX_PREFIXES) and len(api_key) > len(LIVE_SANDBOX_PREFIXES[0])
    if api_key.startswith(LIVE_KEY_PREFIXES) and not livemode:
        raise StripeError(
            401,
            "stripe_sandbox serves test mode only, and live mode only to sandbox live keys (the live "
            "prefix followed by sandbox_): use a test key (sk_test_...), never a real live key.",
        )
    if not livemode and (not api_key.startswith(TEST_KEY_PREFIXES) or len(api_key) <= len("sk_test_")):
        raise StripeError(401, f"Invalid API Key provided: {mask_key(api_key)}")
    account = _create_account(store, now, platform=None, email=None,
                              name="Sandbox platform " + api_key[-4:], livemode=livemode)
    rec = {"account": account["id"], "platform": None}
    store.api_keys[api_key] = rec
    return rec


def resolve_account(store, own: str, api_key: str, requested: str | None) -> str:
    """The account a request by `own`'s key acts for: `requested` (a Stripe-Account)
    if `own` may act for it, else Stripe's 403."""
    if not requested or requested == own:
        return own
    meta = store.accounts.get(requested)
    if meta is None or meta["platform"] != own or meta["revoked"]:
        raise account_access_denied(api_key, requested)
    return requested


def platform_of(store, account: str) -> str | None:
    meta = store.accounts.get(account)
    return meta["platform"] if meta else None


def _create_account(store, now: int, *, platform, email, name, country="US", currency="usd",
                    livemode: bool | None = None) -> dict:
    acct_id = new_id("acct")
    if livemode is None:  # a connected account is in its platform's mode
        livemode = is_live_account(store, platform)
    display = name or (email.split("@")[0] if email else None)
    obj = shape(
        "account",
        id=acct_id,
        type="standard",
        email=email,
        country=country,
        default_currency=currency,
        business_profile={"name": display},
        settings={"dashboard": {"display_name": display, "timezone": "Etc/UTC"}},
        controller={"type": "account"},
        charges_enabled=True,
        payouts_enabled=True,
        details_submitted=True,
        created=now,
    )
    # A map of the capabilities requested, not every capability the SDK knows.
    obj["capabilities"] = {"card_payments": "active", "transfers": "active"}
    store.accounts[acct_id] = {"platform": platform, "email": email, "revoked": False, "livemode": livemode}
    store.insert(obj, acct_id)
    return obj


def connect_account(ctx: Ctx, platform: str, email: str, *, business_name=None,
                    country="US", currency="usd") -> dict:
    """The platform's connected account for `email` (created or reused), connected
    now; emits account.application.authorized for the platform's Connect endpoints."""
    store = ctx.store
    for acct_id, meta in store.accounts.items():
        if meta["platform"] == platform and meta["email"] == email:
            account = store.objects[acct_id]
            break
    else:
        account = _create_account(store, ctx.now(), platform=platform, email=email,
                                  name=business_name, country=country, currency=currency)
        acct_id = account["id"]
    meta = store.accounts[acct_id]
    if meta["revoked"] or not meta.get("authorized"):
        meta["revoked"] = False
        meta["authorized"] = True
        ctx.emit("account.application.authorized", application(ctx, platform), account=acct_id)
    store.dirty = True
    return account


def issue_tokens(store, account: str, platform: str, scope: str, refresh: str | None = None) -> dict:
    """Stripe's token answer; a new refresh token unless one is being used."""
    livemode = is_live_account(store, platform)
    access_token = (LIVE_SANDBOX_PREFIXES[0] if livemode else "sk_test_") + random_token(32)
    store.api_keys[access_token] = {"account": account, "platform": platform, "access_token": True}
    if refresh is None:
        refresh = "rt_" + random_token(32)
        store.refresh_tokens[refresh] = {"account": account, "platform": platform, "scope": scope}
    store.dirty = True
    return {
        "access_token": access_token,
        "livemode": livemode,
        "refresh_token": refresh,
        "scope": scope,
        "stripe_publishable_key": ("pk_" + "live_" if livemode else "pk_test_") + random_token(32),
        "stripe_user_id": account,
        "token_type": "bearer",
    }


def deauthorize(ctx: Ctx, platform: str, account: str, client_id: str) -> None:
    store = ctx.store
    store.accounts[account]["revoked"] = True
    for rec in store.api_keys.values():
        if rec.get("access_token") and rec["account"] == account:
            rec["revoked"] = True
    for token, rec in list(store.refresh_tokens.items()):
        if rec["account"] == account:
            del store.refresh_tokens[token]
    store.dirty = True
    ctx.emit("account.application.deauthorized", application(ctx, platform, client_id), account=account)


def application(ctx: Ctx, platform: str, client_id: str | None = None) -> dict:
    """The `application` object Connect events carry: the platform's OAuth app."""
    if client_id is None:
        client_id = next((c for c, p in ctx.store.client_ids.items() if p == platform), None)
    platform_obj = ctx.store.objects.get(platform) or {}
    name = (platform_obj.get("business_profile") or {}).get("name")
    return shape("application", id=client_id or "ca_" + platform.removeprefix("acct_"), name=name)
