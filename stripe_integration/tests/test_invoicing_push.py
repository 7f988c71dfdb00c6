"""The push of an invoice: what Stripe receives (lines, prices, quantities, VAT, discounts,
metadata, settings), that its totals equal the CRM's to the minor unit in every currency
tested, the calls it costs, and the database queries it costs."""
import math
from decimal import Decimal

import pytest
import requests
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from finance.models import BillableStatus, Invoice, InvoiceLine, InvoicePushStatus, LineType
from finance.money import to_minor
from services.services import service_create
from stripe_integration.catalog import sync as catalog
from stripe_integration.invoicing import push as invoicing
from stripe_integration.tests import invoicing_helpers as h

pytestmark = pytest.mark.django_db

D = Decimal
INVOICE_CALLS = ("/v1/invoices", "add_lines", "finalize", "send", "pay")


def _push_all(business, ids, **kwargs):
    result = invoicing.invoices_generate(business=business, billable_ids=ids, push=False, **kwargs)
    outcomes = [invoicing.invoice_push(invoice_id=inv.pk) for inv in result.invoices]
    assert all(o.outcome == "pushed" for o in outcomes), outcomes
    return [Invoice.objects.get(pk=inv.pk) for inv in result.invoices]


def _invoice_calls(stripe_env, stripe_id=None):
    rows = [r for r in stripe_env.requests(method="POST")
            if r["path"] == "/v1/invoices" or r["path"].startswith("/v1/invoices/")]
    if stripe_id:
        rows = [r for r in rows if r["path"] == "/v1/invoices" or stripe_id in r["path"]]
    return rows


@pytest.fixture
def env(client, finance_a, business_a, stripe_env):
    conn = h.connect(client, finance_a, business_a)
    return conn, h.contact(business_a), stripe_env


def test_push_sends_lines_quantities_vat_and_discounts_as_stripe_objects(env, business_a):
    conn, contact, stripe_env = env
    bills = [
        h.billable(business_a, contact, description="Workshop", quantity=D("2"), unit_price=D("19.99"), vat_rate=D("20"),
                   discount_percent=D("10")),
        h.billable(business_a, contact, description="Travel", quantity=D("1.5"), unit_price=D("40"), vat_rate=D("20")),
        h.billable(business_a, contact, description="Loyalty", unit_price=D("15"), discount_amount=D("5")),
    ]
    stripe_env.mark()
    (invoice,) = _push_all(business_a, [b.pk for b in bills])
    raw = h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)
    lines = {ln["description"]: ln for ln in raw["lines"]["data"]}
    assert lines["Workshop"]["quantity"] == 2 and lines["Workshop"]["amount"] == 3998
    assert lines["Travel"]["quantity_decimal"] == "1.5" and lines["Travel"]["amount"] == 6000
    assert [d["amount"] for d in lines["Workshop"]["discount_amounts"]] == [400]
    assert [d["amount"] for d in lines["Loyalty"]["discount_amounts"]] == [500]
    assert [t["amount"] for t in lines["Workshop"]["taxes"]] == [720]  # (39.98 - 4.00) x 20 %
    assert lines["Loyalty"]["taxes"] == []
    rate_id = lines["Workshop"]["taxes"][0]["tax_rate_details"]["tax_rate"]
    assert lines["Travel"]["taxes"][0]["tax_rate_details"]["tax_rate"] == rate_id  # one rate, reused
    # The totals, to the minor unit.
    assert (raw["subtotal"], raw["total"]) == (3598 + 6000 + 1000, 4318 + 7200 + 1000)
    assert invoice.total == D("125.18") and to_minor(invoice.total, "USD") == raw["total"]
    assert raw["metadata"]["crm_invoice_id"] == str(invoice.pk) and raw["metadata"]["crm_invoice_number"] == invoice.number
    create = stripe_env.requests(method="POST", path="/v1/invoices")
    assert len(create) == 1 and invoice.push_step == "sent"
    assert [r["path"].rsplit("/", 1)[-1] for r in _invoice_calls(stripe_env)] == ["invoices", "add_lines", "finalize", "send"]


