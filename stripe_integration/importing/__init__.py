"""Import of a connected account's history (issue 15, Upflow's rules).

Owns `StripeImport` jobs: lists the account's customers, products, prices, invoices,
payments, refunds, disputes and credit notes page by page through the gateway
(`Gateway.list_page`), matches or creates the CRM rows a page at a time, and records
money through the webhook apply functions (`webhooks/apply*.py`,
`credit_notes/apply.py`, or their query-free halves for a page's new rows): one mapping.
Ends by replaying the account's events since it started (`webhooks/catch_up.py`).
Called by the connect flow (first connect), the settings page button, its Celery task.
"""
