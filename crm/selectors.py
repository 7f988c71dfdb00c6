"""Reads for the staff UI: `<entity>_list(*, business, filters)` returns a queryset scoped
to the business, filtered by the app's FilterSet and shaped for its page (related rows
joined up front, so a page of 50 costs the same queries as a page of 5);
`<entity>_get(*, business, pk)` returns one row or raises `<Model>.DoesNotExist`, also
for a row of another business (the views turn that into 404)."""
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet

from crm.filters import ContactFilter, OpportunityFilter, TicketFilter
from crm.models import Business, Contact, ContactKind, Membership, Opportunity, Ticket

OPEN_STAGES = (Opportunity.Stage.LEAD, Opportunity.Stage.QUALIFIED, Opportunity.Stage.PROPOSAL)
OPEN_TICKET_STATUSES = (Ticket.Status.OPEN, Ticket.Status.PENDING)


def _filtered(filterset_class, *, business, filters, queryset):
    """Apply `filters` (a dict or QueryDict) through the FilterSet; invalid input gives no
    rows rather than silently dropping the filter that was asked for."""
    if not filters:
        return queryset
    filterset = filterset_class(filters, queryset=queryset, business=business)
    if not filterset.is_valid():
        return queryset.none()
    return filterset.qs


# --- contacts ---------------------------------------------------------------------------

def _contact_queryset(business: Business) -> QuerySet:
    # Both subclass rows are joined: the lists show e-mail and employer of either kind.
    return Contact.objects.for_business(business).select_related(
        "as_individual", "as_organization", "as_individual__organization"
    )


def contact_list(*, business: Business, filters=None) -> QuerySet:
    qs = _contact_queryset(business).order_by("name", "pk")
    return _filtered(ContactFilter, business=business, filters=filters, queryset=qs)


def contact_get(*, business: Business, pk) -> Contact:
    return _contact_queryset(business).get(pk=pk)


def organization_people(*, business: Business, organization) -> QuerySet:
    return (
        Contact.objects.for_business(business)
        .filter(kind=ContactKind.INDIVIDUAL, as_individual__organization=organization)
        .select_related("as_individual")
        .order_by("name", "pk")
    )


# --- opportunities ----------------------------------------------------------------------

def _opportunity_queryset(business: Business) -> QuerySet:
    return Opportunity.objects.for_business(business).select_related("contact", "owner")


def opportunity_list(*, business: Business, filters=None, contact=None) -> QuerySet:
    qs = _opportunity_queryset(business).order_by("-created_at", "-pk")
    if contact is not None:
        qs = qs.filter(contact=contact)
    return _filtered(OpportunityFilter, business=business, filters=filters, queryset=qs)


def opportunity_get(*, business: Business, pk) -> Opportunity:
    return _opportunity_queryset(business).get(pk=pk)


# --- tickets ----------------------------------------------------------------------------

def _ticket_queryset(business: Business) -> QuerySet:
    return Ticket.objects.for_business(business).select_related("contact")


def ticket_list(*, business: Business, filters=None, contact=None) -> QuerySet:
    qs = _ticket_queryset(business).order_by("-created_at", "-pk")
    if contact is not None:
        qs = qs.filter(contact=contact)
    return _filtered(TicketFilter, business=business, filters=filters, queryset=qs)


def ticket_get(*, business: Business, pk) -> Ticket:
    return _ticket_queryset(business).get(pk=pk)


# --- people and the dashboard -----------------------------------------------------------

def member_users(*, business: Business) -> QuerySet:
    """Users with a membership in the business (opportunity owners)."""
    return get_user_model().objects.filter(memberships__business=business).order_by("username")


def membership_list(*, user) -> QuerySet:
    return Membership.objects.filter(user=user).select_related("business").order_by("business__name")


def crm_counts(*, business: Business) -> dict:
    """Counts for the home page, three queries whatever the data."""
    contacts = Contact.objects.for_business(business).aggregate(
        contacts=Count("pk"),
        individuals=Count("pk", filter=Q(kind=ContactKind.INDIVIDUAL)),
        organizations=Count("pk", filter=Q(kind=ContactKind.ORGANIZATION)),
    )
    opportunities = Opportunity.objects.for_business(business).aggregate(
        opportunities=Count("pk"), open_opportunities=Count("pk", filter=Q(stage__in=OPEN_STAGES)),
    )
    tickets = Ticket.objects.for_business(business).aggregate(
        tickets=Count("pk"), open_tickets=Count("pk", filter=Q(status__in=OPEN_TICKET_STATUSES)),
    )
    return {**contacts, **opportunities, **tickets}
