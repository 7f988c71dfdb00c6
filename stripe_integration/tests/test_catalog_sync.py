"""Catalog sync against the sandbox over real HTTP: products, prices, fingerprints, retries."""
from decimal import Decimal

import pytest
from celery.exceptions import Retry
from django.core.management import call_command

from services.models import ServicePrice
from services.services import service_archive, service_create, service_prices_changed, service_update
from stripe_integration.catalog import sync as catalog
from stripe_integration.models import PriceLink, ServiceSync, SyncRun, SyncState
from stripe_integration.catalog.tasks import service_sync_task
from stripe_integration.tests.sync_helpers import connect, stripe_call, writes

pytestmark = pytest.mark.django_db


@pytest.fixture
def conn(client, finance_a, business_a, stripe_env, settings):
    settings.STRIPE_RETRY_BASE_DELAY = 0.01  # the gateway's own retries, kept short here
    business_a.default_currency = "USD"
    business_a.save()
    connection = connect(client, finance_a, business_a)
    stripe_env.mark()  # count only the sync's calls
    return connection


def _product(stripe_env, conn, product_id):
    return stripe_call(stripe_env, "GET", f"/v1/products/{product_id}", account=conn.stripe_user_id)


def _prices(stripe_env, conn, product_id):
    return stripe_call(stripe_env, "GET", "/v1/prices", account=conn.stripe_user_id,
                       params={"product": product_id, "limit": 100})["data"]


def _run(business):
    run = catalog.catalog_sync_create_run(business=business, connection=catalog.connection_get_active(business=business))
    return catalog.catalog_sync_run(run=run)


def _service(business, code="AUDIT", **prices):
    # Created before the connection exists or without on_commit callbacks: no sync yet.
    return service_create(business=business, code=code, name=f"{code} service", description="Yearly audit",
                          prices={c.upper(): Decimal(a) for c, a in prices.items()})


def test_catalog_sync_first_run_makes_one_product_and_one_price_per_currency(conn, business_a, stripe_env):
    audit = _service(business_a, "AUDIT", usd="12.50", jpy="1500", eur="10", kwd="1.25")
    payroll = _service(business_a, "PAYROLL", usd="100")

    run = _run(business_a)

    assert run.status == "succeeded" and run.done == run.total == 2
    assert run.counts == {"products_created": 2, "prices_created": 5}
    posts = writes(stripe_env)
    assert len([r for r in posts if r["path"] == "/v1/products"]) == 2
    # Per service: the product (with its default price) + one call per other currency,
    # + the lookup key of the default price: 1 product + 1 price call per currency.
    assert len(posts) == 2 + 5
    assert all(r["account"] == conn.stripe_user_id for r in stripe_env.requests())
    assert all(r["idempotency_key"] and r["idempotency_key"].startswith("crm-") for r in posts)

    row = ServiceSync.objects.get(service=audit)
    assert row.state == SyncState.SYNCED and row.stripe_product_id == catalog.product_id_for(audit, conn.stripe_user_id)
    product = _product(stripe_env, conn, row.stripe_product_id)
    assert product["name"] == "AUDIT service" and product["description"] == "Yearly audit" and product["active"]
    assert product["metadata"] == {"crm_service_id": str(audit.pk), "crm_service_code": "AUDIT",
                                   "crm_business_id": str(business_a.pk)}
    prices = {p["currency"]: p for p in _prices(stripe_env, conn, row.stripe_product_id)}
    assert {c: p["unit_amount"] for c, p in prices.items()} == {"usd": 1250, "jpy": 1500, "eur": 1000, "kwd": 1250}
    assert {c: p["lookup_key"] for c, p in prices.items()} == {
        c: f"crm_b{business_a.pk}_s{audit.pk}_{c}" for c in ("usd", "jpy", "eur", "kwd")}
    assert all(p["active"] and p["metadata"]["crm_service_id"] == str(audit.pk) for p in prices.values())
    assert product["default_price"] == prices["usd"]["id"]  # the business's currency
    assert PriceLink.objects.filter(service=audit, active=True).count() == 4
    assert ServiceSync.objects.get(service=payroll).state == SyncState.SYNCED


def test_catalog_sync_unchanged_catalog_makes_no_write(conn, business_a, stripe_env):
    _service(business_a, "AUDIT", usd="12.50", eur="10")
    _service(business_a, "PAYROLL", jpy="3000")
    _run(business_a)
    stripe_env.mark()

    run = _run(business_a)

    assert writes(stripe_env) == []
    assert run.status == "succeeded"
    assert run.counts == {"products_unchanged": 2, "prices_unchanged": 3}


