"""Invoices from billables, in Stripe: exactly one Stripe invoice per CRM invoice.

`push.py` drafts, pushes, finalizes and sends (with recovery); `lines.py` plans the lines
and checks totals to the minor unit; `actions.py` void, uncollectible, paid outside
Stripe, resend, delete draft; `views.py` and `admin.py` the Send-to-Stripe screens and
actions added to `finance`'s pages; `tasks.py` the push task. Calls the gateway,
`connect`, `customers` and `finance`; called by the staff UI, the admin and commands.
"""
