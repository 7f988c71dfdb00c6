"""Payouts and fees end to end: invoices paid in the sandbox, its clock moved past the
next midnight after the funds are available, the daily automatic payout arriving by
webhook (and by the periodic sync), its items linked to the invoices, the exceptions,
the payout page, the CSV, tenancy and a constant number of queries."""
import csv
import io
import re
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from finance.models import Payment
from stripe_integration.models import ItemException, Payout, PayoutItem
from stripe_integration.payouts.sync import payouts_sync_account
from stripe_integration.payouts.tasks import payouts_sync_all
from stripe_integration.tests.webhook_fixtures import (  # noqa: F401  (fixtures)
    app_server, connected, eager_celery, twin_invoice,
)

pytestmark = pytest.mark.django_db(transaction=True)
DAY = 86400


def paid_invoice(connected, amount, *, currency="usd", description="Design work"):
    s = connected.stripe
    customer, stripe_invoice, invoice = twin_invoice(connected, items=((amount, description),), currency=currency)
    pm = s.attach_card(customer["id"])
    s.pay(stripe_invoice["id"], pm["id"])
    s.drain()
    return invoice, Payment.objects.get(invoice=invoice)


def pay_outside_invoices(connected, amount):
    return connected.stripe.post("/v1/payment_intents", {"amount": amount, "currency": "usd", "confirm": "true",
                                                         "payment_method": "pm_card_visa"})


def advance_to_payout(connected):
    connected.platform.control("POST", "/clock", {"advance_seconds": 4 * DAY})
    connected.stripe.drain()


def page_items(html):
    return dict(re.findall(r'data-item="(txn_\w+)" data-type="(\w+)"', html))