def test_push_saves_stripe_number_status_due_date_and_links(env, business_a):
    conn, contact, stripe_env = env
    h.settings_for(business_a, days_until_due=14, send_due_date=False)
    (invoice,) = _push_all(business_a, [h.billable(business_a, contact).pk])
    raw = h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)
    assert invoice.status == "open" and invoice.push_status == InvoicePushStatus.PUSHED
    assert invoice.stripe_number == raw["number"] and raw["number"]
    assert invoice.hosted_invoice_url == raw["hosted_invoice_url"] and invoice.invoice_pdf_url == raw["invoice_pdf"]
    assert invoice.due_date is not None and raw["due_date"] - raw["status_transitions"]["finalized_at"] == 14 * 86400
    assert invoice.finalized_at is not None and invoice.amount_remaining == D("100.00")
    # Automatic collection is on by default (IntegrationSettings.automatic_collection).
    assert raw["collection_method"] == "send_invoice" and raw["auto_advance"] is True
    sent = [r for r in stripe_env.requests(method="POST") if r["path"].endswith("/send")]
    assert len(sent) == 1


def test_push_uses_catalog_price_for_list_price_and_inline_price_for_negotiated(env, business_a):
    conn, contact, stripe_env = env
    service = service_create(business=business_a, code="AUDIT", name="Security audit", prices={"USD": D("450.00")})
    catalog.service_sync(connection=conn, service=service)
    listed = h.billable(business_a, contact, service=service, unit_price=None, description="")
    negotiated = h.billable(business_a, contact, service=service, unit_price=D("400.00"), description="Audit (deal)")
    adhoc = h.billable(business_a, contact, unit_price=D("12.35"), quantity=D("2"), description="Ad hoc")
    assert listed.uses_list_price and not negotiated.uses_list_price
    (invoice,) = _push_all(business_a, [listed.pk, negotiated.pk, adhoc.pk])
    price_id = catalog.price_id_for(connection=conn, service=service, currency="USD", amount=D("450.00"))
    lines = {ln["description"]: ln for ln in h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)["lines"]["data"]}
    assert lines["Security audit"]["pricing"]["price_details"]["price"] == price_id
    deal = lines["Audit (deal)"]["pricing"]
    assert deal["price_details"]["price"] != price_id and deal["unit_amount_decimal"] == "40000"
    assert deal["price_details"]["product"] == service.stripe_syncs.get().stripe_product_id  # the service's product
    assert lines["Ad hoc"]["pricing"]["unit_amount_decimal"] == "1235" and lines["Ad hoc"]["amount"] == 2470


def test_tax_rates_and_coupons_are_made_once_and_reused(env, business_a):
    conn, contact, stripe_env = env
    for i in range(2):
        ids = [h.billable(business_a, contact, vat_rate=D("20"), discount_percent=D("10"), description=f"A{i}").pk,
               h.billable(business_a, contact, vat_rate=D("5"), prices_include_vat=True, description=f"B{i}").pk]
        _push_all(business_a, ids)
    rates = stripe_env.requests(method="POST", path="/v1/tax_rates")
    assert len(rates) == 2  # 20 % exclusive and 5 % inclusive, each once for two invoices
    assert len(stripe_env.requests(method="POST", path="/v1/coupons")) == 1


