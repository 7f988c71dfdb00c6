"""Test and live, side by side (issue 15): one business connected to a test-mode and a
live-mode sandbox account at once; every push, list, total and webhook keeps to its mode.

The sandbox has a live mode of its own: a sandbox live key (the live prefix, then
`sandbox_`) is a live platform whose objects and events say `livemode: true`. The keys
here are built from parts, so nothing in the repository looks like a real key.
"""
import json
import secrets
import socket
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from django.utils import timezone

from finance import reports
from finance.dashboard import billing_overview
from finance.models import Invoice, InvoiceStatus
from finance.selectors import today
from stripe_integration.connect import modes
from stripe_integration.connect import oauth as services
from stripe_integration.invoicing import push as invoicing
from stripe_integration.invoicing.actions import InvoicingError, invoice_action
from stripe_integration.models import DeliveryStatus, StripeConnection, WebhookDelivery
from stripe_integration.tests import invoicing_helpers as h
from stripe_integration.tests import oauth_helpers as oauth
from stripe_integration.tests.webhook_fixtures import eager_celery  # noqa: F401
from stripe_integration.webhooks.catch_up import catch_up_all
from stripe_integration.webhooks.processing import delivery_process

pytestmark = pytest.mark.django_db

D = Decimal
LIVE = "sk" + "_live_"  # the live prefix, never written whole
TEST_KEY = "sk_test_" + "modes0123456789"


def live_key(rest="sandbox_" + "0123456789ab"):
    return LIVE + rest


