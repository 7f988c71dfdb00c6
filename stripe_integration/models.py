"""Stripe connection, object links and sync state (issue 4 onwards)."""
