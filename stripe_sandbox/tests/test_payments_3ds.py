"""3-D Secure test cards: requires_action and the authentication page, by API and
on the hosted invoice page; declined off-session. Through stripe-python and plain
HTTP (the pages need no key)."""

import urllib.parse

import pytest
import stripe

from .test_hosted_invoice import _open_invoice, card, get, post_form, text_of


def _types(client):
    return [e.type for e in reversed(client.v1.events.list(params={"limit": 100}).data)]


def test_3ds_card_requires_action_then_succeeds_when_completed(sandbox):
    client = sandbox.client()
    pi = client.v1.payment_intents.create(params={
        "amount": 2000, "currency": "usd", "payment_method": "pm_card_threeDSecure2Required", "confirm": True,
        "return_url": "https://app.test/back?x=1"})
    assert (pi.status, pi.latest_charge, pi.next_action.type) == ("requires_action", None, "redirect_to_url")
    url = pi.next_action.redirect_to_url.url
    assert url.startswith(sandbox.base_url + "/hosted/three_d_secure/")
    assert pi.next_action.redirect_to_url.return_url == "https://app.test/back?x=1"
    assert _types(client)[-1] == "payment_intent.requires_action"
    status, _, body = get(url)
    assert status == 200 and "Complete authentication" in body.decode()
    status, headers, _ = post_form(url, {"action": "complete"})
    assert status in (302, 303)
    back = urllib.parse.urlsplit(headers["Location"])
    query = urllib.parse.parse_qs(back.query)
    assert (back.netloc, query["x"], query["payment_intent"], query["redirect_status"]) == (
        "app.test", ["1"], [pi.id], ["succeeded"])
    done = client.v1.payment_intents.retrieve(pi.id)
    assert (done.status, done.amount_received, done.next_action) == ("succeeded", 2000, None)
    assert client.v1.charges.retrieve(done.latest_charge).status == "succeeded"
    assert _types(client)[-2:] == ["charge.succeeded", "payment_intent.succeeded"]
    # The page is spent: a second post changes nothing.
    post_form(url, {"action": "fail"})
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"


def test_3ds_failed_authentication_needs_a_new_payment_method(sandbox):
    client = sandbox.client()
    pi = client.v1.payment_intents.create(params={
        "amount": 2000, "currency": "usd", "payment_method": "pm_card_threeDSecureRequired", "confirm": True})
    post_form(pi.next_action.redirect_to_url.url, {"action": "fail"})
    failed = client.v1.payment_intents.retrieve(pi.id)
    assert (failed.status, failed.last_payment_error.code, failed.payment_method) == (
        "requires_payment_method", "payment_intent_authentication_failure", None)
    assert client.v1.charges.list().data == []
    assert _types(client)[-1] == "payment_intent.payment_failed"
    ok = client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert ok.status == "succeeded"


def test_3ds_card_off_session_is_declined_authentication_required(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={})
    pm = client.v1.payment_methods.attach("pm_card_threeDSecure2Required", params={"customer": cus.id})
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "customer": cus.id,
                                                 "payment_method": pm.id, "confirm": True, "off_session": True})
    assert err.value.code == "authentication_required"
    inv = client.v1.invoices.create(params={"customer": cus.id})
    client.v1.invoices.add_lines(inv.id, params={"lines": [{"amount": 900, "description": "x"}]})
    with pytest.raises(stripe.CardError):  # invoice payments are off-session
        client.v1.invoices.pay(inv.id, params={"payment_method": pm.id})
    assert client.v1.invoices.retrieve(inv.id).status == "open"


def test_3ds_link_with_a_wrong_secret_is_not_found(sandbox):
    client = sandbox.client()
    pi = client.v1.payment_intents.create(params={
        "amount": 2000, "currency": "usd", "payment_method": "pm_card_threeDSecure2Required", "confirm": True})
    url = pi.next_action.redirect_to_url.url
    status, _, _ = post_form(url[:-3] + "xyz", {"action": "complete"})
    assert status == 404
    assert client.v1.payment_intents.retrieve(pi.id).status == "requires_action"


