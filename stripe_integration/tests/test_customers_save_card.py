"""Save a card, end to end: the contact page's "Save a card" button makes a Checkout
Session in setup mode (through the gateway, idempotent per form), the client saves a card
on the sandbox's hosted Checkout page, the webhooks (with chaos on) make it the default
and the contact page shows it, and the next invoice is charged to it automatically."""
import re
from html import unescape

import pytest
import requests

from crm.tests.factories import IndividualFactory
from finance.models import Invoice, InvoiceStatus, Payment
from stripe_integration.models import CustomerLink
from stripe_integration.tests import invoicing_helpers as h
from stripe_integration.tests.webhook_fixtures import (  # noqa: F401  (fixtures)
    app_server, assert_inbox_exact, connected, eager_celery,
)

pytestmark = pytest.mark.django_db(transaction=True)
NONCE = "0123456789abcdef0123456789abcdef"


def _contact(business):
    return IndividualFactory(business=business, email="ada@client.test", country=business.country)


def _link_page(client, contact, nonce=NONCE):
    return client.post(f"/integrations/stripe/customers/{contact.pk}/save-card/", {"nonce": nonce})


def _url(page: str) -> str:
    return unescape(re.search(r'value="([^"]+)" id="setup-link" data-setup-link', page).group(1))


def _save_card(url: str, number: str):
    resp = requests.post(url, data={"card_number": number, "exp": "11 / 31", "cvc": "123", "name": "Ada"},
                         allow_redirects=False, timeout=15)
    assert resp.status_code == 303, resp.text[:500]
    assert "/integrations/stripe/card-saved/" in resp.headers["Location"]


