"""Generate invoice from the staff UI and the admin, the invoice pages and their actions,
and `manage.py stripe_invoice_unbilled`: roles, tenancy, messages instead of 500s, and the
"done means" walk: select, preview, send, open the hosted page, see the same total."""
import re
from decimal import Decimal
from io import StringIO

import pytest
import requests
from django.core.management import CommandError, call_command
from django.db import connection as db_connection
from django.urls import reverse

from finance.models import Billable, BillableStatus, Invoice, InvoicePushStatus, LineType
from finance.money import to_minor
from stripe_integration.invoicing import push as invoicing
from stripe_integration.tests import invoicing_helpers as h

pytestmark = pytest.mark.django_db

D = Decimal
PREVIEW, SEND = "/invoices/preview/", "/invoices/send/"


def _messages(resp):
    return [str(m) for m in resp.context["messages"]] if resp.context else []


@pytest.fixture
def env(client, finance_a, business_a, stripe_env):
    conn = h.connect(client, finance_a, business_a)
    contact = h.contact(business_a, name="Acme Buyer")
    bills = [h.billable(business_a, contact, description="Workshop", quantity=D("2"), unit_price=D("450.00"),
                        vat_rate=D("20"), discount_percent=D("10")),
             h.billable(business_a, contact, description="Report", unit_price=D("600.00"), vat_rate=D("20"))]
    return conn, contact, bills


def test_contact_page_offers_selection_to_finance_only(client, env, staff_a, business_a):
    conn, contact, bills = env
    page = client.get(reverse("ui:contact_detail", args=[contact.pk])).content.decode()
    assert page.count('name="billables"') == 2 and "Generate invoice" in page
    client.force_login(staff_a)
    page = client.get(reverse("ui:contact_detail", args=[contact.pk])).content.decode()
    assert 'name="billables"' not in page and "Generate invoice" not in page


def test_done_means_select_preview_send_and_see_the_same_total_on_the_hosted_page(
        client, env, django_capture_on_commit_callbacks):
    conn, contact, bills = env
    ids = [b.pk for b in bills]
    preview = client.post(PREVIEW, {"billables": ids, "next": f"/contacts/{contact.pk}/"})
    body = preview.content.decode()
    assert preview.status_code == 200 and "Acme Buyer · USD" in body
    assert "1,692.00 USD" in body  # 900 - 90 + 162 tax + 600 + 120 tax = 1,692
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(SEND, {"billables": ids, "po_number": "PO-1", "next": f"/contacts/{contact.pk}/"})
    invoice = Invoice.objects.get()
    assert sent.status_code == 302 and sent["Location"] == reverse("ui:invoice_detail", args=[invoice.pk])
    assert invoice.push_status == InvoicePushStatus.PUSHED and invoice.po_number == "PO-1"
    page = client.get(sent["Location"]).content.decode()
    assert invoice.stripe_number in page and invoice.hosted_invoice_url in page and "In Stripe" in page
    hosted = requests.get(invoice.hosted_invoice_url, timeout=10).text
    assert "Workshop" in hosted and "Report" in hosted
    assert re.search(r"id=total>\$1,692\.00<", hosted), hosted[-1500:]
    assert to_minor(invoice.total, "USD") == h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)["total"]


def test_preview_and_send_are_for_finance_roles(client, env, staff_a):
    conn, contact, bills = env
    client.force_login(staff_a)
    assert client.post(PREVIEW, {"billables": [bills[0].pk]}).status_code == 403
    assert client.post(SEND, {"billables": [bills[0].pk]}).status_code == 403
    assert not Invoice.objects.exists()


def test_other_business_billables_are_never_invoiced(client, env, business_b):
    conn, contact, bills = env
    theirs = h.billable(business_b, h.contact(business_b), description="Theirs")
    preview = client.post(PREVIEW, {"billables": [theirs.pk]})
    assert "Theirs" not in preview.content.decode()
    resp = client.post(SEND, {"billables": [theirs.pk, "junk"]}, follow=True)
    assert resp.status_code == 200 and any("Nothing to invoice" in m for m in _messages(resp))
    theirs.refresh_from_db()
    assert theirs.status == BillableStatus.UNBILLED and not Invoice.objects.exists()


