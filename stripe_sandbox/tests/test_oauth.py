"""Connect OAuth: consent page, token exchange, refresh, deauthorization."""

import json
import re
import shutil
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import stripe

from stripe_sandbox.testing import http_request

REDIRECT = "http://127.0.0.1:9/stripe/callback"


def http(method, url, data=None):
    body = urlencode(data) if data is not None else None
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if data is not None else {}
    status, answer_headers, answer = http_request(method, url, body=body, headers=headers)
    return status, answer_headers, answer.decode()


class _Form(HTMLParser):
    """The consent page's form fields and buttons, as a browser would submit them."""

    def __init__(self):
        super().__init__()
        self.action, self.fields, self.buttons = None, {}, {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        elif tag == "input":
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "button":
            self._button = (a["name"], a["value"])

    def handle_data(self, data):
        if getattr(self, "_button", None) and data.strip():
            self.buttons[data.strip()] = self._button
            self._button = None


def authorize_url(client_id="ca_testplatform", email="owner@shop.example", state="st4te"):
    return "/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "scope": "read_write",
        "redirect_uri": REDIRECT, "state": state, "stripe_user[email]": email,
    })


def click(sandbox, page_html, button):
    form = _Form()
    form.feed(page_html)
    name, value = form.buttons[button]
    return http("POST", sandbox.base_url + form.action, {**form.fields, name: value})


def test_oauth_authorize_page_shows_request_and_buttons(sandbox):
    status, headers, page = http("GET", sandbox.base_url + authorize_url())
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "ca_testplatform" in page and "read_write" in page and "owner@shop.example" in page
    form = _Form()
    form.feed(page)
    assert set(form.buttons) == {"Authorize", "Deny"}
    assert form.fields["state"] == "st4te" and form.fields["redirect_uri"] == REDIRECT


def test_oauth_authorize_url_built_by_the_sdk(sandbox):
    client = sandbox.client(client_id="ca_fromsdk")
    url = client.oauth.authorize_url(params={
        "scope": "read_write", "redirect_uri": REDIRECT, "state": "s1", "stripe_user": {"email": "sdk@example.test"},
    })
    assert url.startswith(sandbox.base_url + "/oauth/authorize?")
    status, _, page = http("GET", url)
    assert status == 200 and "ca_fromsdk" in page and "sdk@example.test" in page


def test_oauth_authorize_page_rejects_bad_client_id(sandbox):
    status, _, page = http("GET", sandbox.base_url + authorize_url(client_id="not_a_client"))
    assert status == 400 and "Invalid client_id" in page


def test_oauth_deny_redirects_with_access_denied(sandbox):
    _, _, page = http("GET", sandbox.base_url + authorize_url())
    status, headers, _ = click(sandbox, page, "Deny")
    assert status == 302
    location = urlsplit(headers["Location"])
    assert location._replace(query="").geturl() == REDIRECT
    assert parse_qs(location.query) == {
        "error": ["access_denied"], "error_description": ["The user denied your request"], "state": ["st4te"],
    }


def approve(sandbox, **kwargs):
    _, _, page = http("GET", sandbox.base_url + authorize_url(**kwargs))
    status, headers, _ = click(sandbox, page, "Authorize")
    assert status == 302
    query = parse_qs(urlsplit(headers["Location"]).query)
    assert query["scope"] == ["read_write"] and query["state"] == [kwargs.get("state", "st4te")]
    return query["code"][0]


def test_oauth_approve_and_exchange_code(sandbox):
    key = "sk_test_oauthplatform1"
    client = sandbox.client(key)
    code = approve(sandbox)
    assert code.startswith("ac_")
    token = client.oauth.token(params={"grant_type": "authorization_code", "code": code})
    assert token.token_type == "bearer" and token.scope == "read_write" and token.livemode is False
    assert token.stripe_user_id.startswith("acct_")
    assert token.access_token.startswith("sk_test_") and token.refresh_token.startswith("rt_")
    assert token.stripe_publishable_key.startswith("pk_test_")
    account = client.v1.accounts.retrieve_current(options={"stripe_account": token.stripe_user_id})
    assert account.email == "owner@shop.example"
    # The access token acts as the connected account.
    as_account = sandbox.client(token.access_token)
    assert as_account.v1.accounts.retrieve_current().id == token.stripe_user_id


