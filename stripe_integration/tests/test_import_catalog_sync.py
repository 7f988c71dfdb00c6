"""The catalog sync after an import (issue 15): an account with products and prices of its
own connects, the import links them to services, the catalog sync runs. Nothing is made
twice in Stripe, the imported prices are reused (a changed amount gets a new price, the
old one archived: Stripe's amounts are immutable), every imported service ends synced,
and a second sync writes nothing. Through the sandbox over real HTTP, as the import tests."""
from decimal import Decimal

import pytest

from services.models import Service, ServicePrice
from services.services import service_create
from stripe_integration.catalog import sync as catalog
from stripe_integration.importing.start import import_start
from stripe_integration.importing.tasks import imports_sweep_task
from stripe_integration.models import ImportStatus, PriceLink, ServiceSync, StripeImport, SyncRun, SyncState
from stripe_integration.tests.import_fixtures import (  # noqa: F401
    account_with_history, as_account, connect_offline, history_email,
)
from stripe_integration.tests.sync_helpers import writes
from stripe_integration.tests.webhook_fixtures import eager_celery  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit: the import's pages commit as in production


def _run(business, connection):
    run = catalog.catalog_sync_create_run(business=business, connection=connection)
    return catalog.catalog_sync_run(run=run)


def _service(business, code, description="", **prices):
    return service_create(business=business, code=code, name=f"{code} service", description=description,
                          prices={c.upper(): Decimal(a) for c, a in prices.items()})


@pytest.fixture
def connect_with(eager_celery, client, finance_a, business_a, stripe_env, settings, history_email):
    """connect_with(seed): an account seeded by `seed(stripe_env, account)` connects, its
    import runs (the sweep) and the sync after it; the sandbox's request log starts there."""
    settings.STRIPE_RETRY_BASE_DELAY = 0.01

    def _connect(seed):
        account_with_history(stripe_env, history_email, seed_with=seed)
        stripe_env.mark()
        setup = connect_offline(client=client, user=finance_a, business=business_a, stripe_env=stripe_env, settings=settings)
        imports_sweep_task.apply(throw=True)
        return setup
    return _connect


def _subscription_product(s, name: str) -> dict:
    """A product with a monthly (recurring) USD 50 price; and a customer (history)."""
    product = s.post("/v1/products", {"name": name})
    monthly = s.post("/v1/prices", {"product": product["id"], "currency": "usd", "unit_amount": 5000,
                                    "recurring": {"interval": "month"}})
    s.post("/v1/customers", {"email": "someone@example.test", "name": "Someone"})
    return {"product": product, "monthly": monthly}


@pytest.fixture
def account(connect_with, business_a):
    """Services AUDIT (USD 12.50), PAYROLL (USD 100.00) and an account holding: a product with
    our metadata for AUDIT (same amount), a product whose price has the lookup key PAYROLL
    (USD 90.00: the service's amount differs), a product the app does not know (EUR 50.00,
    an archived EUR 45.00 price too) and a customer (history: the import starts on connect)."""
    business_a.default_currency = "USD"
    business_a.save()
    audit = _service(business_a, "AUDIT", usd="12.50")
    payroll = _service(business_a, "PAYROLL", description="Monthly payroll", usd="100.00")
    made = {}

    def products(stripe_env, acct):
        s = as_account(stripe_env, acct)
        made["audit"] = s.post("/v1/products", {
            "name": "Audit (as Stripe has it)", "description": "Audit, from the Stripe dashboard",
            "metadata": {"crm_service_id": str(audit.pk), "crm_business_id": str(business_a.pk)},
            "default_price_data": {"currency": "usd", "unit_amount": 1250}})
        made["payroll"] = s.post("/v1/products", {"name": "Payroll", "description": "Payroll runs"})
        made["payroll_price"] = s.post("/v1/prices", {"product": made["payroll"]["id"], "currency": "usd",
                                                      "unit_amount": 9000, "lookup_key": "PAYROLL"})
        s.post(f"/v1/products/{made['payroll']['id']}", {"default_price": made["payroll_price"]["id"]})
        made["training"] = s.post("/v1/products", {"name": "Training day", "description": "Two days on site",
                                                   "default_price_data": {"currency": "eur", "unit_amount": 5000}})
        old = s.post("/v1/prices", {"product": made["training"]["id"], "currency": "eur", "unit_amount": 4500})
        s.post(f"/v1/prices/{old['id']}", {"active": False})
        made["training_old_price"] = old
        s.post("/v1/customers", {"email": "someone@example.test", "name": "Someone"})

    setup = connect_with(products)
    job = StripeImport.objects.get(business=business_a)
    assert job.status == ImportStatus.COMPLETE, job.error
    return setup, made, audit, payroll


