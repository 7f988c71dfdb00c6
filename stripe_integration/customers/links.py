"""Customer links: each bill-to contact has at most one Stripe customer per connection.

- `customer_ensure` is what the invoicing code calls: the linked customer's id, or a new
  customer when the business lets the app create them (IntegrationSettings
  .auto_create_customers), else `CustomerLinkError` and nothing changes.
- Never two customers for one contact: the database allows one link per (connection,
  contact) and per (connection, customer id); before creating, the app looks for a customer
  it made earlier (Stripe's list by e-mail, matched on `metadata.crm_contact_id`, since the
  sandbox and Connect accounts have no search); the create carries an idempotency key made
  of the contact, the link's generation (a new one after a deletion in Stripe) and a digest
  of the parameters.
- Staff may link an existing `cus_...` instead: it is retrieved first, on the business's
  account, and refused when missing, deleted, or another account's (which, on Connect, is
  simply missing).
- Editing a linked contact's name, e-mail, address, tax id or mapped custom fields pushes
  the change (crm.services -> `customer_sync_request` -> on_commit -> task -> `customer_push`).
- A contact outside the business's Stripe rules (rules/eligibility.py) is never created,
  linked or pushed: CustomerLinkError says why. Custom fields map to the customer's
  metadata and native fields both ways (rules/mapping.py). With an external account code
  (StripeRules.account_code_field) the metadata carries `crm_account_code` instead of
  `crm_contact_id`, and the recovery lookup matches either.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping

from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Business, Contact, ContactKind, Individual, Organization

from ..gateway.client import AccessRevoked, CustomerInfo, GatewayError, NotFound
from ..runs.disable import integration_require_enabled
from ..models import (
    ConnectionStatus, CustomerLink, CustomerOrigin, CustomerState, IntegrationSettings, StripeConnection,
)
from ..connect.oauth import connection_get_active, connection_revoke, gateway
from ..rules.eligibility import contact_outside_rules, outside_message
from ..rules.mapping import contact_apply_from_stripe, contact_outgoing

NO_CUSTOMER = "this contact has no Stripe customer: link one or turn on automatic creation"
CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9]{1,250}")

# Stripe needs a tax id's type. The app keeps a free-text "tax / VAT id" per organization,
# so the type is inferred from the contact's country (docs.stripe.com/billing/customer/tax-ids).
EU_COUNTRIES = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())
TAX_ID_TYPES = {
    "GB": "gb_vat", "CH": "ch_vat", "NO": "no_vat", "IS": "is_vat", "AU": "au_abn", "NZ": "nz_gst",
    "CA": "ca_bn", "US": "us_ein", "IN": "in_gst", "ZA": "za_vat", "SG": "sg_uen", "JP": "jp_cn",
    "AE": "ae_trn", "SA": "sa_vat", "BR": "br_cnpj", "MX": "mx_rfc", "TR": "tr_tin", "IL": "il_vat",
}
ADDRESS_FIELDS = {"address_line1": "line1", "address_line2": "line2", "city": "city",
                  "postal_code": "postal_code", "state": "state", "country": "country"}


class CustomerLinkError(Exception):
    """The contact cannot be given a Stripe customer; `message` is fit to show."""

    retryable = False

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class RetryableCustomerError(CustomerLinkError):
    retryable = True


def tax_id_type(*, country: str, value: str) -> str | None:
    """Stripe's tax id type for a value held for a contact in `country`, or None."""
    country = (country or "").upper()
    prefix = (value or "").strip().upper()[:2]
    if country in EU_COUNTRIES or (prefix in EU_COUNTRIES | {"EL"} and not country):
        return "eu_vat"
    return TAX_ID_TYPES.get(country)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _specific(contact: Contact) -> Individual | Organization:
    return contact if isinstance(contact, (Individual, Organization)) else contact.specific


def contact_billing_fields(contact: Contact) -> dict[str, Any]:
    """What the Stripe customer carries of a contact: name, e-mail, address, tax id."""
    specific = _specific(contact)
    is_org = specific.kind == ContactKind.ORGANIZATION
    address = {stripe: getattr(specific, ours) for ours, stripe in ADDRESS_FIELDS.items() if getattr(specific, ours)}
    # Mapped custom fields (rules/mapping.py): metadata (a mapped key without a value is
    # unset) and the writable native fields, which win over the contact's own e-mail.
    custom_metadata, native = contact_outgoing(specific, unset_missing=True)
    return {
        "name": specific.name,
        "email": native.get("email") or (specific.billing_email if is_org else specific.email) or "",
        "address": address,
        "tax_id": (specific.tax_id.strip() if is_org else ""),
        "country": specific.country or "",
        "custom_metadata": custom_metadata,
        "native": {k: v for k, v in native.items() if k != "email"},
        "account_code": account_code(specific),
    }


