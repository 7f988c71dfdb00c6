"""One Stripe mode at a time on the finance screens (issue 15: test and live side by side).

A business may be connected to Stripe in test and in live mode at once. Its finance
screens (invoice list, money owed, aging, dashboard, exports) show the rows of the
session's current mode only, plus local drafts not sent to Stripe yet (`livemode` None,
marked on the page): test money is never summed with live money.

Finance does not know Stripe connections (a lower layer): the integration registers the
resolver of the current mode (`current_mode_resolver_register`, from its apps.ready()),
as it fills the other room the lower apps leave. With none registered, nothing is
filtered.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q, QuerySet


@dataclass(frozen=True)
class CurrentMode:
    livemode: bool
    available: list[bool] = field(default_factory=list)  # the modes the business is connected in

    @property
    def label(self) -> str:
        return "Live mode" if self.livemode else "Test mode"

    @property
    def name(self) -> str:
        return "live" if self.livemode else "test"

    @property
    def switchable(self) -> bool:
        return len(self.available) > 1


_resolver = None


def current_mode_resolver_register(fn) -> None:
    """fn(request, business) -> CurrentMode | None."""
    global _resolver
    _resolver = fn


def current_mode(request, business) -> CurrentMode | None:
    """The session's current mode for `business` (cached on the request); None: no Stripe."""
    if _resolver is None or business is None:
        return None
    cache = request.__dict__.setdefault("_finance_mode", {})
    if business.pk not in cache:
        cache[business.pk] = _resolver(request, business)
    return cache[business.pk]


def current_livemode(request, business) -> bool | None:
    mode = current_mode(request, business)
    return None if mode is None else mode.livemode


def in_mode(qs: QuerySet, livemode: bool | None, path: str = "livemode") -> QuerySet:
    """The rows of one mode, plus local-only ones (no mode yet); every row when
    `livemode` is None. `path` reaches the field (e.g. "invoice__livemode")."""
    if livemode is None:
        return qs
    return qs.filter(Q(**{path: livemode}) | Q(**{f"{path}__isnull": True}))


def mode_context(request):
    """Template context processor: the current mode, for the navigation's badge and switch."""
    from crm.tenancy import get_business

    business = get_business(request) if getattr(request, "user", None) and request.user.is_authenticated else None
    return {"stripe_mode": current_mode(request, business) if business is not None else None}