def _price_posts(stripe_env):
    return [r for r in writes(stripe_env) if r["path"] == "/v1/prices" and r["method"] == "POST"]


def test_sync_after_import_makes_no_second_product_and_reuses_prices(account, business_a, stripe_env):
    setup, made, audit, payroll = account
    conn, s = setup.connection, setup.stripe
    training = Service.objects.get(business=business_a, name="Training day")

    # The catalog sync waited for the import (not queued on connect) and ran after it.
    run = SyncRun.objects.get(business=business_a)
    assert run.status == "succeeded", (run.error, run.counts)
    assert run.created_at > StripeImport.objects.get(business=business_a).finished_at
    # Not one product made by the app.
    assert [r for r in writes(stripe_env) if r["path"] == "/v1/products"] == []
    products = s.get("/v1/products", {"limit": 100})["data"]
    assert len(products) == 3
    rows = {row.service_id: row for row in ServiceSync.objects.filter(connection=conn)}
    assert {sid: (row.state, row.stripe_product_id) for sid, row in rows.items()} == {
        audit.pk: (SyncState.SYNCED, made["audit"]["id"]),
        payroll.pk: (SyncState.SYNCED, made["payroll"]["id"]),
        training.pk: (SyncState.SYNCED, made["training"]["id"]),
    }, {row.service_id: row.last_error for row in rows.values()}

    # AUDIT: same amount, the imported price reused; one price in Stripe.
    audit_prices = s.get("/v1/prices", {"product": made["audit"]["id"], "limit": 100})["data"]
    assert [p["id"] for p in audit_prices] == [made["audit"]["default_price"]]
    assert catalog.price_id_for(connection=conn, service=audit, currency="USD",
                                amount=Decimal("12.50")) == made["audit"]["default_price"]
    # Training (new service): its EUR 50 price reused, the archived 45 left archived.
    training_prices = {p["id"]: p for p in s.get("/v1/prices", {"product": made["training"]["id"], "limit": 100})["data"]}
    assert len(training_prices) == 2
    assert training_prices[made["training"]["default_price"]]["active"]
    assert training_prices[made["training_old_price"]["id"]]["active"] is False
    assert ServicePrice.objects.get(service=training).amount == Decimal("50.00")
    reasons = StripeImport.objects.get(business=business_a).counts["prices"]["reasons"]
    assert reasons.get("skipped: archived in Stripe: left as it is") == 1, reasons

    # PAYROLL: USD 100 in the app, 90 in Stripe: a new price (never the old one's amount
    # changed), the account's own lookup key moved to it, the old one archived.
    payroll_prices = {p["id"]: p for p in s.get("/v1/prices", {"product": made["payroll"]["id"], "limit": 100})["data"]}
    assert len(payroll_prices) == 2
    old = payroll_prices[made["payroll_price"]["id"]]
    new_id = catalog.price_id_for(connection=conn, service=payroll, currency="USD", amount=Decimal("100"))
    new = payroll_prices[new_id]
    assert old["unit_amount"] == 9000 and old["active"] is False and old["lookup_key"] is None
    assert new["unit_amount"] == 10000 and new["active"] and new["lookup_key"] == "PAYROLL"
    assert s.get(f"/v1/products/{made['payroll']['id']}")["default_price"] == new_id
    assert len(_price_posts(stripe_env)) == 1
    assert PriceLink.objects.get(stripe_price_id=old["id"]).active is False

    # The products keep what Stripe held where the app has nothing better (descriptions),
    # and get our metadata.
    for key, service in (("audit", audit), ("payroll", payroll), ("training", training)):
        product = s.get(f"/v1/products/{made[key]['id']}")
        assert product["metadata"]["crm_service_id"] == str(service.pk)
        assert product["active"]
    # A matched service with no description takes the product's from the import, so the
    # sync (the app's version wins) does not wipe what the account wrote.
    audit.refresh_from_db()
    assert audit.description == "Audit, from the Stripe dashboard"
    assert s.get(f"/v1/products/{made['audit']['id']}")["description"] == "Audit, from the Stripe dashboard"
    assert s.get(f"/v1/products/{made['payroll']['id']}")["description"] == "Monthly payroll"
    assert s.get(f"/v1/products/{made['training']['id']}")["description"] == "Two days on site"

    # A second sync: nothing written, every service unchanged.
    stripe_env.mark()
    again = _run(business_a, conn)
    assert writes(stripe_env) == []
    assert again.status == "succeeded" and again.counts == {"products_unchanged": 3, "prices_unchanged": 3}, again.counts