def test_catalog_sync_amount_change_makes_new_price_and_archives_old(conn, business_a, stripe_env):
    audit = _service(business_a, "AUDIT", usd="12.50", eur="10")
    _run(business_a)
    old_id = catalog.price_id_for(connection=conn, service=audit, currency="USD", amount=Decimal("12.50"))
    assert old_id
    ServicePrice.objects.filter(service=audit, currency="USD").update(amount=Decimal("15.00"))
    stripe_env.mark()

    outcome = catalog.service_sync(connection=conn, service=audit)

    assert outcome.prices == {"created": 1, "archived": 1, "unchanged": 1} and outcome.product == "updated"
    product_id = ServiceSync.objects.get(service=audit).stripe_product_id
    prices = {p["id"]: p for p in _prices(stripe_env, conn, product_id)}
    new_id = catalog.price_id_for(connection=conn, service=audit, currency="USD", amount=Decimal("15"))
    assert new_id and new_id != old_id
    assert prices[new_id]["unit_amount"] == 1500 and prices[new_id]["active"]
    assert prices[new_id]["lookup_key"] == f"crm_b{business_a.pk}_s{audit.pk}_usd"
    assert prices[old_id]["active"] is False and prices[old_id]["lookup_key"] is None
    assert _product(stripe_env, conn, product_id)["default_price"] == new_id
    # The old price stays linked (archived) for the invoices that used it.
    assert PriceLink.objects.get(stripe_price_id=old_id).active is False
    assert catalog.price_id_for(connection=conn, service=audit, currency="USD", amount=Decimal("12.50")) is None

    # Back to the first amount: the old price comes back, no third price is made.
    ServicePrice.objects.filter(service=audit, currency="USD").update(amount=Decimal("12.50"))
    stripe_env.mark()
    catalog.service_sync(connection=conn, service=audit)
    assert not [r for r in writes(stripe_env) if r["path"] == "/v1/prices"]
    assert catalog.price_id_for(connection=conn, service=audit, currency="USD", amount=Decimal("12.50")) == old_id
    assert _product(stripe_env, conn, product_id)["default_price"] == old_id
    assert PriceLink.objects.filter(service=audit, currency="USD").count() == 2


def test_catalog_sync_removed_currency_archives_its_price(conn, business_a, stripe_env):
    audit = _service(business_a, "AUDIT", usd="12.50", eur="10")
    _run(business_a)
    eur = PriceLink.objects.get(service=audit, currency="EUR")
    ServicePrice.objects.filter(service=audit, currency="EUR").delete()

    outcome = catalog.service_sync(connection=conn, service=audit)

    assert outcome.prices == {"archived": 1, "unchanged": 1}
    eur.refresh_from_db()
    assert eur.active is False
    assert stripe_call(stripe_env, "GET", f"/v1/prices/{eur.stripe_price_id}", account=conn.stripe_user_id)["active"] is False


def test_catalog_sync_deactivate_archives_product_and_reactivate_restores(
        conn, business_a, stripe_env, django_capture_on_commit_callbacks):
    audit = _service(business_a, "AUDIT", usd="12.50")
    _run(business_a)
    product_id = ServiceSync.objects.get(service=audit).stripe_product_id

    with django_capture_on_commit_callbacks(execute=True):
        service_archive(service=audit)
    assert _product(stripe_env, conn, product_id)["active"] is False
    assert ServiceSync.objects.get(service=audit).state == SyncState.SYNCED

    with django_capture_on_commit_callbacks(execute=True):
        service_update(service=audit, active=True)
    assert _product(stripe_env, conn, product_id)["active"] is True
    assert not [r for r in stripe_env.requests() if r["method"] == "DELETE"]


def test_catalog_sync_archived_service_never_in_stripe_is_skipped(conn, business_a, stripe_env):
    service_create(business=business_a, code="OLD", name="Old", active=False, prices={"USD": Decimal("5")})

    run = _run(business_a)

    assert run.counts == {"skipped": 1}
    assert writes(stripe_env) == [] and not ServiceSync.objects.exists()


