""""Invoice everything unbilled" from the staff UI: the preview is what the run makes, the
run pushes each invoice and shows its progress, a second run makes nothing, and a change
between preview and start makes nothing either."""
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from crm.audit import AuditEntry
from finance.models import Billable, BillableStatus, Invoice, InvoicePushStatus, LineType
from stripe_integration.invoicing import unbilled_run
from stripe_integration.models import InvoiceRun
from stripe_integration.tests import invoicing_helpers as h

pytestmark = pytest.mark.django_db

URL = "/invoices/unbilled/"


@pytest.fixture
def month(client, finance_a, business_a, stripe_env):
    h.connect(client, finance_a, business_a)
    ada, bob = h.contact(business_a, name="Ada"), h.contact(business_a, name="Bob")
    h.billable(business_a, ada, unit_price=Decimal("100.00"))
    h.billable(business_a, ada, unit_price=Decimal("50.00"))
    h.billable(business_a, ada, unit_price=Decimal("30.00"), currency="EUR")
    h.billable(business_a, bob, unit_price=Decimal("15000"), currency="JPY")
    # Bob's USD credit is larger than his charges: left out, with the reason
    h.billable(business_a, bob, unit_price=Decimal("20.00"))
    h.billable(business_a, bob, unit_price=Decimal("80.00"), line_type=LineType.CREDIT, description="Goodwill")
    return ada, bob


def _fingerprint(html):
    return re.search(r'name="fingerprint" value="([0-9a-f]+)"', html).group(1)


def _planned(html):
    return re.findall(r'<tr data-planned="[^"]+"><td>([^<]+)</td><td>([A-Z]{3})</td>.*?data-total>([^<]+)</td>', html, re.S)


def test_invoice_run_preview_matches_what_it_creates(client, month, finance_a, business_a,
                                                     django_capture_on_commit_callbacks):
    html = client.get(URL).content.decode()
    planned = _planned(html)
    assert planned == [("Ada", "EUR", "30.00 EUR"), ("Ada", "USD", "150.00 USD"), ("Bob", "JPY", "15,000 JPY")]
    assert "2 billables: the credits exceed the charges for this customer and currency" in html
    assert Invoice.objects.count() == 0  # a preview writes nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"fingerprint": _fingerprint(html)}, REMOTE_ADDR="203.0.113.5")
    run = InvoiceRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("ui:invoice_run", args=[run.pk])
    made = sorted((i.bill_to.name, i.currency, i.total) for i in Invoice.objects.all())
    assert made == [("Ada", "EUR", Decimal("30.00")), ("Ada", "USD", Decimal("150.00")), ("Bob", "JPY", Decimal("15000"))]
    # eager Celery: the pushes ran on commit, inside the POST; the page says it is done
    run.refresh_from_db()
    assert (run.status, run.made, run.pushed, run.failed, run.total) == ("done", 3, 3, 0, 3)
    assert set(Invoice.objects.values_list("push_status", flat=True)) == {InvoicePushStatus.PUSHED}
    page = client.get(response["Location"]).content.decode()
    assert 'data-run-status="done"' in page and "3 of 3 invoices handled" in page and 'http-equiv="refresh"' not in page
    assert "USD: 150.00 USD in 1 invoice(s)" in page
    assert AuditEntry.objects.filter(action="invoice_create", user=finance_a, ip_address="203.0.113.5").count() == 3
    assert Billable.objects.filter(status=BillableStatus.UNBILLED).count() == 2  # Bob's USD stays unbilled

    # a second run creates nothing
    html = client.get(URL).content.decode()
    assert "data-nothing" in html and 'name="fingerprint"' not in html
    response = client.post(URL, {"fingerprint": unbilled_run.unbilled_preview(business=business_a).fingerprint}, follow=True)
    assert "No invoice was made" in response.content.decode()
    assert Invoice.objects.count() == 3 and InvoiceRun.objects.count() == 1


def test_invoice_run_refuses_when_billables_changed_since_preview(client, month, business_a):
    ada, _ = month
    fingerprint = _fingerprint(client.get(URL).content.decode())
    h.billable(business_a, ada, unit_price=Decimal("1.00"))  # added after the preview
    response = client.post(URL, {"fingerprint": fingerprint}, follow=True)
    assert "changed since the preview" in response.content.decode()
    assert Invoice.objects.count() == 0 and InvoiceRun.objects.count() == 0
    assert client.post(URL, {"fingerprint": "forged"}).status_code == 302
    assert Invoice.objects.count() == 0


