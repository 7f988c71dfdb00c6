"""The catalog sync as staff see it: the admin's sync column, actions and tenancy; the
settings page's "Sync catalog now" and its progress; roles."""
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from services.services import service_create
from stripe_integration.catalog import sync as catalog
from stripe_integration.models import PriceLink, ServiceSync, SyncRun, SyncState
from stripe_integration.tests.sync_helpers import connect, stripe_call

pytestmark = pytest.mark.django_db

SERVICES = reverse("admin:services_service_changelist")
SYNCS = reverse("admin:stripe_integration_servicesync_changelist")
SETTINGS = reverse("stripe_integration:settings")
SYNC_NOW = reverse("stripe_integration:catalog_sync")


@pytest.fixture
def conn(client, finance_a, business_a, stripe_env, settings):
    settings.STRIPE_RETRY_BASE_DELAY = 0.01
    settings.STRIPE_MAX_RETRIES = 0
    return connect(client, finance_a, business_a)


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def _audit(business):
    return service_create(business=business, code="AUDIT", name="Audit", prices={"GBP": Decimal("100")})


def test_catalog_admin_shows_error_with_stripes_message_and_sync_action_retries(
        client, conn, business_a, stripe_env, django_capture_on_commit_callbacks):
    audit = _audit(business_a)
    stripe_env.fault(r"^POST /v1/products$", "500", count=1)
    with pytest.raises(catalog.RetryableSyncError):
        catalog.service_sync(connection=conn, service=audit)

    page = client.get(SERVICES).content.decode()
    assert "Error: Stripe could not be reached or had an error" in page

    # (Outside a test's transaction the queued sync runs at once, eager Celery, and the
    # message already says "synced".)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(SERVICES, {"action": "sync_to_stripe", "_selected_action": [audit.pk]})
    assert response.status_code == 302
    assert "1 service(s) pending." in _messages(response)
    row = ServiceSync.objects.get(service=audit)
    assert row.state == SyncState.SYNCED and row.last_error == ""
    assert "Synced" in client.get(SERVICES).content.decode()


def test_catalog_admin_service_page_retry_button(client, conn, business_a, stripe_env, django_capture_on_commit_callbacks):
    audit = _audit(business_a)
    url = reverse("admin:services_service_change", args=[audit.pk])
    assert 'name="_stripe_sync"' in client.get(url).content.decode()
    data = {"code": "AUDIT", "name": "Audit", "active": "on", "prices-TOTAL_FORMS": 1, "prices-INITIAL_FORMS": 1,
            "prices-MIN_NUM_FORMS": 0, "prices-MAX_NUM_FORMS": 1000, "prices-0-id": audit.prices.get().pk,
            "prices-0-service": audit.pk, "prices-0-currency": "GBP", "prices-0-amount": "100", "_stripe_sync": "1"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)
    assert response.status_code == 302 and response.url == url
    assert ServiceSync.objects.get(service=audit).state == SyncState.SYNCED


def test_catalog_admin_price_edit_in_inline_syncs_new_price(client, conn, business_a, stripe_env,
                                                              django_capture_on_commit_callbacks):
    audit = _audit(business_a)
    catalog.service_sync(connection=conn, service=audit)
    url = reverse("admin:services_service_change", args=[audit.pk])
    data = {"code": "AUDIT", "name": "Audit", "active": "on", "prices-TOTAL_FORMS": 1, "prices-INITIAL_FORMS": 1,
            "prices-MIN_NUM_FORMS": 0, "prices-MAX_NUM_FORMS": 1000, "prices-0-id": audit.prices.get().pk,
            "prices-0-service": audit.pk, "prices-0-currency": "GBP", "prices-0-amount": "125"}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert client.post(url, data).status_code == 302
    assert len(callbacks) == 1
    assert PriceLink.objects.get(service=audit, active=True).amount_minor == 12500