def test_sending_invoiced_billables_again_is_a_message(client, env, django_capture_on_commit_callbacks):
    conn, contact, bills = env
    ids = [b.pk for b in bills]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(SEND, {"billables": ids})
    resp = client.post(SEND, {"billables": ids}, follow=True)
    assert any("already invoiced on INV-000001" in m for m in _messages(resp)), _messages(resp)
    assert Invoice.objects.count() == 1


def test_invoice_page_actions_void_from_the_ui(client, env, django_capture_on_commit_callbacks, staff_a):
    conn, contact, bills = env
    with django_capture_on_commit_callbacks(execute=True):
        client.post(SEND, {"billables": [b.pk for b in bills]})
    invoice = Invoice.objects.get()
    url = reverse("ui:invoice_detail", args=[invoice.pk])
    page = client.get(url).content.decode()
    for label in ("Mark paid outside Stripe", "Resend"):
        assert f">{label}</button>" in page
    for label in ("Void", "Mark uncollectible"):  # links to their confirmation pages
        assert f">{label}…</a>" in page
    assert "Delete draft" not in page
    confirmed = {"action": "void", "confirmed": "yes"}
    resp = client.post(reverse("ui:invoice_action", args=[invoice.pk]), confirmed, follow=True)
    assert any("is void" in m for m in _messages(resp))
    assert set(Billable.objects.values_list("status", flat=True)) == {BillableStatus.UNBILLED}
    resp = client.post(reverse("ui:invoice_action", args=[invoice.pk]), confirmed, follow=True)
    assert resp.status_code == 200 and any("not possible" in m for m in _messages(resp))
    client.force_login(staff_a)
    assert client.get(url).status_code == 200 and ">Void…</a>" not in client.get(url).content.decode()
    assert client.post(reverse("ui:invoice_action", args=[invoice.pk]), confirmed).status_code == 403


def test_invoice_page_of_other_business_is_not_found(client, env, finance_b, business_b):
    conn, contact, bills = env
    invoice = invoicing.invoices_generate(business=contact.business, billable_ids=[bills[0].pk], push=False).invoices[0]
    client.force_login(finance_b)
    assert client.get(reverse("ui:invoice_detail", args=[invoice.pk])).status_code == 404
    assert client.post(reverse("ui:invoice_action", args=[invoice.pk]), {"action": "void"}).status_code == 404


# --- admin ------------------------------------------------------------------------------

def test_admin_generate_invoice_action_previews_then_sends(client, env, django_capture_on_commit_callbacks):
    conn, contact, bills = env
    url = reverse("admin:finance_billable_changelist")
    data = {"action": "generate_invoice", "_selected_action": [b.pk for b in bills]}
    preview = client.post(url, data)
    assert preview.status_code == 200 and "Send to Stripe" in preview.content.decode()
    assert "1,692.00 USD" in preview.content.decode() and not Invoice.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {**data, "apply": "Send to Stripe", "po_number": "PO-9"}, follow=True)
    assert any("created INV-000001" in m for m in _messages(done))
    invoice = Invoice.objects.get()
    assert invoice.push_status == InvoicePushStatus.PUSHED and invoice.po_number == "PO-9"


