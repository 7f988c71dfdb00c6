"""Drift: a product changed or archived in Stripe by hand is shown, never silently overwritten."""
from decimal import Decimal

import pytest

from services.models import ServicePrice
from services.services import service_create, service_update
from stripe_integration.catalog import sync as catalog
from stripe_integration.models import ServiceSync, SyncState
from stripe_integration.tests.sync_helpers import connect, stripe_call, writes

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(client, finance_a, business_a, stripe_env, settings):
    """A connected business with one service synced to Stripe."""
    settings.STRIPE_RETRY_BASE_DELAY = 0.01
    conn = connect(client, finance_a, business_a)
    audit = service_create(business=business_a, code="AUDIT", name="Audit", description="Yearly audit",
                           prices={"GBP": Decimal("100"), "EUR": Decimal("120")})
    catalog.service_sync(connection=conn, service=audit)
    row = ServiceSync.objects.get(service=audit)
    stripe_env.mark()
    return conn, audit, row


def _by_hand(stripe_env, conn, path, **params):
    """What a person does in the Stripe dashboard: the platform key on the account."""
    return stripe_call(stripe_env, "POST", path, account=conn.stripe_user_id, params=params)


def _product(stripe_env, conn, row):
    return stripe_call(stripe_env, "GET", f"/v1/products/{row.stripe_product_id}", account=conn.stripe_user_id)


def test_catalog_drift_rename_in_stripe_is_detected_and_not_overwritten(synced, stripe_env):
    conn, audit, row = synced
    _by_hand(stripe_env, conn, f"/v1/products/{row.stripe_product_id}", name="Audit (edited in Stripe)")
    stripe_env.mark()

    outcome = catalog.service_sync(connection=conn, service=audit)

    assert outcome.state == SyncState.DRIFT
    assert writes(stripe_env) == []
    assert _product(stripe_env, conn, row)["name"] == "Audit (edited in Stripe)"
    row.refresh_from_db()
    assert row.state == SyncState.DRIFT
    assert row.drift == [{"object": "product", "field": "name", "app": "Audit", "stripe": "Audit (edited in Stripe)",
                          "synced": "Audit"}]


def test_catalog_drift_archived_in_stripe_is_detected_by_the_whole_catalog_run(synced, stripe_env, business_a):
    conn, audit, row = synced
    _by_hand(stripe_env, conn, f"/v1/products/{row.stripe_product_id}", active=False)
    stripe_env.mark()

    run = catalog.catalog_sync_run(run=catalog.catalog_sync_create_run(business=business_a, connection=conn))

    assert run.status == "partial" and run.counts == {"drift": 1}
    assert writes(stripe_env) == []
    assert _product(stripe_env, conn, row)["active"] is False
    row.refresh_from_db()
    assert row.state == SyncState.DRIFT and row.drift[0]["field"] == "active"


def test_catalog_drift_archived_price_in_stripe_is_detected(synced, stripe_env):
    conn, audit, row = synced
    eur = audit.stripe_price_links.get(currency="EUR")
    _by_hand(stripe_env, conn, f"/v1/prices/{eur.stripe_price_id}", active=False)

    outcome = catalog.service_sync(connection=conn, service=audit)

    assert outcome.state == SyncState.DRIFT
    row.refresh_from_db()
    assert row.drift == [{"object": f"price {eur.stripe_price_id}", "field": "active", "app": True, "stripe": False,
                          "synced": True}]


