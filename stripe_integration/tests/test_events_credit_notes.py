"""Credit notes through Stripe's webhooks, end to end against the sandbox with its webhook
chaos on (duplicates, shuffled order, delays): made in the Dashboard (the sandbox's API as
the connected account), made from the CRM's invoice page (served over HTTP, so the
deliveries queue behind it as they would in production), voided, replayed in reverse,
and a refund that fails afterwards."""
import re
from decimal import Decimal

import pytest
import requests
from django.conf import settings as django_settings
from django.urls import reverse

from finance.models import CreditNote, CreditNotePushStatus, InvoiceStatus, PaymentStatus, Refund
from stripe_integration.connect.oauth import WEBHOOK_EVENTS
from stripe_integration.models import DeliveryStatus
from stripe_integration.tests.test_events_payments import event, pay, post_event
from stripe_integration.tests.webhook_fixtures import (  # noqa: F401  (fixtures)
    app_server, assert_inbox_exact, connected, eager_celery, twin_invoice,
)
from tests_support.stripe_async import refund_fails

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal


def _figures(invoice):
    invoice.refresh_from_db()
    return (invoice.status, invoice.amount_paid, invoice.amount_remaining, invoice.credited_pre_payment,
            invoice.credited_post_payment, invoice.amount_refunded, invoice.net_paid)


def test_credit_note_events_are_subscribed():
    assert {"credit_note.created", "credit_note.updated", "credit_note.voided"} <= set(WEBHOOK_EVENTS)


def test_credit_note_made_in_the_dashboard_shows_up(connected, client, finance_a):
    s = connected.stripe
    stripe_invoice, invoice, payment = pay(connected)
    made = s.post("/v1/credit_notes", {"invoice": stripe_invoice["id"], "amount": 2000, "refund_amount": 2000,
                                       "reason": "duplicate", "memo": "Charged twice"})
    s.drain()
    note = CreditNote.objects.get()
    assert (note.stripe_id, note.number, note.business) == (made["id"], made["number"], connected.business)
    assert note.push_status == CreditNotePushStatus.PUSHED and note.created_by is None
    assert (note.amount, note.refund_amount, note.reason, note.memo) == (D("20"), D("20"), "duplicate", "Charged twice")
    refund = Refund.objects.get()
    assert refund.stripe_refund_id == note.stripe_refund_id and refund.status == "succeeded"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED
    assert _figures(invoice) == ("paid", D("50"), 0, 0, D("20"), D("20"), D("30"))
    assert_inbox_exact(connected, since=invoice.created_at)

    client.force_login(finance_a)
    page = client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    assert f'data-credit-note="{note.pk}"' in page and 'data-credit-note-refund="succeeded"' in page
    assert made["number"] in page


def test_credit_note_voided_in_stripe_stops_counting(connected):
    s = connected.stripe
    connected.platform.chaos(seed=5)
    _, stripe_invoice, invoice = twin_invoice(connected, items=((5000, "Retainer"),))
    made = s.post("/v1/credit_notes", {"invoice": stripe_invoice["id"], "amount": 1500})
    s.drain()
    assert _figures(invoice) == ("open", 0, D("35"), D("15"), 0, 0, 0)
    s.post(f"/v1/credit_notes/{made['id']}/void")
    s.drain()
    note = CreditNote.objects.get()
    assert note.status == "void" and note.voided_at is not None
    assert _figures(invoice) == ("open", 0, D("50"), 0, 0, 0, 0)
    assert_inbox_exact(connected, since=invoice.created_at)
    # The credit_note.created that comes late (or again) does not bring it back.
    created = [e for e in s.events(type="credit_note.created")][0]
    late = post_event(connected, {**created, "id": "evt_cn_created_late"})
    assert late.status == DeliveryStatus.PROCESSED
    note.refresh_from_db()
    assert note.status == "void" and _figures(invoice) == ("open", 0, D("50"), 0, 0, 0, 0)


