"""Mark paid outside Stripe: staff give the date, method and reference; the amount is what
Stripe has remaining; and a payment Stripe had that the app missed (a partial card payment
whose events never came) is still recorded afterwards, the out-of-band row following
Stripe's figures. Through the staff UI's invoice page and the admin, against the sandbox
(no webhook reaches the app here: the card payment's events are "missed" until catch-up)."""
import datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from finance.models import Invoice, OutOfBandMethod, Payment, PaymentMethod, PaymentStatus
from finance.tests.factories import PaymentFactory
from stripe_integration.invoicing import push as invoicing
from stripe_integration.tests import invoicing_helpers as h
from stripe_integration.tests.stripe_http import StripeHTTP
from stripe_integration.tests.webhook_fixtures import eager_celery  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

D = Decimal
INVOICES = "admin:finance_invoice_changelist"


@pytest.fixture
def pushed(client, finance_a, business_a, stripe_env):
    conn = h.connect(client, finance_a, business_a)
    contact = h.contact(business_a)
    bills = [h.billable(business_a, contact, description=f"Work {i}") for i in range(2)]
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk for b in bills], push=False).invoices[0]
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    invoice.refresh_from_db()
    assert invoice.amount_remaining == D("200.00")
    return conn, invoice


def _partial_card_payment(stripe_env, conn, invoice, amount: int) -> dict:
    """The customer pays part of the invoice by card in Stripe (a PaymentIntent attached
    to the invoice); the app hears nothing of it."""
    s = StripeHTTP(stripe_env.base_url, stripe_env.secret_key, account=conn.stripe_user_id)
    intent = s.post("/v1/payment_intents", {"amount": amount, "currency": "usd", "customer": invoice.stripe_customer_id,
                                            "payment_method": "pm_card_visa", "confirm": True,
                                            "payment_method_types": ["card"]})
    assert intent["status"] == "succeeded", intent
    remote = s.post(f"/v1/invoices/{invoice.stripe_invoice_id}/attach_payment", {"payment_intent": intent["id"]})
    assert remote["amount_remaining"] == 20000 - amount
    return intent


def _mark(client, invoice, **fields):
    data = {"action": "mark_paid_out_of_band", "oob-paid_on": "2026-11-30", "oob-method": "bank_transfer",
            "oob-reference": "BT-77", **fields}
    return client.post(reverse("ui:invoice_action", args=[invoice.pk]), data)


def test_out_of_band_records_what_stripe_has_remaining_with_date_method_reference(pushed, client, stripe_env,
                                                                                     django_capture_on_commit_callbacks,
                                                                                     eager_celery):
    conn, invoice = pushed
    intent = _partial_card_payment(stripe_env, conn, invoice, 3000)
    page = client.get(reverse("ui:invoice_detail", args=[invoice.pk]))
    assert b"data-out-of-band-form" in page.content and b'name="oob-reference"' in page.content

    resp = _mark(client, invoice)
    assert resp.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == "paid" and h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)["status"] == "paid"
    manual = Payment.objects.get(invoice=invoice, method=PaymentMethod.OUT_OF_BAND)
    assert manual.amount == D("170.00")  # Stripe's remaining, not the CRM's 200.00
    assert (manual.out_of_band_method, manual.reference) == (OutOfBandMethod.BANK_TRANSFER, "BT-77")
    assert timezone.localtime(manual.paid_at).date() == datetime.date(2026, 11, 30)

    # The card payment's events come in at last (catch-up): it is recorded beside it, and
    # the payments add up to what Stripe has paid.
    with django_capture_on_commit_callbacks(execute=True):
        call_command("stripe_catch_up", "--business", invoice.business.slug)
    card = Payment.objects.get(invoice=invoice, stripe_payment_intent_id=intent["id"])
    assert (card.amount, card.status) == (D("30.00"), PaymentStatus.SUCCEEDED)
    manual.refresh_from_db()
    assert manual.amount == D("170.00") and manual.reference == "BT-77"
    invoice.refresh_from_db()
    assert sum(p.amount for p in invoice.payments.all()) == invoice.amount_paid == D("200.00")
    page = client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    assert "Bank transfer, ref. BT-77" in page


