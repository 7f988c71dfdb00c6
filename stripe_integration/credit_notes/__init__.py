"""Refunds and credit notes from the CRM, through Stripe's credit notes API (issue 13).

`issue.py` validates and makes a credit note exactly once (local row first, keys from its
id, recovery by metadata) and voids one; `apply.py` brings local credit notes up to
Stripe's (CRM-made and Dashboard-made alike); `forms.py`, `views.py`, `admin.py` the
staff UI and admin screens. Calls the gateway, `connect`, `webhooks.context` and
`finance`; called by the staff UI, the admin and the credit_note.* webhook handlers.
"""