def test_invoice_run_progress_page_refreshes_while_running(client, month, finance_a, business_a):
    run = InvoiceRun.objects.create(business=business_a, started_by=finance_a, invoice_ids=[1, 2, 3, 4],
                                    outcomes={"1": "pushed", "2": "failed"}, made=4)
    html = client.get(reverse("ui:invoice_run", args=[run.pk])).content.decode()
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in html and "2 of 4 done (50 %)" in html
    assert 'data-pushed>1<' in html and 'data-failed>1 ' in html
    # another run cannot start meanwhile
    page = client.get(URL).content.decode()
    assert 'name="fingerprint"' not in page and f"Run {run.pk} is under way" in page
    fingerprint = unbilled_run.unbilled_preview(business=business_a).fingerprint
    response = client.post(URL, {"fingerprint": fingerprint}, follow=True)
    assert f"Invoice run {run.pk} is still running" in response.content.decode()
    assert Invoice.objects.count() == 0


def test_invoice_run_push_again_counts_each_invoice_once(client, month, finance_a, business_a,
                                                        django_capture_on_commit_callbacks):
    fingerprint = unbilled_run.unbilled_preview(business=business_a).fingerprint
    with django_capture_on_commit_callbacks(execute=True):
        run = unbilled_run.invoice_run_start(business=business_a, user=finance_a, fingerprint=fingerprint)
    run.refresh_from_db()
    assert run.status == "done" and run.pushed == 3
    InvoiceRun.objects.filter(pk=run.pk).update(status="running")  # as if the task were delivered again
    run = unbilled_run.invoice_run_push(run_id=run.pk)
    assert (run.status, run.pushed, run.failed, len(run.outcomes)) == ("done", 3, 0, 3)


def test_invoice_run_roles_and_tenancy(client, staff_a, finance_b, month, finance_a, business_a):
    run = InvoiceRun.objects.create(business=business_a, started_by=finance_a)
    client.force_login(staff_a)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"fingerprint": "x"}).status_code == 403
    client.force_login(finance_b)
    assert client.get(reverse("ui:invoice_run", args=[run.pk])).status_code == 404
    assert "data-nothing" in client.get(URL).content.decode()  # B sees none of A's billables


def test_invoice_run_not_connected(client, finance_a, business_a):
    client.force_login(finance_a)
    h.billable(business_a, h.contact(business_a))
    html = client.get(URL).content.decode()
    assert "not connected to Stripe" in html and 'name="fingerprint"' not in html
    response = client.post(URL, {"fingerprint": unbilled_run.unbilled_preview(business=business_a).fingerprint}, follow=True)
    assert "not connected to Stripe" in response.content.decode() and Invoice.objects.count() == 0


def test_invoice_run_stale_run_stops_blocking_after_the_lease(client, month, finance_a, business_a, settings,
                                                            django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    settings.STRIPE_PUSH_LEASE_SECONDS = 60
    dead = InvoiceRun.objects.create(business=business_a, started_by=finance_a, invoice_ids=[], made=0)
    InvoiceRun.objects.filter(pk=dead.pk).update(updated_at=timezone.now() - timedelta(seconds=61))
    assert unbilled_run.invoice_run_active(business=business_a) is None
    fingerprint = unbilled_run.unbilled_preview(business=business_a).fingerprint
    with django_capture_on_commit_callbacks(execute=True):
        run = unbilled_run.invoice_run_start(business=business_a, user=finance_a, fingerprint=fingerprint)
    dead.refresh_from_db()
    assert dead.status == "failed" and "worker stopped" in dead.error
    run.refresh_from_db()
    assert run.status == "done" and run.pushed == 3


def test_invoice_run_progress_fragment_for_htmx_polling(client, month, finance_a, finance_b, business_a):
    run = InvoiceRun.objects.create(business=business_a, started_by=finance_a, invoice_ids=[1, 2, 3, 4],
                                    outcomes={"1": "pushed"}, made=4)
    url = reverse("ui:invoice_run", args=[run.pk])
    page = client.get(url)
    html = page.content.decode()
    # the whole page: layout, plan, and the fragment that polls its own URL every second
    assert "<html" in html and "data-summary" in html and f'hx-get="{url}" hx-trigger="every 1s"' in html
    assert "HX-Request" in page["Vary"]
    fragment = client.get(url, headers={"HX-Request": "true"})
    part = fragment.content.decode()
    assert part.lstrip().startswith('<div id="run-progress"') and part.rstrip().endswith("</div>")
    assert "<html" not in part and "data-summary" not in part and "refresh" not in part
    assert "1 of 4 done (25 %)" in part and 'hx-trigger="every 1s"' in part
    assert "HX-Request" in fragment["Vary"]
    # a finished run's fragment no longer polls
    InvoiceRun.objects.filter(pk=run.pk).update(status="done")
    part = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'data-run-status="done"' in part and "hx-trigger" not in part
    # htmx restoring history after a cache miss needs the whole page
    restore = client.get(url, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.content.decode()
    # another business's run is a 404 for the fragment too
    client.force_login(finance_b)
    assert client.get(url, headers={"HX-Request": "true"}).status_code == 404
