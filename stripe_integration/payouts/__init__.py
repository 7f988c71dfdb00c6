"""Payouts and fees (issue 15): a connected account's payouts and the balance transactions
each carried, reconciled against the CRM's invoices. Owns `sync.py` (Stripe -> Payout,
PayoutItem, through `gateway/payouts.py`), `selectors.py` (reads for the pages and the
export), `views.py` (payouts list, payout page, exceptions, CSV) and `tasks.py` (the
periodic sync). Called by the payout.* webhook handlers, the beat schedule and the
staff UI; it calls the gateway and reads finance's payments, refunds and disputes.
"""
