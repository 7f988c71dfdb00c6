"""Import of an account's history: list calls against Stripe's live rate limit, time, queries.

    .venv/bin/python bench/import.py [--customers 10000] [--invoices 30000] [--small 10] [--concurrency 8]
                                     [--latency-ms 0] [--spread-days 0]

What runs where: this process makes a sandbox (not serving yet) and fills two connected
accounts, a day before the import by the sandbox's clock, straight in its state (`stripe_sandbox.bulk`, the sandbox's own handlers, no
HTTP): the full size and one `--small` times smaller, each for its own business. Then a
forked child process serves that sandbox over HTTP (Stripe's servers are not the
importer's CPU), and this process runs the import of each account
(`importing.engine.run_import`, what the Celery task runs: its main thread writes the
pages while up to STRIPE_IMPORT_CONCURRENCY (--concurrency) cursor chains list them,
importing/listing.py) with the gateway's rate limiter
at Stripe's live limit, 100 requests/s, on a throwaway in-memory SQLite database (tables
straight from the models, as the test runner makes them). The sandbox answers a page in
tens of milliseconds; --latency-ms makes each of its GET /v1/ answers that much later, as
Stripe's take 300-1000 ms, which is what the chains are for. Seeding makes an account's
objects within seconds (all 2,000 customers of the default small size share one second,
which no `created` window can split: one chain lists them); --spread-days stamps them
over days, as a real history spreads.

Prints per size: list calls, the bound (list calls / 100 s: no import can be faster at
that limit), measured time and its ratio to the bound (target <= 1.2), the split of that
time between waiting for listed pages and the rest (writing pages, the lines of long
invoices, the replay), the most chains listing at once, the time to list
the same pages alone through the same chains and through one chain a phase (no writes:
what the fetch side costs), and
database queries per imported object (target: the same at both sizes), and the CPU
each side used: this process (the importer: its fetch threads and its writer, with the
seconds spent running SQL) and the sandbox's child process (/proc), for the import and
for the listing alone. The "CPU floor" adds what no importer in this set-up can skip,
receiving the pages through stripe-python (the listing's client CPU), serving them (the
sandbox's) and running the import's SQL, and spreads it over the machine's cores: the
fastest any import could be here with none of its own Python. The "importer floor" is
the part of it that one importer process must do itself (receiving and SQL): its threads
run Python one at a time, so no import in one process beats it.
Figures are printed, never asserted.
"""
from __future__ import annotations

import argparse
import logging
import os
import time

from _inprocess import QueryCounter, cpu_seconds, new_platform_key, sandbox_in_child, setup_in_memory

LIVE_LIMIT = 100  # requests per second, live mode (docs.stripe.com/rate-limits)
HISTORY_AGE = 24 * 3600  # seconds between the seeded history and the import


