"""Connect Stripe Account, end to end against the sandbox over real HTTP."""
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from crm.models import Role
from crm.tests.factories import BusinessFactory, member
from stripe_integration.connect import oauth as services
from stripe_integration.models import ConnectionStatus, ConnectWebhookEndpoint, StripeConnection
from stripe_integration.tests import oauth_helpers as oauth
from stripe_integration.gateway.types import WEBHOOK_SECRET_PREFIX

pytestmark = pytest.mark.django_db

CALLBACK = "/integrations/stripe/oauth/callback/"


def _token_calls(stripe_env):
    return stripe_env.requests(method="POST", path="/oauth/token")


def _messages(resp):
    return [str(m) for m in resp.context["messages"]] if resp.context else []


def test_connect_flow_connects_account_and_shows_it(client, finance_a, business_a, stripe_env):
    client.force_login(finance_a)
    resp = oauth.connect(client)
    assert resp.status_code == 200
    conn = StripeConnection.objects.get(business=business_a)
    assert conn.status == ConnectionStatus.CONNECTED
    assert conn.stripe_user_id.startswith("acct_")
    assert conn.access_token and conn.refresh_token
    assert conn.connected_by == finance_a and conn.scope == "read_write" and conn.livemode is False
    body = resp.content.decode()
    assert conn.stripe_user_id in body and 'data-state="connected"' in body and "Test mode" in body
    assert len(_token_calls(stripe_env)) == 1


def test_connect_redirect_carries_oauth_parameters(client, finance_a, stripe_env, settings):
    finance_a.email = "owner@alpha.example"
    finance_a.save()
    client.force_login(finance_a)
    url = oauth.start(client)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert url.startswith(stripe_env.base_url + "/oauth/authorize?")
    assert query["response_type"] == ["code"] and query["scope"] == ["read_write"]
    assert query["client_id"] == [settings.STRIPE_CONNECT_CLIENT_ID]
    assert query["redirect_uri"] == [settings.SITE_URL + CALLBACK]
    assert query["stripe_user[email]"] == ["owner@alpha.example"]
    assert len(query["state"][0]) >= 32


def test_connect_creates_one_connect_webhook_endpoint_even_twice(client, finance_a, business_a, stripe_env):
    client.force_login(finance_a)
    oauth.connect(client)
    first = ConnectWebhookEndpoint.objects.get()
    assert first.secret.startswith(WEBHOOK_SECRET_PREFIX)
    creates = stripe_env.requests(method="POST", path="/v1/webhook_endpoints")
    assert len(creates) == 1
    services.webhook_endpoint_ensure()
    oauth.connect(client)  # reconnecting the same account
    assert ConnectWebhookEndpoint.objects.get().stripe_id == first.stripe_id
    assert len(stripe_env.requests(method="POST", path="/v1/webhook_endpoints")) == 1


@pytest.mark.parametrize("case", ["missing", "wrong", "reused", "expired", "other_user"])
def test_callback_bad_state_makes_no_token_call(client, finance_a, business_a, stripe_env, case):
    client.force_login(finance_a)
    redirect = oauth.consent(oauth.start(client))
    query = parse_qs(urlsplit(redirect).query)
    code, state = query["code"][0], query["state"][0]
    if case == "missing":
        params = {"code": code}
    elif case == "wrong":
        params = {"code": code, "state": state[:-2] + "xx"}
    elif case == "reused":
        oauth.back_to_app(client, redirect)
        StripeConnection.objects.all().delete()
        stripe_env.mark()
        params = {"code": code, "state": state}
    elif case == "expired":
        session = client.session
        pending = session[services.OAUTH_STATE_SESSION_KEY]
        pending[-1]["expires"] = time.time() - 1
        session[services.OAUTH_STATE_SESSION_KEY] = pending
        session.save()
        params = {"code": code, "state": state}
    else:  # the state was made for finance_a; another user of the same business uses it
        other = member(business_a, Role.FINANCE)
        session_data = dict(client.session.items())
        client.force_login(other)
        session = client.session
        session[services.OAUTH_STATE_SESSION_KEY] = session_data[services.OAUTH_STATE_SESSION_KEY]
        session.save()
        params = {"code": code, "state": state}
    resp = client.get(CALLBACK, params, follow=True)
    assert resp.status_code == 200
    assert any("Start again" in m for m in _messages(resp))
    assert not StripeConnection.objects.filter(status=ConnectionStatus.CONNECTED).exists()
    assert _token_calls(stripe_env) == []


