"""Stripe API resources. Every module in this package is imported at start-up and
registers its routes with `@route`; a new resource is a new module here (see
README.md, "Adding a resource")."""