def test_payout_after_the_clock_moves_lists_charges_and_fees_against_invoices(connected, client):
    first, pay1 = paid_invoice(connected, 5000)
    second, pay2 = paid_invoice(connected, 12345)
    pay_outside_invoices(connected, 700)
    advance_to_payout(connected)

    payout = Payout.objects.get()  # by the payout.* webhooks
    assert (payout.business, payout.currency, payout.status, payout.automatic) == (
        connected.business, "USD", "paid", True)
    items = {i.stripe_balance_transaction_id: i for i in payout.items.all()}
    charges = [i for i in items.values() if i.type == "charge"]
    assert len(charges) == 3
    linked = {i.invoice_id: i for i in charges if i.invoice_id}
    assert set(linked) == {first.pk, second.pk}
    assert (linked[first.pk].payment, linked[first.pk].amount, linked[first.pk].fee) == (
        pay1, Decimal("50.00"), Decimal("1.75"))  # 2.9 % + 0.30
    assert linked[second.pk].fee == Decimal("3.88")
    (outside,) = [i for i in charges if not i.invoice_id]
    assert outside.exception == ItemException.NO_INVOICE and outside.amount == Decimal("7.00")
    assert payout.gross == Decimal("50.00") + Decimal("123.45") + Decimal("7.00")
    assert payout.fees == sum(i.fee for i in charges)
    assert payout.net == payout.amount == payout.gross - payout.fees
    assert payout.exception_count == 1 and payout.difference == 0

    html = client.get(f"/integrations/stripe/payouts/{payout.pk}/").content.decode()
    assert f'href="/invoices/{first.pk}/" data-invoice-link>{first.number}' in html
    assert f'href="/invoices/{second.pk}/" data-invoice-link>{second.number}' in html
    assert payout.fees == Decimal("6.13")  # 1.75 + 3.88 + 0.50 (the charge outside the invoices)
    assert 'data-fees>6.13 USD<' in html and 'data-amount>174.32 USD<' in html
    assert 'data-exception="no_invoice"' in html
    listing = client.get("/integrations/stripe/payouts/").content.decode()
    assert f'data-payout="{payout.stripe_id}"' in listing and "1 exception" in listing
    exceptions = client.get("/integrations/stripe/payouts/exceptions/").content.decode()
    assert outside.stripe_balance_transaction_id in exceptions

    # The CSV has the page's rows, amounts at the currency's places.
    response = client.get(f"/integrations/stripe/payouts/{payout.pk}/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode().lstrip("\ufeff"))))
    assert {r["balance_transaction"]: r["type"] for r in rows} == page_items(html)
    by_id = {r["balance_transaction"]: r for r in rows}
    assert by_id[linked[second.pk].stripe_balance_transaction_id]["invoice"] == second.number
    assert (by_id[linked[second.pk].stripe_balance_transaction_id]["amount"],
            by_id[linked[second.pk].stripe_balance_transaction_id]["fee"]) == ("123.45", "3.88")


def test_periodic_sync_makes_the_same_payout_and_a_second_sync_makes_nothing(connected):
    invoice, _ = paid_invoice(connected, 5000)
    connected.stripe.refund(Payment.objects.get(invoice=invoice).stripe_payment_intent_id, 1000)
    connected.stripe.drain()
    advance_to_payout(connected)
    webhook_made = sorted(Payout.objects.values_list("stripe_id", "amount", "status"))
    webhook_items = sorted(PayoutItem.objects.values_list("stripe_balance_transaction_id", "type", "net", "invoice"))
    assert {t for _, t, _, _ in webhook_items} == {"charge", "refund"}
    assert all(inv == invoice.pk for *_, inv in webhook_items)  # the refund too, through its payment
    PayoutItem.objects.all().delete()
    Payout.objects.all().delete()

    results = payouts_sync_all()
    assert results[connected.connection.pk]["payouts_created"] == 1
    assert sorted(Payout.objects.values_list("stripe_id", "amount", "status")) == webhook_made
    assert sorted(PayoutItem.objects.values_list("stripe_balance_transaction_id", "type", "net", "invoice")) == webhook_items
    again = payouts_sync_account(connection=connected.connection)
    assert (again["payouts"], again["payouts_created"], again["payouts_updated"], again["items_created"]) == (1, 0, 0, 0)
    assert PayoutItem.objects.count() == len(webhook_items)


def test_periodic_sync_of_each_account_is_a_recorded_run(connected):
    from stripe_integration.models import IntegrationRun, RunKind, RunStatus

    payouts_sync_all()
    runs = IntegrationRun.objects.filter(kind=RunKind.PAYOUT_SYNC)
    assert runs.count() == 1
    run = runs.get()
    assert run.status == RunStatus.COMPLETE and run.request_ids
    assert run.subject.startswith("payouts:acct_")


def test_amount_that_differs_from_the_crm_payment_is_an_exception(connected, client):
    invoice, payment = paid_invoice(connected, 5000)
    Payment.objects.filter(pk=payment.pk).update(amount=Decimal("49.00"))  # the CRM says otherwise
    advance_to_payout(connected)
    (item,) = PayoutItem.objects.filter(type="charge")
    assert item.exception == ItemException.AMOUNT_MISMATCH and item.invoice == invoice
    assert "50.00 USD" in item.exception_detail and "49.00 USD" in item.exception_detail
    page = client.get("/integrations/stripe/payouts/exceptions/").content.decode()
    assert 'data-exception="amount_mismatch"' in page
    filtered = client.get("/integrations/stripe/payouts/?exceptions=on").content.decode()
    assert f'data-payout="{item.payout.stripe_id}"' in filtered


def test_jpy_payout_amount_in_whole_yen(connected, client):
    invoice, _ = paid_invoice(connected, 5000, currency="jpy")
    advance_to_payout(connected)
    payout = Payout.objects.get()
    assert (payout.currency, payout.amount, payout.fees) == ("JPY", Decimal("4820"), Decimal("180"))
    html = client.get(f"/integrations/stripe/payouts/{payout.pk}/").content.decode()
    assert "4,820 JPY" in html and f"/invoices/{invoice.pk}/" in html


def test_another_business_gets_404_and_staff_403(connected, client, finance_b, django_user_model, business_a):
    paid_invoice(connected, 5000)
    advance_to_payout(connected)
    payout = Payout.objects.get()
    client.force_login(finance_b)
    assert client.get(f"/integrations/stripe/payouts/{payout.pk}/").status_code == 404
    assert client.get(f"/integrations/stripe/payouts/{payout.pk}/export.csv").status_code == 404
    assert payout.stripe_id not in client.get("/integrations/stripe/payouts/").content.decode()
    assert client.get("/integrations/stripe/payouts/?arrival_from=nope").status_code == 400


def _fake_payout(business, connection, n_items, suffix):
    from django.utils import timezone

    from finance.tests.factories import InvoiceFactory

    now = timezone.now()
    payout = Payout.objects.create(business=business, connection=connection, account=connection.stripe_user_id,
                                   stripe_id=f"po_fake{suffix}", amount=Decimal(n_items), currency="USD",
                                   status="paid", arrival_date=now, stripe_created=now, items_synced_at=now,
                                   item_count=n_items, gross=Decimal(n_items), net=Decimal(n_items))
    for i in range(n_items):
        invoice = InvoiceFactory(business=business)
        PayoutItem.objects.create(business=business, payout=payout, stripe_balance_transaction_id=f"txn_{suffix}_{i}",
                                  type="charge", amount=Decimal(1), net=Decimal(1), currency="USD", invoice=invoice)
    return payout


def _queries(client, url):
    with CaptureQueriesContext(db_connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_list_and_detail_pages_take_the_same_queries_for_5_or_50(client, finance_a, business_a):
    from stripe_integration.models import StripeConnection

    connection = StripeConnection.objects.create(business=business_a, stripe_user_id="acct_fake")
    small, big = _fake_payout(business_a, connection, 5, "s"), _fake_payout(business_a, connection, 50, "b")
    client.force_login(finance_a)
    assert _queries(client, f"/integrations/stripe/payouts/{small.pk}/") == _queries(
        client, f"/integrations/stripe/payouts/{big.pk}/")
    few = _queries(client, "/integrations/stripe/payouts/?status=paid&currency=usd")
    for n in range(2, 47):
        _fake_payout(business_a, connection, 0, f"x{n}")
    assert few == _queries(client, "/integrations/stripe/payouts/?status=paid&currency=usd")


def test_dispute_withdrawal_and_its_fee_are_listed_against_the_disputed_invoice(connected, client):
    from finance.models import Dispute
    from stripe_integration.tests.test_events_disputes import pay_disputed

    disputed, _, _ = pay_disputed(connected, seed=31)
    connected.platform.calm()
    other, _ = paid_invoice(connected, 20000)
    advance_to_payout(connected)
    payout = Payout.objects.get()
    rows = {(i.type, i.invoice_id, i.amount, i.fee) for i in payout.items.all()}
    assert rows == {("charge", disputed.pk, Decimal("50.00"), Decimal("1.75")),
                    ("adjustment", disputed.pk, Decimal("-50.00"), Decimal("15.00")),
                    ("charge", other.pk, Decimal("200.00"), Decimal("6.10"))}
    (adjustment,) = payout.items.filter(type="adjustment")
    assert adjustment.dispute == Dispute.objects.get() and adjustment.reporting_category == "dispute"
    assert payout.amount == payout.net == Decimal("177.15") and payout.exception_count == 0
    html = client.get(f"/integrations/stripe/payouts/{payout.pk}/").content.decode()
    assert 'data-type="adjustment"' in html and "15.00 USD" in html


def test_failed_payout_shows_failed_with_stripes_reason(connected, client):
    invoice, _ = paid_invoice(connected, 5000)
    connected.platform.control("POST", "/payouts/failures", {"account": connected.connection.stripe_user_id,
                                                             "failure_code": "account_closed"})
    advance_to_payout(connected)
    payout = Payout.objects.get()
    assert (payout.status, payout.failure_message) == ("failed", "The bank account has been closed.")
    assert payout.items.get().invoice == invoice
    html = client.get(f"/integrations/stripe/payouts/{payout.pk}/").content.decode()
    assert "Failed" in html and "The bank account has been closed." in html
    assert "Failed" in client.get("/integrations/stripe/payouts/?status=failed").content.decode()
    # Fixed: the next payout carries the amount back, which is no charge of an invoice.
    connected.platform.control("POST", "/payouts/failures", {"account": connected.connection.stripe_user_id,
                                                             "failure_code": None})
    connected.platform.control("POST", "/clock", {"advance_seconds": 2 * DAY})
    connected.stripe.drain()
    again = Payout.objects.exclude(pk=payout.pk).get()
    assert (again.status, again.amount, again.exception_count) == ("paid", payout.amount, 0)
    assert [(i.type, i.source_id, i.exception) for i in again.items.all()] == [
        ("payout_failure", payout.stripe_id, "")]


def test_admin_shows_a_business_only_its_payouts_read_only(client, finance_a, finance_b, staff_a, business_a):
    from stripe_integration.models import StripeConnection

    connection = StripeConnection.objects.create(business=business_a, stripe_user_id="acct_fake")
    payout = _fake_payout(business_a, connection, 2, "adm")
    client.force_login(finance_a)
    assert payout.stripe_id in client.get("/admin/stripe_integration/payout/").content.decode()
    page = client.get(f"/admin/stripe_integration/payout/{payout.pk}/change/")
    assert page.status_code == 200 and "txn_adm_0" in page.content.decode() and 'name="_save"' not in page.content.decode()
    assert client.get("/admin/stripe_integration/payout/add/").status_code == 403
    client.force_login(finance_b)
    assert payout.stripe_id not in client.get("/admin/stripe_integration/payout/").content.decode()
    assert client.get(f"/admin/stripe_integration/payout/{payout.pk}/change/").status_code in (302, 404)
    client.force_login(staff_a)  # staff: no admin, and no payout pages
    assert client.get("/integrations/stripe/payouts/").status_code == 403
