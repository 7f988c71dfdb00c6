"""The import of a connected account's history (issue 15): Upflow's rules, matching,
idempotency, resume, replay, the progress page. The account gets its history in the
sandbox before it connects (stripe_sandbox.seed_history); its webhook endpoint points at
a closed port, so everything the app knows comes from the import and its replay."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Contact, Individual, Organization
from crm.tests.factories import IndividualFactory, member
from finance.models import CreditNote, Dispute, Invoice, InvoiceStatus, Payment, Refund
from stripe_integration.importing.engine import run_import
from stripe_integration.importing.start import STALE_AFTER, import_claim, import_start
from stripe_integration.importing.tasks import imports_sweep_task
from stripe_integration.models import (
    CustomerLink, ImportedObject, ImportRules, ImportStatus, StripeImport, UncollectibleAs,
)
from stripe_integration.tests.import_fixtures import (  # noqa: F401
    account_with_history, as_account, connect_offline, history_email, seed,
)
from stripe_integration.tests.webhook_fixtures import eager_celery  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit: the import's pages commit as in production


def _sweep():
    """What `manage.py stripe_periodic` (or beat) does every few seconds."""
    imports_sweep_task.apply(throw=True)


def _connect(client, finance_a, business_a, stripe_env, settings):
    """Connect, then the sweep starts the import queued on connect (eager Celery: not in
    the callback's request)."""
    setup = connect_offline(client=client, user=finance_a, business=business_a, stripe_env=stripe_env, settings=settings)
    _sweep()
    return setup


def _totals():
    return {m.__name__: m.objects.count() for m in (Contact, Invoice, Payment, Refund, Dispute, CreditNote)}


@pytest.fixture
def imported(eager_celery, client, finance_a, business_a, stripe_env, settings, history_email):
    """The demo's history (30 customers, 60 invoices) imported on connect, default rules."""
    account_with_history(stripe_env, history_email)
    setup = _connect(client, finance_a, business_a, stripe_env, settings)
    return setup, StripeImport.objects.get(business=business_a)


def test_import_on_connect_follows_upflow_rules(imported):
    setup, job = imported
    assert job.status == ImportStatus.COMPLETE, job.error
    counts = job.counts
    assert counts["customers"]["created"] == 30
    # 60 invoices in 8 states: 8 each of draft, open, paid, void, 7 of the others.
    assert counts["invoices"]["skipped"] == 8
    assert counts["invoices"]["reasons"]["skipped: draft (rule: drafts are not imported)"] == 8
    assert counts["invoices"]["created"] == 52
    invoices = Invoice.objects.filter(business=setup.business)
    assert not invoices.filter(status=InvoiceStatus.DRAFT).exists()
    assert invoices.filter(status=InvoiceStatus.VOID).count() == 8
    # Uncollectible imported as paid (Upflow), void as void, nothing uncollectible left.
    assert not invoices.filter(status=InvoiceStatus.UNCOLLECTIBLE).exists()
    assert counts["invoices"]["reasons"]["created: uncollectible, imported as paid (rule)"] == 7
    # Linked as pushed invoices are: the webhooks update them from now on.
    assert invoices.filter(stripe_invoice_id__startswith="in_", push_status="pushed").count() == 52
    # Payments with their method, refunds, disputes, credit notes; the unapplied one skipped.
    assert counts["payments"]["reasons"] == {"skipped: unapplied payment (pays no imported invoice)": 1}
    paid_by_card = Payment.objects.filter(business=setup.business, method="card")
    assert paid_by_card.count() == 22 and not paid_by_card.filter(card_last4="").exists()
    assert Refund.objects.filter(business=setup.business).count() == 7
    assert Dispute.objects.filter(business=setup.business).count() == 7
    assert invoices.filter(disputed=True).count() == 7
    assert CreditNote.objects.filter(business=setup.business).count() == 7
    assert all(i.credited > 0 for i in invoices.filter(credit_notes__isnull=False))
    refunded = invoices.filter(amount_refunded__gt=0)
    assert refunded.count() == 7 and all(i.amount_refunded < i.amount_paid for i in refunded)


def test_import_zero_decimal_currency_amount(imported):
    setup, _ = imported
    jpy = Invoice.objects.get(business=setup.business, currency="JPY")
    stripe_invoice = setup.stripe.get(f"/v1/invoices/{jpy.stripe_invoice_id}")
    assert stripe_invoice["total"] == 17000  # 12000 + 500 * 10 yen, no minor unit
    assert jpy.total == Decimal("17000") and jpy.amount_paid == Decimal("17000")
    assert jpy.status == InvoiceStatus.PAID
    payment = jpy.payments.get()
    assert payment.amount == Decimal("17000") and payment.currency == "JPY"


def test_import_new_contacts_with_cc_and_to_emails(imported):
    setup, _ = imported
    # Customer 00 has cc (two e-mails) and to: an organization with three people.
    org = Organization.objects.get(business=setup.business, billing_email="history00@example.test")
    assert sorted(org.people.values_list("email", flat=True)) == [
        "accounts0@example.test", "ap0@example.test", "boss0@example.test"]
    # Customer 01 has no extra e-mails: one individual, its e-mail the main contact.
    person = Individual.objects.get(business=setup.business, email="history01@example.test")
    assert person.name == "History Customer 01"
    assert CustomerLink.objects.filter(contact=person, origin="imported").exists()


def test_import_second_run_creates_nothing(imported, client, django_capture_on_commit_callbacks):
    setup, first = imported
    before = _totals()
    second = import_start(connection=setup.connection, user=None)
    _sweep()
    second.refresh_from_db()
    assert second.pk != first.pk and second.status == ImportStatus.COMPLETE, second.error
    assert all(c.get("created", 0) == 0 for k, c in second.counts.items() if k != "replay"), second.counts
    assert second.counts["invoices"]["reasons"]["matched: imported before"] == 52
    assert _totals() == before


def test_import_matches_by_metadata_then_email(eager_celery, client, finance_a, business_a, stripe_env, settings,
                                                 history_email):
    by_metadata = IndividualFactory(business=business_a, email="someone.else@example.test")
    by_email = IndividualFactory(business=business_a, email="History01@Example.test")

    def three_customers(stripe_env, account):
        s = as_account(stripe_env, account)
        s.post("/v1/customers", {"email": "changed@example.test", "name": "Renamed", "metadata": {
            "crm_contact_id": str(by_metadata.pk), "crm_business_id": str(business_a.pk)}})
        s.post("/v1/customers", {"email": "history01@example.test", "name": "H1"})
        s.post("/v1/customers", {"email": "new@example.test", "name": "Newcomer", "metadata": {"to": "x@example.test"}})

    account_with_history(stripe_env, history_email, seed_with=three_customers)
    setup = _connect(client, finance_a, business_a, stripe_env, settings)
    job = StripeImport.objects.get(business=business_a)
    assert job.counts["customers"] == {"created": 1, "matched": 2, "skipped": 0, "reasons": {
        "matched: by our metadata": 1, "matched: by e-mail": 1}}
    links = dict(CustomerLink.objects.filter(connection=setup.connection).values_list("contact_id", "origin"))
    assert links[by_metadata.pk] == links[by_email.pk] == "imported"
    assert Individual.objects.filter(business=business_a, email="x@example.test").exists()


@pytest.mark.parametrize("uncollectible_as, drafts", [(UncollectibleAs.UNCOLLECTIBLE, True), (UncollectibleAs.PAID, False)])
def test_import_rules_uncollectible_and_drafts(eager_celery, client, finance_a, business_a, stripe_env, settings,
                                               history_email, uncollectible_as, drafts):
    ImportRules.objects.create(business=business_a, uncollectible_as=uncollectible_as, import_drafts=drafts,
                               import_void=False)
    account_with_history(stripe_env, history_email, customers=2, invoices=8)
    _connect(client, finance_a, business_a, stripe_env, settings)
    job = StripeImport.objects.get(business=business_a)
    invoices = Invoice.objects.filter(business=business_a)
    assert invoices.filter(status=InvoiceStatus.UNCOLLECTIBLE).count() == (uncollectible_as == "uncollectible")
    assert invoices.filter(status=InvoiceStatus.DRAFT).count() == drafts
    assert not invoices.filter(status=InvoiceStatus.VOID).exists()
    assert job.counts["invoices"]["reasons"]["skipped: void (rule: void invoices are not imported)"] == 1


def test_import_resumes_after_a_crash_and_replays_events_from_its_start(
        eager_celery, client, finance_a, business_a, stripe_env, settings, history_email):
    settings.STRIPE_MAX_RETRIES = 0
    account = account_with_history(stripe_env, history_email, customers=2, invoices=8)
    s = as_account(stripe_env, account)
    open_invoice = next(i for i in s.get("/v1/invoices", {"status": "open"})["data"]
                        if not i["post_payment_credit_notes_amount"] and not i["pre_payment_credit_notes_amount"])
    stripe_env.fault("GET /v1/payment_intents", kind="500")
    setup = _connect(client, finance_a, business_a, stripe_env, settings)
    job = StripeImport.objects.get(business=business_a)
    assert (job.status, job.phase) == (ImportStatus.ERROR, "payments") and "Resume" in job.error
    local = Invoice.objects.get(stripe_invoice_id=open_invoice["id"])
    assert local.status == InvoiceStatus.OPEN
    invoices_before = Invoice.objects.count()
    # While the import is stopped, the open invoice is paid in Stripe (a webhook the app
    # never receives: its endpoint is down).
    s.pay(open_invoice["id"], s.attach_card(open_invoice["customer"])["id"])
    # ... and a customer and an invoice are made (after their phases listed).
    newcomer = s.customer(email="late@example.test", name="Late Comer")
    late_invoice = s.open_invoice(newcomer["id"], items=((4200, "Late work"),))
    stripe_env.clear_faults()
    # The worker is killed as it resumes (status left running): a later start resumes it.
    StripeImport.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING)
    run_import(job)
    job.refresh_from_db()
    assert job.status == ImportStatus.COMPLETE, job.error
    # Resumed after its cursor (nothing twice), then what was made meanwhile.
    assert Invoice.objects.count() == invoices_before + 1
    late = Invoice.objects.get(stripe_invoice_id=late_invoice["id"])
    assert late.status == InvoiceStatus.OPEN and late.bill_to.name == "Late Comer" and late.total == Decimal("42.00")
    assert ImportedObject.objects.filter(connection=setup.connection).values("stripe_id").distinct().count() == \
        ImportedObject.objects.filter(connection=setup.connection).count()
    local.refresh_from_db()
    assert local.status == InvoiceStatus.PAID and local.payments.get().status == "succeeded"
    assert job.counts["replay"]["relevant"] >= 1