def test_callback_declined_consent_changes_nothing(client, finance_a, stripe_env):
    client.force_login(finance_a)
    resp = oauth.connect(client, decision="deny")
    assert resp.status_code == 200
    assert any("declined" in m for m in _messages(resp))
    assert StripeConnection.objects.count() == 0
    assert _token_calls(stripe_env) == []


def test_token_endpoint_503_gives_exactly_one_token_request(client, finance_a, stripe_env):
    client.force_login(finance_a)
    redirect = oauth.consent(oauth.start(client))
    stripe_env.fault(r"POST /oauth/token", kind="500", status=503)
    resp = oauth.back_to_app(client, redirect)
    assert resp.status_code == 200
    assert len(_token_calls(stripe_env)) == 1
    assert StripeConnection.objects.count() == 0
    assert any("Stripe" in m for m in _messages(resp))


def test_unknown_oauth_error_code_is_a_clear_message(client, finance_a, stripe_env):
    client.force_login(finance_a)
    redirect = oauth.consent(oauth.start(client))
    stripe_env.fault(r"POST /oauth/token", kind="oauth_error", code="brand_new_error_code", status=400)
    resp = oauth.back_to_app(client, redirect)
    assert resp.status_code == 200
    assert StripeConnection.objects.count() == 0
    assert any("Stripe" in m for m in _messages(resp))


def test_account_connected_to_another_business_is_refused(client, finance_a, business_a, business_b, stripe_env):
    finance_a.email = "shared@example.com"
    finance_a.save()
    client.force_login(finance_a)
    oauth.connect(client)
    first = StripeConnection.objects.get(business=business_a)
    intruder = member(business_b, Role.FINANCE, email="shared@example.com")
    client.force_login(intruder)
    resp = oauth.connect(client)
    assert any("already connected to another business" in m for m in _messages(resp)), _messages(resp)
    assert not StripeConnection.objects.filter(business=business_b).exists()
    first.refresh_from_db()
    assert first.status == ConnectionStatus.CONNECTED


def test_test_connection_disconnect_and_reconnect(client, finance_a, business_a, stripe_env):
    client.force_login(finance_a)
    oauth.connect(client)
    conn = StripeConnection.objects.get()
    resp = client.post("/integrations/stripe/test/", follow=True)
    assert any("Connection works" in m and conn.stripe_user_id in m for m in _messages(resp))

    resp = client.post("/integrations/stripe/disconnect/", {"confirmed": "yes"}, follow=True)
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.DISCONNECTED
    assert conn.access_token == "" and conn.refresh_token == ""
    assert conn.disconnected_by == finance_a
    assert len(stripe_env.requests(method="POST", path="/oauth/deauthorize")) == 1
    assert 'data-state="disconnected"' in resp.content.decode()

    # No call is made for the business while it is disconnected.
    stripe_env.mark()
    resp = client.post("/integrations/stripe/test/", follow=True)
    assert any("not connected" in m for m in _messages(resp))
    assert stripe_env.requests() == []

    oauth.connect(client)
    assert StripeConnection.objects.filter(business=business_a, status=ConnectionStatus.CONNECTED).count() == 1
    assert StripeConnection.objects.filter(business=business_a).count() == 2


def test_revoked_access_is_detected_by_test_connection(client, finance_a, business_a, stripe_env):
    client.force_login(finance_a)
    oauth.connect(client)
    conn = StripeConnection.objects.get()
    services.gateway().oauth_deauthorize(stripe_user_id=conn.stripe_user_id)  # as if the owner revoked it in Stripe
    resp = client.post("/integrations/stripe/test/", follow=True)
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.REVOKED and conn.access_token == ""
    assert any("Connect it again" in m for m in _messages(resp))


