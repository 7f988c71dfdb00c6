"""Customers -> contacts, products -> services, prices -> list prices and price links.

Customers: our metadata (`crm_contact_id` + `crm_business_id`, what `customers/links.py`
writes), then the e-mail (an individual's e-mail or an organization's billing e-mail),
else a new contact: the customer's e-mail as its main contact, and the e-mails found in
the business's chosen metadata keys (`cc`, `to`) as extra contacts (individuals of a new
organization). Products: our metadata (`crm_service_id`, catalog/engine.py), then a price
lookup key (ours, or a service code), else a new service. Prices: per currency, the service
takes one active one-time price of its product (the default price, else the first listed
at its list amount); the account's other prices are skipped with the reason and never
linked, so the catalog sync never archives them (`import_price`).
"""
from __future__ import annotations

import re

from django.core.validators import validate_email
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from crm.bulk import insert_many
from crm.models import Contact, Individual, Organization
from crm.services import individual_create, individual_new, individuals_insert, organization_create
from finance.money import from_minor, normalize_currency
from services.models import Service, ServicePrice

from ..models import CustomerLink, CustomerOrigin, PriceLink, ServiceSync, SyncState
from .outcome import Page

_SPLIT = re.compile(r"[\s,;]+")
_OUR_LOOKUP_KEY = re.compile(r"^crm_b(\d+)_s(\d+)_[a-z]{3}$")


def _emails(text) -> list[str]:
    out = []
    for part in _SPLIT.split(text or ""):
        try:
            validate_email(part)
        except ValidationError:
            continue
        out.append(part.lower())
    return out


def _contact_new(page: Page, customer: dict, by_email: dict[str, int | Individual]) -> Contact:
    """A new contact for the customer: an individual, unsaved (the page writes them at
    once), or, with extra e-mails in the chosen metadata keys, an organization with those
    people, saved. The e-mails of the contacts it makes go to `by_email` (so later
    customers of the page match them). ValidationError if a value is refused."""
    email = (customer.get("email") or "").strip()
    name = (customer.get("name") or email or customer["id"])[:200]
    address = customer.get("address") or {}
    place = {"phone": (customer.get("phone") or "")[:40], "address_line1": (address.get("line1") or "")[:200],
             "city": (address.get("city") or "")[:100], "postal_code": (address.get("postal_code") or "")[:20],
             "country": (address.get("country") or "")[:2]}
    metadata = customer.get("metadata") or {}
    extra = []
    for key in page.rules.contact_metadata_keys or []:
        extra += [e for e in _emails(metadata.get(key)) if e != email.lower() and e not in extra]
    if not extra:
        contact = individual_new(business=page.business, name=name, email=email, **place)
    else:
        with transaction.atomic():  # the organization with all its people, or nothing
            contact = organization_create(business=page.business, name=name, billing_email=email, **place)
            people = {address_: individual_create(business=page.business, name=address_, email=address_,
                                                  organization=contact).pk for address_ in extra}
        by_email.update(people)
    if email:
        by_email.setdefault(email.lower(), contact)
    return contact


def _our_id(page: Page, metadata: dict, key: str) -> int | None:
    """The local id our metadata's `key` names, when the metadata is this business's."""
    value = metadata.get(key, "")
    if isinstance(value, str) and value.isdigit() and metadata.get("crm_business_id", "") == str(page.business.pk):
        return int(value)
    return None


def _contacts_by_metadata(page: Page, customers: list[dict]) -> dict[str, int]:
    """Stripe customer id -> the business's contact our metadata names (one query)."""
    named = {}
    for customer in customers:
        contact_id = _our_id(page, customer.get("metadata") or {}, "crm_contact_id")
        if contact_id is not None:
            named[customer["id"]] = contact_id
    found = set(Contact.objects.filter(business=page.business, pk__in=set(named.values())).values_list("pk", flat=True))
    return {cid: pk for cid, pk in named.items() if pk in found}


def _contacts_by_email(page: Page, emails: set[str]) -> dict[str, int]:
    """Lower-cased e-mail -> the business's first individual with it, else its first
    organization with it as billing e-mail (one query each). The rows are found by the
    lower-cased e-mail's index across businesses, then kept for this business: filtered
    by business in SQL, SQLite's planner read every contact of the business by its
    business index on each page instead (the import slowed as it grew)."""
    found = {}
    for model, field in ((Organization, "billing_email"), (Individual, "email")):
        rows = (model.objects.annotate(key=Lower(field)).filter(key__in=emails)
                .order_by("-pk").values_list("key", "pk", "business_id"))
        found.update((key, pk) for key, pk, business_id in rows
                     if business_id == page.business.pk)  # the lowest pk last; individuals over organizations
    return found


