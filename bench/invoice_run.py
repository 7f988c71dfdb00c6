"""Month-end against Stripe's rate limit: N invoices x M lines pushed through the app.

    .venv/bin/python bench/invoice_run.py [--invoices 200] [--lines 20] [--workers 4]

Starts the Stripe sandbox (a subprocess) with its 25 requests/second limit on
(`POST /_sandbox/rate_limit {"per_second": 25}`, Stripe's test-mode limit), builds a
throw-away SQLite database, connects a business through the real OAuth code exchange,
makes N contacts with M billables each (VAT, some discounts, fractional quantities),
builds the invoices, then pushes them from `--workers` threads that share the app's
rate limiter, as Celery workers would. Prints:

- wall time of the pushes against the bound (every Stripe call / 25 s; target <= 1.2x),
- Stripe calls per invoice (the invoice's own: create, add_lines, finalize, send; and
  all calls, customers and the once-made tax rate / coupon / product included),
- DB queries per invoice (build and push),
- 429s seen, failures, duplicates (Stripe invoices per CRM invoice above one, billables
  on more than one invoice) - targets 0.

The sandbox's request log is the source of the call counts. Timing is printed, never
asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def start_sandbox():
    proc = subprocess.Popen([sys.executable, "-m", "stripe_sandbox", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base = proc.stdout.readline().split(" on ", 1)[1].split()[0]
    return proc, base


def control(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def setup_django(base, db_path, key):
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": f"sqlite:///{db_path}",
        "CELERY_BROKER_URL": "", "STRIPE_SECRET_KEY": key, "STRIPE_CONNECT_CLIENT_ID": "ca_bench",
        "STRIPE_API_BASE": base, "STRIPE_CONNECT_BASE": base, "LOG_LEVEL": "WARNING",
    })
    import django
    from django.conf import settings

    django.setup()
    # Tables straight from the models, as the tests make them (dj-stripe's migrations
    # alone take half a minute and are not what is measured).
    from django.apps import apps
    from django.core.management import call_command

    settings.MIGRATION_MODULES = {app.label: None for app in apps.get_app_configs()}
    call_command("migrate", run_syncdb=True, verbosity=0)


def build(n_invoices, n_lines):
    from django.contrib.auth import get_user_model

    from crm.models import Business, Individual, Membership, Role
    from finance.models import Billable

    business = Business.objects.create(name="Bench Ltd", slug="bench", country="GB", default_currency="USD",
                                       finance_enabled=True)
    user = get_user_model().objects.create_user("bench", "bench@example.com", "x", is_staff=True)
    Membership.objects.create(business=business, user=user, role=Role.FINANCE)
    contacts = [Individual.objects.create(business=business, name=f"Customer {i:03d}", email=f"c{i}@bench.example",
                                          country="GB") for i in range(n_invoices)]
    bills = []
    for c in contacts:
        for j in range(n_lines):
            bills.append(Billable(
                business=business, bill_to=c, description=f"Hours {j}", currency="USD",
                quantity=Decimal("1.5") if j % 7 == 0 else Decimal(1 + j % 3), unit_price=Decimal("80.00") + j,
                vat_rate=Decimal("20"), discount_percent=Decimal("10") if j % 5 == 0 else None))
    Billable.objects.bulk_create(bills)
    return business, user


def connect(base, key, business, user):
    from stripe_integration.connect import oauth as services

    code = control(base, "POST", "/_sandbox/oauth/code", {"secret_key": key, "email": "owner@bench.example"})["code"]
    return services.connection_connect(business=business, user=user, code=code)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=200)
    parser.add_argument("--lines", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=int, default=25, help="the sandbox's requests/second limit")
    args = parser.parse_args()

    proc, base = start_sandbox()
    tmp = tempfile.mkdtemp(prefix="invoice-bench-")
    key = "sk_test_bench_" + secrets.token_hex(8)
    try:
        setup_django(base, os.path.join(tmp, "bench.sqlite3"), key)
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from finance.models import Billable, Invoice, InvoicePushStatus
        from stripe_integration.invoicing import push as invoicing
        from stripe_integration.connect import oauth as services

        business, user = build(args.invoices, args.lines)
        connection_row = connect(base, key, business, user)
        with CaptureQueriesContext(connection) as built:
            result = invoicing.invoices_generate(business=business, push=False)
        invoices = [inv.pk for inv in result.invoices]
        assert len(invoices) == args.invoices, len(invoices)

        control(base, "POST", "/_sandbox/rate_limit", {"per_second": args.rate})
        since = control(base, "GET", "/_sandbox/requests")["next"]
        push_queries, outcomes, lock = [], [], threading.Lock()

        def push(invoice_id):
            from django.db import connection as conn

            with CaptureQueriesContext(conn) as ctx:
                outcome = invoicing.invoice_push(invoice_id=invoice_id)
            conn.close()
            with lock:
                push_queries.append(len(ctx.captured_queries))
                outcomes.append(outcome)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            list(pool.map(push, invoices))
        wall = time.monotonic() - started
        control(base, "POST", "/_sandbox/rate_limit", {"per_second": 0})

        rows = control(base, "GET", f"/_sandbox/requests?since={since}")["data"]
        calls = len(rows)
        too_many = sum(1 for r in rows if r["status"] == 429)
        invoice_calls = [r for r in rows if r["method"] == "POST" and r["status"] != 429 and (
            r["path"] == "/v1/invoices" or r["path"].endswith(("/add_lines", "/finalize", "/send", "/pay")))]
        failures = [o for o in outcomes if o.outcome != "pushed"]

        # Duplicates: Stripe's invoices per customer, by the CRM id in their metadata.
        gw = services.gateway()
        seen = {}
        for inv in Invoice.objects.all():
            for remote in gw.invoice_find_by_metadata(account=connection_row.stripe_user_id,
                                                      customer=inv.stripe_customer_id, metadata={}):
                crm_id = remote.metadata.get("crm_invoice_id")
                seen[crm_id] = seen.get(crm_id, 0) + 1
        duplicates = sum(n - 1 for n in seen.values() if n > 1) + (args.invoices - len(seen))
        billables_twice = Billable.objects.exclude(invoice__isnull=False).count()
        mismatches = Invoice.objects.exclude(push_status=InvoicePushStatus.PUSHED).count()

        bound = calls / args.rate
        print(f"invoice_run: {args.invoices} invoices x {args.lines} lines, {args.workers} workers, "
              f"sandbox limit {args.rate} req/s")
        print(f"  wall time          {wall:7.1f} s   bound (calls / {args.rate}) {bound:6.1f} s   ratio {wall / bound:.2f}x "
              f"(target <= 1.2x)")
        print(f"  Stripe calls       {calls} total = {calls / args.invoices:.2f} per invoice; the invoice's own "
              f"(create, add_lines, finalize, send): {len(invoice_calls) / args.invoices:.2f} per invoice "
              f"(vs 3 + {args.lines} = {3 + args.lines} one item at a time)")
        print(f"  DB queries         push {statistics.mean(push_queries):.1f} per invoice "
              f"(min {min(push_queries)}, max {max(push_queries)}); build {len(built.captured_queries) / args.invoices:.2f} "
              f"per invoice ({len(built.captured_queries)} for all)")
        print(f"  429s seen          {too_many}")
        print(f"  failures           {len(failures)}" + (f" {failures[:3]}" if failures else "") +
              f"; not pushed {mismatches}")
        print(f"  duplicates         {duplicates} Stripe invoices; {billables_twice} billables not on exactly one invoice")
        return 0 if not failures and not duplicates else 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