def test_catalog_sync_service_edit_enqueues_sync_on_commit(conn, business_a, stripe_env, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        audit = _service(business_a, "AUDIT", usd="12.50")
    assert len(callbacks) == 1
    row = ServiceSync.objects.get(service=audit)
    assert row.state == SyncState.SYNCED and row.stripe_product_id

    with django_capture_on_commit_callbacks(execute=True):
        service_update(service=audit, name="Audit, renamed")
    assert _product(stripe_env, conn, row.stripe_product_id)["name"] == "Audit, renamed"

    ServicePrice.objects.filter(service=audit).update(amount=Decimal("20"))
    with django_capture_on_commit_callbacks(execute=True):
        service_prices_changed(service=audit)
    assert catalog.price_id_for(connection=conn, service=audit, currency="USD", amount=Decimal("20"))


def test_catalog_sync_not_connected_enqueues_nothing(business_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        audit = _service(business_a, "AUDIT", usd="12.50")
        service_update(service=audit, name="Renamed")
    assert callbacks == [] and not ServiceSync.objects.exists()


def test_catalog_sync_retried_task_does_not_make_a_second_product(conn, business_a, stripe_env, settings):
    # Stripe performs the create but its answer never arrives; the gateway does not retry
    # here, so the task asks Celery for a retry, which carries the same idempotency key.
    settings.STRIPE_MAX_RETRIES = 0
    audit = _service(business_a, "AUDIT", usd="12.50", eur="10")
    stripe_env.fault(r"^POST /v1/products$", "drop", count=1)

    # Run as a worker runs it (a request that is not eager); the retry it asks for is sent
    # with apply_async, which eager Celery runs at once, then `retry()` raises Retry.
    service_sync_task.push_request(id="worker-run", args=[audit.pk], kwargs={}, retries=0, is_eager=False,
                                   called_directly=False)
    try:
        with pytest.raises(Retry):
            service_sync_task.run(audit.pk)
    finally:
        service_sync_task.pop_request()

    product_posts = stripe_env.requests(method="POST", path="/v1/products")
    assert len(product_posts) == 2 and len({r["idempotency_key"] for r in product_posts}) == 1
    assert [r["replayed"] for r in product_posts] == [False, True]
    products = stripe_call(stripe_env, "GET", "/v1/products", account=conn.stripe_user_id, params={"limit": 100})
    assert len(products["data"]) == 1
    row = ServiceSync.objects.get(service=audit)
    assert row.state == SyncState.SYNCED and row.stripe_product_id == products["data"][0]["id"]
    assert len(_prices(stripe_env, conn, row.stripe_product_id)) == 2


def test_catalog_sync_eager_task_records_the_error_instead_of_retrying(
        conn, business_a, stripe_env, settings, django_capture_on_commit_callbacks):
    settings.STRIPE_MAX_RETRIES = 0
    stripe_env.fault(r"^POST /v1/products$", "drop", count=1)
    with django_capture_on_commit_callbacks(execute=True):
        audit = _service(business_a, "AUDIT", usd="12.50")
    row = ServiceSync.objects.get(service=audit)
    assert row.state == SyncState.ERROR and "try again" in row.last_error

    service_sync_task.delay(audit.pk)  # the admin's retry

    row.refresh_from_db()
    assert row.state == SyncState.SYNCED
    assert len(stripe_call(stripe_env, "GET", "/v1/products", account=conn.stripe_user_id)["data"]) == 1


def test_catalog_sync_retry_with_changed_service_adopts_the_product_it_made(conn, business_a, stripe_env, settings):
    settings.STRIPE_MAX_RETRIES = 0
    audit = _service(business_a, "AUDIT", usd="12.50")
    stripe_env.fault(r"^POST /v1/products$", "drop", count=1)
    with pytest.raises(catalog.RetryableSyncError):
        catalog.service_sync(connection=conn, service=audit)
    row = ServiceSync.objects.get(service=audit)
    assert row.state == SyncState.ERROR and row.stripe_product_id == ""
    # Edited before the retry: another idempotency key, but the product's id is ours.
    service_update(service=audit, name="Audit (new name)")

    catalog.service_sync(connection=conn, service=audit)

    products = stripe_call(stripe_env, "GET", "/v1/products", account=conn.stripe_user_id, params={"limit": 100})["data"]
    assert len(products) == 1 and products[0]["name"] == "Audit (new name)"
    assert len(_prices(stripe_env, conn, products[0]["id"])) == 1
    assert ServiceSync.objects.get(service=audit).state == SyncState.SYNCED


def test_catalog_sync_failure_keeps_local_edit_and_shows_error_then_retry_works(conn, business_a, stripe_env, settings):
    settings.STRIPE_MAX_RETRIES = 0
    audit = _service(business_a, "AUDIT", usd="12.50")
    _run(business_a)
    stripe_env.fault(r"^POST /v1/products/", "429")
    service_update(service=audit, name="Audit, renamed")

    with pytest.raises(catalog.RetryableSyncError):
        catalog.service_sync(connection=conn, service=audit)

    audit.refresh_from_db()
    row = ServiceSync.objects.get(service=audit)
    assert audit.name == "Audit, renamed"
    assert row.state == SyncState.ERROR and "rate limiting" in row.last_error
    stripe_env.clear_faults()
    catalog.service_sync(connection=conn, service=audit)
    row.refresh_from_db()
    assert row.state == SyncState.SYNCED and row.last_error == ""
    assert _product(stripe_env, conn, row.stripe_product_id)["name"] == "Audit, renamed"


def test_catalog_sync_amount_stripe_cannot_take_is_an_error_not_rounded(conn, business_a, stripe_env):
    # Typed, KWD 1.235 is refused (ServicePrice.clean); a row saved before that rule, or
    # written by update(), still meets the sync's own check.
    audit = _service(business_a, "AUDIT", kwd="1.25")
    audit.prices.update(amount=Decimal("1.235"))

    with pytest.raises(catalog.CatalogSyncError) as exc:
        catalog.service_sync(connection=conn, service=audit)

    assert "1.235" in exc.value.message
    assert ServiceSync.objects.get(service=audit).state == SyncState.ERROR
    assert writes(stripe_env) == []


def test_catalog_sync_management_command_prints_counts(conn, business_a, stripe_env, capsys):
    _service(business_a, "AUDIT", usd="12.50", eur="10")
    call_command("stripe_sync_catalog", "--business", business_a.slug)
    out = capsys.readouterr().out
    assert "Products: 1 created, 0 updated, 0 archived, 0 unchanged" in out
    assert "Prices: 2 created, 0 updated, 0 archived, 0 unchanged" in out

    call_command("stripe_sync_catalog", "--business", business_a.slug)
    out = capsys.readouterr().out
    assert "Products: 0 created, 0 updated, 0 archived, 1 unchanged" in out
    assert "Prices: 0 created, 0 updated, 0 archived, 2 unchanged" in out
    assert SyncRun.objects.filter(business=business_a, status="succeeded").count() == 2


def test_catalog_sync_management_command_refuses_unconnected_business(business_b):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not connected"):
        call_command("stripe_sync_catalog", "--business", business_b.slug)
    with pytest.raises(CommandError, match="No business"):
        call_command("stripe_sync_catalog", "--business", "nope")


def test_catalog_price_id_for_only_exact_synced_list_amount(conn, business_a, stripe_env):
    audit = _service(business_a, "AUDIT", usd="12.50", jpy="1500")
    _run(business_a)
    usd = PriceLink.objects.get(service=audit, currency="USD").stripe_price_id

    assert catalog.price_id_for(connection=conn, service=audit, currency="USD", amount=Decimal("12.5")) == usd
    assert catalog.price_id_for(connection=conn, service=audit, currency="usd", amount=Decimal("12.50")) == usd
    assert catalog.price_id_for(connection=conn, service=audit, currency="USD", amount=Decimal("12.49")) is None
    assert catalog.price_id_for(connection=conn, service=audit, currency="USD", amount=Decimal("12.501")) is None
    assert catalog.price_id_for(connection=conn, service=audit, currency="EUR", amount=Decimal("12.50")) is None
    assert catalog.price_id_for(connection=conn, service=audit, currency="JPY", amount=Decimal("1500"))


def test_catalog_sync_starts_by_itself_when_a_business_connects(client, finance_a, business_a, stripe_env,
                                                                 django_capture_on_commit_callbacks):
    _service(business_a, code="AUDIT", usd="1200.00", eur="1100.00")
    _service(business_a, code="TAX", jpy="50000")
    with django_capture_on_commit_callbacks(execute=True):
        conn = connect(client, finance_a, business_a)
    run = SyncRun.objects.get(business=business_a)
    assert run.status == "succeeded" and run.started_by == finance_a
    assert ServiceSync.objects.filter(connection=conn, state=SyncState.SYNCED).count() == 2
    assert len(stripe_env.requests(method="POST", path="/v1/products")) == 2
    assert PriceLink.objects.filter(service__business=business_a, active=True).count() == 3
