"""Webhook handlers, one module per Stripe object family (`invoices.py`, `payments.py`).

Each handler takes an `EventContext` (`..context`) and applies the event through
`..apply`; `..processing.HANDLERS` maps event types to them. Called only by processing.
"""
