"""Fixtures for webhook tests against the sandbox (import them into a test module).

`app_server`: the app served over HTTP so the sandbox can deliver webhooks to it, like
pytest-django's `live_server` but function-scoped and, on in-memory SQLite, answering one
request at a time. Django hands every live-server thread the test's one in-memory
connection (nothing else can see that database); two deliveries handled at once would
share one connection and one transaction state. On PostgreSQL each thread has its own
connection and the server is threaded as usual. Tests must let deliveries finish
(`stripe.drain()`) before they read the database themselves.

`connected`: business A connected to Stripe through the consent page, with the Connect
webhook endpoint registered for the app server's URL (STRIPE_WEBHOOK_URL is set before
connecting, as the endpoint is created on connect).

`eager_celery`: tasks run in-process even when CELERY_BROKER_URL is set (the production
path of .ci/run has a broker but no worker for these tests).
"""
from __future__ import annotations

from dataclasses import dataclass

import threading
import time

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connections
from django.test.testcases import LiveServerThread

from config.celery import app as celery_app
from crm.models import Business
from stripe_integration.models import ConnectWebhookEndpoint, StripeConnection
from stripe_integration.tests import oauth_helpers as oauth
from stripe_integration.tests.stripe_http import StripeHTTP
from stripe_integration.webhooks.intake import endpoint_secrets


class _Server(ThreadedWSGIServer):
    def process_request(self, request, client_address):
        if self.connections_override:
            # One shared in-memory connection: serve this request before accepting another.
            self.process_request_thread(request, client_address)
        else:
            super().process_request(request, client_address)


class _ServerThread(LiveServerThread):
    server_class = _Server


class _SharedConnectionTurns:
    """Takes turns on the in-memory SQLite connection the server thread shares with the
    test's thread (one connection: one transaction at a time). Each statement of either
    thread holds the lock (an execute wrapper), and the server holds it for a whole
    request, which it starts only while the test's thread is in no transaction: a webhook
    delivered while the test pushes an invoice waits for the push's transaction to end
    instead of opening its own inside it ("cannot start a transaction within a transaction")."""

    def __init__(self, conns):
        self.conns = list(conns)
        self.lock = threading.RLock()

    def __call__(self, execute, sql, params, many, context):
        with self.lock:
            return execute(sql, params, many, context)

    def handler(self, static_handler):
        def make(app):
            inner = static_handler(app)

            def serve(environ, start_response):
                while True:
                    self.lock.acquire()
                    if not any(conn.in_atomic_block for conn in self.conns):
                        break
                    self.lock.release()
                    time.sleep(0.002)
                try:
                    return inner(environ, start_response)
                finally:
                    self.lock.release()
            return serve
        return make