def test_credit_note_events_replayed_in_reverse_give_the_same_figures(connected):
    s = connected.stripe
    stripe_invoice, invoice, _ = pay(connected, seed=23)
    s.post("/v1/credit_notes", {"invoice": stripe_invoice["id"], "amount": 1000, "refund_amount": 1000})
    s.post("/v1/credit_notes", {"invoice": stripe_invoice["id"], "amount": 500, "credit_amount": 500})
    s.drain()
    expected = ("paid", D("50"), 0, 0, D("15"), D("10"), D("40"))
    assert _figures(invoice) == expected
    notes = sorted(CreditNote.objects.values_list("stripe_id", "refund_amount", "credit_amount"))
    # Every event again, newest first, as new deliveries (Stripe's event ids differ when it
    # re-sends through the catch-up of another endpoint): nothing moves.
    for n, old in enumerate(s.events()):
        if old["type"] in WEBHOOK_EVENTS:
            delivery = post_event(connected, {**old, "id": f"evt_replay_{n}"})
            assert delivery.status in (DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED), delivery.error
    assert _figures(invoice) == expected
    assert sorted(CreditNote.objects.values_list("stripe_id", "refund_amount", "credit_amount")) == notes
    assert Refund.objects.count() == 1


class _Browser:
    """A browser against the served app: its session cookie, one connection per request
    (the test server answers one connection at a time on in-memory SQLite, so neither an
    idle keep-alive connection nor a reused one that the server has closed may stand in
    the way of the sandbox's deliveries)."""

    def __init__(self, client, user):
        client.force_login(user)
        name = django_settings.SESSION_COOKIE_NAME
        self.cookies = {name: client.cookies[name].value}

    def request(self, method, url, **kwargs):
        response = requests.request(method, url, cookies=self.cookies, headers={"Connection": "close"}, **kwargs)
        self.cookies.update(response.cookies.get_dict())
        return response

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self.request("POST", url, **kwargs)


def _token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_credit_note_from_the_invoice_page_under_chaos(connected, app_server, client, finance_a):
    """The finance user's whole path, served over HTTP while the sandbox delivers with
    duplicates, shuffling and delays: review, confirm (twice: a double click), then the
    refund, the credit note and the new net on the invoice page."""
    s = connected.stripe
    stripe_invoice, invoice, payment = pay(connected, seed=31)
    browser = _Browser(client, finance_a)
    page_url = app_server + reverse("ui:invoice_detail", args=[invoice.pk])
    action = app_server + reverse("ui:invoice_credit_note", args=[invoice.pk])
    page = browser.get(page_url, timeout=30)
    assert page.status_code == 200 and "data-credit-note-form" in page.text
    form = {"csrfmiddlewaretoken": _token(page.text), "cn-amount": "12.50", "cn-mode": "refund",
            "cn-reason": "product_unsatisfactory", "cn-memo": "Partial refund"}
    review = browser.post(action, data=form, timeout=30)
    assert review.status_code == 200 and "Stripe refunds 12.50 USD" in review.text
    assert "data-credit-note-preview" in review.text  # Stripe's preview of it
    preview = review.text.split("data-credit-note-preview")[1].split("</dl>")[0]
    assert "<dt>Refunded to the card</dt><dd>12.50 USD</dd>" in preview and "Customer credit" not in preview
    key = re.search(r'name="cn-request_key" value="([0-9a-f]{32})"', review.text).group(1)
    confirm = {**form, "cn-amount": "12.50", "cn-request_key": key, "confirm": "yes",
               "csrfmiddlewaretoken": _token(review.text)}
    for _ in range(2):  # a double click
        done = browser.post(action, data=confirm, timeout=60, allow_redirects=False)
        assert done.status_code == 302
    s.drain()
    note = CreditNote.objects.get()
    assert note.push_status == CreditNotePushStatus.PUSHED and note.created_by == finance_a
    assert [cn["id"] for cn in s.get("/v1/credit_notes", {"invoice": stripe_invoice["id"]})["data"]] == [note.stripe_id]
    assert _figures(invoice) == ("paid", D("50"), 0, 0, D("12.50"), D("12.50"), D("37.50"))
    final = browser.get(page_url, timeout=30).text
    assert 'data-credit-note-refund="succeeded"' in final and "37.50 USD" in final
    assert_inbox_exact(connected, since=invoice.created_at)


