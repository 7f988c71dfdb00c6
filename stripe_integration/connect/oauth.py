"""Business rules of the Stripe integration: the Connect OAuth lifecycle.

Every write of the integration's state happens here; views only call these functions.
Stripe is reached only through `gateway.Gateway`.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from crm.audit import audit_record
from crm.models import Business

from ..gateway.client import AccessRevoked, Gateway, GatewayError, OAuthFailed
from ..models import ConnectionStatus, ConnectWebhookEndpoint, StripeConnection
from . import modes

log = logging.getLogger(__name__)

OAUTH_STATE_SESSION_KEY = "stripe_oauth_states"
OAUTH_STATE_TTL = 600  # seconds: a consent screen left open longer must start again
OAUTH_STATE_MAX_PENDING = 5

# The events the app handles (issue: webhooks into payment status); the Connect endpoint
# subscribes to exactly these.
WEBHOOK_EVENTS = [
    "invoice.finalized", "invoice.sent", "invoice.updated", "invoice.paid", "invoice.payment_succeeded",
    "invoice.payment_failed", "invoice.voided", "invoice.marked_uncollectible", "invoice.deleted",
    "payment_intent.processing", "payment_intent.succeeded", "payment_intent.payment_failed",
    "charge.succeeded", "charge.refunded",
    # Disputes: each event carries the whole dispute (handlers/disputes.py).
    "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
    "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated",
    # A refund can fail (or be canceled) after it was made: Stripe then lowers the charge's
    # amount_refunded and sends these; the refunded figures follow it down.
    "charge.refund.updated", "refund.updated", "refund.failed",
    "checkout.session.completed", "setup_intent.succeeded",
    # Credit notes, made in the CRM or in the Dashboard (issue 13).
    "credit_note.created", "credit_note.updated", "credit_note.voided",
    "customer.updated", "customer.deleted", "product.updated",
    "account.application.deauthorized",
    # Payouts and what they carried (issue 15, handlers/payouts.py).
    "payout.created", "payout.updated", "payout.paid", "payout.failed",
]
ENDPOINT_METADATA = {"crm_role": "connect_endpoint"}


class ConnectError(Exception):
    """A connection step failed; `message` is safe to show to the user."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def gateway(livemode: bool | None = None) -> Gateway:
    """The platform's client for one mode (test or live: each has its own key); the
    default mode (modes.default_livemode) when none is named. Every call made for a
    connection passes `connection.livemode`."""
    mode = modes.default_livemode() if livemode is None else livemode
    return Gateway.from_settings(secret_key=modes.secret_key(mode), client_id=modes.client_id(mode))


def platform_livemode() -> bool:
    """The default mode: live when the platform has a live key, else test (with only
    STRIPE_SECRET_KEY, that key's mode)."""
    return modes.default_livemode()


# --- OAuth state: random, bound to session + business + user, single-use, 10 minutes ---
def _state_digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def oauth_start(*, session, business: Business, user, livemode: bool | None = None) -> str:
    """Make a fresh state, remember it in the session (with the mode being connected), and
    return Stripe's authorize URL for that mode's Connect client id."""
    if not business.finance_enabled:
        raise ConnectError("The finance module is not enabled for this business.")
    mode = modes.default_livemode() if livemode is None else livemode
    if mode not in modes.configured_modes():
        raise ConnectError(f"The platform has no {modes.mode_name(mode)}-mode Stripe key: {modes.mode_label(mode)} "
                           "cannot be connected.")
    state = secrets.token_urlsafe(32)
    pending = [p for p in session.get(OAUTH_STATE_SESSION_KEY, []) if p["expires"] > time.time()]
    pending.append({"digest": _state_digest(state), "business_id": business.pk, "user_id": user.pk,
                    "livemode": mode, "expires": time.time() + OAUTH_STATE_TTL})
    session[OAUTH_STATE_SESSION_KEY] = pending[-OAUTH_STATE_MAX_PENDING:]
    redirect_uri = settings.SITE_URL + reverse("stripe_integration:oauth_callback")
    try:
        return gateway(mode).oauth_authorize_url(redirect_uri=redirect_uri, state=state, email=user.email or "",
                                             business_name=business.name)
    except GatewayError as exc:
        raise ConnectError(exc.user_message) from None


