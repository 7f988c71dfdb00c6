"""What crm announces to the apps above it (they connect receivers in their
`AppConfig.ready()`; crm imports none of them).

`contact_billing_changed(sender=Contact, contact=...)`: a field that a billing system
carries (name, e-mail, address, tax id: `crm.services.BILLING_FIELDS`) changed. Sent
inside the service function's transaction: a receiver that does work outside the
database (the Stripe integration pushes the customer) queues it with
`transaction.on_commit`, so a rolled-back edit sends nothing anywhere.
"""
from django.dispatch import Signal

contact_billing_changed = Signal()