@pytest.mark.parametrize("currency,quantity,unit_price,vat,minor_total", [
    ("USD", "3", "19.99", "20", 7196),     # 59.97 + 11.99 tax (11.994)
    ("EUR", "2", "45.50", "19", 10829),    # 91.00 + 17.29 tax
    ("JPY", "3", "1500", "10", 4950),      # zero-decimal: minor = yen
    ("KRW", "2", "55000", "10", 121000),   # zero-decimal
    ("KWD", "2", "12.50", "10", 27500),    # three-decimal: minor = fils (x1000)
    ("BHD", "1", "7.50", "10", 8250),      # three-decimal
])
def test_push_totals_match_in_every_currency(env, business_a, currency, quantity, unit_price, vat, minor_total):
    conn, contact, stripe_env = env
    b = h.billable(business_a, contact, currency=currency, quantity=D(quantity), unit_price=D(unit_price), vat_rate=D(vat))
    (invoice,) = _push_all(business_a, [b.pk])
    raw = h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)
    assert raw["currency"] == currency.lower()
    assert raw["total"] == minor_total == to_minor(invoice.total, currency)
    assert sum(t["amount"] for t in raw["total_taxes"]) == to_minor(invoice.tax_total, currency)


def test_push_three_decimal_unit_price_is_sent_exactly(env, business_a):
    """KWD 3 x 1.235: Stripe would round the line to 3705 fils, the app charges 3.71 KWD
    (Stripe needs the last digit 0): the line goes as its exact amount, quantity shown."""
    conn, contact, stripe_env = env
    b = h.billable(business_a, contact, currency="KWD", quantity=D("3"), unit_price=D("1.235"), description="Hours")
    (invoice,) = _push_all(business_a, [b.pk])
    (line,) = h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)["lines"]["data"]
    assert line["amount"] == 3710 == to_minor(invoice.total, "KWD")
    assert "3 x 1.235 KWD" in line["description"]


def test_push_credit_line_goes_as_negative_amount(env, business_a):
    conn, contact, stripe_env = env
    charge = h.billable(business_a, contact, unit_price=D("200"), vat_rate=D("20"))
    credit = h.billable(business_a, contact, unit_price=D("50"), quantity=D("2"), vat_rate=D("20"),
                        discount_percent=D("10"), line_type=LineType.CREDIT, description="Goodwill")
    (invoice,) = _push_all(business_a, [charge.pk, credit.pk])
    raw = h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)
    credit_line = next(ln for ln in raw["lines"]["data"] if ln["description"].startswith("Goodwill"))
    assert credit_line["amount"] == -9000 and "less 10.00 USD discount" in credit_line["description"]
    assert raw["total"] == to_minor(invoice.total, "USD") == 24000 - 10800


def test_push_mismatch_stops_before_finalizing_and_shows_the_difference(env, business_a):
    """0.03 USD at 20 % VAT included: the app rounds the tax half-up (0.005 -> 0.01), Stripe
    extracts it from the rounded taxable amount (0.025 -> 0.03, tax 0.00). A real rounding
    difference, caught before anything reaches the customer."""
    conn, contact, stripe_env = env
    b = h.billable(business_a, contact, unit_price=D("0.03"), vat_rate=D("20"), prices_include_vat=True)
    result = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk], push=False)
    push = invoicing.invoice_push(invoice_id=result.invoices[0].pk)
    invoice = Invoice.objects.get()
    assert push.outcome == "mismatch" and invoice.push_status == InvoicePushStatus.MISMATCH
    assert invoice.push_mismatch["tax"] == {"crm": 1, "stripe": 0, "difference": -1}
    assert "tax CRM 0.01 vs Stripe 0.00" in invoice.last_error
    assert not [r for r in stripe_env.requests(method="POST") if r["path"].endswith(("/finalize", "/send"))]
    assert h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)["status"] == "draft"
    b.refresh_from_db()
    assert b.status == BillableStatus.INVOICED  # until the draft is deleted (actions)