def import_customers(page: Page, customers: list[dict]) -> None:
    """One page of customers: a query each for the links already made, the contacts our
    metadata names, the contacts with their e-mails and the contacts already linked; the
    new individuals in one insert per table (`crm.services.individuals_insert`; a new
    organization with its people is saved on its own), the links in one insert. A
    customer matches a contact made earlier on the same page by e-mail too."""
    live = []
    for customer in customers:
        if customer.get("deleted"):
            page.record("customers", customer["id"], "skipped", reason="deleted in Stripe")
        else:
            live.append(customer)
    links = dict(CustomerLink.objects.filter(connection=page.connection, stripe_customer_id__in=[c["id"] for c in live])
                 .values_list("stripe_customer_id", "contact_id"))
    by_metadata = _contacts_by_metadata(page, live)
    email_of = {c["id"]: (c.get("email") or "").strip() for c in live}
    by_email: dict[str, int | Contact] = _contacts_by_email(page, {e.lower() for e in email_of.values() if e})
    linked = set(CustomerLink.objects.filter(connection=page.connection,
                                             contact_id__in={*by_metadata.values(), *by_email.values()})
                 .values_list("contact_id", flat=True))
    decided, new = [], []  # (customer id, contact id or new contact, outcome, reason)
    for customer in live:
        cid, email = customer["id"], email_of[customer["id"]]
        if cid in links:
            page.record("customers", cid, "matched", local_id=links[cid], reason="already linked")
            continue
        contact, outcome, reason = by_metadata.get(cid), "matched", "by our metadata"
        if contact is None and email:
            contact, reason = by_email.get(email.lower()), "by e-mail"
        if contact is None:
            try:
                contact, outcome, reason = _contact_new(page, customer, by_email), "created", ""
            except ValidationError as exc:
                page.record("customers", cid, "skipped", reason=f"invalid: {'; '.join(exc.messages)}")
                continue
            if contact.pk is None:
                new.append(contact)
        decided.append((cid, contact, outcome, reason))
    individuals_insert(new)
    new_links = []
    for cid, contact, outcome, reason in decided:
        contact_id = contact if isinstance(contact, int) else contact.pk
        # One Stripe customer per contact and connection: a second customer with the same
        # e-mail still bills that contact (through the import's mapping), unlinked.
        if contact_id not in linked:
            linked.add(contact_id)
            new_links.append(CustomerLink(business=page.business, connection=page.connection, contact_id=contact_id,
                                          stripe_customer_id=cid, origin=CustomerOrigin.IMPORTED,
                                          synced_at=timezone.now()))
        page.record("customers", cid, outcome, local_id=contact_id, reason=reason)
    insert_many(new_links)


# --- products and prices ----------------------------------------------------------------
def _service_by_metadata(page: Page, metadata: dict) -> Service | None:
    service_id = _our_id(page, metadata, "crm_service_id")
    if service_id is not None:
        return Service.objects.filter(business=page.business, pk=service_id).first()
    return None


def _service_by_lookup_key(page: Page, key: str) -> Service | None:
    if not key:
        return None
    ours = _OUR_LOOKUP_KEY.match(key)
    if ours and ours.group(1) == str(page.business.pk):
        return Service.objects.filter(business=page.business, pk=int(ours.group(2))).first()
    return Service.objects.filter(business=page.business, code__iexact=key[:50]).first()


def _free_code(page: Page, wanted: str) -> str:
    code = re.sub(r"[^A-Za-z0-9_-]+", "-", wanted).strip("-").upper()[:40] or "STRIPE"
    if not Service.objects.filter(business=page.business, code=code).exists():
        return code
    return f"{code[:30]}-{page.job.pk}-{Service.objects.filter(business=page.business).count()}"[:50]


def _fixed_one_time(price: dict) -> bool:
    """Whether `price` is active, one-time and of a fixed amount (not recurring, tiered or
    custom, or archived)."""
    return (price.get("type") != "recurring" and not price.get("recurring") and price.get("unit_amount") is not None
            and bool(price.get("active", True)))


def _service_price_take(page: Page, service_id: int, price: dict) -> None:
    """`price` (active, one-time, fixed amount) becomes the service's price in its
    currency: linked (the catalog sync reuses it, and may archive it once the service's
    amount moves away from it), and the service's list price when it has none there."""
    currency = normalize_currency(price["currency"]).upper()
    PriceLink.objects.create(business=page.business, connection=page.connection, service_id=service_id,
                             currency=currency, amount_minor=int(price["unit_amount"]), stripe_price_id=price["id"],
                             active=True, lookup_key=(price.get("lookup_key") or "")[:200])
    if not ServicePrice.objects.filter(service_id=service_id, currency=currency).exists():
        ServicePrice.objects.create(business=page.business, service_id=service_id, currency=currency,
                                    amount=from_minor(int(price["unit_amount"]), currency))


