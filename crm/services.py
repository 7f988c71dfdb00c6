"""Writes for contacts, opportunities and tickets (STYLE.md: keyword-only, full_clean()
before save()). The business always comes from the caller's membership, never from input:
creates take it as an argument and updates refuse to change it; the models' clean()
refuses related rows of another business."""
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from crm.bulk import insert_many
from crm.custom_fields import custom_values_clean
from crm.models import (
    Business, Contact, ContactKind, CustomFieldTarget, Individual, Membership, Opportunity, Organization, Ticket,
)
from crm.signals import contact_billing_changed

ADDRESS_FIELDS = ("phone", "address_line1", "address_line2", "city", "postal_code", "state", "country")
INDIVIDUAL_FIELDS = ("name", "email", "organization", *ADDRESS_FIELDS, "custom_fields")
ORGANIZATION_FIELDS = ("name", "billing_email", "tax_id", *ADDRESS_FIELDS, "custom_fields")
OPPORTUNITY_FIELDS = ("contact", "title", "stage", "value", "currency", "close_date", "owner")
TICKET_FIELDS = ("contact", "subject", "description", "status", "priority")
# What a contact's Stripe customer carries (stripe_integration.customers): a change to one
# of these is pushed to the customer.
# Custom fields count: some are mapped to the customer's metadata or native fields.
BILLING_FIELDS = ("name", "email", "billing_email", "tax_id", "address_line1", "address_line2", "city",
                  "postal_code", "state", "country", "custom_fields")


def _clean_and_save(instance, *, update_fields=None):
    instance.full_clean()
    instance.save(update_fields=update_fields)
    return instance


def _update(instance, *, data: dict, allowed: tuple[str, ...], validate=None):
    """Set the `allowed` fields present in `data`; save only what changed."""
    unknown = set(data) - set(allowed)
    if unknown:
        raise ValueError(f"Cannot update {', '.join(sorted(unknown))} of {type(instance).__name__}.")
    changed = []
    for field, value in data.items():
        attname = instance._meta.get_field(field).attname
        current = getattr(instance, attname)
        new = value.pk if hasattr(value, "_meta") else value
        if current != new:
            setattr(instance, field, value)
            changed.append(field)
    if not changed:
        return instance
    if validate is not None:
        validate(instance)
    # MTI: a subclass save writes both tables; update_fields may name either's fields.
    return _clean_and_save(instance, update_fields=[*changed, "updated_at"])


def _address(**address: str) -> dict:
    return {field: (address.get(field) or "").strip() for field in ADDRESS_FIELDS}


def _upper(code: str | None) -> str:
    return (code or "").strip().upper()


def _custom(business, values, current=None) -> dict:
    return custom_values_clean(business=business, applies_to=CustomFieldTarget.CONTACT, values=values or {},
                               current=current)


# --- contacts ---------------------------------------------------------------------------

@transaction.atomic
def individual_create(
    *, business: Business, name: str, email: str = "", organization: Organization | None = None,
    phone: str = "", address_line1: str = "", address_line2: str = "", city: str = "",
    postal_code: str = "", state: str = "", country: str = "", custom_fields: dict | None = None,
) -> Individual:
    return _clean_and_save(_individual(
        business=business, name=name, email=email, organization=organization,
        custom_fields=_custom(business, custom_fields), phone=phone, address_line1=address_line1,
        address_line2=address_line2, city=city, postal_code=postal_code, state=state, country=country,
    ))


def _individual(*, business: Business, name: str, email: str, organization: Organization | None,
                custom_fields: dict, **address: str) -> Individual:
    """An unsaved individual from form-like input (names and address trimmed, country upper)."""
    return Individual(business=business, name=name.strip(), email=email.strip(), organization=organization,
                      custom_fields=custom_fields,
                      **_address(**{**address, "country": _upper(address.get("country"))}))


def individual_new(*, business: Business, name: str, email: str = "", **address: str) -> Individual:
    """An unsaved individual without organization or custom fields, checked as
    `individual_create` checks one (ValidationError if it is refused), for
    `individuals_insert`: the Stripe import makes a page of them at once."""
    individual = _individual(business=business, name=name, email=email, organization=None, custom_fields={},
                             **address)
    individual.clean_fields(exclude=["business", "organization", "contact_ptr"])  # set by us, not input
    individual.clean()
    return individual


@transaction.atomic
def individuals_insert(individuals: list[Individual]) -> None:
    """Write individuals from `individual_new` in one insert per table (Django's
    bulk_create does not write multi-table rows): the contacts first with bulk_create,
    for their ids, then the individuals' own rows (`crm.bulk.insert_many`)."""
    if not individuals:
        return
    parent_fields = [f for f in Contact._meta.concrete_fields if not f.primary_key and f.name != "kind"]
    parents = [Contact(**{f.attname: getattr(i, f.attname) for f in parent_fields}, kind=ContactKind.INDIVIDUAL)
               for i in individuals]
    Contact.objects.bulk_create(parents)
    for individual, parent in zip(individuals, parents):
        individual.id = individual.contact_ptr_id = parent.pk
        individual.kind = parent.kind
        individual.created_at, individual.updated_at = parent.created_at, parent.updated_at
    insert_many(individuals)


