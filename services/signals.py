"""What the service catalog announces to the apps above it (they connect receivers in
their `AppConfig.ready()`; this app imports none of them).

`service_changed(sender=Service, service=...)`: a service or its prices were created,
changed, archived or restored. Sent inside the service function's transaction: a receiver
that does work outside the database (the Stripe integration syncs the catalog) queues it
with `transaction.on_commit`, so a rolled-back edit sends nothing anywhere.
"""
from django.dispatch import Signal

service_changed = Signal()