def oauth_state_consume(*, session, state: str | None, business: Business, user) -> bool:
    """Check and burn the state; return the mode it was started for. Raises ConnectError
    for a missing, wrong, reused or expired state (compared in constant time); nothing
    else happens in that case."""
    if not state:
        raise ConnectError("The connection request is missing its security token. Start again from the Connect button.")
    pending = session.get(OAUTH_STATE_SESSION_KEY, [])
    digest = _state_digest(state)
    match = None
    for p in pending:
        if hmac.compare_digest(p["digest"], digest):
            match = p
    if match is None:
        raise ConnectError("The connection request is invalid or was already used. Start again from the Connect button.")
    # Single use: burn it before anything else, whatever happens next.
    session[OAUTH_STATE_SESSION_KEY] = [p for p in pending if p is not match]
    if match["expires"] <= time.time():
        raise ConnectError("The connection request expired (10 minutes). Start again from the Connect button.")
    if match["business_id"] != business.pk or match["user_id"] != user.pk:
        raise ConnectError("The connection request was started by another user or business. Start again.")
    return bool(match.get("livemode", modes.default_livemode()))


# --- the connection --------------------------------------------------------------
def connection_get_active(*, business: Business, livemode: bool | None = None) -> StripeConnection | None:
    """The business's connection in `livemode`; with no mode named, its live connection if
    it has one, else its test one (of the modes the platform has keys for)."""
    active = StripeConnection.objects.filter(business=business, status=ConnectionStatus.CONNECTED)
    if livemode is not None:
        return active.filter(livemode=livemode).first()
    return active.filter(livemode__in=modes.configured_modes() or [False]).order_by("-livemode").first()


def connection_for_invoice(invoice) -> StripeConnection | None:
    """The connection an invoice (or its credit notes, refunds...) is acted on through:
    that of the invoice's mode once it has one (in Stripe, or sent from a mode), else the
    business's default connection."""
    return connection_get_active(business=invoice.business, livemode=invoice.livemode)


# --- the current mode of a staff session (finance screens show one mode at a time) ----------
MODE_SESSION_KEY = "stripe_livemode"


def session_livemode(*, session, business: Business) -> tuple[bool, list[bool]]:
    """(the session's current mode, the modes the business is connected in). The mode
    chosen with the switch when the business is connected in it; else live if connected
    in live, else test if connected in test, else the platform's default mode."""
    available = connected_modes(business=business)
    chosen = session.get(MODE_SESSION_KEY) if session is not None else None
    if chosen in available:
        return chosen, available
    return (available[0] if available else platform_livemode()), available


def session_livemode_set(*, session, business: Business, livemode: bool) -> None:
    if livemode not in connected_modes(business=business):
        raise ConnectError(f"This business is not connected in {modes.mode_label(livemode).lower()}.")
    session[MODE_SESSION_KEY] = livemode


def connected_modes(*, business: Business) -> list[bool]:
    """The modes the business has an active connection in (of the configured ones), live first."""
    found = set(StripeConnection.objects.filter(business=business, status=ConnectionStatus.CONNECTED)
                .values_list("livemode", flat=True))
    return [mode for mode in modes.configured_modes() if mode in found]


def connection_latest(*, business: Business, livemode: bool | None = None) -> StripeConnection | None:
    mode = platform_livemode() if livemode is None else livemode
    return StripeConnection.objects.filter(business=business, livemode=mode).order_by("-created_at", "-pk").select_related("connected_by", "disconnected_by").first()