def test_catalog_drift_local_edit_keeps_drift_and_push_overwrites(synced, stripe_env, django_capture_on_commit_callbacks):
    conn, audit, row = synced
    _by_hand(stripe_env, conn, f"/v1/products/{row.stripe_product_id}", name="Edited in Stripe")
    catalog.service_sync(connection=conn, service=audit)
    with django_capture_on_commit_callbacks(execute=True):
        service_update(service=audit, description="New description")
    row.refresh_from_db()
    assert row.state == SyncState.DRIFT  # the edit is kept locally; Stripe's is not overwritten
    assert _product(stripe_env, conn, row)["name"] == "Edited in Stripe"

    catalog.service_sync(connection=conn, service=audit, force=True)

    product = _product(stripe_env, conn, row)
    assert product["name"] == "Audit" and product["description"] == "New description"
    row.refresh_from_db()
    assert row.state == SyncState.SYNCED and row.drift == []
    stripe_env.mark()
    catalog.service_sync(connection=conn, service=audit)
    assert writes(stripe_env) == []


def test_catalog_drift_stripe_back_to_synced_values_clears_drift(synced, stripe_env):
    conn, audit, row = synced
    path = f"/v1/products/{row.stripe_product_id}"
    _by_hand(stripe_env, conn, path, name="Oops")
    catalog.service_sync(connection=conn, service=audit)
    _by_hand(stripe_env, conn, path, name="Audit")

    outcome = catalog.service_sync(connection=conn, service=audit)

    assert outcome.state == SyncState.SYNCED


def test_catalog_drift_own_change_is_not_drift(synced, stripe_env):
    conn, audit, row = synced
    ServicePrice.objects.filter(service=audit, currency="GBP").update(amount=Decimal("110"))
    service_update(service=audit, name="Audit 2")

    outcome = catalog.service_sync(connection=conn, service=audit)
    assert outcome.state == SyncState.SYNCED and outcome.product == "updated"
    # The product.updated webhook of that write arrives afterwards: not drift.
    product = _product(stripe_env, conn, row)
    assert catalog.product_drift_detected(connection=conn, product=product).state == SyncState.SYNCED


def test_catalog_drift_webhook_marks_hand_edit(synced, stripe_env, business_a):
    conn, audit, row = synced
    product = _by_hand(stripe_env, conn, f"/v1/products/{row.stripe_product_id}", description="Changed by hand")

    result = catalog.product_drift_detected(business=business_a, product=product)

    assert result.pk == row.pk
    row.refresh_from_db()
    assert row.state == SyncState.DRIFT and row.drift[0]["field"] == "description"
    assert catalog.product_drift_detected(connection=conn, product={"id": "prod_unknown", "name": "x"}) is None
    # A synced price is not used for invoices while its product is in drift.
    assert catalog.price_id_for(connection=conn, service=audit, currency="GBP", amount=Decimal("100")) is None


def test_catalog_drift_late_webhook_is_ignored(synced, stripe_env):
    conn, audit, row = synced
    old = _product(stripe_env, conn, row)
    service_update(service=audit, name="Audit 2")
    catalog.service_sync(connection=conn, service=audit)
    stale = {**old, "updated": old["updated"] - 1}

    catalog.product_drift_detected(connection=conn, product=stale)

    row.refresh_from_db()
    assert row.state == SyncState.SYNCED


def test_catalog_drift_product_deleted_in_stripe(synced, stripe_env, business_a):
    conn, audit, row = synced
    # Products with prices cannot be deleted in Stripe; a service without prices can be.
    bare = service_create(business=business_a, code="BARE", name="Bare")
    catalog.service_sync(connection=conn, service=bare)
    bare_row = ServiceSync.objects.get(service=bare)
    stripe_call(stripe_env, "DELETE", f"/v1/products/{bare_row.stripe_product_id}", account=conn.stripe_user_id)

    assert catalog.service_sync(connection=conn, service=bare).state == SyncState.DRIFT
    bare_row.refresh_from_db()
    assert "deleted" in bare_row.drift[0]["stripe"]

    catalog.service_sync(connection=conn, service=bare, force=True)
    bare_row.refresh_from_db()
    assert bare_row.state == SyncState.SYNCED and bare_row.stripe_product_id != row.stripe_product_id
    assert stripe_call(stripe_env, "GET", f"/v1/products/{bare_row.stripe_product_id}",
                       account=conn.stripe_user_id)["name"] == "Bare"
