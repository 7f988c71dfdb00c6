"""The import over HTTP with its phases listed by several cursor chains at once
(importing/listing.py, STRIPE_IMPORT_CONCURRENCY): customers spread over many seconds
and crowded into single seconds are each imported exactly once, with any concurrency; a
list call failing mid-phase while several chains list stops the import resumable, and the
resume imports the rest, nothing twice; a job saved in the old format (one cursor)
resumes after its cursor."""
import threading

import pytest

from stripe_integration.gateway.client import Gateway, StripeUnavailable
from stripe_integration.importing.engine import run_import
from stripe_integration.models import ImportedObject, ImportStatus, StripeImport
from stripe_integration.tests.import_fixtures import (  # noqa: F401
    account_with_history, as_account, connect_offline, history_email,
)
from stripe_integration.tests.webhook_fixtures import eager_celery  # noqa: F401
from tests_support.sandbox import SERVERS

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit: the import's pages commit as in production

CUSTOMERS = 75


def _fetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("import-fetch")]


class _SmallPages(Gateway):
    """Lists customers 5 a page (many pages from few customers), records each customers
    call's `created` window, and fails the `fail_call`th customers call (once)."""

    fail_call = None

    def list_page(self, *, account, resource, starting_after="", limit=100, params=None):
        if resource == "customers":
            with self._lock:
                self.calls += 1
                self.windows.append(tuple(sorted(((params or {}).get("created") or {}).items())))
                fail = self.calls == self.fail_call
            if fail:
                raise StripeUnavailable()
            limit = 5
        return super().list_page(account=account, resource=resource, starting_after=starting_after, limit=limit,
                                 params=params)

    @classmethod
    def make(cls, fail_call=None):
        gw = cls.from_settings()
        gw._lock, gw.calls, gw.windows, gw.fail_call = threading.Lock(), 0, [], fail_call
        return gw


@pytest.fixture
def crowded(eager_celery, client, finance_a, business_a, stripe_env, settings, history_email):
    """A connected account (its import on connect found nothing) then given 75 customers
    made over a year: 10 a month apart, then 35 one a second, 25 in one second among
    them and 5 more in the last second of that run. Returns (connection, new job)."""
    account = account_with_history(stripe_env, history_email, seed_with=None)
    setup = connect_offline(client=client, user=finance_a, business=business_a, stripe_env=stripe_env,
                            settings=settings)
    s = as_account(stripe_env, account)
    for n in range(CUSTOMERS):
        s.customer(email=f"c{n}@example.test", name=f"Customer {n}")
    store = SERVERS[stripe_env.base_url].sandbox.store
    start = store.objects[store.ids(account, "customer")[0]]["created"] - 400 * 86400
    # Made over time (Stripe never lists a customer made later after one made earlier):
    created = [start + 30 * 86400 * n for n in range(10)]
    created += [start + 365 * 86400 + n for n in range(35)]
    created += [start + 365 * 86400 + 17] * 25 + [start + 365 * 86400 + 34] * 5
    created.sort()
    with store.lock:  # as if made then: the sandbox stamps customers with its own clock
        for cid, t in zip(store.ids(account, "customer"), created, strict=True):
            store.objects[cid]["created"] = t
        store.dirty = True
    StripeImport.objects.filter(business=business_a).delete()
    return setup.connection, StripeImport.objects.create(business=business_a, connection=setup.connection)


def _imported(connection):
    return ImportedObject.objects.filter(connection=connection, kind="customers")


@pytest.mark.parametrize("concurrency", [1, 4])
def test_customers_over_many_seconds_and_crowded_seconds_are_imported_once(crowded, settings, concurrency):
    connection, job = crowded
    settings.STRIPE_IMPORT_CONCURRENCY = concurrency
    gw = _SmallPages.make()
    run_import(job, gw=gw)
    job.refresh_from_db()
    assert job.status == ImportStatus.COMPLETE, job.error
    # Once each: a customer listed twice would count as matched (imported before).
    assert job.counts["customers"] == {"created": CUSTOMERS, "matched": 0, "skipped": 0, "reasons": {}}
    assert _imported(connection).count() == CUSTOMERS
    upper = int(job.replay_from.timestamp()) + 1
    if concurrency == 1:
        # One chain, page after page (the last pass lists from the import's start on).
        assert set(gw.windows[:-1]) == {(("lt", upper),)}
    else:
        assert len(set(gw.windows)) > 3, gw.windows  # split into several windows
    assert not _fetch_threads()


@pytest.mark.parametrize("fail_call", [4, 7])
def test_a_list_call_failing_while_several_chains_list_resumes_with_nothing_missed_or_twice(
        crowded, settings, fail_call):
    connection, job = crowded
    settings.STRIPE_IMPORT_CONCURRENCY = 4
    settings.STRIPE_MAX_RETRIES = 0
    run_import(job, gw=_SmallPages.make(fail_call=fail_call))
    job.refresh_from_db()
    assert (job.status, job.phase) == (ImportStatus.ERROR, "customers"), job.error
    assert job.error.startswith("Stopped while importing customers:") and "Resume continues from there." in job.error
    assert len(job.chains) >= 2, job.chains  # several chains were listing, each saved with its cursor
    written = _imported(connection).count()
    assert job.counts["customers"]["created"] == written < CUSTOMERS
    assert not _fetch_threads()
    run_import(job, gw=_SmallPages.make())
    job.refresh_from_db()
    assert job.status == ImportStatus.COMPLETE, job.error
    assert job.counts["customers"] == {"created": CUSTOMERS, "matched": 0, "skipped": 0, "reasons": {}}
    assert _imported(connection).count() == CUSTOMERS


def test_a_job_saved_with_one_cursor_resumes_after_it(crowded, settings):
    """Saved before chains existed: its phase and the last id of its one listing."""
    connection, job = crowded
    settings.STRIPE_IMPORT_CONCURRENCY = 4
    account = connection.stripe_user_id
    newest = Gateway.from_settings().list_page(account=account, resource="customers", limit=12)[0]
    StripeImport.objects.filter(pk=job.pk).update(status=ImportStatus.ERROR, phase="customers",
                                                  cursor=newest[-1]["id"], chains=[])
    run_import(job, gw=_SmallPages.make())
    job.refresh_from_db()
    assert job.status == ImportStatus.COMPLETE, job.error
    # The 12 newest were done before: only those after the cursor are imported.
    assert job.counts["customers"]["created"] == CUSTOMERS - 12
    assert not _imported(connection).filter(stripe_id__in=[c["id"] for c in newest]).exists()
    assert (job.cursor, job.chains) == ("", [])
