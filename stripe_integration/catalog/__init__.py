"""The service catalog in Stripe: services -> Products, per-currency prices -> Prices.

`sync.py` holds the entry points (sync one service or the whole catalog, requested on
commit when `services` announces a change, drift reported by webhooks); `engine.py` the
comparison and the calls that make Stripe match, idempotently; `tasks.py` the Celery
tasks. Calls the gateway, `connect`, `services` and `finance.money`; called by the
tasks, admin, views, commands and webhooks.
"""
