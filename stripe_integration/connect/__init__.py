"""Stripe Connect: a business's connection to its own Stripe account.

Owns OAuth, the connection's lifecycle (connect, test, disconnect, revocation by Stripe,
test and live modes, the platform's Connect webhook endpoint) in `oauth.py`, and the
integration's settings page with its forms (`views.py`, `forms.py`). Calls the gateway
and the models; the other capabilities call `connection_get_active` and `gateway` here.
"""
