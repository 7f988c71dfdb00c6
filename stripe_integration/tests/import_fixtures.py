"""Fixtures for the import tests: an account given history in the sandbox BEFORE it
connects (stripe_sandbox.seed_history, through Stripe's API as the platform), then
connected through the consent page with the webhook endpoint pointing at a closed port,
so everything the app learns comes from the import and its replay."""
from __future__ import annotations

import socket

import pytest

from stripe_integration.tests.stripe_http import StripeHTTP
from stripe_integration.tests.webhook_fixtures import connect_business
from stripe_sandbox.seed_history import _control_account, seed_account


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_account(stripe_env, account: str) -> StripeHTTP:
    """Stripe's API as the platform acting for `account` (Stripe-Account)."""
    return StripeHTTP(stripe_env.base_url, stripe_env.secret_key, account=account)


def seed(stripe_env, account: str, **kwargs) -> dict:
    return seed_account(stripe_env.base_url, stripe_env.secret_key, account, **kwargs)


def account_with_history(stripe_env, email: str, seed_with=seed, **kwargs) -> str:
    account = _control_account(stripe_env.base_url, stripe_env.secret_key, email, "History Ltd")
    if seed_with is not None:
        seed_with(stripe_env, account, **kwargs)
    return account


def connect_offline(*, client, user, business, stripe_env, settings):
    return connect_business(client=client, user=user, business=business, stripe_env=stripe_env,
                            webhook_url=f"http://127.0.0.1:{closed_port()}/stripe/webhook/", settings=settings)


@pytest.fixture
def history_email(finance_a):
    finance_a.email = "finance.a@example.test"
    finance_a.save(update_fields=["email"])
    return finance_a.email