@transaction.atomic
def organization_create(
    *, business: Business, name: str, billing_email: str = "", tax_id: str = "",
    phone: str = "", address_line1: str = "", address_line2: str = "", city: str = "",
    postal_code: str = "", state: str = "", country: str = "", custom_fields: dict | None = None,
) -> Organization:
    organization = Organization(
        business=business, name=name.strip(), billing_email=billing_email.strip(), tax_id=tax_id.strip(),
        custom_fields=_custom(business, custom_fields),
        **_address(phone=phone, address_line1=address_line1, address_line2=address_line2, city=city,
                   postal_code=postal_code, state=state, country=_upper(country)),
    )
    return _clean_and_save(organization)


def contact_create(*, business: Business, kind: str, **fields) -> Individual | Organization:
    """Create an individual or an organization (`kind` is a ContactKind)."""
    if kind == ContactKind.INDIVIDUAL:
        return individual_create(business=business, **fields)
    if kind == ContactKind.ORGANIZATION:
        return organization_create(business=business, **fields)
    raise ValueError(f"Unknown contact kind {kind!r}.")


def _normalize_contact_data(contact: Contact, data: dict) -> dict:
    data = dict(data)
    if "country" in data:
        data["country"] = _upper(data["country"])
    if "custom_fields" in data:
        data["custom_fields"] = _custom(contact.business_id, data["custom_fields"], contact.custom_fields)
    return data


def _billing_snapshot(contact: Contact) -> dict:
    return {field: getattr(contact, field, None) for field in BILLING_FIELDS}


def _billing_changed(contact: Contact, before: dict) -> None:
    """Announce a change of a field that billing systems carry (crm.signals): the Stripe
    integration queues the update of the contact's customers for after the commit."""
    if _billing_snapshot(contact) != before:
        contact_billing_changed.send(sender=Contact, contact=contact)


@transaction.atomic
def individual_update(*, individual: Individual, data: dict) -> Individual:
    before = _billing_snapshot(individual)
    individual = _update(individual, data=_normalize_contact_data(individual, data), allowed=INDIVIDUAL_FIELDS)
    _billing_changed(individual, before)
    return individual


@transaction.atomic
def organization_update(*, organization: Organization, data: dict) -> Organization:
    before = _billing_snapshot(organization)
    organization = _update(organization, data=_normalize_contact_data(organization, data), allowed=ORGANIZATION_FIELDS)
    _billing_changed(organization, before)
    return organization


def contact_update(*, contact: Contact, data: dict) -> Individual | Organization:
    """Update either kind; `contact` may be the Contact or its Individual/Organization."""
    specific = contact if isinstance(contact, (Individual, Organization)) else contact.specific
    if isinstance(specific, Organization):
        return organization_update(organization=specific, data=data)
    return individual_update(individual=specific, data=data)


@transaction.atomic
def contact_custom_fields_set(*, contact: Contact, values: dict, announce: bool = True) -> Contact:
    """Set some custom fields of a contact (others kept; None removes one). `announce=False`
    is for values that came from a billing system (Stripe -> CRM): sending them back would
    only echo them."""
    specific = contact if isinstance(contact, (Individual, Organization)) else contact.specific
    merged = {**(specific.custom_fields or {}), **values}
    merged = {key: value for key, value in merged.items() if value is not None}
    if not announce:
        merged = _custom(specific.business_id, merged, specific.custom_fields)
        if merged != specific.custom_fields:
            specific.custom_fields = merged
            _clean_and_save(specific, update_fields=["custom_fields", "updated_at"])
        return specific
    return contact_update(contact=specific, data={"custom_fields": merged})


# --- opportunities ----------------------------------------------------------------------

def _validate_opportunity(opportunity: Opportunity) -> None:
    errors = {}
    if opportunity.owner_id is not None and not Membership.objects.filter(
        business_id=opportunity.business_id, user_id=opportunity.owner_id
    ).exists():
        errors["owner"] = "The owner must be a member of this business."
    if opportunity.value is not None and not opportunity.currency:
        errors["currency"] = "Give the currency of the value."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def opportunity_create(
    *, business: Business, contact: Contact, title: str, stage: str = Opportunity.Stage.LEAD,
    value: Decimal | None = None, currency: str = "", close_date: date | None = None, owner=None,
) -> Opportunity:
    opportunity = Opportunity(
        business=business, contact=contact, title=title.strip(), stage=stage, value=value,
        currency=_upper(currency), close_date=close_date, owner=owner,
    )
    _validate_opportunity(opportunity)
    return _clean_and_save(opportunity)


@transaction.atomic
def opportunity_update(*, opportunity: Opportunity, data: dict) -> Opportunity:
    data = dict(data)
    if "currency" in data:
        data["currency"] = _upper(data["currency"])
    return _update(opportunity, data=data, allowed=OPPORTUNITY_FIELDS, validate=_validate_opportunity)


# --- tickets ----------------------------------------------------------------------------

@transaction.atomic
def ticket_create(
    *, business: Business, contact: Contact, subject: str, description: str = "",
    status: str = Ticket.Status.OPEN, priority: str = Ticket.Priority.NORMAL,
) -> Ticket:
    ticket = Ticket(
        business=business, contact=contact, subject=subject.strip(), description=description,
        status=status, priority=priority,
    )
    return _clean_and_save(ticket)


@transaction.atomic
def ticket_update(*, ticket: Ticket, data: dict) -> Ticket:
    return _update(ticket, data=data, allowed=TICKET_FIELDS)
