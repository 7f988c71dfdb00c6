"""Issue 14's "done means", in a real browser (Playwright driving Debian's chromium):
staff add billables to a ticket; finance invoice them from the UI, find the invoice on the
Invoices page by filter and search, watch outstanding and overdue move as it is paid (a
bank transfer recorded with "Mark paid outside Stripe"), open the dashboard and export a
CSV whose rows match the screen. Screenshots at 1280 and 390 px wide; no money cell is cut off.

Screenshots go to $SCREENSHOT_DIR (default: the test's tmp dir). Skipped with a reason
when /usr/bin/chromium is missing (`.ci/run` installs it)."""
import csv
import io
import os
import re
import shutil
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm.tests.factories import TicketFactory
from finance.models import Billable, Invoice, InvoiceStatus
from stripe_integration.tests import invoicing_helpers as h
from django.core.servers.basehttp import WSGIServer
from django.test.testcases import LiveServerThread

from stripe_integration.tests.webhook_fixtures import connect_business, eager_celery, serve_app  # noqa: F401

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (os.path.exists(CHROMIUM) or shutil.which("chromium")),
                       reason=f"no chromium at {CHROMIUM}: install Debian's chromium (.ci/run does) to run browser tests"),
]

# Every element that shows an amount: table cells of money columns, dashboard figures,
# money owed on the home page, invoice totals.
MONEY = "td.num, th.num, [data-figure], [data-outstanding], [data-overdue], [data-total]"
CLIPPED_JS = """(selector) => {
  const bad = [];
  for (const el of document.querySelectorAll(selector)) {
    if (!el.offsetParent) continue;
    // The amount's own box must hold it (an amount that scrolls inside itself reads cut off)...
    if (el.scrollWidth > el.clientWidth + 1) { bad.push(el.textContent.trim()); continue; }
    // ...and it is on screen, or inside a box that scrolls (a table-wrap).
    let scroller = null;
    for (let a = el.parentElement; a; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if (ox === "auto" || ox === "scroll") { scroller = a; break; }
    }
    const r = el.getBoundingClientRect();
    if (!scroller && (r.right > window.innerWidth + 1 || r.left < -1)) bad.push(el.textContent.trim());
  }
  return {bad, pageWider: document.documentElement.scrollWidth > window.innerWidth + 1,
          checked: document.querySelectorAll(selector).length};
}"""


class _SerialServer(WSGIServer):
    """One request at a time on one thread, and each connection closed after its answer
    (Django's server keeps HTTP/1.1 connections open only when threaded): a browser's
    idle keep-alive connection would otherwise stall the page's scripts."""

    def __init__(self, *args, connections_override=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections_override = connections_override


class _SerialServerThread(LiveServerThread):
    server_class = _SerialServer


@pytest.fixture
def app_server(transactional_db):
    yield from serve_app(_SerialServerThread)


@pytest.fixture
def connected(app_server, eager_celery, client, finance_a, business_a, stripe_env, settings):  # noqa: F811
    # Stripe's webhooks go nowhere here: the test's app server answers one request at a
    # time (in-memory SQLite), and deliveries sent while the browser's own request is
    # served wait behind it, time out and come back minutes later (test_events_*.py cover
    # that path). Every state this walk needs comes from Stripe's answers to the app's calls.
    return connect_business(client=client, user=finance_a, business=business_a, stripe_env=stripe_env,
                            webhook_url="http://127.0.0.1:9/stripe/webhook/", settings=settings)


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's ORM calls (and
    # fixtures set up after this one) are synchronous and safe here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def _login(browser, base, user, width=1280):
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20000)
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-14b")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")
    return page