def test_import_queries_per_object_do_not_grow(eager_celery, client, finance_a, business_a, finance_b, business_b,
                                               stripe_env, settings):
    """Same queries per imported object at two sizes, each in its own business and account
    (per-page costs fall as pages fill, never rise). The replay is left out: its cost
    follows the events, not the objects."""
    from datetime import timedelta

    from django.utils import timezone

    per_object = []
    for user, business, (customers, invoices) in ((finance_a, business_a, (3, 8)), (finance_b, business_b, (9, 24))):
        user.email = f"{user.username}@example.test"
        user.save(update_fields=["email"])
        account = account_with_history(stripe_env, user.email, seed_with=None)
        setup = connect_offline(client=client, user=user, business=business, stripe_env=stripe_env, settings=settings)
        seed(stripe_env, account, customers=customers, invoices=invoices)
        job = StripeImport.objects.create(business=business, connection=setup.connection,
                                          replay_from=timezone.now() + timedelta(days=1))
        with CaptureQueriesContext(db_connection) as queries:
            run_import(job)
        job.refresh_from_db()
        assert job.status == ImportStatus.COMPLETE, job.error
        handled = sum(c.get("created", 0) + c.get("matched", 0) + c.get("skipped", 0)
                      for k, c in job.counts.items() if k != "replay")
        per_object.append(len(queries) / handled)
    assert per_object[1] <= per_object[0] * 1.05, per_object


