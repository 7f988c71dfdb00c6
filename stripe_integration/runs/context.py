"""The "integration disabled" banner's data for every page (a context processor, listed
in settings.TEMPLATES): for finance and owner members only, read when a template asks
(one small query), once per request."""
from functools import cache

from crm.tenancy import get_membership
from crm.models import FINANCE_ROLES


def integration_banner(request):
    membership = get_membership(request) if getattr(request, "user", None) is not None else None
    if membership is None or membership.role not in FINANCE_ROLES:
        return {}

    @cache
    def state():
        from .selectors import integration_state

        return integration_state(business=membership.business)

    return {"stripe_integration_disabled": state}