def test_credit_note_refund_that_fails_gives_the_net_back(connected, client, finance_a, stripe_env):
    s = connected.stripe
    stripe_invoice, invoice, payment = pay(connected, seed=41)
    s.post("/v1/credit_notes", {"invoice": stripe_invoice["id"], "amount": 2000, "refund_amount": 2000})
    s.drain()
    note = CreditNote.objects.get()
    assert _figures(invoice)[-2:] == (D("20"), D("30"))
    failed = refund_fails(base_url=stripe_env.base_url, refund_id=note.stripe_refund_id)
    delivery = post_event(connected, event(connected, "evt_cn_refund_failed", "charge.refund.updated", failed))
    assert delivery.status == DeliveryStatus.PROCESSED, delivery.error
    note.refresh_from_db()
    assert note.status == "issued" and Refund.objects.get().status == "failed"
    # Stripe's invoice still counts the credit note; the money is back with the business.
    assert _figures(invoice) == ("paid", D("50"), 0, 0, D("20"), 0, D("50"))
    client.force_login(finance_a)
    page = client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    assert 'data-credit-note-refund="failed"' in page
    assert invoice.status == InvoiceStatus.PAID


def test_credit_note_refund_on_a_refund_fail_card_fails_an_hour_later(connected, client, finance_a):
    """Stripe's own failing refund (pm_card_refundFail, 4000 0000 0000 5126): the credit
    note's refund succeeds at first, the sandbox fails it an hour of its clock later and
    sends refund.updated / charge.refund.updated / refund.failed under the chaos."""
    s = connected.stripe
    connected.platform.chaos(seed=53)
    _, stripe_invoice, invoice = twin_invoice(connected, items=((5000, "Retainer"),))
    status, error = s.hosted_pay(stripe_invoice["hosted_invoice_url"], "4000000000005126")
    assert status == 303, error
    s.drain()
    # Served over HTTP, so the deliveries it causes queue behind the request (see _Browser).
    browser = _Browser(client, finance_a)
    app = connected.endpoint.url.removesuffix("/stripe/webhook/")
    action = app + reverse("ui:invoice_credit_note", args=[invoice.pk])
    page = browser.get(app + reverse("ui:invoice_detail", args=[invoice.pk]), timeout=30)
    form = {"csrfmiddlewaretoken": _token(page.text), "cn-amount": "20", "cn-mode": "refund",
            "cn-reason": "order_change", "cn-memo": ""}
    review = browser.post(action, data=form, timeout=30)
    key = re.search(r'name="cn-request_key" value="([0-9a-f]{32})"', review.text).group(1)
    done = browser.post(action, data={**form, "cn-amount": "20.00", "cn-request_key": key, "confirm": "yes",
                                      "csrfmiddlewaretoken": _token(review.text)}, timeout=60, allow_redirects=False)
    assert done.status_code == 302
    s.drain()
    note = CreditNote.objects.get()
    assert Refund.objects.get(stripe_refund_id=note.stripe_refund_id).status == "succeeded"
    assert _figures(invoice) == ("paid", D("50"), 0, 0, D("20"), D("20"), D("30"))

    ran = connected.platform.control("POST", "/clock", {"advance_seconds": 3700})["ran"]
    assert any(job["kind"] == "refund_fails" and job["ok"] for job in ran), ran
    s.drain()
    note.refresh_from_db()
    assert note.status == "issued" and Refund.objects.get().status == "failed"
    assert _figures(invoice) == ("paid", D("50"), 0, 0, D("20"), 0, D("50"))
    page = client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    assert 'data-credit-note-refund="failed"' in page
    assert_inbox_exact(connected, since=invoice.created_at)
