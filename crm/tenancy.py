"""Who the current business is, and what the user's role lets them do.

A user works in one business at a time: `get_membership(request)` gives their membership
(the business chosen in the session, else the oldest), cached on the request. Superusers
without a membership have no business and see every business in the admin.
"""
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied

from crm.models import FINANCE_ROLES, Membership

SESSION_KEY = "business_id"


_CACHE_ATTR = "_crm_membership"


def get_membership(request):
    """The user's membership in the current business (cached on the request), or None."""
    if hasattr(request, _CACHE_ATTR):
        return getattr(request, _CACHE_ATTR)
    membership = None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        memberships = list(
            Membership.objects.filter(user=user).select_related("business").order_by("created_at", "pk")
        )
        chosen = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
        membership = next((m for m in memberships if m.business_id == chosen), None)
        if membership is None and memberships:
            membership = memberships[0]
    setattr(request, _CACHE_ATTR, membership)
    return membership


def get_business(request):
    m = get_membership(request)
    return m.business if m else None


def can_manage_finance(request):
    m = get_membership(request)
    return bool(m and m.role in FINANCE_ROLES)


def business_context(request):
    m = get_membership(request)
    return {
        "current_business": m.business if m else None,
        "current_role": m.role if m else None,
        "can_manage_finance": bool(m and m.role in FINANCE_ROLES),
    }


class MemberRequiredMixin(LoginRequiredMixin):
    """Staff UI views: a logged-in member of a business; `finance_required` narrows to
    owner/finance. Anyone else gets 403."""

    finance_required = False

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        membership = get_membership(request)
        if membership is None:
            raise PermissionDenied("You are not a member of any business.")
        if self.finance_required and membership.role not in FINANCE_ROLES:
            raise PermissionDenied("This page is for the finance and owner roles.")
        self.business = membership.business
        self.membership = membership
        return super().dispatch(request, *args, **kwargs)
