"""What higher apps add to the staff UI's pages, without the page's app importing them.

A page (`"home"`, `"contact_detail"`, `"invoice_detail"`...) asks `page_context(page,
**facts)` for the extra template context; apps above it (finance: billables, invoices and
payments on the CRM pages; stripe_integration: the actions Stripe allows on an invoice)
register a function for that page in their `AppConfig.ready()`. Django's own
`contrib.auth` signals work the same way: the sender knows nothing of its receivers.
"""
from collections import defaultdict
from collections.abc import Callable

_PROVIDERS: dict[str, list[Callable[..., dict]]] = defaultdict(list)


def page_context_register(page: str, provider: Callable[..., dict]) -> None:
    """Add `provider(**facts) -> dict` to `page`'s context (once, however often called)."""
    if provider not in _PROVIDERS[page]:
        _PROVIDERS[page].append(provider)


def page_context(page: str, **facts) -> dict:
    """The context every provider registered for `page` adds, merged in registration order."""
    context = {}
    for provider in _PROVIDERS[page]:
        context.update(provider(**facts))
    return context
