"""The gateway: the only code of the app that imports `stripe`.

Owns the Stripe client (`client.py`: every API call, OAuth, webhook signature checks),
the plain results and exceptions it hands back (`types.py`) and the shared rate limiter
(`ratelimit.py`). It calls nothing of the app but settings; every other package of
`stripe_integration` calls it, and nothing below `stripe_integration` does.
"""