def _wait_for(page, url, selector, timeout=180):
    """Reload `url` until `selector` is on it (webhooks are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if page.locator(selector).count():
            return
        assert time.monotonic() < deadline, f"{selector} never showed on {url}"
        page.wait_for_timeout(1000)


def _money_not_clipped(page, name, shots):
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=os.path.join(shots, f"{name}-{width}.png"), full_page=True)
        result = page.evaluate(CLIPPED_JS, MONEY)
        assert result["checked"] > 0, name
        assert result["bad"] == [] and not result["pageWider"], (name, width, result)
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.django_db(transaction=True)
def test_browser_finance_workspace_done_means(connected, app_server, browser, business_a, finance_a, staff_a,  # noqa: F811
                                              tmp_path):
    shots = os.environ.get("SCREENSHOT_DIR") or str(tmp_path)
    os.makedirs(shots, exist_ok=True)
    for user in (finance_a, staff_a):
        user.set_password("pw-14b")
        user.save()
    contact = h.contact(business_a, name="Acme Buyer")
    ticket = TicketFactory(business=business_a, contact=contact, subject="Printer on fire")

    # --- staff: add billables to the ticket -------------------------------------------
    page = _login(browser, app_server, staff_a)
    page.goto(f"{app_server}/tickets/{ticket.pk}/")
    for description, quantity, price in (("On-site repair", "3", "1250.00"), ("Replacement fuser", "1", "98765.43")):
        if not page.locator("details.add-billable").get_attribute("open") is not None:
            page.click("details.add-billable summary")
        form = page.locator("form[data-billable-form]")
        form.locator("select[name=bill_to]").select_option(str(contact.pk))
        form.locator("input[name=description]").fill(description)
        form.locator("input[name=quantity]").fill(quantity)
        form.locator("input[name=unit_price]").fill(price)
        form.locator("input[name=currency]").fill("USD")
        form.locator("button.primary").click()
        page.wait_for_load_state()
    assert Billable.objects.filter(ticket=ticket, status="unbilled").count() == 2
    assert page.locator("text=On-site repair").count() and page.locator("text=Replacement fuser").count()
    page.context.close()

    # --- finance: invoice them from the UI ----------------------------------------------
    page = _login(browser, app_server, finance_a)
    page.goto(f"{app_server}/tickets/{ticket.pk}/")
    for box in page.locator("form[data-generate-invoice] input[name=billables]").all():
        box.check()
    page.click("form[data-generate-invoice] button[type=submit]")
    page.wait_for_selector("text=Send to Stripe")
    page.click("button:has-text('Send to Stripe')")
    page.wait_for_url(re.compile(r".*/invoices/\d+/$"))
    invoice = Invoice.objects.get(business=business_a)
    assert invoice.status == InvoiceStatus.OPEN and invoice.total == Decimal("102515.43")
    total_text = "102,515.43 USD"
    assert total_text in page.locator("[data-total]").inner_text()
    _money_not_clipped(page, "invoice", shots)

    # --- find it on the Invoices page by filter and search ---------------------------
    page.goto(f"{app_server}/invoices/")
    page.check("input[name=status][value=open]")
    page.fill("input[name=q]", invoice.number)
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r".*/invoices/\?.*q=INV"))
    rows = page.locator("table[data-invoice-list] tbody tr")
    assert rows.count() == 1 and invoice.number in rows.first.inner_text() and total_text in rows.first.inner_text()
    _money_not_clipped(page, "invoices", shots)

    # --- money owed moves: outstanding now; overdue once past due; nothing when paid ---
    page.goto(f"{app_server}/")
    usd = page.locator("[data-money-owed] [data-currency=USD]")
    assert total_text in usd.locator("[data-outstanding]").inner_text()
    assert usd.locator("[data-overdue]").inner_text().startswith("0.00 USD overdue")
    # Time passes: the due date is behind us (set here; Stripe's copy is not involved).
    Invoice.objects.filter(pk=invoice.pk).update(due_date=timezone.localdate() - timedelta(days=3))
    page.reload()
    assert usd.locator("[data-overdue]").inner_text().startswith(f"{total_text} overdue")
    _money_not_clipped(page, "home-owed", shots)

    # Paid: the customer's bank transfer, recorded by finance ("Mark paid outside Stripe"
    # tells Stripe, which answers with the paid invoice).
    page.goto(f"{app_server}/invoices/{invoice.pk}/")
    oob = page.locator("form[data-out-of-band-form]")
    oob.locator("select[name=oob-method]").select_option("bank_transfer")
    oob.locator("input[name=oob-reference]").fill("BT-2026-0042")
    oob.locator("button[type=submit]").click()
    page.wait_for_load_state()
    _wait_for(page, f"{app_server}/invoices/{invoice.pk}/", "[data-status=paid]")
    assert "0.00 USD" in page.locator("dt:has-text('Remaining') + dd").inner_text()
    page.goto(f"{app_server}/")
    assert page.locator("[data-money-owed] [data-currency=USD]").count() == 0
    assert "Nothing is owed" in page.locator("[data-money-owed]").inner_text()

    # --- the dashboard ----------------------------------------------------------------
    _wait_for(page, f"{app_server}/dashboard/", f"section[data-currency=USD] [data-figure=collected]:has-text('{total_text}')")
    section = page.locator("section[data-currency=USD]")
    assert section.locator("[data-figure=invoiced]").inner_text() == total_text
    assert section.locator("[data-figure=collected]").inner_text() == total_text
    assert section.locator("[data-figure=outstanding]").inner_text() == "0.00 USD"
    page.wait_for_selector("canvas[data-chart=USD][data-drawn=yes]")  # Chart.js, served by the app
    _money_not_clipped(page, "dashboard", shots)

    # --- export the Invoices page as on screen; the CSV's rows are the screen's --------
    page.goto(f"{app_server}/invoices/?status=paid&q=Acme")
    screen = [[cell.inner_text().strip() for cell in row.locator("td").all()]
              for row in page.locator("table[data-invoice-list] tbody tr").all()]
    page.click("details[data-export] summary")
    with page.expect_download() as download:
        page.click("a[data-export-link='invoices.csv']")
    exported = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8-sig").read())))
    assert len(exported) == len(screen) == 1
    for row, cells in zip(exported, screen):
        assert cells[0] == row["number"] and cells[2] == row["contact"]
        assert cells[6] == f"{Decimal(row['total']):,.2f} {row['currency']}" == total_text
        assert cells[7] == f"{Decimal(row['remaining']):,.2f} {row['currency']}"
    page.context.close()
