"""The import's page prefetch (importing/prefetch.py): order, overlap, errors surfacing
in the caller as if fetched there, the thread always stopped; and an import whose fetch
thread fails mid-phase stops resumable at the last page it committed."""
import threading

import pytest

from stripe_integration.gateway import request_ids
from stripe_integration.gateway.client import Gateway, StripeUnavailable
from stripe_integration.importing.engine import run_import
from stripe_integration.importing.prefetch import Prefetch
from stripe_integration.models import ImportedObject, ImportStatus, StripeImport
from stripe_integration.tests.import_fixtures import (  # noqa: F401
    account_with_history, connect_offline, history_email, seed,
)
from stripe_integration.tests.webhook_fixtures import eager_celery  # noqa: F401


def _fetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("import-fetch")]


def _pages(name, count, calls, fail_after=None):
    """fetch(after) over `count` pages of 2 ids each, recording each call."""
    def fetch(after):
        calls.append((name, after))
        index = int(after.rsplit("_", 1)[1]) // 2 + 1 if after else 0
        if fail_after is not None and index > fail_after:
            raise StripeUnavailable()
        request_ids.note(f"req_{name}_{index}")
        return [{"id": f"{name}_{2 * index}"}, {"id": f"{name}_{2 * index + 1}"}], index < count - 1
    return fetch


def test_pages_of_each_listing_in_order_and_ids_reach_the_callers_context():
    calls = []
    with request_ids.collect() as ids, Prefetch([("a", _pages("a", 3, calls), ""),
                                                 ("b", _pages("b", 1, calls), ""),
                                                 ("c", _pages("c", 2, calls), "c_1")]) as pages:
        seen = [(key, [o["id"] for o in objects], has_more) for key, objects, has_more in pages]
    assert seen == [("a", ["a_0", "a_1"], True), ("a", ["a_2", "a_3"], True), ("a", ["a_4", "a_5"], False),
                    ("b", ["b_0", "b_1"], False), ("c", ["c_2", "c_3"], False)]
    assert calls == [("a", ""), ("a", "a_1"), ("a", "a_3"), ("b", ""), ("c", "c_1")]
    assert sorted(ids) == sorted(["req_a_0", "req_a_1", "req_a_2", "req_b_0", "req_c_1"])
    assert pages.pages == 5 and not _fetch_threads()


def test_next_page_is_fetched_while_the_caller_handles_this_one():
    fetched_second = threading.Event()

    def fetch(after):
        if after:
            fetched_second.set()
            return [{"id": "x_2"}], False
        return [{"id": "x_1"}], True

    with Prefetch([("x", fetch, "")]) as pages:
        for key, objects, _ in pages:
            if objects[0]["id"] == "x_1":
                # Still handling page 1: page 2 is asked for meanwhile (the wait only bounds a hang).
                assert fetched_second.wait(10)
    assert not _fetch_threads()


def test_a_fetch_error_surfaces_after_the_pages_before_it_and_stops_the_thread():
    calls, handled = [], []
    with pytest.raises(StripeUnavailable):
        with Prefetch([("a", _pages("a", 5, calls, fail_after=1), "")]) as pages:
            for _, objects, _ in pages:
                handled.append(objects[-1]["id"])
    assert handled == ["a_1", "a_3"]
    assert not _fetch_threads()


def test_leaving_early_drops_the_page_in_flight_and_stops_the_thread():
    calls = []
    with pytest.raises(RuntimeError):
        with Prefetch([("a", _pages("a", 5, calls), "")]) as pages:
            for _ in pages:
                raise RuntimeError("the caller's database failed")
    # The next page was asked for (cancelled if not started yet); none after it.
    assert calls in ([("a", "")], [("a", ""), ("a", "a_1")])
    assert not _fetch_threads()


class _FailingThirdPage(Gateway):
    """Lists customers 5 a page and fails the third page once (as a Stripe outage would)."""

    failed = False

    def list_page(self, *, account, resource, starting_after="", limit=100, params=None):
        if resource == "customers":
            limit = 5
            if starting_after and not self.failed and self.customer_pages == 2:
                self.failed = True
                raise StripeUnavailable()
            self.customer_pages += 1
        return super().list_page(account=account, resource=resource, starting_after=starting_after,
                                 limit=limit, params=params)

    customer_pages = 0


@pytest.mark.django_db(transaction=True)
def test_import_stopped_by_a_prefetch_error_resumes_from_its_last_committed_page(
        eager_celery, client, finance_a, business_a, stripe_env, settings, history_email):
    # Connected with no history (its import on connect finds nothing), then given one and
    # imported by a new job, run here with the failing gateway.
    account = account_with_history(stripe_env, history_email, seed_with=None)
    setup = connect_offline(client=client, user=finance_a, business=business_a, stripe_env=stripe_env,
                            settings=settings)
    seed(stripe_env, account)
    StripeImport.objects.filter(business=business_a).delete()
    job = StripeImport.objects.create(business=business_a, connection=setup.connection)
    run_import(job, gw=_FailingThirdPage.from_settings())
    job.refresh_from_db()
    assert (job.status, job.phase) == (ImportStatus.ERROR, "customers") and "Resume" in job.error
    imported = ImportedObject.objects.filter(connection=setup.connection, kind="customers")
    assert job.counts["customers"]["created"] == imported.count() == 10
    listed = Gateway.from_settings().list_page(account=account, resource="customers", limit=10)[0]
    assert job.cursor == listed[-1]["id"]
    assert not _fetch_threads()
    run_import(job)
    job.refresh_from_db()
    assert job.status == ImportStatus.COMPLETE, job.error
    assert job.counts["customers"]["created"] == imported.count() == 30
    assert imported.values("stripe_id").distinct().count() == 30