class _FetchWait(logging.Handler):
    """Keeps the engine's per-import figures (its log record's `import_fetch_wait_s`,
    `import_chains`)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.waited = None
        self.chains = None

    def emit(self, record):
        if hasattr(record, "import_fetch_wait_s"):
            self.waited = record.import_fetch_wait_s
            self.chains = record.import_chains


def _list_only(account: str, upper: int, concurrency: int) -> tuple[int, float, float]:
    """List calls, seconds and this process's CPU seconds to list every phase's pages once
    through the gateway and the import's chains (importing/listing.py, phases one after
    the other as the import lists them), writing nothing (the import's listing without its
    database work; the CPU is the client's: stripe-python, requests, JSON)."""
    from stripe_integration.gateway.client import Gateway
    from stripe_integration.importing.engine import PHASES, _lister
    from stripe_integration.importing.listing import Chain, Listing

    gw = Gateway.from_settings()
    listings = [(kind, _lister(gw, account, phase), [Chain(lt=upper)]) for kind, phase in PHASES.items()]
    start, cpu = time.perf_counter(), time.process_time()
    with Listing(listings, concurrency=concurrency) as pages:
        for _ in pages:
            pass
    return pages.pages, time.perf_counter() - start, time.process_time() - cpu


_LISTED = ("customer", "product", "price", "invoice", "invoice_payment", "payment_intent", "refund", "dispute",
           "credit_note")


def _spread(sandbox, account: str, seconds: int) -> None:
    """Each listed kind's objects of `account` stamped `created` evenly over `seconds`
    before the oldest of them, in the order they were made (the order Stripe lists by),
    as an account's history spreads over time."""
    store = sandbox.store
    with store.lock:
        for kind in _LISTED:
            ids = store.ids(account, kind)
            if ids:
                oldest = min(store.objects[i]["created"] for i in ids)
                for n, object_id in enumerate(ids):
                    store.objects[object_id]["created"] = oldest - seconds + n * seconds // len(ids)


def _slow_reads(base: str, delay_ms: float) -> None:
    """Every GET /v1/... of the sandbox answered `delay_ms` late (its control plane's
    "timeout" fault, below the client's timeout: a slow answer, not a failed one)."""
    import json
    import urllib.request

    body = json.dumps({"match": "^GET /v1/", "kind": "timeout", "delay_ms": delay_ms}).encode()
    request = urllib.request.Request(base + "/_sandbox/faults", data=body, method="POST",
                                      headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--invoices", type=int, default=30_000)
    parser.add_argument("--small", type=int, default=10, help="the second size is this many times smaller")
    parser.add_argument("--spread-days", type=float, default=0,
                        help="stamp each listed kind's seeded objects evenly over this many days before the "
                             "history (seeding makes them within seconds: hundreds share one second, which "
                             "one chain alone can list); 0 keeps the seeded stamps")
    parser.add_argument("--latency-ms", type=float, default=0,
                        help="the sandbox answers every GET /v1/... this much later (its 'timeout' fault with "
                             "this delay), as Stripe's list calls take 300-1000 ms")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="chains listed at once (default: the STRIPE_IMPORT_CONCURRENCY setting)")
    args = parser.parse_args()

    setup_in_memory()
    for name in ("stripe", "stripe_integration", "celery", "config"):
        logging.getLogger(name).setLevel(logging.ERROR)
    fetch_wait = _FetchWait()
    engine_log = logging.getLogger("stripe_integration.importing.engine")
    engine_log.setLevel(logging.INFO)
    engine_log.propagate = False
    engine_log.addHandler(fetch_wait)

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection

    if args.concurrency:
        settings.STRIPE_IMPORT_CONCURRENCY = args.concurrency

    from stripe_sandbox import Sandbox
    from stripe_sandbox.bulk import bulk_history
    from stripe_sandbox.oauth import issue_code

    sandbox = Sandbox()
    key = new_platform_key()
    # The history is made a day before the import starts, as an import meets it: the last
    # pass (what was made since the import started) then finds nothing to list again.
    sandbox.clock.advance(-HISTORY_AGE)
    sizes = [(max(1, args.customers // args.small), max(1, args.invoices // args.small)),
             (args.customers, args.invoices)]
    codes = []
    for index, (customers, invoices) in enumerate(sizes):
        email = f"bench{index}@example.test"
        start = time.perf_counter()
        seeded = bulk_history(sandbox, secret_key=key, email=email, customers=customers, invoices=invoices)
        print(f"seeded {customers} customers, {invoices} invoices {seeded['invoices']} "
              f"in {time.perf_counter() - start:.1f} s (straight into the sandbox's state, this process)")
        if args.spread_days:
            _spread(sandbox, seeded["account"], int(args.spread_days * 86400))
    sandbox.clock.advance(HISTORY_AGE)
    for index in range(len(sizes)):
        email = f"bench{index}@example.test"
        with sandbox.store.lock:
            codes.append(issue_code(sandbox, client_id="ca_bench", email=email,
                                    platform=sandbox.store.api_keys[key]["account"]))
    child, base = sandbox_in_child(sandbox, secret_key=key, rate_per_second=LIVE_LIMIT)
    if args.latency_ms:
        _slow_reads(base, args.latency_ms)

    from crm.models import Business, Membership, Role
    from stripe_integration.connect import oauth as services
    from stripe_integration.importing.engine import run_import
    from stripe_integration.models import StripeImport

    print(f"\nimport bench: sandbox served by child process {child.pid} at {base}, "
          f"gateway limit {LIVE_LIMIT} requests/s (Stripe live mode), "
          f"up to {settings.STRIPE_IMPORT_CONCURRENCY} chains per phase")
    results = []
    try:
        for index, (customers, invoices) in enumerate(sizes):
            email = f"bench{index}@example.test"
            print(f"\n{customers} customers, {invoices} invoices")
            business = Business.objects.create(name=f"Bench {index}", slug=f"bench{index}", country="US",
                                               default_currency="USD", finance_enabled=True)
            user = get_user_model().objects.create(username=f"bench{index}", email=email)
            Membership.objects.create(business=business, user=user, role=Role.FINANCE)
            settings.CELERY_TASK_ALWAYS_EAGER = False  # the bench runs the import itself, below
            conn = services.connection_connect(business=business, user=user, code=codes[index])
            StripeImport.objects.filter(business=business).delete()  # the one queued on connect
            job = StripeImport.objects.create(business=business, connection=conn)
            counter = QueryCounter()
            fetch_wait.waited = None
            served = cpu_seconds(child.pid)
            start, cpu = time.perf_counter(), time.process_time()
            with connection.execute_wrapper(counter):
                counts = run_import(job)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            served = _less(cpu_seconds(child.pid), served)
            job.refresh_from_db()
            calls = job.pages + 1  # + the one events call that reads Stripe's clock
            handled = sum(c.get("created", 0) + c.get("matched", 0) + c.get("skipped", 0)
                          for k, c in counts.items() if k != "replay")
            bound = calls / LIVE_LIMIT
            waited = fetch_wait.waited if fetch_wait.waited is not None else float("nan")
            print(f"import ({job.get_status_display().lower()}{': ' + job.error if job.error else ''})")
            for kind, created, matched, skipped, _ in job.count_rows():
                print(f"  {kind:17s} {created:6d} created {matched:6d} matched {skipped:6d} skipped")
            print(f"  list calls      {calls}  -> bound {bound:.2f} s at {LIVE_LIMIT}/s")
            print(f"  measured        {wall:.2f} s  = {wall / bound:.2f}x the bound (target <= 1.2x)")
            print(f"  time split      {waited:.2f} s waiting for listed pages, {wall - waited:.2f} s the rest "
                  f"(writing pages, long invoices' lines, replay)")
            print(f"  chains          up to {fetch_wait.chains} listing at once (the phase being written and "
                  f"phases listing ahead)")
            print(f"  DB queries      {counter.count} = {counter.count / handled:.2f} per Stripe object handled "
                  f"({handled})")
            print(f"  CPU             importer {cpu:.2f} s (of which running SQL {counter.seconds:.2f} s), "
                  f"sandbox {_fmt(served)} s")
            upper = int(job.replay_from.timestamp()) + 1
            floor = client_floor = None
            for concurrency in sorted({settings.STRIPE_IMPORT_CONCURRENCY, 1}, reverse=True):
                before = cpu_seconds(child.pid)
                list_calls, listing, client_cpu = _list_only(conn.stripe_user_id, upper, concurrency)
                sandbox_cpu = _less(cpu_seconds(child.pid), before)
                print(f"  listing alone   {list_calls} calls in {listing:.2f} s = "
                      f"{listing * LIVE_LIMIT / list_calls:.2f}x their bound, concurrency {concurrency} "
                      f"(every phase's pages listed again, nothing written: the fetch side's floor); "
                      f"CPU: client {client_cpu:.2f} s, sandbox {_fmt(sandbox_cpu)} s")
                client_floor = client_cpu if client_floor is None else min(client_floor, client_cpu)
                if floor is None and sandbox_cpu is not None:
                    floor = client_cpu + sandbox_cpu + counter.seconds
            one_process = client_floor + counter.seconds
            print(f"  importer floor  {one_process:.2f} CPU-s = {one_process / bound:.2f}x the bound: receiving the "
                  f"pages (the listing's client CPU, the lower of the two) + running the import's SQL, in one process "
                  f"whose threads run Python one at a time (the GIL)")
            if floor is not None:
                cores = os.cpu_count() or 1
                print(f"  CPU floor       {floor:.2f} CPU-s = receiving the pages (client) + serving them (sandbox) "
                      f"+ running the import's SQL, none of the import's own Python; over {cores} cores at best "
                      f"{floor / cores:.2f} s = {floor / cores / bound:.2f}x the bound")
            results.append((customers, invoices, calls, bound, wall, waited, counter.count / handled))
    finally:
        child.terminate()
        child.join()
    print("\nsummary")
    print("  customers invoices  list calls  bound s  measured s  ratio  waiting s  rest s  queries/object")
    for customers, invoices, calls, bound, wall, waited, qpo in results:
        print(f"  {customers:9d} {invoices:8d} {calls:11d} {bound:8.2f} {wall:11.2f} {wall / bound:6.2f} "
              f"{waited:10.2f} {wall - waited:7.2f} {qpo:15.2f}")


def _less(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _fmt(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f}"


if __name__ == "__main__":
    main()