def test_sync_after_import_leaves_a_subscription_price_alone(connect_with, business_a, stripe_env):
    """A product with a subscription's (recurring) price besides its one-time price: the
    import skips the recurring one; the sync uses the one-time one and neither uses nor archives the
    recurring one (invoice items refuse recurring prices; subscriptions still use it)."""
    business_a.default_currency = "USD"
    business_a.save()
    made = {}

    def products(stripe_env, acct):
        s = as_account(stripe_env, acct)
        made.update(_subscription_product(s, "Support plan"))
        made["once"] = s.post("/v1/prices", {"product": made["product"]["id"], "currency": "usd", "unit_amount": 20000})
        s.post(f"/v1/products/{made['product']['id']}", {"default_price": made["once"]["id"]})

    setup = connect_with(products)
    service = Service.objects.get(business=business_a, name="Support plan")
    assert ServicePrice.objects.get(service=service).amount == Decimal("200.00")  # the one-time price's
    run = SyncRun.objects.get(business=business_a)
    assert run.status == "succeeded", (run.error, run.counts)

    s = setup.stripe
    assert s.get(f"/v1/prices/{made['monthly']['id']}")["active"]
    assert s.get(f"/v1/products/{made['product']['id']}")["default_price"] == made["once"]["id"]
    assert catalog.price_id_for(connection=setup.connection, service=service, currency="USD",
                                amount=Decimal("200")) == made["once"]["id"]
    assert _price_posts(stripe_env) == []
    assert ServiceSync.objects.get(service=service).state == SyncState.SYNCED
    stripe_env.mark()
    _run(business_a, setup.connection)
    assert writes(stripe_env) == []


def test_no_sync_while_an_import_waits_then_the_sync_after_it(eager_celery, client, finance_a, business_a, stripe_env,
                                                              settings, history_email):
    """A service edited while an import waits or runs is left pending (the import may yet
    link it to a product of the account), and "Sync catalog now" is refused with a reason;
    the sync queued when the import completes brings it to Stripe, once."""
    account_with_history(stripe_env, history_email, seed_with=None)
    setup = connect_offline(client=client, user=finance_a, business=business_a, stripe_env=stripe_env, settings=settings)
    job = import_start(connection=setup.connection, user=finance_a)
    assert job.status == ImportStatus.WAITING
    stripe_env.mark()

    audit = _service(business_a, "AUDIT", usd="12.50")  # service_create asks for its sync on commit

    assert writes(stripe_env) == []
    assert ServiceSync.objects.get(service=audit).state == SyncState.PENDING
    with pytest.raises(catalog.CatalogSyncError, match="import from Stripe is running"):
        catalog.catalog_sync_start(business=business_a)

    imports_sweep_task.apply(throw=True)

    job.refresh_from_db()
    assert job.status == ImportStatus.COMPLETE, job.error
    row = ServiceSync.objects.get(service=audit)
    assert row.state == SyncState.SYNCED and row.stripe_product_id
    assert len(stripe_env.requests(method="POST", path="/v1/products")) == 1


