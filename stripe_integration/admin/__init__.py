"""The Stripe integration's admin: its own models' admins, and what it adds to the lower
apps' admins (sync columns and actions on services, Send-to-Stripe on billables and
invoices).

`integration.py` connections, settings, catalog sync rows and customer links;
`webhooks.py` deliveries; `rules.py` the Stripe rules and custom field mappings; `extensions.py` the lower apps' admins it extends (with
`stripe_integration.invoicing.admin`). Importing this package registers them all
(Django's admin autodiscovery does, after the lower apps' admins).
"""
from . import importing, integration, payouts, rules, webhooks  # noqa: F401  (registers the admins)
from . import extensions  # noqa: F401,E402  (extends the services and finance admins)
from ..runs import admin as runs_admin  # noqa: F401,E402  (runs and events, issue 15)