def send_to_stripe(app_server, client, billable_ids) -> None:
    """Staff click Send to Stripe, on the app server (with eager Celery the push runs in the
    request): the server answers one request at a time on in-memory SQLite, so the push
    and the webhooks it causes never share the test's connection at once."""
    browser = requests.Session()
    browser.trust_env = False
    browser.cookies.set("sessionid", client.cookies["sessionid"].value)
    browser.get(app_server + "/billables/", timeout=30).raise_for_status()
    resp = browser.post(app_server + "/invoices/send/", timeout=60, allow_redirects=False,
                        data={"billables": billable_ids, "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
    assert resp.status_code == 302, resp.text[:300]


def test_save_card_link_then_card_shown_then_invoice_charged_automatically(connected, client, app_server):
    s = connected.stripe
    connected.platform.chaos(seed=31)
    contact = _contact(connected.business)
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert "data-save-card" in page and "No saved card" not in page  # no customer yet: no card line either

    first = _link_page(client, contact)
    assert first.status_code == 200
    url = _url(first.content.decode())
    assert url == _url(_link_page(client, contact).content.decode())  # a double click: one session
    assert "mailto:ada%40client.test?subject=" in first.content.decode()
    link = CustomerLink.objects.get(contact=contact)
    sessions = s.get("/v1/checkout/sessions", {"customer": link.stripe_customer_id})["data"]
    assert [(x["mode"], x["status"], x["url"]) for x in sessions] == [("setup", "open", url)]

    _save_card(url, "4242 4242 4242 4242")
    s.drain()
    link.refresh_from_db()
    customer = s.get(f"/v1/customers/{link.stripe_customer_id}")
    assert customer["invoice_settings"]["default_payment_method"] == link.card_id != ""
    assert (link.card_brand, link.card_last4, link.card_exp_month, link.card_exp_year) == ("visa", "4242", 11, 2031)
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Visa ···· 4242" in page and "expires 11/2031" in page

    h.settings_for(connected.business, collection_method="charge_automatically")
    bill = h.billable(connected.business, contact)
    send_to_stripe(app_server, client, [bill.pk])
    s.drain()
    invoice = Invoice.objects.get(bill_to=contact)
    assert invoice.push_status == "pushed", invoice.last_error
    assert (invoice.status, invoice.collection_method) == (InvoiceStatus.PAID, "charge_automatically")
    payment = Payment.objects.get(invoice=invoice)
    assert (payment.status, payment.card_last4) == ("succeeded", "4242")
    assert_inbox_exact(connected)


def test_saved_card_that_declines_shows_the_reason_and_the_retry(connected, client, app_server):
    s = connected.stripe
    contact = _contact(connected.business)
    _save_card(_url(_link_page(client, contact).content.decode()), "4000 0000 0000 0341")
    s.drain()
    link = CustomerLink.objects.get(contact=contact)
    assert link.card_last4 == "0341"
    h.settings_for(connected.business, collection_method="charge_automatically", automatic_collection=True)
    bill = h.billable(connected.business, contact)
    send_to_stripe(app_server, client, [bill.pk])
    s.drain()
    invoice = Invoice.objects.get(bill_to=contact)
    assert invoice.status == InvoiceStatus.OPEN and invoice.collection_method == "charge_automatically"
    assert "declined" in invoice.last_error.lower() and "Stripe will retry" in invoice.last_error
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == "failed" and "declined" in payment.failure_message.lower()
    page = client.get(f"/invoices/{invoice.pk}/").content.decode()
    assert "Stripe will retry" in page and payment.failure_message in unescape(page)


@pytest.mark.parametrize("nonce", ["", "not-hex", "x" * 5000, NONCE.upper()])
def test_save_card_link_with_a_bad_nonce_is_a_400_with_the_reason(connected, client, nonce):
    contact = _contact(connected.business)
    response = _link_page(client, contact, nonce)
    assert response.status_code == 400 and "reload the page" in response.content.decode()
    assert not CustomerLink.objects.filter(contact=contact).exists()  # nothing made in Stripe


def test_save_card_link_is_for_finance_of_the_contacts_business(connected, client, staff_a, business_b):
    other = _contact(business_b)
    assert _link_page(client, other).status_code == 404
    assert client.get(f"/integrations/stripe/customers/{other.pk}/save-card/").status_code == 405
    client.force_login(staff_a)
    assert _link_page(client, _contact(connected.business)).status_code == 403


def test_card_saved_page_is_public(client):
    assert "Your card is saved" in client.get("/integrations/stripe/card-saved/").content.decode()
    assert "No card was saved" in client.get("/integrations/stripe/card-saved/?canceled=1").content.decode()


def test_contact_set_to_charge_automatically_is_charged_while_the_business_sends(connected, client, app_server):
    s = connected.stripe
    h.settings_for(connected.business, collection_method="send_invoice")
    charged, sent = _contact(connected.business), _contact(connected.business)
    for contact in (charged, sent):
        _save_card(_url(_link_page(client, contact).content.decode()), "4242 4242 4242 4242")
    s.drain()
    response = client.post(f"/integrations/stripe/customers/{charged.pk}/collection/",
                           {"collection_method": "charge_automatically"})
    assert response.status_code == 302
    assert "charged to it automatically" in client.get(f"/contacts/{charged.pk}/").content.decode()
    bills = [h.billable(connected.business, contact).pk for contact in (charged, sent)]
    send_to_stripe(app_server, client, bills)
    s.drain()
    got = {i.bill_to_id: (i.collection_method, i.status) for i in Invoice.objects.all()}
    assert got == {charged.pk: ("charge_automatically", InvoiceStatus.PAID),
                   sent.pk: ("send_invoice", InvoiceStatus.OPEN)}


@pytest.mark.parametrize("value", ["charge", "x" * 3000, "<script>"])
def test_collection_method_hostile_value_is_a_400(connected, client, value):
    contact = _contact(connected.business)
    response = client.post(f"/integrations/stripe/customers/{contact.pk}/collection/", {"collection_method": value})
    assert response.status_code == 400 and "Choose how invoices are collected" in response.content.decode()
