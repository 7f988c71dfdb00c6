"""The hosted invoice page, its PDF and receipts: plain HTTP, no API key, as a
browser (or a headless one) would use them."""

import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from html import unescape

import pytest


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def get(url: str) -> tuple[int, dict, bytes]:
    try:
        with _opener.open(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def post_form(url: str, fields: dict) -> tuple[int, dict, str]:
    req = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with _opener.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def card(number: str, **extra) -> dict:
    return {"card_number": number, "exp": "12 / 34", "cvc": "123", "name": "Ada Lovelace", **extra}


def text_of(html: str, element_id: str) -> str:
    m = re.search(rf"id={element_id}[^>]*>(.*?)</", html, re.S)
    return unescape(m.group(1).strip()) if m else ""


def _open_invoice(client, currency="usd", items=((5000, "Design work"),), **extra):
    cus = client.v1.customers.create(params={"email": "ada@example.test", "name": "Ada Lovelace"})
    inv = client.v1.invoices.create(params={"customer": cus.id, "collection_method": "send_invoice",
                                            "days_until_due": 30, "currency": currency, **extra})
    for amount, description in items:
        client.v1.invoice_items.create(params={"customer": cus.id, "invoice": inv.id, "amount": amount,
                                               "currency": currency, "description": description})
    return client.v1.invoices.finalize_invoice(inv.id)


def _types(client):
    return [e.type for e in reversed(client.v1.events.list(params={"limit": 100}).data)]


def test_hosted_invoice_page_shows_invoice_without_api_key(sandbox):
    client = sandbox.client()
    inv = _open_invoice(client, items=((5000, "Design work"), (1250, "Hosting")))
    assert inv.hosted_invoice_url.startswith(sandbox.base_url + "/hosted/invoices/")
    status, headers, body = get(inv.hosted_invoice_url)
    html = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert text_of(html, "invoice-number") == f"Invoice {inv.number}"
    assert text_of(html, "status") == "Open"
    assert "Ada Lovelace" in text_of(html, "customer")
    assert "Design work" in html and "Hosting" in html
    assert text_of(html, "total") == "$62.50" and text_of(html, "amount-due") == "$62.50"
    assert 'name=card_number' in html and text_of(html, "pay") == "Pay $62.50"


def test_hosted_invoice_pay_4242_marks_paid_with_receipt(sandbox):
    client = sandbox.client()
    inv = _open_invoice(client)
    status, headers, _ = post_form(inv.hosted_invoice_url, card("4242 4242 4242 4242"))
    assert status == 303 and headers["Location"].endswith(inv.hosted_invoice_url.split(sandbox.base_url)[1])
    paid = client.v1.invoices.retrieve(inv.id)
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 5000, 0)
    html = get(inv.hosted_invoice_url)[2].decode()
    assert text_of(html, "status") == "Paid" and text_of(html, "paid").startswith("Paid")
    assert "name=card_number" not in html
    receipt_url = re.search(r'id=receipt href="([^"]+)"', html).group(1)
    status, _, receipt = get(receipt_url)
    assert status == 200 and inv.number in receipt.decode() and "$50.00" in receipt.decode()
    pi = client.v1.payment_intents.retrieve(paid.payments.data[0].payment.payment_intent)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.receipt_url == receipt_url and charge.billing_details.name == "Ada Lovelace"
    # The card typed on the page pays once; it is not saved to the customer.
    assert client.v1.payment_methods.retrieve(pi.payment_method).customer is None
    types = _types(client)
    for expected in ("payment_intent.succeeded", "charge.succeeded", "invoice.paid", "invoice.payment_succeeded"):
        assert expected in types
    # A second click on Pay charges nothing more.
    assert post_form(inv.hosted_invoice_url, card("4242424242424242"))[0] == 303
    assert len(client.v1.charges.list().data) == 1


@pytest.mark.parametrize("number, message, decline_code", [
    ("4000 0000 0000 0002", "Your card was declined.", "generic_decline"),
    ("4000 0000 0000 9995", "Your card has insufficient funds.", "insufficient_funds"),
])
def test_hosted_invoice_declined_card_keeps_invoice_open(sandbox, number, message, decline_code):
    client = sandbox.client()
    inv = _open_invoice(client)
    status, _, html = post_form(inv.hosted_invoice_url, card(number))
    assert status == 402 and text_of(html, "error") == message
    assert text_of(html, "status") == "Open" and "name=card_number" in html
    inv = client.v1.invoices.retrieve(inv.id)
    assert (inv.status, inv.amount_paid, inv.attempted) == ("open", 0, True)
    failed = client.v1.events.list(params={"type": "invoice.payment_failed"}).data
    assert [e.data.object.id for e in failed] == [inv.id]
    charge = client.v1.charges.list().data[0]
    assert (charge.status, charge.outcome.reason) == ("failed", decline_code)
    assert "payment_intent.payment_failed" in _types(client)
    # The person tries another card and pays.
    assert post_form(inv.hosted_invoice_url, card("4242424242424242"))[0] == 303
    assert client.v1.invoices.retrieve(inv.id).status == "paid"