def test_hosted_invoice_3ds_card_goes_through_the_authentication_step(sandbox):
    client = sandbox.client()
    inv = _open_invoice(client)
    status, headers, _ = post_form(inv.hosted_invoice_url, card("4000 0000 0000 3220"))
    assert status == 303 and "/hosted/three_d_secure/" in headers["Location"]
    assert client.v1.invoices.retrieve(inv.id).status == "open"
    assert "invoice.payment_action_required" in _types(client)
    status, headers, _ = post_form(headers["Location"], {"action": "complete"})
    assert status == 303 and headers["Location"].endswith(inv.hosted_invoice_url.split(sandbox.base_url)[1])
    paid = client.v1.invoices.retrieve(inv.id)
    assert (paid.status, paid.amount_paid) == ("paid", 5000)
    html = get(inv.hosted_invoice_url)[2].decode()
    assert text_of(html, "paid").startswith("Paid")


def test_hosted_invoice_3ds_failure_leaves_it_open_and_payable(sandbox):
    client = sandbox.client()
    inv = _open_invoice(client)
    _, headers, _ = post_form(inv.hosted_invoice_url, card("4000000000003220"))
    post_form(headers["Location"], {"action": "fail"})
    after = client.v1.invoices.retrieve(inv.id)
    assert (after.status, after.attempted) == ("open", True)
    assert "invoice.payment_failed" in _types(client)
    status, _, _ = post_form(inv.hosted_invoice_url, card("4242424242424242"))
    assert status == 303 and client.v1.invoices.retrieve(inv.id).status == "paid"


def test_hosted_invoice_offers_bank_debits_with_test_numbers(sandbox):
    client = sandbox.client()
    usd = get(_open_invoice(client).hosted_invoice_url)[2].decode()
    assert "Bank account (ACH)" in usd and "000123456789" in usd and "110000000" in usd
    assert "id=sepa-unavailable" in usd and "id=ach-form" in usd
    eur = get(_open_invoice(client, currency="eur").hosted_invoice_url)[2].decode()
    assert "SEPA Direct Debit" in eur and "DE89370400440532013000" in eur and "id=sepa-form" in eur


def test_hosted_invoice_paid_by_ach_shows_processing_then_paid(sandbox):
    client = sandbox.client()
    inv = _open_invoice(client)
    fields = {"method": "us_bank_account", "account_holder": "Ada", "routing_number": "110000000",
              "account_number": "000123456789"}
    status, _, _ = post_form(inv.hosted_invoice_url, fields)
    assert status == 303
    html = get(inv.hosted_invoice_url)[2].decode()
    assert "Payment processing" in text_of(html, "processing") and "id=pay " not in html
    assert client.v1.invoices.retrieve(inv.id).status == "open"
    assert post_form(inv.hosted_invoice_url, fields)[0] == 303  # a second click charges nothing
    assert len(client.v1.payment_intents.list().data) == 1
    sandbox.advance_clock(24 * 3600)
    assert client.v1.invoices.retrieve(inv.id).status == "paid"
    html = get(inv.hosted_invoice_url)[2].decode()
    assert text_of(html, "paid").startswith("Paid")
    receipt = get(html.split('id=receipt href="')[1].split('"')[0])[2].decode()
    assert "Bank account - 6789" in receipt


def test_hosted_invoice_sepa_failure_and_bad_iban(sandbox):
    client = sandbox.client()
    inv = _open_invoice(client, currency="eur")
    status, _, body = post_form(inv.hosted_invoice_url, {"method": "sepa_debit", "account_holder": "Ada",
                                                         "email": "ada@example.test", "iban": "DE123"})
    assert status == 400 and "not a test IBAN" in text_of(body, "error")
    post_form(inv.hosted_invoice_url, {"method": "sepa_debit", "account_holder": "Ada",
                                       "email": "ada@example.test", "iban": "DE62 3704 0044 0532 0130 01"})
    sandbox.advance_clock(24 * 3600)
    after = client.v1.invoices.retrieve(inv.id)
    assert after.status == "open" and "invoice.payment_failed" in _types(client)