def test_import_skips_a_recurring_price_and_the_sync_makes_no_price_from_it(connect_with, business_a, stripe_env):
    """A product whose only price is a subscription's: the import skips that price with
    its reason (invoices take one-time prices only), so the service has no list price from
    it, and the sync neither uses nor archives it."""
    made = {}
    setup = connect_with(lambda stripe_env, acct: made.update(_subscription_product(as_account(stripe_env, acct), "Hosting")))
    service = Service.objects.get(business=business_a, name="Hosting")
    job = StripeImport.objects.get(business=business_a)
    assert job.counts["prices"]["skipped"] == 1, job.counts
    assert any("recurring" in reason for reason in job.counts["prices"]["reasons"]), job.counts
    assert not ServicePrice.objects.filter(service=service).exists()
    assert not PriceLink.objects.filter(stripe_price_id=made["monthly"]["id"]).exists()
    assert _price_posts(stripe_env) == []
    assert setup.stripe.get(f"/v1/prices/{made['monthly']['id']}")["active"]


def _archived(s) -> set[str]:
    """The account's archived prices, as the sandbox holds them (GET /v1/prices)."""
    return {p["id"] for p in s.get("/v1/prices", {"limit": 100})["data"] if not p["active"]}


@pytest.fixture
def two_usd_prices(connect_with, business_a):
    """An account with a product "Consulting day": its default price USD 150, another
    one-time USD 120 (newer: listed first), a monthly USD 50; and a product "Workshop"
    with no default price and two one-time USD prices, 300 then 250 (listed first)."""
    business_a.default_currency = "USD"
    business_a.save()
    made = {}

    def products(stripe_env, acct):
        s = as_account(stripe_env, acct)
        made["consulting"] = s.post("/v1/products", {"name": "Consulting day",
                                                     "default_price_data": {"currency": "usd", "unit_amount": 15000}})
        made["default"] = made["consulting"]["default_price"]
        made["discount"] = s.post("/v1/prices", {"product": made["consulting"]["id"], "currency": "usd",
                                                 "unit_amount": 12000})["id"]
        made["monthly"] = s.post("/v1/prices", {"product": made["consulting"]["id"], "currency": "usd",
                                                "unit_amount": 5000, "recurring": {"interval": "month"}})["id"]
        made["workshop"] = s.post("/v1/products", {"name": "Workshop"})
        made["workshop_300"] = s.post("/v1/prices", {"product": made["workshop"]["id"], "currency": "usd",
                                                     "unit_amount": 30000})["id"]
        made["workshop_250"] = s.post("/v1/prices", {"product": made["workshop"]["id"], "currency": "usd",
                                                     "unit_amount": 25000})["id"]
        s.post("/v1/customers", {"email": "someone@example.test", "name": "Someone"})

    setup = connect_with(products)
    job = StripeImport.objects.get(business=business_a)
    assert job.status == ImportStatus.COMPLETE, job.error
    return setup, made


def _active(s, price_id) -> bool:
    return s.get(f"/v1/prices/{price_id}")["active"]