def test_push_251_lines_make_two_invoices_of_at_most_5_calls(env, business_a):
    conn, contact, stripe_env = env
    ids = [h.billable(business_a, contact, description=f"Item {i}", unit_price=D("1.00")).pk for i in range(251)]
    invoices = _push_all(business_a, ids)
    assert sorted(inv.lines.count() for inv in invoices) == [1, 250]
    for inv in invoices:
        assert len(_invoice_calls(stripe_env, inv.stripe_invoice_id)) - 0 <= 5
        assert len([r for r in _invoice_calls(stripe_env, inv.stripe_invoice_id) if r["path"] != "/v1/invoices"]) == 3
    assert len(stripe_env.requests(method="POST", path="/v1/invoices")) == 2
    assert sum(to_minor(inv.total, "USD") for inv in invoices) == 25100


def test_push_settings_footer_po_number_due_date_and_line_order(env, business_a):
    conn, contact, stripe_env = env
    h.settings_for(business_a, footer="Thank you!", po_number_field="PO", line_order="amount", send_due_date=True,
                   days_until_due=10)
    small = h.billable(business_a, contact, unit_price=D("10"), description="Small")
    big = h.billable(business_a, contact, unit_price=D("500"), description="Big")
    (invoice,) = _push_all(business_a, [small.pk, big.pk], po_number="PO-4711")
    raw = h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)
    assert raw["footer"] == "Thank you!" and raw["custom_fields"] == [{"name": "PO", "value": "PO-4711"}]
    assert [ln["description"] for ln in raw["lines"]["data"]] == ["Big", "Small"]
    assert invoice.days_until_due is None and invoice.due_date == h.local_date(raw["due_date"])


def test_excluded_line_types_are_left_unbilled(env, business_a):
    conn, contact, stripe_env = env
    h.settings_for(business_a, excluded_line_types=["credit"])
    charge = h.billable(business_a, contact, unit_price=D("100"))
    credit = h.billable(business_a, contact, unit_price=D("10"), line_type=LineType.CREDIT)
    result = invoicing.invoices_generate(business=business_a, billable_ids=[charge.pk, credit.pk], push=False)
    assert [b.pk for b, _ in result.left_out] == [credit.pk]
    credit.refresh_from_db()
    assert credit.status == BillableStatus.UNBILLED and result.invoices[0].total == D("100.00")


def test_only_approved_invoices_are_sent(env, business_a):
    conn, contact, stripe_env = env
    h.settings_for(business_a, only_approved=True)
    result = invoicing.invoices_generate(business=business_a, billable_ids=[h.billable(business_a, contact).pk], push=False)
    invoice = result.invoices[0]
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "awaiting_approval"
    assert not stripe_env.requests(method="POST", path="/v1/invoices")
    Invoice.objects.filter(pk=invoice.pk).update(approved=True)
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"


def _attach_card(stripe_env, conn, customer_id):
    headers = {"Authorization": f"Bearer {stripe_env.secret_key}", "Stripe-Account": conn.stripe_user_id}
    base = stripe_env.base_url
    pm = requests.post(f"{base}/v1/payment_methods/pm_card_visa/attach", data={"customer": customer_id},
                       headers=headers, timeout=10).json()["id"]
    requests.post(f"{base}/v1/customers/{customer_id}", headers=headers, timeout=10,
                  data={"invoice_settings[default_payment_method]": pm}).raise_for_status()


def test_charge_automatically_charges_a_saved_card(env, business_a):
    from stripe_integration.customers.links import customer_ensure

    conn, contact, stripe_env = env
    h.settings_for(business_a, collection_method="charge_automatically")
    _attach_card(stripe_env, conn, customer_ensure(connection=conn, contact=contact))
    b = h.billable(business_a, contact)
    (invoice,) = _push_all(business_a, [b.pk])
    assert invoice.status == "paid" and invoice.collection_method == "charge_automatically"
    assert stripe_env.requests(method="POST", path=f"/v1/invoices/{invoice.stripe_invoice_id}/pay")
    b.refresh_from_db()
    assert b.status == BillableStatus.PAID


