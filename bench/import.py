"""Import of an account's history: list calls against Stripe's live rate limit, time, queries.

    .venv/bin/python bench/import.py [--customers 10000] [--invoices 30000] [--small 10]

Starts the sandbox in this process and fills two connected accounts straight in its state
(`stripe_sandbox.bulk`, the sandbox's own handlers, no HTTP): the full size and one
`--small` times smaller, each for its own business. Then runs the import of each
(`importing.engine.run_import`, what the Celery task runs) with the gateway's rate
limiter at Stripe's live limit, 100 requests/s, on a throwaway in-memory SQLite database
(tables straight from the models, as the test runner makes them). Prints per size: list
calls, the bound (list calls / 100 s: no import can be faster at that limit), measured
time and its ratio to the bound (target <= 1.2), database queries per imported object
(target: the same at both sizes). Figures are printed, never asserted.
"""
from __future__ import annotations

import argparse
import logging
import time

from _inprocess import QueryCounter, sandbox_platform, setup_in_memory

LIVE_LIMIT = 100  # requests per second, live mode (docs.stripe.com/rate-limits)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--invoices", type=int, default=30_000)
    parser.add_argument("--small", type=int, default=10, help="the second size is this many times smaller")
    args = parser.parse_args()

    setup_in_memory()
    for name in ("stripe", "stripe_integration", "celery", "config"):
        logging.getLogger(name).setLevel(logging.ERROR)

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection

    from stripe_sandbox.bulk import bulk_history
    from stripe_sandbox.oauth import issue_code

    server, base = sandbox_platform(rate_per_second=LIVE_LIMIT)
    key = settings.STRIPE_SECRET_KEY

    from crm.models import Business, Membership, Role
    from stripe_integration.connect import oauth as services
    from stripe_integration.importing.engine import run_import
    from stripe_integration.models import StripeImport

    sizes = [(max(1, args.customers // args.small), max(1, args.invoices // args.small)),
             (args.customers, args.invoices)]
    print(f"import bench: sandbox at {base}, gateway limit {LIVE_LIMIT} requests/s (Stripe live mode)")
    results = []
    for index, (customers, invoices) in enumerate(sizes):
        email = f"bench{index}@example.test"
        start = time.perf_counter()
        seeded = bulk_history(server.sandbox, secret_key=key, email=email, customers=customers, invoices=invoices)
        print(f"\nseeded {customers} customers, {invoices} invoices {seeded['invoices']} "
              f"in {time.perf_counter() - start:.1f} s (straight into the sandbox's state)")
        business = Business.objects.create(name=f"Bench {index}", slug=f"bench{index}", country="US",
                                           default_currency="USD", finance_enabled=True)
        user = get_user_model().objects.create(username=f"bench{index}", email=email)
        Membership.objects.create(business=business, user=user, role=Role.FINANCE)
        with server.sandbox.store.lock:
            code = issue_code(server.sandbox, client_id="ca_bench", email=email,
                              platform=server.sandbox.store.api_keys[key]["account"])
        settings.CELERY_TASK_ALWAYS_EAGER = False  # the bench runs the import itself, below
        conn = services.connection_connect(business=business, user=user, code=code)
        StripeImport.objects.filter(business=business).delete()  # the one queued on connect
        job = StripeImport.objects.create(business=business, connection=conn)
        counter = QueryCounter()
        start = time.perf_counter()
        with connection.execute_wrapper(counter):
            counts = run_import(job)
        wall = time.perf_counter() - start
        job.refresh_from_db()
        calls = job.pages + 1  # + the one events call that reads Stripe's clock
        handled = sum(c.get("created", 0) + c.get("matched", 0) + c.get("skipped", 0)
                      for k, c in counts.items() if k != "replay")
        bound = calls / LIVE_LIMIT
        print(f"import ({job.get_status_display().lower()}{': ' + job.error if job.error else ''})")
        for kind, created, matched, skipped, _ in job.count_rows():
            print(f"  {kind:17s} {created:6d} created {matched:6d} matched {skipped:6d} skipped")
        print(f"  list calls      {calls}  -> bound {bound:.2f} s at {LIVE_LIMIT}/s")
        print(f"  measured        {wall:.2f} s  = {wall / bound:.2f}x the bound (target <= 1.2x)")
        print(f"  DB queries      {counter.count} = {counter.count / handled:.2f} per Stripe object handled ({handled})")
        results.append((customers, invoices, calls, bound, wall, counter.count / handled))
    print("\nsummary")
    print("  customers invoices  list calls  bound s  measured s  ratio  queries/object")
    for customers, invoices, calls, bound, wall, qpo in results:
        print(f"  {customers:9d} {invoices:8d} {calls:11d} {bound:8.2f} {wall:11.2f} {wall / bound:6.2f} {qpo:15.2f}")
    server.stop()


if __name__ == "__main__":
    main()
