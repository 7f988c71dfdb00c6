"""The Stripe integration's admin: its own models' admins, and what it adds to the lower
apps' admins (sync columns and actions on services, Send-to-Stripe on billables and
invoices).

`catalog.py` connections, settings, catalog sync and customer links; `webhooks.py`
deliveries; `extensions.py` the lower apps' admins it extends. Importing this package
registers them (Django's admin autodiscovery does).
"""
from . import catalog, webhooks  # noqa: F401  (registers the admins)
from . import extensions  # noqa: F401,E402  (extends the services and finance admins)