def test_admin_shows_failure_with_stripes_message_and_retry(client, env, stripe_env,
                                                           django_capture_on_commit_callbacks):
    conn, contact, bills = env
    stripe_env.fault(r"^POST /v1/invoices$", kind="500")
    invoice = invoicing.invoices_generate(business=contact.business, billable_ids=[b.pk for b in bills], push=False).invoices[0]
    invoicing.invoice_push(invoice_id=invoice.pk)
    change = reverse("admin:finance_invoice_change", args=[invoice.pk])
    page = client.get(change).content.decode()
    assert "Stripe could not be reached or had an error" in page and 'value="retry"' in page
    stripe_env.clear_faults()
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(reverse("admin:finance_invoice_stripe_action", args=[invoice.pk]),
                           {"_stripe_action": "retry"}, follow=True)
    assert resp.status_code == 200
    invoice.refresh_from_db()
    assert invoice.push_status == InvoicePushStatus.PUSHED


def test_admin_shows_mismatch_differences(client, env, business_a):
    conn, contact, bills = env
    b = h.billable(business_a, contact, unit_price=D("0.03"), vat_rate=D("20"), prices_include_vat=True)
    invoice = invoicing.invoices_generate(business=business_a, billable_ids=[b.pk], push=False).invoices[0]
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "mismatch"
    page = client.get(reverse("admin:finance_invoice_change", args=[invoice.pk])).content.decode()
    assert "<td>tax</td><td>0.01 USD</td><td>0.00 USD</td><td>-0.01 USD</td>" in page
    assert 'value="delete_draft"' in page


def test_admin_list_action_voids_invoices(client, env, django_capture_on_commit_callbacks):
    conn, contact, bills = env
    with django_capture_on_commit_callbacks(execute=True):
        client.post(SEND, {"billables": [b.pk for b in bills]})
    invoice = Invoice.objects.get()
    resp = client.post(reverse("admin:finance_invoice_changelist"),
                       {"action": "stripe_void", "_selected_action": [invoice.pk], "confirmed": "yes"}, follow=True)
    assert any("is void" in m for m in _messages(resp))
    invoice.refresh_from_db()
    assert invoice.status == "void"


# --- the month-end command ----------------------------------------------------------------

def _run(**kwargs):
    out, err = StringIO(), StringIO()
    call_command("stripe_invoice_unbilled", stdout=out, stderr=err, **kwargs)
    return out.getvalue()


def test_command_invoices_everything_unbilled_once(env, business_a, stripe_env):
    conn, contact, bills = env
    other = h.contact(business_a, name="Other")
    h.billable(business_a, other, currency="EUR", unit_price=D("80"))
    h.billable(business_a, other, currency="JPY", unit_price=D("5000"))
    h.billable(business_a, other, unit_price=D("70"))
    h.billable(business_a, other, unit_price=D("5"), line_type=LineType.CREDIT)
    out = _run(business=business_a.slug)
    assert "made 4 invoice(s)" in out and "4 pushed" in out
    assert "EUR: 80.00 EUR in 1 invoice(s)" in out and "JPY: 5,000 JPY in 1 invoice(s)" in out
    assert "USD: 1,757.00 USD in 2 invoice(s)" in out  # 1,692.00 + (70.00 - a 5.00 credit)
    creates = len(stripe_env.requests(method="POST", path="/v1/invoices"))
    out = _run(business=business_a.slug)
    assert "made 0 invoice(s)" in out
    assert len(stripe_env.requests(method="POST", path="/v1/invoices")) == creates


def test_command_filters_by_contact_and_currency(env, business_a):
    conn, contact, bills = env
    other = h.contact(business_a, name="Other")
    h.billable(business_a, other, currency="EUR", unit_price=D("80"))
    h.billable(business_a, other, unit_price=D("70"))
    out = _run(business=business_a.slug, contact=other.pk, currency="eur")
    assert "made 1 invoice(s)" in out and "EUR: 80.00 EUR" in out
    assert Billable.objects.filter(status=BillableStatus.UNBILLED).count() == 3


