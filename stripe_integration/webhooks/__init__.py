"""Stripe's webhooks, from the signed delivery to local status (see README.md here).

`intake.py` verifies and stores each delivery in one commit; `processing.py` routes a
stored event to its handler exactly once (retries, parking, replay); `handlers/` holds
one module per object family; `apply.py` the writes to `finance` they make; `catch_up.py`
lists missed events; `tasks.py` the Celery tasks. Calls the gateway, `connect`,
`catalog`, `customers` and `finance`; called by Stripe (through the URL) and Celery.
"""