def test_catalog_admin_push_app_version_over_drift(client, conn, business_a, stripe_env,
                                                   django_capture_on_commit_callbacks):
    audit = _audit(business_a)
    catalog.service_sync(connection=conn, service=audit)
    row = ServiceSync.objects.get(service=audit)
    stripe_call(stripe_env, "POST", f"/v1/products/{row.stripe_product_id}", account=conn.stripe_user_id,
                params={"name": "Hand made"})
    catalog.service_sync(connection=conn, service=audit)
    detail = client.get(reverse("admin:stripe_integration_servicesync_change", args=[row.pk])).content.decode()
    assert "Hand made" in detail and "drift" in detail.lower()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(SYNCS, {"action": "push_app_version", "_selected_action": [row.pk]})

    assert response.status_code == 302
    row.refresh_from_db()
    assert row.state == SyncState.SYNCED
    assert stripe_call(stripe_env, "GET", f"/v1/products/{row.stripe_product_id}",
                       account=conn.stripe_user_id)["name"] == "Audit"


def test_catalog_admin_other_business_never_sees_sync_rows(client, conn, business_a, finance_b, stripe_env,
                                                            django_capture_on_commit_callbacks):
    audit = _audit(business_a)
    catalog.service_sync(connection=conn, service=audit)
    run = catalog.catalog_sync_run(run=catalog.catalog_sync_create_run(business=business_a, connection=conn))
    row, link = ServiceSync.objects.get(service=audit), PriceLink.objects.get(service=audit)
    client.force_login(finance_b)
    for name, obj in (("servicesync", row), ("pricelink", link), ("syncrun", run), ("stripeconnection", conn)):
        changelist = client.get(reverse(f"admin:stripe_integration_{name}_changelist"))
        assert changelist.status_code == 200
        assert changelist.context["cl"].result_count == 0
        detail = client.get(reverse(f"admin:stripe_integration_{name}_change", args=[obj.pk]))
        assert detail.status_code == 302 and detail.url == reverse("admin:index")
    # Nor act on them.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post(SYNCS, {"action": "push_app_version", "_selected_action": [row.pk]})
    assert callbacks == []
    assert stripe_env.requests(method="POST", path=f"/v1/products/{row.stripe_product_id}") == []


def test_catalog_admin_connection_page_never_shows_tokens(client, conn):
    page = client.get(reverse("admin:stripe_integration_stripeconnection_change", args=[conn.pk])).content.decode()
    assert conn.stripe_user_id in page
    assert conn.access_token not in page and conn.refresh_token not in page


def test_catalog_settings_page_sync_now_shows_progress_and_counts(client, conn, business_a, stripe_env,
                                                                   django_capture_on_commit_callbacks):
    _audit(business_a)
    page = client.get(SETTINGS).content.decode()
    assert "Sync catalog now" in page

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(SYNC_NOW)
    run = SyncRun.objects.get()
    assert run.status == "pending" and len(callbacks) == 1
    page = client.get(SETTINGS).content.decode()
    assert 'http-equiv="refresh"' in page and "0 of 1 services" in page
    # A second click while it runs starts nothing.
    response = client.post(SYNC_NOW)
    assert "already running" in " ".join(_messages(response)) and SyncRun.objects.count() == 1

    callbacks[0]()  # the worker picks it up
    page = client.get(SETTINGS).content.decode()
    assert 'http-equiv="refresh"' not in page
    assert "Last catalog sync: finished" in page and "1 created, 0 updated, 0 archived, 0 unchanged" in page


def test_catalog_settings_page_not_connected_has_no_sync(client, finance_a, business_a):
    client.force_login(finance_a)
    assert "Sync catalog now" not in client.get(SETTINGS).content.decode()
    response = client.post(SYNC_NOW)
    assert "not connected" in " ".join(_messages(response))


@pytest.mark.parametrize("method, name", [
    ("get", "settings"), ("post", "catalog_sync"), ("post", "integration_settings"),
])
def test_catalog_integration_pages_forbidden_to_staff_role(client, staff_a, method, name):
    client.force_login(staff_a)
    response = getattr(client, method)(reverse(f"stripe_integration:{name}"))
    assert response.status_code == 403
    assert not SyncRun.objects.exists()