@pytest.mark.parametrize("fields, message", [
    (card("4242 4242"), "Your card number is incomplete."),
    (card("4242 4242 4242 4241"), "Your card number is incorrect."),
    (card("4242424242424242", exp=""), "Your card's expiration date is incomplete."),
    (card("4242424242424242", exp="01 / 20"), "Your card's expiration year is invalid."),
    (card("4242424242424242", cvc=""), "Your card's security code is incomplete."),
])
def test_hosted_invoice_form_errors_charge_nothing(sandbox, fields, message):
    client = sandbox.client()
    inv = _open_invoice(client)
    status, _, html = post_form(inv.hosted_invoice_url, fields)
    assert status == 402 and text_of(html, "error") == message
    assert client.v1.charges.list().data == [] and client.v1.invoices.retrieve(inv.id).status == "open"


@pytest.mark.parametrize("currency, amount, shown", [("jpy", 12345, "¥12,345"), ("bhd", 12340, "BHD 12.340"),
                                                     ("kwd", 5000, "KWD 5.000"), ("eur", 123456, "€1,234.56")])
def test_hosted_invoice_amounts_by_currency_exponent(sandbox, currency, amount, shown):
    inv = _open_invoice(sandbox.client(), currency=currency, items=((amount, "Work"),))
    html = get(inv.hosted_invoice_url)[2].decode()
    assert text_of(html, "total") == shown


def test_hosted_invoice_discount_and_tax_lines(sandbox):
    client = sandbox.client()
    rate = client.v1.tax_rates.create(params={"display_name": "VAT", "percentage": 20, "inclusive": False})
    coupon = client.v1.coupons.create(params={"percent_off": 10, "duration": "once", "name": "Loyalty"})
    inv = _open_invoice(client, items=((10000, "Work"),), default_tax_rates=[rate.id],
                        discounts=[{"coupon": coupon.id}])
    html = get(inv.hosted_invoice_url)[2].decode()
    assert text_of(html, "subtotal") == "$100.00"
    assert text_of(html, "discount") == "-$10.00" and "Loyalty" in html
    assert text_of(html, "tax") == "$18.00" and "VAT (20%)" in html
    assert text_of(html, "total") == "$108.00"


def test_hosted_invoice_pdf_is_valid_pdf(sandbox):
    client = sandbox.client()
    inv = _open_invoice(client, currency="jpy", items=((12345, "Design (phase 1)"),))
    status, headers, pdf = get(inv.hosted_invoice_url + "/pdf")
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    assert f"Invoice {inv.number}".encode() in pdf and b"JPY 12,345" in pdf
    assert b"Design \\(phase 1\\)" in pdf  # parentheses escaped in PDF strings
    # The cross-reference table points at each object.
    startxref = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    assert pdf[startxref:].startswith(b"xref")
    count = int(pdf[startxref:].split(b"\n")[1].split()[1])
    entries = pdf[startxref:].split(b"\n")[3:3 + count - 1]
    for number, entry in enumerate(entries, start=1):
        offset = int(entry.split()[0])
        assert pdf[offset:].startswith(b"%d 0 obj" % number)


def test_hosted_invoice_unknown_token_and_void_invoice(sandbox):
    client = sandbox.client()
    assert get(sandbox.base_url + "/hosted/invoices/nope")[0] == 404
    assert post_form(sandbox.base_url + "/hosted/invoices/nope", card("4242424242424242"))[0] == 404
    inv = _open_invoice(client)
    client.v1.invoices.void_invoice(inv.id)
    html = get(inv.hosted_invoice_url)[2].decode()
    assert text_of(html, "status") == "Void" and "name=card_number" not in html
    assert post_form(inv.hosted_invoice_url, card("4242424242424242"))[0] == 303
    assert client.v1.charges.list().data == []


def test_hosted_invoice_connected_account_payment(sandbox):
    key = "sk_test_" + "hostedconnect" + "0" * 6
    platform = sandbox.client(key)
    acct = sandbox.connect_account(key, "studio@example.test", business_name="Studio")
    opts = {"stripe_account": acct}
    cus = platform.v1.customers.create(params={"email": "c@example.test"}, options=opts)
    inv = platform.v1.invoices.create(params={"customer": cus.id, "collection_method": "send_invoice",
                                              "days_until_due": 7, "currency": "gbp"}, options=opts)
    platform.v1.invoice_items.create(params={"customer": cus.id, "invoice": inv.id, "amount": 2500,
                                             "currency": "gbp"}, options=opts)
    inv = platform.v1.invoices.finalize_invoice(inv.id, options=opts)
    assert text_of(get(inv.hosted_invoice_url)[2].decode(), "account") == "Studio"
    assert post_form(inv.hosted_invoice_url, card("4242424242424242"))[0] == 303
    assert platform.v1.invoices.retrieve(inv.id, options=opts).status == "paid"
    event = platform.v1.events.list(params={"type": "invoice.paid"}, options=opts).data[0]
    assert event.account == acct
    assert platform.v1.charges.list().data == []


