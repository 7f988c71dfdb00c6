"""CRM contacts <-> Stripe customers (`links.py`; its Celery task in `tasks.py`).

Owns the CustomerLink rows: create or link a customer for a bill-to contact, push its
details when `crm` announces a change, and take Stripe's side when a webhook says the
customer changed there. Calls the gateway and `connect`; called by the invoicing push,
webhooks, tasks, admin, views and the `stripe_customers` template tags.
"""