def test_import_progress_page_is_tenant_and_role_scoped(imported, client, finance_b, business_a):
    setup, job = imported
    url = reverse("stripe_integration:import_progress", args=[job.pk])
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-import-status="complete"' in text and 'data-kind="Invoices"' not in text
    assert "draft (rule: drafts are not imported)" in text and "unapplied payment" in text
    settings_page = client.get(reverse("stripe_integration:settings")).content.decode()
    assert url in settings_page
    client.force_login(finance_b)  # another business's finance user: not found
    assert client.get(url).status_code == 404
    client.force_login(member(business_a, "staff", username="staff_x"))  # staff: no finance pages
    assert client.get(url).status_code == 403


def test_import_rules_form_refuses_bad_keys(client, finance_a, business_a):
    client.force_login(finance_a)
    resp = client.post(reverse("stripe_integration:import_rules"), {
        "uncollectible_as": "uncollectible", "contact_metadata_keys": "cc, bad key!"}, follow=True)
    assert resp.status_code == 200 and "not a metadata key" in resp.content.decode()
    assert not ImportRules.objects.filter(business=business_a, uncollectible_as="uncollectible").exists()
    client.post(reverse("stripe_integration:import_rules"), {"uncollectible_as": "uncollectible",
                                                             "contact_metadata_keys": "cc, billing_to"})
    assert ImportRules.objects.get(business=business_a).contact_metadata_keys == ["cc", "billing_to"]


