"""Catalog sync cost: N services x 2 currencies synced to a connected account of the sandbox.

    .venv/bin/python bench/catalog_sync.py [--services 1000] [--rate 0]

Starts the sandbox in this process, builds a throwaway database (tables straight from the
models in an in-memory SQLite, as the test runner does: no 90 s of dj-stripe migrations),
connects a business through the real OAuth code exchange, creates the catalog, then runs
the whole-catalog sync twice (`catalog.catalog_sync_run`, what "Sync catalog now" and
`manage.py stripe_sync_catalog` run):

1. first sync: Stripe calls per service (target: 1 product + 1 price per currency),
   wall time, database queries;
2. second sync of the unchanged catalog: write calls (target 0), reads, wall time.

`--rate` is the gateway's request limit per second (STRIPE_RATE_LIMIT_PER_SECOND); 0
(default) lifts it to measure the app and the sandbox alone, and the time the same calls
take at Stripe's own limits (25/s test mode, 100/s live) is printed next to it. Figures are
printed, never asserted.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
import urllib.request
from collections import Counter
from decimal import Decimal

from _inprocess import QueryCounter, sandbox_platform, setup_in_memory


def _sandbox_requests(base: str) -> list[dict]:
    with urllib.request.urlopen(base + "/_sandbox/requests", timeout=30) as resp:
        body = json.loads(resp.read())
    return body["data"] if isinstance(body, dict) else body


def _post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=0, help="requests/second through the gateway (0: no limit)")
    args = parser.parse_args()

    setup_in_memory()
    logging.getLogger("stripe").setLevel(logging.WARNING)
    logging.getLogger("stripe_integration").setLevel(logging.WARNING)

    from django.conf import settings
    from django.db import connection

    server, base = sandbox_platform(rate_per_second=args.rate or 1_000_000)
    key = settings.STRIPE_SECRET_KEY

    from django.contrib.auth import get_user_model

    from crm.models import Business, Membership, Role
    from services.models import Service, ServicePrice
    from stripe_integration.catalog import sync as catalog
    from stripe_integration.connect import oauth as services

    business = Business.objects.create(name="Bench Ltd", slug="bench", country="GB", default_currency="USD",
                                       finance_enabled=True)
    user = get_user_model().objects.create(username="bench")
    Membership.objects.create(business=business, user=user, role=Role.FINANCE)
    code = _post_json(base + "/_sandbox/oauth/code", {"secret_key": key, "email": "bench@example.com"})["code"]
    conn = services.connection_connect(business=business, user=user, code=code)

    n = args.services
    Service.objects.bulk_create(
        Service(business=business, code=f"SVC-{i:05d}", name=f"Service {i}", description=f"Bench service {i}")
        for i in range(n)
    )
    prices = []
    for i, service in enumerate(Service.objects.filter(business=business).order_by("pk")):
        prices.append(ServicePrice(business=business, service=service, currency="USD", amount=Decimal(100 + i % 50)))
        prices.append(ServicePrice(business=business, service=service, currency="EUR", amount=Decimal(90 + i % 40)))
    ServicePrice.objects.bulk_create(prices)

    def measured_run(label):
        before = len(_sandbox_requests(base))
        counter = QueryCounter()
        start = time.perf_counter()
        with connection.execute_wrapper(counter):
            run = catalog.catalog_sync_run(run=catalog.catalog_sync_create_run(business=business, connection=conn))
        wall = time.perf_counter() - start
        calls = _sandbox_requests(base)[before:]
        kinds = Counter(
            ("write" if r["method"] in ("POST", "DELETE") else "read", r["method"], _path_kind(r["path"]))
            for r in calls
        )
        writes = sum(v for (kind, *_), v in kinds.items() if kind == "write")
        print(f"\n{label}: {run.get_status_display().lower()}, {run.done}/{run.total} services")
        print(f"  counts        {dict(sorted(run.counts.items()))}")
        print(f"  Stripe calls  {len(calls)} ({writes} writes, {len(calls) - writes} reads)"
              f" = {len(calls) / n:.3f} per service, {writes / n:.3f} writes per service")
        for (kind, method, path), count in sorted(kinds.items()):
            print(f"      {count:6d}  {method:6s} {path}")
        print(f"  wall time     {wall:.2f} s ({1000 * wall / n:.2f} ms per service)")
        print(f"  DB queries    {counter.count} ({counter.count / n:.2f} per service)")
        if calls:
            print(f"  at Stripe's limits the calls alone take >= {len(calls) / 25:.1f} s in test mode (25/s), "
                  f">= {len(calls) / 100:.1f} s live (100/s)")
        return run

    print(f"catalog sync bench: {n} services x 2 currencies (USD, EUR), sandbox at {base}, "
          f"rate limit {'off' if not args.rate else f'{args.rate}/s'}")
    measured_run("first sync")
    measured_run("second sync (unchanged catalog)")
    server.stop()


def _path_kind(path: str) -> str:
    parts = path.split("/")
    return "/".join(parts[:3]) + ("/{id}" if len(parts) > 3 else "")


if __name__ == "__main__":
    main()