def serve_app(thread_class):
    """The app on a free loopback port in `thread_class`'s server, sharing the test's
    in-memory SQLite connection (taking turns on it: `_SharedConnectionTurns`); yields
    its base URL (a generator for fixtures)."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    override = {conn.alias: conn for conn in connections.all() if conn.vendor == "sqlite" and conn.is_in_memory_db()}
    turns = _SharedConnectionTurns(override.values())
    thread = thread_class("127.0.0.1", turns.handler(StaticFilesHandler) if override else StaticFilesHandler,
                          connections_override=override)
    thread.daemon = True
    for conn in override.values():
        conn.inc_thread_sharing()
        conn.execute_wrappers.append(turns)
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield f"http://127.0.0.1:{thread.port}"
    thread.terminate()
    for conn in override.values():
        conn.execute_wrappers.remove(turns)
        conn.dec_thread_sharing()


@pytest.fixture
def app_server(transactional_db):
    yield from serve_app(_ServerThread)


@pytest.fixture
def eager_celery():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@dataclass
class Connected:
    business: Business
    connection: StripeConnection
    endpoint: ConnectWebhookEndpoint
    stripe: StripeHTTP  # as the connected account
    platform: StripeHTTP  # as the platform (control plane, OAuth)
    client_id: str


def connect_business(*, client, user, business, stripe_env, webhook_url: str, settings) -> Connected:
    settings.STRIPE_WEBHOOK_URL = webhook_url
    endpoint_secrets.clear()
    client.force_login(user)
    oauth.connect(client)
    connection = StripeConnection.objects.get(business=business, status="connected")
    endpoint = ConnectWebhookEndpoint.objects.get(url=webhook_url)
    platform = StripeHTTP(stripe_env.base_url, stripe_env.secret_key)
    return Connected(business=business, connection=connection, endpoint=endpoint,
                     stripe=StripeHTTP(stripe_env.base_url, stripe_env.secret_key, account=connection.stripe_user_id),
                     platform=platform, client_id=stripe_env.client_id)


@pytest.fixture
def connected(app_server, eager_celery, client, finance_a, business_a, stripe_env, settings):
    setup = connect_business(client=client, user=finance_a, business=business_a, stripe_env=stripe_env,
                             webhook_url=app_server + "/stripe/webhook/", settings=settings)
    yield setup
    setup.platform.calm()
    setup.platform.drain()


def local_invoice(business, stripe_invoice: dict, *, status: str = "open", lines: int = 1):
    """The CRM invoice the (future) invoice push would have saved for `stripe_invoice`:
    its Stripe id, bill-to, currency, lines and billables in status invoiced."""
    from decimal import Decimal

    from crm.tests.factories import IndividualFactory
    from finance.models import BillableStatus
    from finance.money import from_minor
    from finance.tests.factories import BillableFactory, InvoiceFactory, InvoiceLineFactory

    currency = stripe_invoice["currency"].upper()
    total = from_minor(stripe_invoice["total"], currency)
    contact = IndividualFactory(business=business)
    invoice = InvoiceFactory(business=business, bill_to=contact, currency=currency, status=status,
                             stripe_invoice_id=stripe_invoice["id"], subtotal=total, total=total,
                             amount_remaining=total)
    each = (total / lines).quantize(Decimal("0.01"))
    for position in range(lines):
        billable = BillableFactory(business=business, bill_to=contact, unit_price=each, currency=currency,
                                   status=BillableStatus.INVOICED, invoice=invoice)
        InvoiceLineFactory(invoice=invoice, billable=billable, position=position, unit_price=each, subtotal=each,
                           total=each)
    return invoice


def assert_inbox_exact(setup: Connected, *, since=None) -> list[dict]:
    """Every event the sandbox delivered to the endpoint is one inbox row, done (processed
    or ignored), every delivery answered 2xx, and those received after `since` (the local
    invoice's creation: earlier ones were parked first) handled in one attempt, however
    many copies came. Returns the sandbox's delivery log."""
    from stripe_integration.models import DeliveryStatus, WebhookDelivery

    log = setup.platform.deliveries(endpoint=setup.endpoint.stripe_id)
    assert log and all(d["ok"] for d in log), [d for d in log if not d["ok"]]
    rows = list(WebhookDelivery.objects.filter(account=setup.connection.stripe_user_id))
    assert sorted(r.event_id for r in rows) == sorted({d["event"] for d in log})
    bad = [(r.type, r.status, r.error) for r in rows if r.status not in (DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED)]
    assert not bad, bad
    retried = [(r.type, r.attempts) for r in rows if r.attempts != 1 and (since is None or r.received_at > since)]
    assert not retried, retried
    return log


def twin_invoice(setup: Connected, *, items=((5000, "Design work"),), finalize: bool = True, lines: int = 1,
                 currency: str = "usd", collection_method: str = "send_invoice"):
    """A Stripe invoice and its CRM twin, made in the order the invoice push makes them:
    the Stripe draft, then the local invoice saved with its id (the draft's early events,
    parked meanwhile, are retried at once as the push would do), then finalization.
    Returns (customer, stripe invoice, local invoice), all deliveries done."""
    from stripe_integration.webhooks.processing import deliveries_unpark

    s = setup.stripe
    customer = s.customer()
    draft = s.draft_invoice(customer["id"], items=items, currency=currency, collection_method=collection_method)
    s.drain()
    invoice = local_invoice(setup.business, draft, status="draft", lines=lines)
    deliveries_unpark(account=setup.connection.stripe_user_id)
    stripe_invoice = s.post(f"/v1/invoices/{draft['id']}/finalize") if finalize else draft
    s.drain()
    invoice.refresh_from_db()
    return customer, stripe_invoice, invoice