def test_another_one_time_price_in_the_same_currency_is_left_untouched(two_usd_prices, business_a, stripe_env):
    """Gap of issue 15: the import took the first USD price listed and linked the other, and
    the sync then archived the other in the business's account. Now the service takes the
    product's default price (else the first listed), the other is skipped with its reason
    and never linked, and no sync archives it; once the service's amount changes, only
    the price it took over is archived, and the one the sync made in its place the next time."""
    setup, made = two_usd_prices
    conn, s = setup.connection, setup.stripe
    consulting = Service.objects.get(business=business_a, name="Consulting day")
    workshop = Service.objects.get(business=business_a, name="Workshop")
    job = StripeImport.objects.get(business=business_a)
    reasons = job.counts["prices"]["reasons"]
    assert reasons.get("skipped: another one-time price in USD for this product: left untouched") == 2, reasons
    assert job.counts["prices"]["created"] == 2, job.counts["prices"]
    assert ServicePrice.objects.get(service=consulting).amount == Decimal("150.00")  # the default price's
    assert ServicePrice.objects.get(service=workshop).amount == Decimal("250.00")  # the first listed
    assert not PriceLink.objects.filter(stripe_price_id__in=[made["discount"], made["workshop_300"]]).exists()

    run = SyncRun.objects.get(business=business_a)
    assert run.status == "succeeded", (run.error, run.counts)
    assert _archived(s) == set() and _price_posts(stripe_env) == []
    for key in ("default", "discount", "monthly", "workshop_300", "workshop_250"):
        assert _active(s, made[key]), key
    assert catalog.price_id_for(connection=conn, service=consulting, currency="USD",
                                amount=Decimal("150")) == made["default"]
    assert catalog.price_id_for(connection=conn, service=consulting, currency="USD", amount=Decimal("120")) is None

    stripe_env.mark()
    assert _run(business_a, conn).status == "succeeded"
    assert writes(stripe_env) == []

    # The service's amount changes twice: the price it took over is archived, then the
    # one the sync made; the account's other prices stay active throughout.
    ServicePrice.objects.filter(service=consulting).update(amount=Decimal("160.00"))
    assert _run(business_a, conn).status == "succeeded"
    assert _archived(s) == {made["default"]}
    made_by_sync = catalog.price_id_for(connection=conn, service=consulting, currency="USD", amount=Decimal("160"))
    assert made_by_sync not in made.values()
    ServicePrice.objects.filter(service=consulting).update(amount=Decimal("170.00"))
    assert _run(business_a, conn).status == "succeeded"
    assert _archived(s) == {made["default"], made_by_sync}
    for key in ("discount", "monthly", "workshop_300", "workshop_250"):
        assert _active(s, made[key]), key
    stripe_env.mark()
    _run(business_a, conn)
    assert writes(stripe_env) == []


def test_the_sync_leaves_an_account_price_an_older_import_linked(two_usd_prices, business_a, stripe_env):
    """A link an older import made for the account's other price (before the import
    linked only the price a service takes over) is not the sync's to archive either."""
    setup, made = two_usd_prices
    conn, s = setup.connection, setup.stripe
    consulting = Service.objects.get(business=business_a, name="Consulting day")
    PriceLink.objects.create(business=business_a, connection=conn, service=consulting, currency="USD",
                             amount_minor=12000, stripe_price_id=made["discount"], active=True)
    ServiceSync.objects.filter(service=consulting).update(fingerprint="")  # as after that import: not synced yet
    assert _run(business_a, conn).status == "succeeded"
    assert _archived(s) == set()
    assert catalog.price_id_for(connection=conn, service=consulting, currency="USD", amount=Decimal("120")) is None
    stripe_env.mark()
    _run(business_a, conn)
    assert writes(stripe_env) == []


def test_a_service_edited_while_the_import_waits_takes_the_product_the_import_finds(
        eager_celery, client, finance_a, business_a, stripe_env, settings, history_email):
    """A service saved while the import waits has a pending sync row with no product yet:
    the account's product that our metadata names for it becomes its product (not a
    second one made by the sync), with its default price."""
    business_a.default_currency = "USD"
    business_a.save()
    account = account_with_history(stripe_env, history_email, seed_with=None)
    setup = connect_offline(client=client, user=finance_a, business=business_a, stripe_env=stripe_env, settings=settings)
    import_start(connection=setup.connection, user=finance_a)
    audit = _service(business_a, "AUDIT", usd="12.50")
    assert ServiceSync.objects.get(service=audit).stripe_product_id == ""
    product = as_account(stripe_env, account).post("/v1/products", {
        "name": "Audit", "metadata": {"crm_service_id": str(audit.pk), "crm_business_id": str(business_a.pk)},
        "default_price_data": {"currency": "usd", "unit_amount": 1250}})
    stripe_env.mark()

    imports_sweep_task.apply(throw=True)

    row = ServiceSync.objects.get(service=audit)
    assert (row.state, row.stripe_product_id) == (SyncState.SYNCED, product["id"]), row.last_error
    assert stripe_env.requests(method="POST", path="/v1/products") == []
    assert _price_posts(stripe_env) == []
    assert catalog.price_id_for(connection=setup.connection, service=audit, currency="USD",
                                amount=Decimal("12.50")) == product["default_price"]