def account_code(contact: Contact) -> str:
    """The contact's external account code (StripeRules.account_code_field), or ""."""
    from ..models import StripeRules

    rules = StripeRules.objects.filter(business_id=contact.business_id).select_related("account_code_field").first()
    if rules is None or rules.account_code_field is None:
        return ""
    value = (contact.custom_fields or {}).get(rules.account_code_field.key)
    return str(value)[:500] if value not in (None, "") else ""


def _id_metadata(contact: Contact, fields: Mapping) -> dict[str, str]:
    """How Stripe's customer names the contact: our id, or the external account code."""
    if fields.get("account_code"):
        return {"crm_account_code": fields["account_code"], "crm_business_id": str(contact.business_id),
                "crm_contact_kind": contact.kind}
    return {"crm_contact_id": str(contact.pk), "crm_business_id": str(contact.business_id),
            "crm_contact_kind": contact.kind}


def _metadata(contact: Contact, fields: Mapping, *, unset: bool = False) -> dict[str, str]:
    custom = fields.get("custom_metadata", {})
    if not unset:
        custom = {k: v for k, v in custom.items() if v != ""}
    metadata = {**custom, **_id_metadata(contact, fields), "crm_tax_id": fields["tax_id"]}
    if unset and fields.get("account_code"):
        metadata["crm_contact_id"] = ""  # replaced by the account code
    return metadata


def _refuse_outside_rules(contact: Contact) -> None:
    reason = contact_outside_rules(contact=contact)
    if reason:
        raise CustomerLinkError(outside_message(contact, reason))


def _tax_data(fields: Mapping) -> tuple[dict | None, str]:
    """(tax_id_data item or None, note when the tax id cannot be sent)."""
    if not fields["tax_id"]:
        return None, ""
    kind = tax_id_type(country=fields["country"], value=fields["tax_id"])
    if kind is None:
        return None, f"Tax id {fields['tax_id']} not sent to Stripe: no tax id type is known for country {fields['country'] or '(none)'}."
    return {"type": kind, "value": fields["tax_id"]}, ""


def _gateway_error(exc: GatewayError, connection: StripeConnection, what: str) -> CustomerLinkError:
    if isinstance(exc, AccessRevoked):
        connection_revoke(stripe_user_id=connection.stripe_user_id, livemode=connection.livemode)
    cls = RetryableCustomerError if exc.retryable else CustomerLinkError
    return cls(f"{what}: {exc.user_message}")


def _save(link: CustomerLink, *, update_fields=None) -> CustomerLink:
    link.full_clean(exclude=["business", "connection", "contact", "linked_by"], validate_unique=False,
                    validate_constraints=False)  # the database's unique constraints decide races
    link.save(update_fields=update_fields)
    return link


