"""Login throttling (django-axes), the Content-Security-Policy, and staff sessions that
expire."""
import re

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings

pytestmark = pytest.mark.django_db


def login(client, username, password, ip="203.0.113.7"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip,
                       HTTP_X_FORWARDED_FOR=ip)


def test_login_locks_after_the_failure_limit_even_with_the_right_password(client, staff_a, settings):
    staff_a.set_password("right-password")
    staff_a.save()
    limit = django_settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert login(client, "staff_a", "wrong").status_code == 200  # the form again, with its error

    locked = login(client, "staff_a", "wrong")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert AccessAttempt.objects.get(username="staff_a").failures_since_start == limit
    assert login(client, "staff_a", "right-password").status_code == 429  # still locked
    assert "_auth_user_id" not in client.session


def test_login_lockout_is_per_user_and_address(client, staff_a, finance_a):
    for user in (staff_a, finance_a):
        user.set_password("right-password")
        user.save()
    for _ in range(django_settings.AXES_FAILURE_LIMIT):
        login(client, "staff_a", "wrong")

    assert login(client, "finance_a", "right-password").status_code == 302  # another user: not locked
    client.logout()
    assert login(client, "staff_a", "right-password", ip="198.51.100.9").status_code == 302  # another address


def test_login_success_before_the_limit_resets_the_count(client, staff_a):
    staff_a.set_password("right-password")
    staff_a.save()
    for _ in range(django_settings.AXES_FAILURE_LIMIT - 1):
        login(client, "staff_a", "wrong")
    assert login(client, "staff_a", "right-password").status_code == 302
    client.logout()

    assert login(client, "staff_a", "wrong").status_code == 200  # counting starts again


def csp(resp):
    header = resp.headers["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in header.split(";")) if d}


def test_csp_allows_only_this_site_for_scripts_on_staff_pages_and_admin(client, finance_a, settings):
    client.force_login(finance_a)
    for url in ("/", "/admin/login/", "/login/", "/integrations/stripe/"):
        resp = client.get(url)
        assert resp.status_code in (200, 302), url
        policy = csp(resp)
        assert policy["script-src"] == ["'self'"] and policy["default-src"] == ["'self'"], url
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


def test_csp_lets_forms_post_to_stripe_connect_but_nowhere_else(client):
    policy = csp(client.get("/login/"))

    assert policy["form-action"] == ["'self'", django_settings.STRIPE_CONNECT_BASE.rstrip("/")]


def test_csp_pages_have_no_inline_script_it_would_block(client, finance_a):
    # The policy has no 'unsafe-inline' for scripts: a page with an inline <script> or an
    # on* handler would break in the browser. JSON data blocks (json_script) are not run.
    client.force_login(finance_a)
    for url in ("/", "/login/", "/integrations/stripe/"):
        html = client.get(url).content.decode()
        scripts = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
        assert not scripts, (url, scripts)
        assert not re.search(r"\son[a-z]+=\"", html), url


def test_session_expires_after_inactivity_and_at_browser_close(client, staff_a):
    staff_a.set_password("right-password")
    staff_a.save()
    resp = login(client, "staff_a", "right-password")
    cookie = resp.cookies[django_settings.SESSION_COOKIE_NAME]

    assert django_settings.SESSION_COOKIE_AGE == 8 * 3600
    assert cookie["max-age"] == "" and cookie["expires"] == ""  # a browser-session cookie
    assert client.session.get_expiry_age() == 8 * 3600
    assert client.session.get_expire_at_browser_close()


def test_session_older_than_its_age_is_signed_out(client, staff_a, settings):
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    client.force_login(staff_a)
    assert client.get("/").status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))

    resp = client.get("/")
    assert resp.status_code == 302 and resp.url.startswith("/login/")