@pytest.fixture
def import_stopped(eager_celery, client, finance_a, business_a, stripe_env, settings, history_email):
    """Service AUDIT (USD 12.50); an account with a product of its own and a customer
    connects, and its import stops on an error (Stripe answers 500 to the price listing)."""
    settings.STRIPE_MAX_RETRIES = 0
    business_a.default_currency = "USD"
    business_a.save()
    audit = _service(business_a, "AUDIT", usd="12.50")
    made = {}

    def products(stripe_env, acct):
        s = as_account(stripe_env, acct)
        made["training"] = s.post("/v1/products", {"name": "Training day",
                                                   "default_price_data": {"currency": "eur", "unit_amount": 5000}})
        s.post("/v1/customers", {"email": "someone@example.test", "name": "Someone"})

    account_with_history(stripe_env, history_email, seed_with=products)
    stripe_env.fault("^GET /v1/prices", kind="500")
    setup = connect_offline(client=client, user=finance_a, business=business_a, stripe_env=stripe_env, settings=settings)
    imports_sweep_task.apply(throw=True)
    stripe_env.clear_faults()
    job = StripeImport.objects.get(business=business_a)
    assert job.status == ImportStatus.ERROR, job.status
    return setup, job, audit, made


def _held_runs(business):
    from stripe_integration.models import IntegrationRun

    return list(IntegrationRun.objects.filter(business=business, kind="catalog_sync", status="waiting"))


def test_an_import_stopped_on_an_error_says_the_catalog_sync_waits_for_it(import_stopped, client, business_a,
                                                                          stripe_env):
    """No silent wait: a waiting catalog-sync run and the Stripe page say why nothing is
    synced and what to do; edits stay pending; "Sync catalog now" is offered as "before
    the import", with its risk, and the waiting run becomes that sync's run."""
    from django.urls import reverse

    setup, job, audit, made = import_stopped
    assert not SyncRun.objects.filter(business=business_a).exists()
    [held] = _held_runs(business_a)
    assert held.subject == f"import:{job.pk}"
    assert "waits for the import from Stripe, which stopped on an error" in held.message
    assert "Resume the import" in held.message and job.error in held.message
    assert "waits for the import" in client.get(reverse("stripe_integration:run_list")).content.decode()

    page = client.get(reverse("stripe_integration:settings")).content.decode()
    assert 'data-catalog-held="error"' in page and "Resume the import" in page
    assert "made as a second product in Stripe" in page
    assert 'name="before_import" value="yes"' in page and "Sync catalog now, before the import" in page

    # An edit stays pending (no Stripe call); the plain "Sync catalog now" is refused with why.
    stripe_env.mark()
    audit.prices.update(amount=Decimal("13.00"))
    from services.services import service_prices_changed
    service_prices_changed(service=audit)
    assert ServiceSync.objects.get(service=audit).state == SyncState.PENDING
    resp = client.post(reverse("stripe_integration:catalog_sync"), follow=True)
    assert "waits for the import from Stripe" in resp.content.decode()
    assert not SyncRun.objects.filter(business=business_a).exists() and writes(stripe_env) == []
    assert len(_held_runs(business_a)) == 1
    # The admin's Sync to Stripe leaves it pending and says why.
    resp = client.post(reverse("admin:services_service_changelist"),
                       {"action": "sync_to_stripe", "_selected_action": [audit.pk]}, follow=True)
    assert "1 service(s) pending." in resp.content.decode()
    assert "waits for the import from Stripe, which stopped on an error" in resp.content.decode()
    assert ServiceSync.objects.get(service=audit).state == SyncState.PENDING and writes(stripe_env) == []

    # Chosen knowingly: the sync runs, as the run that waited.
    client.post(reverse("stripe_integration:catalog_sync"), {"before_import": "yes"})
    run = SyncRun.objects.get(business=business_a)
    assert run.status == "succeeded", (run.error, run.counts)
    held.refresh_from_db()
    assert (held.status, held.subject) == ("complete", f"sync_run:{run.pk}")
    assert _held_runs(business_a) == []
    assert ServiceSync.objects.get(service=audit).state == SyncState.SYNCED
    # From then on, edits sync as they are saved (the person chose not to wait).
    service_prices_changed(service=audit)
    assert 'data-catalog-held' not in client.get(reverse("stripe_integration:settings")).content.decode()