# --- the invoicing code's door ------------------------------------------------------------
def customer_ensure(*, connection: StripeConnection, contact: Contact) -> str:
    """The contact's Stripe customer id on this connection, created when allowed.

    Raises CustomerLinkError ("... this contact has no Stripe customer: link one or turn on
    automatic creation") when there is no usable link and automatic creation is off; nothing
    is created or changed then.
    """
    if contact.business_id != connection.business_id:
        raise CustomerLinkError("The contact belongs to another business.")
    _refuse_outside_rules(contact)
    link = CustomerLink.objects.filter(connection=connection, contact_id=contact.pk).first()
    if link is not None and link.state != CustomerState.DELETED:
        return link.stripe_customer_id
    if not IntegrationSettings.for_business(connection.business).auto_create_customers:
        if link is not None:
            raise CustomerLinkError(f"{contact.name}: the linked Stripe customer {link.stripe_customer_id} was deleted "
                                    "in Stripe: link another one or turn on automatic creation.")
        raise CustomerLinkError(f"{contact.name}: {NO_CUSTOMER}.")
    fields = contact_billing_fields(contact)
    gw, account = gateway(connection.livemode), connection.stripe_user_id
    generation = link.generation + 1 if link is not None else 1
    try:
        found = _find_own_customer(gw, account, contact, fields) if link is None else None
        if found is not None:
            info, origin, note = found, CustomerOrigin.FOUND, ""
        else:
            tax, note = _tax_data(fields)
            params: dict[str, Any] = {"name": fields["name"], "metadata": _metadata(contact, fields),
                                      **fields["native"]}
            if fields["email"]:
                params["email"] = fields["email"]
            if fields["address"]:
                params["address"] = fields["address"]
            if tax:
                params["tax_id_data"] = [tax]
            key = f"crm-{connection.pk}-c{contact.pk}-g{generation}-customer-create-{_digest(params)[:16]}"
            info = gw.customer_create(account=account, params=params, idempotency_key=key)
            origin = CustomerOrigin.CREATED
    except GatewayError as exc:
        raise _gateway_error(exc, connection, f"Stripe could not create the customer for {contact.name}") from None
    if origin == CustomerOrigin.FOUND:
        contact_apply_from_stripe(contact=_specific(contact), customer=info)
    stripe_tax = next((t for t in info.tax_ids if t.value.upper() == fields["tax_id"].upper()), None) if fields["tax_id"] else None
    values = dict(
        stripe_customer_id=info.id, origin=origin, state=CustomerState.SYNCED, last_error="", note=note,
        fingerprint=_digest(fields) if origin == CustomerOrigin.CREATED else "",
        synced_tax_id=stripe_tax.value if stripe_tax else "", stripe_tax_id=stripe_tax.id if stripe_tax else "",
        generation=generation, synced_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            if link is None:
                link = _save(CustomerLink(business_id=contact.business_id, connection=connection, contact=contact, **values))
            else:
                for name, value in values.items():
                    setattr(link, name, value)
                _save(link)
    except IntegrityError:
        # Another request linked this contact first (with the same idempotency key, the
        # same customer): use what it recorded.
        link = CustomerLink.objects.get(connection=connection, contact_id=contact.pk)
    return link.stripe_customer_id


def _find_own_customer(gw, account: str, contact: Contact, fields: Mapping) -> CustomerInfo | None:
    """A customer the app made for this contact before (e.g. a lost answer, or an earlier
    connection of the account): same e-mail and `metadata.crm_contact_id`."""
    if not fields["email"]:
        return None
    code = fields.get("account_code") or ""
    for customer in gw.customers_list_by_email(account=account, email=fields["email"]):
        if customer.deleted or customer.metadata.get("crm_business_id") != str(contact.business_id):
            continue
        if customer.metadata.get("crm_contact_id") == str(contact.pk) or (
                code and customer.metadata.get("crm_account_code") == code):
            return customer
    return None


# --- linking an existing customer -----------------------------------------------------------
def customer_lookup(*, connection: StripeConnection, customer_id: str) -> CustomerInfo:
    """Retrieve `cus_...` on the connected account; CustomerLinkError when it cannot be linked."""
    customer_id = (customer_id or "").strip()
    if not CUSTOMER_ID.fullmatch(customer_id):
        raise CustomerLinkError("Enter a Stripe customer id, like cus_Nx8bQ2f3L0z1Ab.")
    integration_require_enabled(business=connection.business_id)
    try:
        info = gateway(connection.livemode).customer_fetch(account=connection.stripe_user_id, customer_id=customer_id)
    except NotFound:
        raise CustomerLinkError(
            f"Stripe has no customer {customer_id} in this business's account ({connection.stripe_user_id}). "
            "Check the id; a customer of another Stripe account cannot be linked."
        ) from None
    except GatewayError as exc:
        raise _gateway_error(exc, connection, f"Could not check {customer_id}") from None
    if info.deleted:
        raise CustomerLinkError(f"Customer {customer_id} was deleted in Stripe and cannot be linked.")
    return info


def customer_link_existing(*, connection: StripeConnection, contact: Contact, customer_id: str, user=None,
                           customer: CustomerInfo | None = None) -> CustomerLink:
    """Link `cus_...` (checked with `customer_lookup` unless `customer` is that answer) to the
    contact, replacing any previous link, and tag the customer with the contact's id."""
    if contact.business_id != connection.business_id:
        raise CustomerLinkError("The contact belongs to another business.")
    integration_require_enabled(business=connection.business_id)
    _refuse_outside_rules(contact)
    info = customer or customer_lookup(connection=connection, customer_id=customer_id)
    taken = (CustomerLink.objects.filter(connection=connection, stripe_customer_id=info.id)
             .exclude(contact_id=contact.pk).select_related("contact").first())
    if taken is not None:
        raise CustomerLinkError(f"{info.id} is already linked to {taken.contact.name}.")
    fields = contact_billing_fields(contact)
    metadata = _id_metadata(contact, fields)  # the customer's own values stay: they flow into the CRM below
    if any(info.metadata.get(k) != v for k, v in metadata.items()):
        try:
            gateway(connection.livemode).customer_update(
                account=connection.stripe_user_id, customer_id=info.id, params={"metadata": metadata},
                idempotency_key=f"crm-{connection.pk}-c{contact.pk}-link-{info.id}-{_digest(metadata)[:16]}",
            )
        except GatewayError as exc:
            raise _gateway_error(exc, connection, f"Could not tag {info.id} with the contact") from None
    stripe_tax = next((t for t in info.tax_ids if fields["tax_id"] and t.value.upper() == fields["tax_id"].upper()), None)
    values = dict(
        stripe_customer_id=info.id, origin=CustomerOrigin.LINKED, state=CustomerState.SYNCED, last_error="", note="",
        fingerprint="", synced_tax_id=stripe_tax.value if stripe_tax else "", stripe_tax_id=stripe_tax.id if stripe_tax else "",
        linked_by=user, synced_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            link = CustomerLink.objects.select_for_update().filter(connection=connection, contact_id=contact.pk).first()
            if link is None:
                link = CustomerLink(business_id=contact.business_id, connection=connection, contact=contact)
            else:
                values["version"] = link.version + 1
            for name, value in values.items():
                setattr(link, name, value)
            _save(link)
    except IntegrityError:
        raise CustomerLinkError(f"{info.id} is already linked to another contact.") from None
    contact_apply_from_stripe(contact=_specific(contact), customer=info)
    return link


# --- keeping the customer in step with the contact ------------------------------------------
def customer_sync_request(*, contact: Contact) -> list[CustomerLink]:
    """After a contact's billing fields changed: push them to its Stripe customers once the
    transaction commits."""
    links = list(CustomerLink.objects.filter(contact_id=contact.pk, connection__status=ConnectionStatus.CONNECTED)
                 .exclude(state=CustomerState.DELETED))
    reason = contact_outside_rules(contact=contact) if links else ""
    if reason:
        for link in links:  # never synced: the link says why
            _mark(link, state=CustomerState.ERROR, last_error=outside_message(contact, reason))
        return []
    from ..tasks import enqueue_on_commit
    from .tasks import customer_push_task  # tasks import this module

    for link in links:
        if link.state != CustomerState.PENDING:
            link.state = CustomerState.PENDING
            _save(link, update_fields=["state", "updated_at"])
        enqueue_on_commit(customer_push_task, link.pk)
    return links


def customer_push(*, link: CustomerLink, force: bool = False) -> CustomerLink:
    """Send the contact's name, e-mail, address and tax id to its Stripe customer. Nothing
    is sent when they are what was last sent (unless `force`)."""
    connection = link.connection
    if link.state == CustomerState.DELETED:
        raise CustomerLinkError(f"{link.stripe_customer_id} was deleted in Stripe.")
    if not connection.is_active:
        raise CustomerLinkError("The business is no longer connected to Stripe.")
    contact = _specific(link.contact)
    reason = contact_outside_rules(contact=contact)
    if reason:
        _mark(link, state=CustomerState.ERROR, last_error=outside_message(contact, reason))
        raise CustomerLinkError(outside_message(contact, reason))
    fields = contact_billing_fields(contact)
    fp = _digest(fields)
    if fp == link.fingerprint and not force:
        return _mark(link, state=CustomerState.SYNCED, last_error="")
    gw, account, cid = gateway(connection.livemode), connection.stripe_user_id, link.stripe_customer_id
    params: dict[str, Any] = {"name": fields["name"], "metadata": _metadata(contact, fields, unset=True),
                              "address": fields["address"] or "", **fields["native"]}
    if fields["email"]:  # Stripe's customer e-mail cannot be unset through the API types
        params["email"] = fields["email"]
    key_base = f"crm-{connection.pk}-c{contact.pk}-g{link.generation}-v{link.version}"
    try:
        info = gw.customer_update(account=account, customer_id=cid, params=params,
                                  idempotency_key=f"{key_base}-customer-update-{_digest(params)[:16]}")
        note = _push_tax_id(gw, link, fields, key_base)
    except NotFound:
        _mark(link, state=CustomerState.DELETED, last_error=f"{cid} no longer exists in Stripe.")
        raise CustomerLinkError(f"{cid} no longer exists in Stripe.") from None
    except GatewayError as exc:
        error = _gateway_error(exc, connection, f"Stripe could not update {cid}")
        _mark(link, state=CustomerState.ERROR, last_error=error.message)
        raise error from None
    # What only Stripe sets (delinquent, discount, default payment method...) comes back
    # with the answer: mapped custom fields take it (rules/mapping.py).
    contact_apply_from_stripe(contact=contact, customer=info)
    return _mark(link, state=CustomerState.SYNCED, last_error="", note=note, fingerprint=fp, version=link.version + 1,
                 synced_at=timezone.now())


def _push_tax_id(gw, link: CustomerLink, fields: Mapping, key_base: str) -> str:
    """Tax ids are objects of their own on a Stripe customer: add the new one, then
    remove the one the app added before. Returns a note when it cannot be sent."""
    want = fields["tax_id"]
    if want.upper() == link.synced_tax_id.upper():
        return link.note if want else ""
    tax, note = _tax_data(fields)
    account, cid = link.connection.stripe_user_id, link.stripe_customer_id
    new = None
    if tax is not None:
        new = gw.customer_tax_id_create(account=account, customer_id=cid, type=tax["type"], value=tax["value"],
                                        idempotency_key=f"{key_base}-tax-id-{_digest(tax)[:16]}")
    if link.stripe_tax_id:
        try:
            gw.customer_tax_id_delete(account=account, customer_id=cid, tax_id=link.stripe_tax_id)
        except NotFound:
            pass  # already removed in Stripe
    _mark(link, synced_tax_id=new.value if new else "", stripe_tax_id=new.id if new else "")
    return note


def _mark(link: CustomerLink, **fields) -> CustomerLink:
    changed = [name for name, value in fields.items() if getattr(link, name) != value]
    for name in changed:
        setattr(link, name, fields[name])
    if changed:
        _save(link, update_fields=[*changed, "updated_at"])
    return link


def customer_push_by_id(*, link_id: int) -> CustomerLink | None:
    link = CustomerLink.objects.select_related("connection__business", "contact").filter(pk=link_id).first()
    if link is None or link.state == CustomerState.DELETED or not link.connection.is_active:
        return None
    from ..runs.disable import integration_is_disabled

    if integration_is_disabled(business=link.business_id):
        return None  # stays pending: re-enabling the integration pushes it (runs.disable)
    return customer_push(link=link)


# --- for the webhook handlers -------------------------------------------------------------
def customer_changed_in_stripe(*, connection: StripeConnection | None = None, customer_id: str | None = None,
                               deleted: bool, business: Business | None = None,
                               customer: Mapping | None = None) -> CustomerLink | None:
    """For `customer.updated` / `customer.deleted`. Give `connection` and `customer_id`
    (or, as the webhook handler has them, `business` and the event's `customer` object).

    A deleted customer marks its link DELETED: the next `customer_ensure` creates a new
    customer (when allowed) or says the link must be replaced. An update changes the
    contact's mapped custom fields only (rules/mapping.py: Stripe -> CRM); the contact stays
    the source of its other details, and the next edit pushes them again.
    Returns the link, or None when the customer is not linked.
    """
    if connection is None and business is not None:
        connection = connection_get_active(business=business)
    customer_id = customer_id or (customer or {}).get("id")
    if connection is None or not customer_id:
        return None
    link = CustomerLink.objects.filter(connection=connection, stripe_customer_id=customer_id).first()
    if link is None:
        return link
    if not deleted:
        if customer is not None:
            contact_apply_from_stripe(contact=_specific(link.contact), customer=customer)
        return link
    return _mark(link, state=CustomerState.DELETED, last_error=f"{customer_id} was deleted in Stripe.")


# --- reads for the pages ------------------------------------------------------------------
def customer_link_for(*, business: Business, contact: Contact,
                      livemode: bool | None = None) -> tuple[StripeConnection | None, CustomerLink | None]:
    """The connection of `livemode` (None: the default one) and the contact's link in it."""
    connection = connection_get_active(business=business, livemode=livemode)
    if connection is None:
        return None, None
    return connection, CustomerLink.objects.filter(connection=connection, contact_id=contact.pk).first()


# --- the integration settings form -----------------------------------------------------------
def integration_settings_update(*, business: Business, data: Mapping[str, Any]) -> IntegrationSettings:
    """Save the settings page's choices (the fields of `forms.IntegrationSettingsForm`)."""
    settings_obj = IntegrationSettings.for_business(business)
    data = dict(data)
    if "alert_users" in data:  # many-to-many (issue 15): members of this business only
        chosen = [u for u in data.pop("alert_users") or [] if u.memberships.filter(business=business).exists()]
        settings_obj.alert_users.set(chosen)
    changed = [name for name, value in data.items() if getattr(settings_obj, name) != value]
    for name in changed:
        setattr(settings_obj, name, data[name])
    if changed:
        settings_obj.full_clean()
        settings_obj.save(update_fields=[*changed, "updated_at"])
    return settings_obj