def test_command_resumes_an_interrupted_run(env, business_a, stripe_env):
    conn, contact, bills = env

    class Interrupted(BaseException):
        pass

    def ctrl_c(execute, sql, params, many, context):
        if sql.startswith('UPDATE "finance_invoice"') and "lines" in (params or ()):
            raise Interrupted()
        return execute(sql, params, many, context)

    with db_connection.execute_wrapper(ctrl_c), pytest.raises(Interrupted):
        _run(business=business_a.slug)
    assert Invoice.objects.get().push_status == InvoicePushStatus.PUSHING
    out = _run(business=business_a.slug)
    assert "made 0 invoice(s), resumed 1 unfinished" in out and "1 pushed" in out
    invoice = Invoice.objects.get()
    assert [r.id for r in h.stripe_invoices(conn, invoice.stripe_customer_id)] == [invoice.stripe_invoice_id]
    assert len(stripe_env.requests(method="POST", path="/v1/invoices")) == 1


def test_command_reports_failures_and_exits_non_zero(env, business_a, stripe_env):
    stripe_env.fault(r"^POST /v1/invoices$", kind="500")
    with pytest.raises(CommandError, match="1 invoice"):
        _run(business=business_a.slug)


def test_command_refuses_unknown_business_contact_currency(env, business_a):
    with pytest.raises(CommandError, match="No business"):
        _run(business="nope")
    with pytest.raises(CommandError, match="no contact"):
        _run(business=business_a.slug, contact=999999)
    with pytest.raises(CommandError, match="not supported|three-letter"):
        _run(business=business_a.slug, currency="XXX")


def test_settings_page_saves_the_invoice_settings(client, env, business_a):
    page = client.get("/integrations/stripe/").content.decode()
    for name in ("collection_method", "days_until_due", "send_due_date", "only_approved", "excluded_line_types",
                 "line_order", "po_number_field", "footer"):
        assert f'name="{name}"' in page, name
    resp = client.post("/integrations/stripe/settings/", {
        "auto_create_customers": "on", "collection_method": "send_invoice", "days_until_due": "14",
        "only_approved": "on", "excluded_line_types": ["credit"], "line_order": "service",
        "po_number_field": "Order", "footer": "Bank: 12-34"})
    assert resp.status_code == 302
    s = h.settings_for(business_a)
    assert (s.days_until_due, s.send_due_date, s.only_approved, s.excluded_line_types, s.line_order,
            s.po_number_field, s.footer) == (14, False, True, ["credit"], "service", "Order", "Bank: 12-34")
    resp = client.post("/integrations/stripe/settings/", {"collection_method": "send_invoice", "days_until_due": "-1",
                                                           "excluded_line_types": ["bogus"], "line_order": "none"})
    assert resp.status_code == 200 and resp.context["settings_form"].errors.keys() >= {"days_until_due", "excluded_line_types"}


def test_settings_line_types_left_out_are_checkboxes_with_a_warning_for_charges(client, env, business_a):
    page = client.get("/integrations/stripe/").content.decode()
    assert 'type="checkbox" name="excluded_line_types" value="charge"' in page
    assert 'type="checkbox" name="excluded_line_types" value="credit"' in page
    assert 'data-warning="charges-left-out"' not in page
    base = {"collection_method": "send_invoice", "days_until_due": "30", "line_order": "service"}
    resp = client.post("/integrations/stripe/settings/", {**base, "excluded_line_types": ["credit"]}, follow=True)
    assert not any("Charges are left out" in m for m in _messages(resp))
    resp = client.post("/integrations/stripe/settings/", {**base, "excluded_line_types": ["charge"]}, follow=True)
    assert h.settings_for(business_a).excluded_line_types == ["charge"]
    assert any("Charges are left out of invoices" in m for m in _messages(resp))
    body = resp.content.decode()
    assert 'data-warning="charges-left-out"' in body
    assert 'value="charge" checked' in body or re.search(r'value="charge"[^>]*checked', body)
    # Unticking all leaves nothing out, and the warning goes.
    resp = client.post("/integrations/stripe/settings/", base, follow=True)
    assert h.settings_for(business_a).excluded_line_types == []
    assert 'data-warning="charges-left-out"' not in resp.content.decode()