def test_the_resumed_import_completes_and_the_waiting_sync_runs(import_stopped, client, finance_a, business_a,
                                                                stripe_env):
    setup, job, audit, made = import_stopped
    [held] = _held_runs(business_a)
    import_start(connection=setup.connection, user=finance_a)
    imports_sweep_task.apply(throw=True)
    job.refresh_from_db()
    assert job.status == ImportStatus.COMPLETE, job.error
    run = SyncRun.objects.get(business=business_a)
    assert run.status == "succeeded", (run.error, run.counts)
    held.refresh_from_db()
    assert (held.status, held.subject) == ("complete", f"sync_run:{run.pk}")
    training = Service.objects.get(business=business_a, name="Training day")
    assert ServiceSync.objects.get(service=training).stripe_product_id == made["training"]["id"]
    assert ServiceSync.objects.get(service=audit).state == SyncState.SYNCED


def test_a_second_product_naming_a_synced_service_is_left_alone_with_its_prices(
        eager_celery, client, finance_a, business_a, stripe_env, settings, history_email):
    """The service is synced to its own product already; another product of the account
    names it in its metadata (a copy made by hand): the import says so, skips its prices
    (no list price from them, no link), and the sync touches neither."""
    business_a.default_currency = "USD"
    business_a.save()
    audit = _service(business_a, "AUDIT", usd="12.50")
    account = account_with_history(stripe_env, history_email, seed_with=None)
    setup = connect_offline(client=client, user=finance_a, business=business_a, stripe_env=stripe_env, settings=settings)
    ours = ServiceSync.objects.get(service=audit)
    assert ours.state == SyncState.SYNCED  # no history: the catalog synced on connect
    copy = as_account(stripe_env, account).post("/v1/products", {
        "name": "Audit (copy)", "metadata": {"crm_service_id": str(audit.pk), "crm_business_id": str(business_a.pk)},
        "default_price_data": {"currency": "eur", "unit_amount": 1100}})
    stripe_env.mark()
    import_start(connection=setup.connection, user=finance_a)
    imports_sweep_task.apply(throw=True)

    job = StripeImport.objects.get(business=business_a)
    assert job.status == ImportStatus.COMPLETE, job.error
    assert any(f"the service is synced to {ours.stripe_product_id}" in r for r in job.counts["products"]["reasons"])
    assert job.counts["prices"]["skipped"] == 1, job.counts["prices"]
    assert not ServicePrice.objects.filter(service=audit, currency="EUR").exists()
    assert not PriceLink.objects.filter(stripe_price_id=copy["default_price"]).exists()
    assert ServiceSync.objects.get(service=audit).stripe_product_id == ours.stripe_product_id
    assert writes(stripe_env) == []  # the sync after the import had nothing to change
    assert _archived(setup.stripe) == set()


def test_a_product_without_default_price_gives_its_service_the_price_at_its_list_amount(connect_with, business_a,
                                                                                       stripe_env):
    """The service CONSULT (USD 200) is named by a product with no default price and two
    USD prices, 200 then 150 (listed first): the service takes the 200 (its list amount)
    whatever the order, the 150 is skipped, and the sync makes no price and archives none."""
    business_a.default_currency = "USD"
    business_a.save()
    consult = _service(business_a, "CONSULT", usd="200.00")
    made = {}

    def products(stripe_env, acct):
        s = as_account(stripe_env, acct)
        made["product"] = s.post("/v1/products", {"name": "Consulting", "metadata": {
            "crm_service_id": str(consult.pk), "crm_business_id": str(business_a.pk)}})
        for amount in (20000, 15000):
            made[amount] = s.post("/v1/prices", {"product": made["product"]["id"], "currency": "usd",
                                                 "unit_amount": amount})["id"]
        s.post("/v1/customers", {"email": "someone@example.test", "name": "Someone"})

    setup = connect_with(products)
    job = StripeImport.objects.get(business=business_a)
    assert job.counts["prices"]["reasons"] == {"skipped: not the service's USD list price: left untouched": 1}, job.counts
    assert catalog.price_id_for(connection=setup.connection, service=consult, currency="USD",
                                amount=Decimal("200")) == made[20000]
    assert _price_posts(stripe_env) == [] and _archived(setup.stripe) == set()
