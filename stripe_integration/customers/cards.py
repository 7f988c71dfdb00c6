"""Save a card: the link a finance user gives a client so the client saves a card on
Stripe's hosted Checkout page (setup mode), and the customer's default card as the
contact page shows it. Calls the gateway (`gateway/cards.py`) and `links.customer_ensure`;
called by the contact page's Stripe box (connect/views.py) and by the saved-card webhook
handlers (webhooks/handlers/payments.py), which make the saved card the default.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from crm.models import Business, Contact

from ..connect.modes import mode_label
from ..connect.oauth import connection_get_active, gateway
from ..gateway.cards import CardInfo, checkout_setup_session_create
from ..gateway.client import GatewayError
from ..models import CustomerLink, StripeConnection
from ..runs.disable import integration_require_enabled
from .links import CustomerLinkError, _gateway_error, customer_ensure

NONCE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class SetupLink:
    url: str
    expires_at: datetime | None
    customer_id: str


def _not_connected(livemode: bool | None) -> str:
    where = f" in {mode_label(livemode).lower()}" if livemode is not None else ""
    return f"This business is not connected to Stripe{where}."


def card_setup_link_create(*, business: Business, contact: Contact, nonce: str, livemode: bool | None = None) -> SetupLink:
    """A Checkout Session in setup mode for the contact's Stripe customer (made first if
    need be). `nonce` comes with the form the user submitted: the idempotency key is
    built from it and the local ids, so a double click or a reload makes one session,
    and the next visit to the page a new one (a session is used once and expires).
    `livemode`: the mode of the connection it is made in (the session's current mode);
    None: the default connection. Raises CustomerLinkError with a message fit to show."""
    if not NONCE.match(nonce or ""):
        raise CustomerLinkError("The form has expired: reload the page and try again.")
    if contact.business_id != business.pk:
        raise CustomerLinkError("The contact belongs to another business.")
    integration_require_enabled(business=business)
    connection = connection_get_active(business=business, livemode=livemode)
    if connection is None:
        raise CustomerLinkError(_not_connected(livemode))
    customer_id = customer_ensure(connection=connection, contact=contact)
    done_url = settings.SITE_URL + reverse("stripe_integration:card_saved")
    try:
        session = checkout_setup_session_create(
            gateway(connection.livemode), account=connection.stripe_user_id, customer_id=customer_id,
            currency=business.default_currency, success_url=done_url, cancel_url=done_url + "?canceled=1",
            idempotency_key=f"crm-{connection.pk}-c{contact.pk}-save-card-{nonce}",
            metadata={"crm_contact_id": str(contact.pk), "crm_business_id": str(business.pk)},
        )
    except GatewayError as exc:
        raise _gateway_error(exc, connection, f"Stripe could not make a save-card link for {contact.name}") from None
    expires = session.get("expires_at")
    return SetupLink(url=session["url"], customer_id=customer_id,
                     expires_at=datetime.fromtimestamp(expires, tz=dt_timezone.utc) if isinstance(expires, int) else None)


def customer_card_record(*, connection: StripeConnection, customer_id: str, card: CardInfo | None) -> int:
    """Keep the customer's default card (brand, last4, expiry) on its contact's link, as
    Stripe now has it (None: no card), inside the caller's transaction (the webhook
    delivery's). Returns the number of links changed."""
    values = {"card_id": card.id if card else "", "card_brand": (card.brand if card else "")[:20],
              "card_last4": (card.last4 if card else "")[:4],
              "card_exp_month": card.exp_month if card else None, "card_exp_year": card.exp_year if card else None}
    changed = 0
    for link in CustomerLink.objects.select_for_update().filter(connection=connection, stripe_customer_id=customer_id):
        if all(getattr(link, name) == value for name, value in values.items()):
            continue
        for name, value in values.items():
            setattr(link, name, value)
        link.full_clean()
        link.save(update_fields=[*values, "updated_at"])
        changed += 1
    return changed


COLLECTION_METHODS = ("", "send_invoice", "charge_automatically")


def customer_collection_method_set(*, business: Business, contact: Contact, method: str,
                                   livemode: bool | None = None) -> CustomerLink:
    """How this contact's invoices are collected ("" = as the business does), on its link
    to the connection of `livemode` (the session's current mode; None: the default one).
    Charging automatically needs the contact's Stripe customer (made first if need be)."""
    if method not in COLLECTION_METHODS:
        raise CustomerLinkError("Choose how invoices are collected: as the business does, send, or charge the card.")
    if contact.business_id != business.pk:
        raise CustomerLinkError("The contact belongs to another business.")
    integration_require_enabled(business=business)
    connection = connection_get_active(business=business, livemode=livemode)
    if connection is None:
        raise CustomerLinkError(_not_connected(livemode))
    customer_ensure(connection=connection, contact=contact)  # Stripe calls: outside the transaction
    with transaction.atomic():
        link = CustomerLink.objects.select_for_update().get(connection=connection, contact=contact)
        if link.collection_method != method:
            link.collection_method = method
            link.full_clean()
            link.save(update_fields=["collection_method", "updated_at"])
    return link


def contact_collection_methods(*, business: Business, contact_ids, livemode: bool | None = None) -> dict[int, str]:
    """{contact id: collection method} for the contacts that do not do as the business
    does, in the connection of `livemode` (None: the default one)."""
    connection = connection_get_active(business=business, livemode=livemode)
    if connection is None:
        return {}
    return dict(CustomerLink.objects.filter(connection=connection, contact_id__in=list(contact_ids))
                .exclude(collection_method="").values_list("contact_id", "collection_method"))