def test_out_of_band_row_follows_stripe_when_a_missed_payment_turns_up(pushed, stripe_env,
                                                                       django_capture_on_commit_callbacks, eager_celery):
    """A manual payment recorded at the CRM's figure (as before this was fixed) is set to
    Stripe's once the missed card payment is recorded."""
    conn, invoice = pushed
    intent = _partial_card_payment(stripe_env, conn, invoice, 5000)
    StripeHTTP(stripe_env.base_url, stripe_env.secret_key, account=conn.stripe_user_id).post(
        f"/v1/invoices/{invoice.stripe_invoice_id}/pay", {"paid_out_of_band": True})
    legacy = PaymentFactory(business=invoice.business, invoice=invoice, method=PaymentMethod.OUT_OF_BAND,
                            amount=D("200.00"), net=D("200.00"), currency="USD", status=PaymentStatus.SUCCEEDED,
                            stripe_payment_intent_id=None, stripe_charge_id=None, reference="R-1",
                            out_of_band_method=OutOfBandMethod.CHEQUE)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("stripe_catch_up", "--business", invoice.business.slug)
    legacy.refresh_from_db()
    assert legacy.amount == D("150.00") and (legacy.reference, legacy.out_of_band_method) == ("R-1", "cheque")
    assert Payment.objects.get(stripe_payment_intent_id=intent["id"]).amount == D("50.00")
    invoice.refresh_from_db()
    assert invoice.status == "paid" and sum(p.amount for p in invoice.payments.all()) == invoice.amount_paid


@pytest.mark.parametrize("fields, error", [
    ({"oob-paid_on": "2999-01-01"}, "cannot be in the future"),
    ({"oob-paid_on": "yesterday"}, "Enter a valid date"),
    ({"oob-method": ""}, "This field is required"),
    ({"oob-method": "bitcoin"}, "Select a valid choice"),
    ({"oob-reference": "   "}, "This field is required"),
], ids=["future", "not-a-date", "no-method", "unknown-method", "blank-reference"])
def test_out_of_band_form_errors_are_shown_and_nothing_is_marked(pushed, client, stripe_env, fields, error):
    conn, invoice = pushed
    stripe_env.mark()
    resp = _mark(client, invoice, **fields)
    assert resp.status_code == 400 and error in resp.content.decode()
    assert b"data-out-of-band-form" in resp.content
    invoice.refresh_from_db()
    assert invoice.status == "open" and not Payment.objects.exists()
    assert stripe_env.requests(method="POST") == []


def test_out_of_band_service_without_details_is_refused(pushed):
    from stripe_integration.invoicing.push import InvoicingError
    from stripe_integration.invoicing.actions import invoice_action

    conn, invoice = pushed
    with pytest.raises(InvoicingError, match="when and how it was paid"):
        invoice_action(invoice=invoice, action="mark_paid_out_of_band")
    assert not Payment.objects.exists()


def test_out_of_band_admin_list_action_asks_then_marks(pushed, client, stripe_env):
    conn, invoice = pushed
    _partial_card_payment(stripe_env, conn, invoice, 2500)
    url = reverse(INVOICES)
    page = client.post(url, {"action": "stripe_mark_paid_out_of_band", "_selected_action": [invoice.pk]})
    assert page.status_code == 200 and b"data-out-of-band-form" in page.content
    bad = client.post(url, {"action": "stripe_mark_paid_out_of_band", "_selected_action": [invoice.pk],
                            "_oob_submit": "1", "oob-paid_on": "2999-01-01", "oob-method": "cash", "oob-reference": "R"})
    assert bad.status_code == 400 and "cannot be in the future" in bad.content.decode()
    assert not Payment.objects.exists()
    done = client.post(url, {"action": "stripe_mark_paid_out_of_band", "_selected_action": [invoice.pk],
                             "_oob_submit": "1", "oob-paid_on": "2026-11-02", "oob-method": "cash",
                             "oob-reference": "Receipt 12"}, follow=True)
    assert done.status_code == 200
    manual = Payment.objects.get(invoice=invoice)
    assert (manual.amount, manual.out_of_band_method, manual.reference) == (D("175.00"), "cash", "Receipt 12")
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


def test_out_of_band_admin_page_button_asks_first_and_several_invoices_are_refused(pushed, client):
    conn, invoice = pushed
    button = reverse("admin:finance_invoice_stripe_action", args=[invoice.pk])
    page = client.post(button, {"_stripe_action": "mark_paid_out_of_band"})
    assert page.status_code == 200 and b"data-out-of-band-form" in page.content
    assert Invoice.objects.get(pk=invoice.pk).status == "open"
    other = Invoice.objects.create(business=invoice.business, bill_to=invoice.bill_to, number="INV-X", currency="USD")
    resp = client.post(reverse(INVOICES), {"action": "stripe_mark_paid_out_of_band",
                                           "_selected_action": [invoice.pk, other.pk]}, follow=True)
    assert any("one invoice at a time" in str(m) for m in resp.context["messages"])
    assert not Payment.objects.exists()