def connection_connect(*, business: Business, user, code: str, livemode: bool | None = None) -> StripeConnection:
    """Exchange the code (exactly once: codes are single-use) with the key of the mode the
    connection was started in, record the connection in that mode and make sure the
    platform's Connect webhook endpoint of that mode exists."""
    gw = gateway(livemode)
    try:
        tokens = gw.oauth_exchange_code(code=code)
    except GatewayError as exc:
        raise ConnectError(exc.user_message) from None
    if tokens.livemode != gw.livemode:
        raise ConnectError(f"Stripe connected an account in the other mode (test/live) than the {modes.mode_label(gw.livemode).lower()} "
                           "connection that was started.")
    taken = StripeConnection.objects.filter(
        stripe_user_id=tokens.stripe_user_id, livemode=tokens.livemode, status=ConnectionStatus.CONNECTED
    ).exclude(business=business).exists()
    if taken:
        raise ConnectError("This Stripe account is already connected to another business.")
    try:
        info = gw.account_retrieve(account=tokens.stripe_user_id)
    except GatewayError as exc:
        info = None
        log.warning("Could not read connected account %s: %s", tokens.stripe_user_id, exc.user_message)
    now = timezone.now()
    try:
        with transaction.atomic():
            previous = StripeConnection.objects.select_for_update().filter(
                business=business, livemode=tokens.livemode, status=ConnectionStatus.CONNECTED
            )
            for old in previous:
                old.status = ConnectionStatus.DISCONNECTED
                old.disconnected_at = now
                old.disconnected_by = user
                old.access_token = ""
                old.refresh_token = ""
                old.full_clean()
                old.save()
            connection = StripeConnection(
                business=business, stripe_user_id=tokens.stripe_user_id, livemode=tokens.livemode,
                scope=tokens.scope, status=ConnectionStatus.CONNECTED, access_token=tokens.access_token,
                refresh_token=tokens.refresh_token, connected_at=now, connected_by=user, last_checked_at=now,
                account_name=info.display_name if info else "", account_email=info.email if info else "",
                account_country=info.country if info else "",
            )
            connection.full_clean()
            connection.save()
    except IntegrityError:
        raise ConnectError("This Stripe account is already connected to another business.") from None
    # Events of the account that came while no business had it connected were parked,
    # not dropped: apply them now (queued on commit).
    from ..webhooks.processing import deliveries_unpark

    deliveries_unpark(account=connection.stripe_user_id)
    try:
        webhook_endpoint_ensure(gw=gw)
    except GatewayError as exc:
        connection.last_error = f"Webhook endpoint: {exc.user_message}"
        connection.save(update_fields=["last_error", "updated_at"])
    # An account with history brings it in (issue 15), queued on commit. Its products are
    # linked to services first: the catalog sync starts when the import completes
    # (importing/tasks.py), else a service matched by the import would get a second product.
    from ..importing.start import import_start_on_connect

    if import_start_on_connect(connection=connection, user=user) is None:
        _first_catalog_sync(business=business, user=user, livemode=connection.livemode)
    return connection


def _first_catalog_sync(*, business: Business, user, livemode: bool) -> None:
    """A newly connected business's catalog goes to Stripe at once (a queued whole-catalog
    sync; it sends only what Stripe does not hold yet, so reconnecting costs reads)."""
    from services.models import Service

    from ..catalog.sync import CatalogSyncError, catalog_sync_start

    if not Service.objects.filter(business=business).exists():
        return
    try:
        catalog_sync_start(business=business, user=user, livemode=livemode)
    except CatalogSyncError as exc:  # one is already running: it covers this too
        log.info("First catalog sync of %s not queued: %s", business.slug, exc)


def connection_test(*, connection: StripeConnection):
    """Retrieve the account through the gateway and record the outcome."""
    if not connection.is_active:
        raise ConnectError("This business is not connected to Stripe.")
    try:
        info = gateway(connection.livemode).account_retrieve(account=connection.stripe_user_id)
    except AccessRevoked as exc:
        connection_revoke(stripe_user_id=connection.stripe_user_id, livemode=connection.livemode)
        raise ConnectError(exc.user_message) from None
    except GatewayError as exc:
        connection.last_error = exc.user_message
        connection.last_checked_at = timezone.now()
        connection.save(update_fields=["last_error", "last_checked_at", "updated_at"])
        raise ConnectError(exc.user_message) from None
    connection.account_name = info.display_name
    connection.account_email = info.email
    connection.account_country = info.country
    connection.last_checked_at = timezone.now()
    connection.last_error = ""
    connection.full_clean()
    connection.save()
    return info


def connection_disconnect(*, connection: StripeConnection, user, ip: str | None = None) -> StripeConnection:
    """Deauthorize on Stripe, then mark disconnected and wipe the tokens. An account whose
    access Stripe already revoked is disconnected locally all the same."""
    try:
        gateway(connection.livemode).oauth_deauthorize(stripe_user_id=connection.stripe_user_id)
    except (AccessRevoked, OAuthFailed):
        pass
    except GatewayError as exc:
        raise ConnectError(f"Stripe could not disconnect the account: {exc.user_message}") from None
    with transaction.atomic():
        ended = _end_connection(connection=connection, status=ConnectionStatus.DISCONNECTED, user=user)
        audit_record(business=ended.business, user=user, action="stripe_disconnect", obj=ended, ip=ip,
                     detail=f"Disconnected Stripe account {ended.stripe_user_id}.")
    return ended


