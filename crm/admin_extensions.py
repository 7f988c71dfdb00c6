"""How a higher app adds to a lower app's admin page without the lower app importing it.

`finance` adds billables to the contact, opportunity and ticket pages; `stripe_integration`
adds its sync columns and Send-to-Stripe actions to the service, billable and invoice
pages. Each calls `admin_extend` from its own admin module, which Django's autodiscovery
imports after the lower app's (INSTALLED_APPS order).
"""
from django.contrib import admin


def admin_extend(model, *mixins, site=admin.site, **attrs):
    """Re-register `model`'s admin as a subclass of the registered one, with `mixins` in
    front (their methods call `super()`, so they wrap the page's own) and `attrs` set."""
    base = type(site._registry[model])
    extended = type(base.__name__, (*mixins, base), {"__module__": base.__module__, **attrs})
    site.unregister(model)
    site.register(model, extended)
    return extended