def test_oauth_same_email_connects_same_account(sandbox):
    client = sandbox.client("sk_test_oauthplatform2")
    first = client.oauth.token(params={"grant_type": "authorization_code", "code": approve(sandbox)})
    again = client.oauth.token(params={"grant_type": "authorization_code", "code": approve(sandbox)})
    assert again.stripe_user_id == first.stripe_user_id
    _, _, page = http("GET", sandbox.base_url + authorize_url())
    assert first.stripe_user_id in page  # the page names the account that will connect


def test_oauth_code_is_single_use(sandbox):
    client = sandbox.client()
    code = sandbox.oauth_code(client._requestor._options.api_key, "once@example.test")
    client.oauth.token(params={"grant_type": "authorization_code", "code": code})
    with pytest.raises(stripe.oauth_error.InvalidGrantError) as exc:
        client.oauth.token(params={"grant_type": "authorization_code", "code": code})
    assert exc.value.http_status == 400 and "already been used" in exc.value.user_message


def test_oauth_code_expires_after_five_minutes(sandbox):
    client = sandbox.client()
    code = approve(sandbox)
    sandbox.advance_clock(301)
    with pytest.raises(stripe.oauth_error.InvalidGrantError) as exc:
        client.oauth.token(params={"grant_type": "authorization_code", "code": code})
    assert "expired" in exc.value.user_message


def test_oauth_unknown_code_and_grant(sandbox):
    client = sandbox.client()
    with pytest.raises(stripe.oauth_error.InvalidGrantError):
        client.oauth.token(params={"grant_type": "authorization_code", "code": "ac_nope"})
    status, _, body = http("POST", sandbox.base_url + "/oauth/token",
                           {"grant_type": "password", "client_secret": "sk_test_oauthgrant01"})
    assert status == 400 and json.loads(body)["error"] == "unsupported_grant_type"


def test_oauth_token_accepts_client_secret_param(sandbox):
    key = "sk_test_oauthsecret01"
    code = sandbox.oauth_code(key, "param@example.test")
    status, _, body = http("POST", sandbox.base_url + "/oauth/token",
                           {"grant_type": "authorization_code", "code": code, "client_secret": key})
    assert status == 200 and json.loads(body)["stripe_user_id"].startswith("acct_")
    status, _, body = http("POST", sandbox.base_url + "/oauth/token", {"grant_type": "authorization_code", "code": code})
    assert status == 401 and json.loads(body)["error"] == "invalid_client"


def test_oauth_refresh_token(sandbox):
    client = sandbox.client()
    first = client.oauth.token(params={"grant_type": "authorization_code", "code": approve(sandbox)})
    refreshed = client.oauth.token(params={"grant_type": "refresh_token", "refresh_token": first.refresh_token})
    assert refreshed.stripe_user_id == first.stripe_user_id
    assert refreshed.access_token != first.access_token
    assert refreshed.refresh_token == first.refresh_token
    with pytest.raises(stripe.oauth_error.InvalidGrantError):
        client.oauth.token(params={"grant_type": "refresh_token", "refresh_token": "rt_nope"})


