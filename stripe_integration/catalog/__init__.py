"""The service catalog in Stripe: services -> Products, per-currency prices -> Prices.

`sync.py` holds the entry points (sync one service or the whole catalog, requested on
commit when `services` announces a change, drift reported by webhooks); `engine.py` the
comparison and the calls that make Stripe match, idempotently. Calls the gateway,
`connect` and `services`/`finance.money`; called by tasks, admin, views and webhooks.
"""
