"""A person connects Stripe in a real browser: Playwright driving Debian's chromium.

Skipped with a reason when /usr/bin/chromium is missing (`.ci/run` installs it)."""
import os
import shutil

import pytest
from django.core.management import call_command

from stripe_integration.models import ConnectionStatus, StripeConnection

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (os.path.exists(CHROMIUM) or shutil.which("chromium")),
                       reason=f"no chromium at {CHROMIUM}: install Debian's chromium (.ci/run does) to run browser tests"),
]


@pytest.fixture
def browser_page():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page()
        page.set_default_timeout(15000)
        yield page
        browser.close()


@pytest.mark.django_db(transaction=True)
def test_browser_finance_user_connects_stripe_account(live_server, settings, stripe_env, browser_page, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls from the
    # test body are synchronous and safe here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.SITE_URL = live_server.url
    settings.DEBUG = True  # seed_demo refuses to run otherwise (pytest-django turns DEBUG off)
    call_command("seed_demo", verbosity=0)
    settings.DEBUG = False
    page = browser_page

    page.goto(f"{live_server.url}/login/?next=/integrations/stripe/")
    page.fill("input[name=username]", "finance")
    page.fill("input[name=password]", "finance")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{live_server.url}/integrations/stripe/")
    assert page.locator("[data-state=not_connected]").count() == 1

    page.click("text=Connect Stripe Account")
    page.wait_for_url(f"{stripe_env.base_url}/oauth/authorize*")
    assert "Connect" in page.title() or page.locator("text=Authorize").count() == 1
    page.click("button:has-text('Authorize')")

    page.wait_for_url(f"{live_server.url}/integrations/stripe/*")
    conn = StripeConnection.objects.get(business__slug="demo")
    assert conn.status == ConnectionStatus.CONNECTED
    assert page.locator("[data-state=connected]").count() == 1
    assert conn.stripe_user_id in page.content()