def test_connection_revoke_is_idempotent(business_a, stripe_env):
    StripeConnection.objects.create(business=business_a, stripe_user_id="acct_gone", access_token="t")
    assert services.connection_revoke(stripe_user_id="acct_gone", livemode=False) == 1
    assert services.connection_revoke(stripe_user_id="acct_gone", livemode=False) == 0
    assert StripeConnection.objects.get().status == ConnectionStatus.REVOKED


def test_staff_role_gets_403_everywhere(client, staff_a, stripe_env):
    client.force_login(staff_a)
    for url in ["/integrations/stripe/", "/integrations/stripe/connect/", CALLBACK + "?state=x&code=y"]:
        assert client.get(url).status_code == 403
    for url in ["/integrations/stripe/disconnect/", "/integrations/stripe/test/"]:
        assert client.post(url, {"confirmed": "yes"}).status_code == 403
    assert client.get("/integrations/stripe/disconnect/").status_code == 403
    assert _token_calls(stripe_env) == []


def test_anonymous_is_sent_to_login(client):
    resp = client.get("/integrations/stripe/")
    assert resp.status_code == 302 and "/login/" in resp["Location"]


def test_finance_disabled_business_cannot_connect(client, stripe_env):
    business = BusinessFactory(finance_enabled=False)
    user = member(business, Role.OWNER)
    client.force_login(user)
    resp = client.get("/integrations/stripe/")
    body = resp.content.decode()
    assert "finance module is not enabled" in body
    assert "disabled" in body and 'href="/integrations/stripe/connect/"' not in body
    resp = client.get("/integrations/stripe/connect/", follow=True)
    assert any("not enabled" in m for m in _messages(resp))
    assert stripe_env.requests() == []


def test_two_businesses_never_see_each_others_connection(client, finance_a, finance_b, business_a, stripe_env):
    client.force_login(finance_a)
    oauth.connect(client)
    acct = StripeConnection.objects.get(business=business_a).stripe_user_id
    client.force_login(finance_b)
    body = client.get("/integrations/stripe/").content.decode()
    assert acct not in body and 'data-state="not_connected"' in body
    resp = client.post("/integrations/stripe/disconnect/", {"confirmed": "yes"}, follow=True)
    assert StripeConnection.objects.get(business=business_a).status == ConnectionStatus.CONNECTED
    assert stripe_env.requests(path="/oauth/deauthorize") == []


def test_disconnect_asks_for_confirmation_first(client, finance_a, business_a, stripe_env):
    client.force_login(finance_a)
    oauth.connect(client)
    conn = StripeConnection.objects.get()
    settings_page = client.get("/integrations/stripe/").content.decode()
    assert 'href="/integrations/stripe/disconnect/"' in settings_page  # a link to the page, not a POST

    page = client.get("/integrations/stripe/disconnect/")
    body = page.content.decode()
    assert page.status_code == 200 and 'data-confirm="disconnect"' in body and conn.stripe_user_id in body
    assert "revoke" in body and 'name="confirmed" value="yes"' in body

    # A POST without the confirmation (an old form, a forged link) changes nothing.
    resp = client.post("/integrations/stripe/disconnect/")
    assert resp.status_code == 302 and resp["Location"] == "/integrations/stripe/disconnect/"
    resp = client.post("/integrations/stripe/disconnect/", {"confirmed": "no"})
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.CONNECTED and conn.access_token
    assert stripe_env.requests(path="/oauth/deauthorize") == []


def test_disconnect_confirmation_without_connection_goes_back(client, finance_a, business_a, stripe_env):
    client.force_login(finance_a)
    resp = client.get("/integrations/stripe/disconnect/", follow=True)
    assert resp.redirect_chain[-1][0] == "/integrations/stripe/"
    assert any("not connected" in m for m in _messages(resp))