@pytest.mark.browser
def test_hosted_pages_in_headless_browser(sandbox):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("no chromium on PATH for Playwright")
    client = sandbox.client()
    inv = _open_invoice(client)
    session = client.v1.checkout.sessions.create(params={
        "mode": "setup", "currency": "usd", "customer": client.v1.customers.create().id,
        "success_url": sandbox.base_url + "/hosted/invoices/nope?s={CHECKOUT_SESSION_ID}",
    })

    def fill(page, number):
        page.get_by_label("Card number").fill(number)
        page.get_by_label("Expiry").fill("12 / 34")
        page.get_by_label("CVC").fill("123")
        page.get_by_label("Name on card").fill("Ada Lovelace")

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(inv.hosted_invoice_url)
            fill(page, "4000 0000 0000 0002")
            page.get_by_role("button", name="Pay $50.00").click()
            assert page.locator("#error").inner_text() == "Your card was declined."
            fill(page, "4242 4242 4242 4242")
            page.get_by_role("button", name="Pay $50.00").click()
            page.wait_for_url(inv.hosted_invoice_url)
            assert page.locator("#status").inner_text() == "Paid"
            page.goto(session.url)
            fill(page, "4242 4242 4242 4242")
            page.get_by_role("button", name="Save card").click()
            page.wait_for_url(f"**/hosted/invoices/nope?s={session.id}")
        finally:
            browser.close()
    assert client.v1.invoices.retrieve(inv.id).status == "paid"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"


def _amount(text: str) -> int:
    """'-$12.34' -> -1234 (usd)."""
    sign = -1 if text.strip().startswith("-") else 1
    return sign * int(round(float(re.sub(r"[^0-9.]", "", text)) * 100))


def test_hosted_invoice_decimal_quantity_and_totals_that_add_up(sandbox):
    """28.5 hours show as 28.5; the subtotal is the sum of the lines, and subtotal -
    discounts (line and invoice level) + exclusive tax is the total shown."""
    c = sandbox.client()
    cus = c.v1.customers.create(params={"email": "ada@example.test", "name": "Ada Lovelace"})
    prod = c.v1.products.create(params={"name": "Consulting"})
    price = c.v1.prices.create(params={"product": prod.id, "currency": "usd", "unit_amount": 8000})
    rate = c.v1.tax_rates.create(params={"display_name": "VAT", "percentage": 20, "inclusive": False})
    line_coupon = c.v1.coupons.create(params={"amount_off": 1000, "currency": "usd", "name": "Loyalty"})
    invoice_coupon = c.v1.coupons.create(params={"percent_off": 10, "name": "Autumn"})
    inv = c.v1.invoices.create(params={"customer": cus.id, "collection_method": "send_invoice",
                                       "days_until_due": 30, "discounts": [{"coupon": invoice_coupon.id}],
                                       "default_tax_rates": [rate.id]})
    c.v1.invoice_items.create(params={"customer": cus.id, "invoice": inv.id, "pricing": {"price": price.id},
                                      "quantity_decimal": "28.5", "description": "Hours",
                                      "discounts": [{"coupon": line_coupon.id}]})
    c.v1.invoice_items.create(params={"customer": cus.id, "invoice": inv.id, "amount": 5000,
                                      "currency": "usd", "description": "Travel"})
    inv = c.v1.invoices.finalize_invoice(inv.id)
    status, _, body = get(inv.hosted_invoice_url)
    page = body.decode()
    assert status == 200
    rows = re.findall(r"<tr><td>(.*?)</td><td class=num>(.*?)</td><td class=num>.*?</td>"
                      r"<td class=num>(.*?)</td></tr>", page)
    assert ("Hours", "28.5") in [(d, q) for d, q, _ in rows]
    line_sum = sum(_amount(a) for _, _, a in rows)
    assert line_sum == 28.5 * 8000 + 5000
    subtotal = _amount(text_of(page, "subtotal"))
    discounts = [_amount(a) for a in re.findall(r"id=discount>(.*?)</td>", page)]
    taxes = [_amount(a) for a in re.findall(r"id=tax>(.*?)</td>", page)]
    assert subtotal == line_sum and len(discounts) == 2 and all(d < 0 for d in discounts)
    assert subtotal + sum(discounts) + sum(taxes) == _amount(text_of(page, "total")) == inv.total
    # Columns: cells have room between them, amounts do not wrap.
    assert "td,th{padding:.4rem .6rem" in page and "white-space:nowrap" in page