def test_charge_automatically_without_a_saved_card_sends_the_invoice(env, business_a):
    conn, contact, stripe_env = env
    h.settings_for(business_a, collection_method="charge_automatically", days_until_due=7)
    (invoice,) = _push_all(business_a, [h.billable(business_a, contact).pk])
    assert (invoice.status, invoice.collection_method) == ("open", "send_invoice")
    assert h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)["collection_method"] == "send_invoice"


def test_push_without_connection_or_customer_fails_with_a_clear_message(env, business_a, business_b, finance_b):
    conn, contact, stripe_env = env
    h.settings_for(business_a, auto_create_customers=False)
    result = invoicing.invoices_generate(business=business_a, billable_ids=[h.billable(business_a, contact).pk], push=False)
    push = invoicing.invoice_push(invoice_id=result.invoices[0].pk)
    assert push.outcome == "failed" and "has no Stripe customer" in push.message
    other = h.contact(business_b)
    result = invoicing.invoices_generate(business=business_b, billable_ids=[h.billable(business_b, other).pk], push=False)
    push = invoicing.invoice_push(invoice_id=result.invoices[0].pk)
    assert push.outcome == "failed" and "not connected to Stripe" in push.message
    assert Invoice.objects.get(pk=result.invoices[0].pk).last_error == push.message


def _generate_and_push_queries(business, contact, n, service):
    ids = [h.billable(business, contact, description=f"L{i}", service=service if i % 2 else None,
                      unit_price=None if i % 2 else D("10"), vat_rate=D("20") if i % 3 else D("0"),
                      discount_percent=D("5") if i % 4 == 0 else None).pk for i in range(n)]
    with CaptureQueriesContext(db_connection) as ctx:
        result = invoicing.invoices_generate(business=business, billable_ids=ids, push=False)
        assert invoicing.invoice_push(invoice_id=result.invoices[0].pk).outcome == "pushed"
    inserts = sum(1 for q in ctx.captured_queries if q["sql"].startswith('INSERT INTO "finance_invoiceline"'))
    return len(ctx.captured_queries), inserts


def test_generating_one_invoice_costs_the_same_queries_for_5_and_100_lines(env, business_a):
    conn, contact, stripe_env = env
    service = service_create(business=business_a, code="HOUR", name="Hour", prices={"USD": D("80.00")})
    catalog.service_sync(connection=conn, service=service)
    _generate_and_push_queries(business_a, contact, 3, service)  # tax rates, coupon, product: made once
    few, few_inserts = _generate_and_push_queries(business_a, contact, 5, service)
    many, many_inserts = _generate_and_push_queries(business_a, contact, 100, service)
    # Lines are inserted in bulk: one INSERT on PostgreSQL; SQLite alone caps a statement
    # at 999 parameters (Django's conservative default), so there 100 lines take 2.
    fields = [f for f in InvoiceLine._meta.concrete_fields if not f.primary_key]
    batch = db_connection.ops.bulk_batch_size(fields, [None] * 100)
    assert (few_inserts, many_inserts) == (1, math.ceil(100 / batch))
    assert many - many_inserts == few - few_inserts


def test_push_with_a_due_date_after_a_test_that_moved_the_sandbox_clock(client, finance_a, business_a, stripe_env):
    """A month moved on the shared sandbox's clock by an earlier test (the finance browser
    test moves 31 days) is undone by `stripe_env` between tests: the absolute due date
    (today + 30 days, send_due_date) is in Stripe's future again."""
    import urllib.request

    req = urllib.request.Request(stripe_env.base_url + "/_sandbox/clock", data=b'{"advance_seconds": 2678400}',
                                 method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
    stripe_env._call("POST", "/_sandbox/clock/reset")  # what the fixture's teardown does
    conn = h.connect(client, finance_a, business_a)
    contact = h.contact(business_a)
    h.settings_for(business_a, send_due_date=True)
    bill = h.billable(business_a, contact)
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[bill.pk], push=False).invoices[0]
    assert invoice.due_date and invoice.days_until_due is None
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
