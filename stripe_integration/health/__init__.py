"""Readiness checks beyond django-health-check's own (database, cache): migrations
applied, the Celery broker and Stripe with the platform key. Registered by the app's `ready()`; served
at /health/ready/ (config/urls.py) and printed by `manage.py health`. Liveness
(/health/) is `views.liveness`: the process answers, nothing else is touched.
"""