def import_product(page: Page, product: dict) -> None:
    """A product becomes a service (matched or new) with a `ServiceSync` to it, and its
    default price, when active, one-time and of a fixed amount, the service's price in its
    currency (recorded as the product's `ref`: the price phase counts it created)."""
    sync = ServiceSync.objects.filter(connection=page.connection, stripe_product_id=product["id"]).first()
    if sync is not None:
        page.record("products", product["id"], "matched", local_id=sync.service_id, reason="already synced")
        return
    default_price = product.get("default_price") if isinstance(product.get("default_price"), dict) else {}
    service, outcome, reason = _service_by_metadata(page, product.get("metadata") or {}), "matched", "by our metadata"
    if service is None:
        service, reason = _service_by_lookup_key(page, default_price.get("lookup_key") or ""), "by lookup key"
    if service is None:
        service = Service(business=page.business, code=_free_code(page, product.get("name") or product["id"]),
                          name=(product.get("name") or product["id"])[:200],
                          description=product.get("description") or "", active=bool(product.get("active", True)))
        service.full_clean()
        service.save()
        outcome, reason = "created", ""
    elif not service.description and product.get("description"):
        # The catalog sync writes the service's description to the product (the app's
        # version wins): an empty one would wipe what the account wrote.
        service.description = product["description"]
        service.save(update_fields=["description"])
    row = ServiceSync.objects.filter(connection=page.connection, service=service).first()
    if row is None:
        row = ServiceSync.objects.create(business=page.business, connection=page.connection, service=service,
                                         stripe_product_id=product["id"], state=SyncState.PENDING)
    elif not row.stripe_product_id:
        # Pending since an edit made while the import waited: never in Stripe yet, so
        # this product becomes its product (the sync would otherwise make a second one).
        row.stripe_product_id = product["id"]
        row.save(update_fields=["stripe_product_id", "updated_at"])
    elif row.stripe_product_id != product["id"]:
        reason += f" (the service is synced to {row.stripe_product_id}: this product and its prices are left untouched)"
    ref = ""
    if row.stripe_product_id == product["id"] and default_price.get("id") and _fixed_one_time(default_price):
        currency = normalize_currency(default_price["currency"]).upper()
        if not PriceLink.objects.filter(connection=page.connection, service=service, currency=currency).exists():
            _service_price_take(page, service.pk, default_price)
            ref = default_price["id"]
    page.record("products", product["id"], outcome, local_id=service.pk, reason=reason, ref=ref)


def import_price(page: Page, price: dict) -> None:
    """A price of an imported product. The service takes, per currency, one active
    one-time price of its product: the product's default price (taken with the product),
    else the first listed whose amount is the service's list price there (any amount when
    it has none). Every other price of the account is recorded, skipped with its reason,
    and never linked: the catalog sync neither uses nor archives a price it has no link
    for (the business may sell with it: payment links, its other tools). A skipped price
    still names the service (`local_id`), for the imported invoices' lines."""
    product_id = price["product"]["id"] if isinstance(price.get("product"), dict) else price.get("product")
    mapped = page.known.get(product_id)
    if mapped is None or mapped.local_id is None:
        page.record("prices", price["id"], "skipped", reason="its product was not imported")
        return
    service_id = mapped.local_id
    link = PriceLink.objects.filter(connection=page.connection, stripe_price_id=price["id"]).first()
    if link is not None:
        if price["id"] == mapped.ref:  # linked as the product's default price, by this import
            page.record("prices", price["id"], "created", local_id=service_id)
        else:
            page.record("prices", price["id"], "matched", local_id=service_id, reason="price link exists")
        return
    if price.get("type") == "recurring":
        page.record("prices", price["id"], "skipped",
                    reason="recurring (a subscription's price; invoices take one-time prices only)")
        return
    if price.get("unit_amount") is None:
        page.record("prices", price["id"], "skipped", reason="not a fixed unit amount (tiered or custom)")
        return
    currency = normalize_currency(price["currency"]).upper()
    if not price.get("active", True):
        page.record("prices", price["id"], "skipped", local_id=service_id, reason="archived in Stripe: left as it is")
        return
    if ServiceSync.objects.filter(connection=page.connection, service_id=service_id).exclude(
            stripe_product_id=product_id).exists():
        page.record("prices", price["id"], "skipped", local_id=service_id,
                    reason="its product is not the one the service is synced to: left untouched")
        return
    if PriceLink.objects.filter(connection=page.connection, service_id=service_id, currency=currency).exists():
        page.record("prices", price["id"], "skipped", local_id=service_id,
                    reason=f"another one-time price in {currency} for this product: left untouched")
        return
    listed = ServicePrice.objects.filter(service_id=service_id, currency=currency).first()
    if listed is not None and listed.amount != from_minor(int(price["unit_amount"]), currency):
        page.record("prices", price["id"], "skipped", local_id=service_id,
                    reason=f"not the service's {currency} list price: left untouched")
        return
    _service_price_take(page, service_id, price)
    page.record("prices", price["id"], "created", local_id=service_id)