def test_import_invoice_with_more_lines_than_a_listed_invoice_carries(
        eager_celery, client, finance_a, business_a, stripe_env, settings, history_email):
    def long_invoice(stripe_env, account):
        s = as_account(stripe_env, account)
        customer = s.customer(email="many@example.test")
        s.open_invoice(customer["id"], items=[(100 * (n + 1), f"Line {n}") for n in range(13)])
        listed = s.get("/v1/invoices")["data"][0]["lines"]
        assert (len(listed["data"]), listed["has_more"]) == (10, True)  # as Stripe lists it

    account_with_history(stripe_env, history_email, seed_with=long_invoice)
    _connect(client, finance_a, business_a, stripe_env, settings)
    invoice = Invoice.objects.get(business=business_a)
    lines = list(invoice.lines.order_by("position"))
    assert len(lines) == 13
    assert sum(line.total for line in lines) == invoice.total == Decimal("91.00")


def test_import_is_a_recorded_run_with_its_counts_and_request_ids(imported):
    """The import is a run like every Stripe-facing job (runs.track_run), in its mode."""
    from stripe_integration.models import IntegrationRun, RunKind, RunStatus

    setup, job = imported
    run = IntegrationRun.objects.get(business=setup.business, kind=RunKind.IMPORT, subject=f"import:{job.pk}")
    assert run.status == RunStatus.COMPLETE and run.livemode == setup.connection.livemode
    assert run.counts["customers_created"] == 30 and run.counts["invoices_created"] == 52
    assert run.request_ids and all(r.startswith("req_") for r in run.request_ids)


def test_connect_leaves_the_import_waiting_and_the_sweep_runs_it(
        eager_celery, client, finance_a, business_a, stripe_env, settings, history_email):
    """Under eager Celery (no broker) the OAuth callback only queues the import: the
    periodic sweep runs it, and the progress page refreshes itself meanwhile."""
    account_with_history(stripe_env, history_email, customers=2, invoices=4)
    connect_offline(client=client, user=finance_a, business=business_a, stripe_env=stripe_env, settings=settings)
    job = StripeImport.objects.get(business=business_a)
    assert (job.status, job.pages, job.counts) == (ImportStatus.WAITING, 0, {})
    url = reverse("stripe_integration:import_progress", args=[job.pk])
    text = client.get(url).content.decode()
    assert 'http-equiv="refresh"' in text and "Waiting to start" in text
    _sweep()
    job.refresh_from_db()
    assert job.status == ImportStatus.COMPLETE, job.error
    text = client.get(url).content.decode()
    assert 'http-equiv="refresh"' not in text
    assert "objects handled" in text and '<span data-total-handled>' in text
    _sweep()  # nothing left to claim: the finished import is not run again
    assert StripeImport.objects.get(pk=job.pk).pages == job.pages