def connection_revoke(*, stripe_user_id: str, livemode: bool) -> int:
    """Stripe says the account revoked access (account.application.deauthorized, or a 403):
    end the connection so no further call is made for that business. Idempotent."""
    count = 0
    for connection in StripeConnection.objects.filter(stripe_user_id=stripe_user_id, livemode=livemode, status=ConnectionStatus.CONNECTED):
        _end_connection(connection=connection, status=ConnectionStatus.REVOKED, user=None)
        count += 1
    return count


def _end_connection(*, connection: StripeConnection, status: str, user) -> StripeConnection:
    with transaction.atomic():
        connection = StripeConnection.objects.select_for_update().get(pk=connection.pk)
        connection.status = status
        connection.disconnected_at = timezone.now()
        connection.disconnected_by = user
        connection.access_token = ""
        connection.refresh_token = ""
        connection.full_clean()
        connection.save()
    return connection


# --- the platform's Connect webhook endpoint ----------------------------------------
def webhook_endpoint_ensure(*, gw: Gateway | None = None) -> ConnectWebhookEndpoint:
    """Exactly one `connect=true` endpoint for our webhook URL, with its secret encrypted.
    Calling it again creates nothing new."""
    gw = gw or gateway()
    url = settings.STRIPE_WEBHOOK_URL
    local = ConnectWebhookEndpoint.objects.filter(url=url, livemode=gw.livemode).first()
    remote = [e for e in gw.webhook_endpoints_list() if e.url == url and e.metadata.get("crm_role") == ENDPOINT_METADATA["crm_role"]]
    if local and any(e.id == local.stripe_id for e in remote):
        for extra in (e for e in remote if e.id != local.stripe_id):
            gw.webhook_endpoint_delete(endpoint_id=extra.id)
        current = next(e for e in remote if e.id == local.stripe_id)
        if set(current.enabled_events) != set(WEBHOOK_EVENTS):
            # An endpoint made by an earlier version: subscribe it to the events handled now.
            updated = gw.webhook_endpoint_update_events(endpoint_id=local.stripe_id, enabled_events=WEBHOOK_EVENTS)
            local.enabled_events = list(updated.enabled_events)
            local.full_clean()
            local.save(update_fields=["enabled_events"])
        return local
    # An endpoint we hold no secret for is useless to us (Stripe shows the secret only at
    # creation): replace it.
    for stale in remote:
        gw.webhook_endpoint_delete(endpoint_id=stale.id)
    key_material = f"{url}|{gw.livemode}|{','.join(sorted(e.id for e in remote))}|{local.stripe_id if local else ''}"
    created = gw.webhook_endpoint_create(
        url=url, enabled_events=WEBHOOK_EVENTS, connect=True, metadata=dict(ENDPOINT_METADATA),
        idempotency_key="crm-connect-endpoint-" + hashlib.sha256(key_material.encode()).hexdigest()[:32],
    )
    with transaction.atomic():
        ConnectWebhookEndpoint.objects.filter(url=url, livemode=gw.livemode).delete()
        endpoint = ConnectWebhookEndpoint(stripe_id=created.id, url=url, livemode=gw.livemode,
                                          secret=created.secret or "", enabled_events=list(created.enabled_events))
        endpoint.full_clean()
        endpoint.save()
    return endpoint


@dataclass(frozen=True)
class ConnectionView:
    """What the settings page shows."""

    state: str  # not_connected | connected | disconnected | revoked | error
    connection: StripeConnection | None
    livemode: bool
    finance_enabled: bool
    configured: bool = True

    @property
    def mode_label(self) -> str:
        return modes.mode_label(self.livemode)

    @property
    def mode(self) -> str:
        return modes.mode_name(self.livemode)


def connection_overview(*, business: Business, livemode: bool | None = None) -> ConnectionView:
    mode = platform_livemode() if livemode is None else livemode
    latest = connection_latest(business=business, livemode=mode)
    state = "not_connected" if latest is None else latest.status
    if latest is not None and latest.status == ConnectionStatus.CONNECTED and latest.last_error:
        state = "error"
    return ConnectionView(state=state, connection=latest, livemode=mode, finance_enabled=business.finance_enabled,
                          configured=mode in modes.configured_modes())


def connection_overviews(*, business: Business) -> list[ConnectionView]:
    """One panel per mode the platform has a key for (live first); the default mode's
    alone when it has none (the page then says Stripe is not configured)."""
    return [connection_overview(business=business, livemode=m) for m in (modes.configured_modes() or [platform_livemode()])]