# --- settings -----------------------------------------------------------------------------
@pytest.fixture
def clean_keys(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_TEST_SECRET_KEY = ""
    settings.STRIPE_LIVE_SECRET_KEY = ""
    settings.STRIPE_CONNECT_CLIENT_ID = ""
    settings.STRIPE_TEST_CONNECT_CLIENT_ID = ""
    settings.STRIPE_LIVE_CONNECT_CLIENT_ID = ""
    return settings


def test_single_key_fills_the_slot_of_its_own_mode(clean_keys):
    clean_keys.STRIPE_SECRET_KEY = TEST_KEY
    clean_keys.STRIPE_CONNECT_CLIENT_ID = "ca_single"
    modes.settings_check()
    assert modes.configured_modes() == [False]
    assert modes.secret_key(False) == TEST_KEY and modes.client_id(False) == "ca_single"
    assert modes.secret_key(True) == "" and modes.default_livemode() is False
    clean_keys.STRIPE_SECRET_KEY = live_key()
    assert modes.configured_modes() == [True] and modes.default_livemode() is True


def test_both_keys_configure_both_modes_each_with_its_client_id(clean_keys):
    clean_keys.STRIPE_TEST_SECRET_KEY, clean_keys.STRIPE_TEST_CONNECT_CLIENT_ID = TEST_KEY, "ca_test"
    clean_keys.STRIPE_LIVE_SECRET_KEY, clean_keys.STRIPE_LIVE_CONNECT_CLIENT_ID = live_key(), "ca_live"
    modes.settings_check()
    assert modes.configured_modes() == [True, False]
    assert (modes.client_id(True), modes.client_id(False)) == ("ca_live", "ca_test")
    assert services.gateway(True).livemode is True and services.gateway(False).livemode is False


@pytest.mark.parametrize("slot, value, message", [
    ("STRIPE_TEST_SECRET_KEY", live_key(), "STRIPE_TEST_SECRET_KEY is a live-mode key"),
    ("STRIPE_LIVE_SECRET_KEY", TEST_KEY, "STRIPE_LIVE_SECRET_KEY is a test-mode key"),
    ("STRIPE_LIVE_SECRET_KEY", "pk_" + "live_abc", "not a Stripe live secret key"),
    ("STRIPE_TEST_SECRET_KEY", "whatever", "not a Stripe test secret key"),
    ("STRIPE_SECRET_KEY", "nonsense", "not a Stripe secret key"),
], ids=["live-in-test-slot", "test-in-live-slot", "publishable-as-live", "junk-as-test", "junk-single"])
def test_a_key_in_the_wrong_slot_is_refused(clean_keys, slot, value, message):
    setattr(clean_keys, slot, value)
    with pytest.raises(ImproperlyConfigured, match=message) as caught:
        modes.settings_check()
    assert value not in str(caught.value)  # the key itself is never echoed


def test_single_key_contradicting_its_mode_slot_is_refused(clean_keys):
    clean_keys.STRIPE_SECRET_KEY = TEST_KEY
    clean_keys.STRIPE_TEST_SECRET_KEY = "sk_test_" + "another0123"
    with pytest.raises(ImproperlyConfigured, match="same mode"):
        modes.settings_check()


def test_the_sandbox_refuses_a_live_key_that_is_not_a_sandbox_one(clean_keys, stripe_sandbox_server):
    from stripe_integration.gateway.client import AuthenticationFailed, Gateway

    gw = Gateway(secret_key=live_key("0123456789abcdef"), api_base=stripe_sandbox_server, max_retries=0)
    with pytest.raises(AuthenticationFailed):
        gw.webhook_endpoints_list()


# --- both modes connected at once -------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def both(client, finance_a, business_a, stripe_sandbox_server, clean_keys):
    """business_a connected in test and in live mode through the real OAuth flow, each on
    its own sandbox platform (its own key and client id). Webhooks go nowhere: what the
    app learns of events comes from the catch-up (each mode's own)."""
    s = clean_keys
    s.STRIPE_TEST_SECRET_KEY = "sk_test_" + secrets.token_hex(12)
    s.STRIPE_LIVE_SECRET_KEY = live_key("sandbox_" + secrets.token_hex(12))
    s.STRIPE_TEST_CONNECT_CLIENT_ID = "ca_" + secrets.token_hex(8)
    s.STRIPE_LIVE_CONNECT_CLIENT_ID = "ca_" + secrets.token_hex(8)
    s.STRIPE_API_BASE = s.STRIPE_CONNECT_BASE = stripe_sandbox_server
    s.STRIPE_WEBHOOK_URL = f"http://127.0.0.1:{_closed_port()}/stripe/webhook/"
    client.force_login(finance_a)
    for mode in ("test", "live"):
        start = client.get(oauth.CONNECT_URL + "?mode=" + mode)
        assert start.status_code == 302, start.content[:300]
        page = oauth.back_to_app(client, oauth.consent(start["Location"]))
        assert page.status_code == 200
        assert f"in {mode} mode" in page.content.decode()
    test = StripeConnection.objects.get(business=business_a, status="connected", livemode=False)
    live = StripeConnection.objects.get(business=business_a, status="connected", livemode=True)
    return test, live


def test_one_business_is_connected_in_both_modes_to_two_accounts(both, client, business_a):
    test, live = both
    assert test.stripe_user_id != live.stripe_user_id
    assert services.gateway(True).account_retrieve(account=live.stripe_user_id).id == live.stripe_user_id
    page = client.get(reverse("stripe_integration:settings")).content.decode()
    assert 'id="connection-test"' in page and 'id="connection-live"' in page
    assert ">Test mode<" in page and ">Live mode<" in page
    # Each mode's Connect endpoint exists, in its own mode.
    assert set(services.ConnectWebhookEndpoint.objects.values_list("livemode", flat=True)) == {True, False}


def _sent(business, contact, amount, livemode):
    bill = h.billable(business, contact, unit_price=D(amount))
    result = invoicing.invoices_generate(business=business, billable_ids=[bill.pk], push=False)
    (invoice,) = result.invoices
    Invoice.objects.filter(pk=invoice.pk).update(livemode=livemode)  # as "Send to Stripe" in that mode does
    outcome = invoicing.invoice_push(invoice_id=invoice.pk)
    assert outcome.outcome == "pushed", outcome
    return Invoice.objects.get(pk=invoice.pk)


def test_pushes_go_to_the_account_of_their_mode_and_totals_never_mix(both, business_a, client):
    test, live = both
    contact = h.contact(business_a)
    draft = invoicing.invoices_generate(
        business=business_a, billable_ids=[h.billable(business_a, contact, unit_price=D("7")).pk], push=False).invoices[0]
    test_inv = _sent(business_a, contact, "100.00", False)
    live_inv = _sent(business_a, contact, "250.00", True)
    assert (test_inv.livemode, live_inv.livemode, draft.livemode) == (False, True, None)
    # Each Stripe invoice lives on its own account, in its own mode.
    raw_test = services.gateway(False).invoice_retrieve(account=test.stripe_user_id, invoice_id=test_inv.stripe_invoice_id)
    raw_live = services.gateway(True).invoice_retrieve(account=live.stripe_user_id, invoice_id=live_inv.stripe_invoice_id)
    assert raw_test["livemode"] is False and raw_live["livemode"] is True
    assert raw_test["amount_due"] == 10000 and raw_live["amount_due"] == 25000
    from stripe_integration.gateway.client import NotFound

    with pytest.raises(NotFound):  # not on the other mode's account
        services.gateway(True).invoice_fetch(account=live.stripe_user_id, invoice_id=test_inv.stripe_invoice_id)

    # Money owed, aging and the dashboard: one mode's figures, never the sum (350).
    day = today()
    owed = {m: reports.money_owed(business=business_a, today=day, livemode=m) for m in (True, False)}
    assert [r["outstanding"] for r in owed[True]] == [D("250.00")]
    assert [r["outstanding"] for r in owed[False]] == [D("100.00")]
    aging = reports.aging_by_currency(business=business_a, today=day, livemode=False)
    assert [r["total"] for r in aging] == [D("100.00")]
    dash = {m: billing_overview(business=business_a, today=day, livemode=m) for m in (True, False)}
    assert dash[True][0].totals["invoiced"] == D("250.00") and dash[False][0].totals["invoiced"] == D("100.00")

    # The screens: live by default (connected in live), test after the switch; the local
    # draft appears in both, marked as not sent.
    invoices_url = reverse("ui:invoice_list")
    page = client.get(invoices_url).content.decode()
    assert 'id="stripe-mode-badge"' in page and ">Live mode<" in page
    assert live_inv.number in page and test_inv.number not in page and draft.number in page
    switched = client.post(reverse("stripe_integration:mode_switch"), {"mode": "test", "next": invoices_url}, follow=True)
    page = switched.content.decode()
    assert ">Test mode<" in page and test_inv.number in page and live_inv.number not in page and draft.number in page
    home = client.get(reverse("ui:home")).content.decode()
    assert "250.00" not in home and "350.00" not in home
    export = client.get(reverse("ui:export", kwargs={"kind": "invoices", "fmt": "csv"}))
    body = b"".join(export.streaming_content).decode() if export.streaming else export.content.decode()
    assert test_inv.number in body and live_inv.number not in body

    # An invoice stays in its mode: the live one's actions are refused while in test mode.
    with pytest.raises(InvoicingError, match="live mode invoice.*Switch to live mode"):
        invoice_action(invoice=live_inv, action="mark_uncollectible", livemode=False)
    message = invoice_action(invoice=live_inv, action="mark_uncollectible", livemode=True)
    assert "uncollectible" in message.lower()
    assert Invoice.objects.get(pk=live_inv.pk).status == InvoiceStatus.UNCOLLECTIBLE
    # What is recorded against it is in its mode too.
    from stripe_integration.invoicing.out_of_band import OutOfBandPayment

    invoice_action(invoice=test_inv, action="mark_paid_out_of_band", livemode=False,
                   out_of_band=OutOfBandPayment(paid_on=day, method="bank_transfer", reference="TR-1"))
    assert [p.livemode for p in Invoice.objects.get(pk=test_inv.pk).payments.all()] == [False]
    assert reports.money_owed(business=business_a, today=day, livemode=False) == []


def test_switching_to_a_mode_not_connected_is_refused(client, finance_a, business_a, stripe_env):
    h.connect(client, finance_a, business_a)  # test mode only (STRIPE_SECRET_KEY)
    resp = client.post(reverse("stripe_integration:mode_switch"), {"mode": "live", "next": "/"}, follow=True)
    assert "not connected in live mode" in resp.content.decode()
    assert "Switch to live mode" not in resp.content.decode()  # no switch with one mode


@pytest.mark.django_db(transaction=True)
def test_catch_up_and_webhooks_of_each_mode_are_processed(both, business_a, eager_celery):  # noqa: F811
    test, live = both
    contact = h.contact(business_a)
    test_inv = _sent(business_a, contact, "100.00", False)
    live_inv = _sent(business_a, contact, "250.00", True)
    results = catch_up_all()
    assert {r.connection.livemode for r in results} == {True, False}
    deliveries = WebhookDelivery.objects.filter(type="invoice.finalized")
    assert {d.livemode for d in deliveries} == {True, False}
    for d in deliveries:
        d = WebhookDelivery.objects.get(pk=d.pk)
        assert d.status == DeliveryStatus.PROCESSED, (d.livemode, d.status, d.error)
        assert d.business_id == business_a.pk
        assert d.account == (live if d.livemode else test).stripe_user_id
    assert json.loads(deliveries.get(livemode=True).payload)["data"]["object"]["id"] == live_inv.stripe_invoice_id
    assert json.loads(deliveries.get(livemode=False).payload)["data"]["object"]["id"] == test_inv.stripe_invoice_id


def test_an_event_of_a_mode_without_key_is_kept_with_its_reason(stripe_env, business_a):
    """Single-mode (a test key only): a live event is stored and kept as ignored, saying why."""
    delivery = WebhookDelivery.objects.create(
        event_id="evt_live1", account="acct_x", livemode=True, type="invoice.paid", received_at=timezone.now(),
        payload=json.dumps({"id": "evt_live1", "object": "event", "type": "invoice.paid", "livemode": True,
                            "account": "acct_x", "data": {"object": {"id": "in_1", "object": "invoice"}}}))
    delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.IGNORED
    assert "live-mode event" in delivery.error and "STRIPE_LIVE_SECRET_KEY" in delivery.error
    assert WebhookDelivery.objects.filter(pk=delivery.pk).exists()


def test_the_app_does_not_start_with_a_test_key_in_the_live_slot():
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {**os.environ, "STRIPE_LIVE_SECRET_KEY": TEST_KEY, "STRIPE_SECRET_KEY": ""}
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "ImproperlyConfigured: STRIPE_LIVE_SECRET_KEY is a test-mode key" in done.stderr
    assert TEST_KEY not in done.stderr


@pytest.mark.parametrize("event_mode, secret_mode, status", [
    (True, True, 200), (False, False, 200), (True, False, 400), (False, True, 400),
], ids=["live-by-live", "test-by-test", "live-by-test-secret", "test-by-live-secret"])
def test_intake_verifies_each_event_with_the_secret_of_its_mode(clean_keys, client, event_mode, secret_mode, status):
    import time

    from stripe_integration.gateway.types import WEBHOOK_SECRET_PREFIX
    from stripe_integration.models import ConnectWebhookEndpoint
    from stripe_integration.tests.stripe_http import sign
    from stripe_integration.webhooks.intake import endpoint_secrets

    clean_keys.STRIPE_TEST_SECRET_KEY, clean_keys.STRIPE_LIVE_SECRET_KEY = TEST_KEY, live_key()
    clean_keys.STRIPE_WEBHOOK_SECRETS = []
    secret = {m: WEBHOOK_SECRET_PREFIX + f"{modes.mode_name(m)}_0123456789abcdef" for m in (True, False)}
    for m in (True, False):
        ConnectWebhookEndpoint.objects.create(stripe_id=f"we_{modes.mode_name(m)}", url=clean_keys.STRIPE_WEBHOOK_URL,
                                              secret=secret[m], livemode=m, enabled_events=["*"])
    endpoint_secrets.clear()
    body = json.dumps({"id": "evt_modes1", "object": "event", "type": "customer.subscription.created",
                       "account": "acct_nobody", "livemode": event_mode, "created": int(time.time()),
                       "data": {"object": {"id": "sub_1", "object": "subscription"}}}).encode()
    resp = client.post("/stripe/webhook/", data=body, content_type="application/json",
                       HTTP_STRIPE_SIGNATURE=sign(body, secret[secret_mode]))
    endpoint_secrets.clear()
    assert resp.status_code == status, resp.content
    assert WebhookDelivery.objects.filter(event_id="evt_modes1").exists() == (status == 200)
    if status == 400:
        assert "other mode's endpoint secret" in resp.json()["error"]


def test_send_to_stripe_goes_to_the_current_modes_account(both, client, business_a, eager_celery,  # noqa: F811
                                                           django_capture_on_commit_callbacks):
    test, live = both
    contact = h.contact(business_a)
    client.post(reverse("stripe_integration:mode_switch"), {"mode": "test", "next": "/"})
    bill = h.billable(business_a, contact, unit_price=D("42.00"))
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(reverse("ui:invoice_send"), {"billables": [bill.pk]})
    assert resp.status_code == 302
    invoice = Invoice.objects.get(billables=bill)
    assert invoice.livemode is False and invoice.stripe_invoice_id
    raw = services.gateway(False).invoice_retrieve(account=test.stripe_user_id, invoice_id=invoice.stripe_invoice_id)
    assert raw["livemode"] is False and raw["amount_due"] == 4200
    # In live mode (the default once switched back), its page says it is a test invoice.
    client.post(reverse("stripe_integration:mode_switch"), {"mode": "live", "next": "/"})
    page = client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    assert "data-other-mode" in page and "test-mode invoice" in page


@pytest.mark.django_db(transaction=True)
def test_a_service_is_synced_to_the_products_of_both_modes(both, business_a, eager_celery):  # noqa: F811
    from services.services import service_create
    from stripe_integration.models import PriceLink, ServiceSync

    test, live = both
    service = service_create(business=business_a, code="AUDIT", name="Audit", prices={"USD": D("120.00")})
    rows = {row.connection_id: row for row in ServiceSync.objects.filter(service=service)}
    assert set(rows) == {test.pk, live.pk}
    assert all(row.state == "synced" and row.stripe_product_id for row in rows.values()), rows
    for connection in (test, live):
        product = services.gateway(connection.livemode).product_retrieve(
            account=connection.stripe_user_id, product_id=rows[connection.pk].stripe_product_id)
        assert product.name == "Audit"
        assert PriceLink.objects.filter(service=service, connection=connection).exists()


def test_payouts_page_shows_the_current_modes_payouts_only(both, business_a, client):
    """A payout is money arriving in a bank account: a test payout never shows in live."""
    from django.utils import timezone

    from stripe_integration.models import Payout

    test, live = both
    now = timezone.now()
    for connection, stripe_id, amount in ((test, "po_testmode1", D("111.00")), (live, "po_livemode1", D("222.00"))):
        Payout.objects.create(business=business_a, connection=connection, account=connection.stripe_user_id,
                              livemode=connection.livemode, stripe_id=stripe_id, amount=amount, currency="USD",
                              status="paid", arrival_date=now, stripe_created=now)
    url = reverse("stripe_integration:payout_list")
    page = client.get(url).content.decode()
    assert "po_livemode1" in page and "po_testmode1" not in page  # live by default
    client.post(reverse("stripe_integration:mode_switch"), {"mode": "test", "next": url})
    page = client.get(url).content.decode()
    assert "po_testmode1" in page and "po_livemode1" not in page


def test_runs_and_events_pages_show_the_current_modes_only(both, business_a, client):
    from stripe_integration.models import EventKind, IntegrationEvent, IntegrationRun, RunKind, RunStatus

    for livemode, subject in ((False, "invoice:7001"), (True, "invoice:7002")):
        run = IntegrationRun.objects.create(business=business_a, kind=RunKind.INVOICE_PUSH, status=RunStatus.ERROR,
                                            livemode=livemode, subject=subject)
        IntegrationEvent.objects.create(business=business_a, run=run, kind=EventKind.STRIPE_ERROR,
                                        message=f"failure of {subject}")
    runs, events = reverse("stripe_integration:run_list"), reverse("stripe_integration:event_list")
    assert "invoice:7002" in client.get(runs).content.decode()  # live by default
    assert "invoice:7001" not in client.get(runs).content.decode()
    page = client.get(events).content.decode()
    assert "failure of invoice:7002" in page and "failure of invoice:7001" not in page
    client.post(reverse("stripe_integration:mode_switch"), {"mode": "test", "next": runs})
    page = client.get(runs).content.decode()
    assert "invoice:7001" in page and "invoice:7002" not in page
    page = client.get(events).content.decode()
    assert "failure of invoice:7001" in page and "failure of invoice:7002" not in page


def test_save_card_link_and_collection_method_use_the_current_modes_connection(both, client, business_a):
    """The contact's save-card link and collection method act on the connection of the
    session's mode, and new invoices of that mode follow that mode's choice."""
    import uuid

    from stripe_integration.models import CustomerLink

    test, live = both
    contact = h.contact(business_a)
    client.post(reverse("stripe_integration:mode_switch"), {"mode": "test", "next": "/"})
    page = client.post(reverse("stripe_integration:card_setup_link", args=[contact.pk]), {"nonce": uuid.uuid4().hex})
    assert page.status_code == 200, page.content[:300]
    resp = client.post(reverse("stripe_integration:collection_method", args=[contact.pk]),
                       {"collection_method": "charge_automatically"})
    assert resp.status_code == 302
    links = {link.connection_id: link for link in CustomerLink.objects.filter(contact=contact)}
    assert set(links) == {test.pk} and links[test.pk].collection_method == "charge_automatically"
    test_customer = services.gateway(False).customer_fetch(account=test.stripe_user_id,
                                                           customer_id=links[test.pk].stripe_customer_id)
    assert test_customer.id == links[test.pk].stripe_customer_id  # made in the test account
    box = client.get(reverse("ui:contact_detail", args=[contact.pk])).content.decode()
    assert links[test.pk].stripe_customer_id in box  # the contact page shows the current mode's customer

    client.post(reverse("stripe_integration:mode_switch"), {"mode": "live", "next": "/"})
    box = client.get(reverse("ui:contact_detail", args=[contact.pk])).content.decode()
    assert links[test.pk].stripe_customer_id not in box
    client.post(reverse("stripe_integration:collection_method", args=[contact.pk]), {"collection_method": "send_invoice"})
    live_link = CustomerLink.objects.get(contact=contact, connection=live)
    assert live_link.collection_method == "send_invoice" and live_link.stripe_customer_id != links[test.pk].stripe_customer_id
    assert CustomerLink.objects.get(pk=links[test.pk].pk).collection_method == "charge_automatically"

    # New invoices follow the choice made in their own mode.
    for livemode, expected in ((False, "charge_automatically"), (True, "send_invoice")):
        bill = h.billable(business_a, contact, unit_price=D("10.00"))
        invoice = invoicing.invoices_generate(business=business_a, billable_ids=[bill.pk], push=False,
                                              livemode=livemode).invoices[0]
        assert invoice.collection_method == expected, livemode