def _job(business, **fields):
    from stripe_integration.models import StripeConnection

    connection = StripeConnection.objects.create(business=business, stripe_user_id=f"acct_{business.pk}x",
                                                 access_token="t", status="connected")
    return StripeImport.objects.create(business=business, connection=connection, **fields)


def test_progress_page_shows_objects_handled_in_the_phase_and_in_all(client, finance_a, business_a):
    """Stripe's lists give no totals: a long phase shows its objects handled so far."""
    job = _job(business_a, status=ImportStatus.RUNNING, phase="invoices", counts={
        "customers": {"created": 25, "matched": 4, "skipped": 1, "reasons": {}},
        "invoices": {"created": 100, "matched": 0, "skipped": 20, "reasons": {}}})
    client.force_login(finance_a)
    text = client.get(reverse("stripe_integration:import_progress", args=[job.pk])).content.decode()
    assert "<span data-phase-handled>120</span> invoices so far" in text
    assert "<span data-total-handled>150</span> objects in all" in text
    assert 'http-equiv="refresh"' in text


def test_a_second_claim_of_an_import_gets_nothing_and_a_dead_worker_s_import_is_resumed(business_a):
    job = _job(business_a)
    first = import_claim(import_id=job.pk)
    assert first is not None and first.status == ImportStatus.RUNNING
    assert import_claim(import_id=job.pk) is None  # the other worker: already taken
    # Its worker died: no page saved for longer than the lease; the sweep may take it over.
    StripeImport.objects.filter(pk=job.pk).update(updated_at=first.updated_at - STALE_AFTER - timedelta(seconds=1))
    assert import_claim(import_id=job.pk) is not None
    assert import_claim(import_id=job.pk) is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_on_postgresql_give_the_import_to_one_worker(business_a):
    """Two workers claim at the same moment, each in its own connection: one gets it."""
    import threading

    from django.db import connections

    if db_connection.vendor != "postgresql":
        pytest.skip("one in-memory SQLite connection: no concurrent writers to race")
    job = _job(business_a)
    barrier, results = threading.Barrier(2), []

    def claim():
        try:
            barrier.wait()
            results.append(import_claim(import_id=job.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r is not None for r in results) == [False, True]


def test_the_sweep_leaves_a_disabled_business_s_import_waiting(business_a):
    from stripe_integration.models import IntegrationSettings

    IntegrationSettings.for_business(business_a)
    IntegrationSettings.objects.filter(business=business_a).update(disabled=True)
    job = _job(business_a)
    _sweep()
    assert StripeImport.objects.get(pk=job.pk).status == ImportStatus.WAITING
    assert import_claim(import_id=job.pk) is None


def test_with_a_broker_the_sweep_queues_again_only_an_import_whose_task_was_lost(business_a, settings):
    """With a broker the import's task is queued at start; the sweep is the safety net:
    it queues a waiting import again only once it has waited past the lease."""
    from config.celery import app as celery_app
    from stripe_integration.importing.start import imports_claimable

    job = _job(business_a)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False  # as with CELERY_BROKER_URL set
    try:
        assert imports_claimable() == []
        StripeImport.objects.filter(pk=job.pk).update(updated_at=job.updated_at - STALE_AFTER)
        assert imports_claimable() == [job.pk]
    finally:
        celery_app.conf.task_always_eager = previous
    assert import_claim(import_id=job.pk) is not None  # a queued task claims it at once, whatever its age