def test_oauth_deauthorize_revokes_access_and_emits_event(sandbox, webhook_receiver):
    key = "sk_test_oauthdeauth01"
    client = sandbox.client(key, client_id="ca_deauthtest")
    client.v1.webhook_endpoints.create(params={"url": webhook_receiver.url, "enabled_events": ["*"], "connect": True})
    token = client.oauth.token(params={"grant_type": "authorization_code", "code": approve(sandbox, client_id="ca_deauthtest")})
    acct = token.stripe_user_id
    client.v1.customers.create(params={}, options={"stripe_account": acct})
    answer = client.oauth.deauthorize(params={"stripe_user_id": acct})
    assert answer.stripe_user_id == acct
    with pytest.raises(stripe.PermissionError) as exc:
        client.v1.customers.list(options={"stripe_account": acct})
    assert re.search(rf"does not have access to account '{acct}'", exc.value.user_message)
    with pytest.raises(stripe.AuthenticationError):
        sandbox.client(token.access_token).v1.customers.list()
    with pytest.raises(stripe.oauth_error.InvalidClientError):
        client.oauth.deauthorize(params={"stripe_user_id": acct})
    sandbox.drain()
    events = webhook_receiver.events()
    assert [e["type"] for e in events] == [
        "account.application.authorized", "customer.created", "account.application.deauthorized",
    ]
    deauth = events[-1]
    assert deauth["account"] == acct
    assert deauth["data"]["object"]["object"] == "application"
    assert deauth["data"]["object"]["id"] == "ca_deauthtest"


def test_oauth_reconnect_after_deauthorize(sandbox):
    client = sandbox.client(client_id="ca_reconnect")
    acct = client.oauth.token(params={"grant_type": "authorization_code", "code": approve(sandbox, client_id="ca_reconnect")}).stripe_user_id
    client.oauth.deauthorize(params={"stripe_user_id": acct})
    again = client.oauth.token(params={"grant_type": "authorization_code", "code": approve(sandbox, client_id="ca_reconnect")})
    assert again.stripe_user_id == acct
    assert client.v1.customers.list(options={"stripe_account": acct}).data == []


@pytest.mark.browser
def test_oauth_consent_page_in_headless_browser(sandbox):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("no chromium on PATH for Playwright")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route(REDIRECT.split("?")[0] + "**", lambda route: route.fulfill(status=200, body="callback"))
            page.goto(sandbox.base_url + authorize_url(email="browser@example.test"))
            page.get_by_role("button", name="Authorize").click()
            page.wait_for_url(re.compile(r".*/stripe/callback\?.*code=ac_.*"))
            code = parse_qs(urlsplit(page.url).query)["code"][0]
        finally:
            browser.close()
    token = sandbox.client().oauth.token(params={"grant_type": "authorization_code", "code": code})
    assert token.stripe_user_id.startswith("acct_")


def test_oauth_live_sandbox_platform_connects_live_accounts(sandbox):
    """A sandbox live key (the live prefix, then sandbox_; built from parts, never spelled
    out) is a live platform: its OAuth answer, connected account, objects and events all
    say livemode true, with live-prefixed tokens, as Stripe's live mode does."""
    live_prefix = "sk" + "_live_"
    client = sandbox.client(live_prefix + "sandbox_oauthlive1")
    token = client.oauth.token(params={"grant_type": "authorization_code", "code": approve(sandbox)})
    assert token.livemode is True
    assert token.access_token.startswith(live_prefix + "sandbox_")
    assert token.stripe_publishable_key.startswith("pk_" + "live_")
    options = {"stripe_account": token.stripe_user_id}
    customer = client.v1.customers.create(params={"email": "live@shop.example"}, options=options)
    assert customer.livemode is True
    product = client.v1.products.create(params={"name": "Live thing"}, options=options)
    assert product.livemode is True
    events = client.v1.events.list(options=options)
    assert events.data and all(e.livemode is True and e.data.object.to_dict().get("livemode", True) is True for e in events.data)
    assert any(e.type == "customer.created" and e.data.object.livemode is True for e in events.data)
    # The test-mode platform's objects stay test-mode.
    test_customer = sandbox.client("sk_test_oauthlive2").v1.customers.create(params={})
    assert test_customer.livemode is False
