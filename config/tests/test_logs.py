"""Structured logs: the redaction processor, and a whole flow (connect, push an invoice, pay
it on the hosted page, the webhooks that follow) whose every log line, at DEBUG and with
stripe-python's own request logging on, carries no key, token, signing secret, card
number or e-mail, while it does carry request ids, the business and Stripe request ids."""
import io
import json
import logging

import pytest
import structlog

from config import logs
from finance.models import Payment
from stripe_integration.invoicing import push as invoicing
from stripe_integration.models import StripeConnection
from stripe_integration.tests import invoicing_helpers as h
from stripe_integration.tests.webhook_fixtures import app_server, connected, eager_celery  # noqa: F401

# Live-key and signing-secret shapes built from parts: nothing committed looks like one.
SECRETS = ["sk_test_51Habc0123456789xyz", "rk_" + "live_0123456789abcdef", "wh" + "sec_0123456789abcdefABCDEF",
           "rt_0123456789abcdefABCD", "ac_0123456789abcdefABCD", "pi_3Abc123_secret_XyZ789"]


def render(**event):
    return json.loads(logs.formatter("json").format(logging.makeLogRecord({"msg": "m", "levelname": "INFO", **event})))


@pytest.mark.parametrize("secret", SECRETS)
def test_redact_removes_stripe_secrets_in_messages_and_fields(secret):
    line = render(msg=f"calling with {secret} now", note={"nested": [f"x {secret}"]})

    assert secret not in json.dumps(line)
    assert line["event"] == "calling with [secret] now" and line["note"] == {"nested": ["x [secret]"]}


@pytest.mark.parametrize("card", ["4242424242424242", "4242 4242 4242 4242", "4000-0025-0000-3155", "378282246310005"])
def test_redact_removes_card_numbers_that_pass_luhn(card):
    assert render(msg=f"card {card} declined")["event"] == "card [card] declined"


def test_redact_keeps_numbers_that_are_not_cards_and_stripe_ids():
    text = "invoice in_1Nabc total 5000 at 1764787200 order 4242424242424241 acct_1ABCdef req_AbC123"
    assert render(msg=text)["event"] == text  # 4242424242424241 fails the Luhn check


def test_redact_removes_emails_plain_and_url_encoded_and_secret_named_fields():
    line = render(msg="to ada@example.com and email=bob%40example.org",
                  password="hunter2", access_token="opaque", email="x", authorization="Bearer y")

    assert line["event"] == "to [email] and email=[email]"
    assert [line[k] for k in ("password", "access_token", "email", "authorization")] == ["[redacted]"] * 4


@pytest.fixture
def captured_logs(settings):
    """Every log line of the test, as production renders it (JSON), at DEBUG, the Stripe
    SDK's own debug lines included (they carry request bodies)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    root, sdk = logging.getLogger(), logging.getLogger("stripe")
    saved = root.level, sdk.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    sdk.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        sdk.setLevel(saved[1])
        structlog.contextvars.clear_contextvars()


@pytest.mark.django_db(transaction=True)
def test_logs_of_connect_push_pay_webhooks_hold_no_secret_card_or_email(captured_logs, connected, stripe_env, client):
    business = connected.business
    contact = h.contact(business, email="ada.lovelace@example.com")
    bill = h.billable(business, contact, description="Design work")
    result = invoicing.invoices_generate(business=business, billable_ids=[bill.pk], push=False)
    (invoice,) = result.invoices
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    invoice.refresh_from_db()
    client.get("/")  # a page of the staff UI, as the signed-in finance user
    raw = h.stripe_invoice_raw(connected.connection, invoice.stripe_invoice_id)
    status, error = connected.stripe.hosted_pay(raw["hosted_invoice_url"], "4242424242424242")
    assert status == 303, error
    connected.stripe.drain()
    assert Payment.objects.filter(invoice=invoice).exists()  # the webhooks were processed

    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    conn = StripeConnection.objects.get(pk=connected.connection.pk)
    forbidden = {"platform key": stripe_env.secret_key, "access token": conn.access_token,
                 "refresh token": conn.refresh_token, "webhook secret": connected.endpoint.secret,
                 "card": "4242424242424242", "contact e-mail": "ada.lovelace@example.com",
                 "contact e-mail (encoded)": "ada.lovelace%40example.com", "user e-mail": connected.connection.connected_by.email}
    if conn.account_email:
        forbidden["account e-mail"] = conn.account_email
    assert all(forbidden.values())
    leaks = {name: value for name, value in forbidden.items() if value and value in text}
    assert not leaks, leaks
    assert "_secret_" not in text  # payment intents' client secrets (in the SDK's response bodies)
    # ...and the logs are there to be read: Stripe request ids, request ids, the business.
    stripe_calls = [ln for ln in lines if ln.get("stripe_call")]
    assert stripe_calls and all(ln["stripe_request_id"].startswith("req_") for ln in stripe_calls)
    requests_ = [ln for ln in lines if ln["event"] == "request"]
    assert any(ln["path"] == "/stripe/webhook/" for ln in requests_)
    assert {ln["business"] for ln in requests_ if ln["path"] == "/"} == {business.slug}
    assert all(len(ln["request_id"]) == 32 for ln in requests_)
