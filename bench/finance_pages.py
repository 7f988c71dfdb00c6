"""Finance pages at volume: the Invoices list, the aging report and the billing overview
with 100,000 billables and 20,000 invoices across 3 currencies.

    .venv/bin/python bench/finance_pages.py [--database-url URL] [--runs 9]
                                            [--billables 100000] [--invoices 20000]

Seeds a throw-away database (a new SQLite file in /tmp by default; with --database-url
or BENCH_DATABASE_URL, e.g. postgres://user@127.0.0.1:5432/bench_finance, a database
that must be empty: its tables are created from the models, then filled) with one
business, 2,000 contacts, the invoices (USD, EUR, JPY; draft, open, paid, void,
uncollectible; issued over the last 14 months, due 30 days later), a payment per paid or
part-paid invoice (some failed attempts, some refunds) and the billables (4 per invoice,
the rest unbilled), all with bulk_create (then VACUUM ANALYZE on PostgreSQL, as autovacuum
would have done). Then it requests each page through Django's
test client as a finance user (server time: middleware, views, queries, templates; no
network), `--runs` times after one warm-up, and prints median and p95 milliseconds and
the number of SQL queries per page (and the same on a later page of the list: the count
must not grow), with this process's CPU time beside the wall time (the machine may be
shared). Timing is printed, never asserted.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CURRENCIES = ("USD", "EUR", "JPY")
BATCH = 2000


def setup_django(database_url):
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": "", "LOG_LEVEL": "WARNING",
    })
    import django
    from django.conf import settings

    django.setup()
    # Tables straight from the models (their indexes included), as the tests make them.
    from django.apps import apps
    from django.core.management import call_command

    settings.MIGRATION_MODULES = {app.label: None for app in apps.get_app_configs()}
    call_command("migrate", run_syncdb=True, verbosity=0)


def seed(n_invoices, n_billables, n_contacts=2000):
    from django.contrib.auth import get_user_model

    from crm.models import Business, Contact, Membership, Role
    from finance.models import Billable, Invoice, Payment, Refund

    rng = random.Random(14)
    business = Business.objects.create(name="Bench Ltd", slug="bench", country="GB", finance_enabled=True)
    user = get_user_model().objects.create_user("bench_finance", password="x", is_staff=True)
    Membership.objects.create(business=business, user=user, role=Role.FINANCE)
    Contact.objects.bulk_create([Contact(business=business, kind="organization", name=f"Client {i:05d}")
                                 for i in range(n_contacts)], batch_size=BATCH)
    contact_ids = list(Contact.objects.filter(business=business).values_list("pk", flat=True))

    today = date.today()
    statuses = ["paid"] * 50 + ["open"] * 35 + ["draft"] * 5 + ["void"] * 5 + ["uncollectible"] * 5
    invoices = []
    for i in range(n_invoices):
        currency = CURRENCIES[i % 3]
        status = rng.choice(statuses)
        total = Decimal(rng.randrange(1000, 500000)) if currency == "JPY" else Decimal(rng.randrange(1000, 500000)) / 100
        issued = None if status == "draft" else datetime.combine(
            today - timedelta(days=rng.randrange(0, 430)), datetime.min.time(), tzinfo=dt_timezone.utc)
        paid = total if status == "paid" else (total / 2 if status == "open" and i % 7 == 0 else Decimal(0))
        if currency == "JPY":
            paid = paid.quantize(Decimal(1))
        invoices.append(Invoice(
            business=business, number=f"INV-{i + 1:06d}", bill_to_id=rng.choice(contact_ids), currency=currency,
            status=status, subtotal=total, total=total, amount_paid=paid,
            amount_remaining=total - paid if status in ("open", "uncollectible") else Decimal(0),
            finalized_at=issued, due_date=(issued + timedelta(days=30)).date() if issued else None,
            paid_at=issued + timedelta(days=rng.randrange(1, 40)) if status == "paid" else None,
            stripe_invoice_id=f"in_bench{i}" if issued else None, push_status="pushed" if issued else "pending",
            disputed=(status == "paid" and i % 97 == 0)))
    Invoice.objects.bulk_create(invoices, batch_size=BATCH)
    from django.db.models import F

    Invoice.objects.filter(business=business, finalized_at__isnull=False).update(created_at=F("finalized_at"))
    rows = list(Invoice.objects.filter(business=business).values_list("pk", "currency", "status", "amount_paid",
                                                                        "bill_to_id", "paid_at", "finalized_at"))

    payments = []
    for pk, currency, status, amount_paid, _, paid_at, issued in rows:
        if amount_paid:
            fee = (amount_paid * Decimal("0.029")).quantize(Decimal(1) if currency == "JPY" else Decimal("0.01"))
            payments.append(Payment(business=business, invoice_id=pk, amount=amount_paid, currency=currency,
                                    status="succeeded", fee=fee, net=amount_paid - fee,
                                    paid_at=paid_at or issued + timedelta(days=3), stripe_charge_id=f"ch_bench{pk}"))
        if status == "open" and pk % 5 == 0:
            payments.append(Payment(business=business, invoice_id=pk, amount=Decimal(0), currency=currency,
                                    status="failed", failure_message="Your card was declined."))
    Payment.objects.bulk_create(payments, batch_size=BATCH)
    refunds = [Refund(business=business, payment_id=pk, amount=(amount / 10).quantize(Decimal(1)), currency=currency,
                      stripe_refund_id=f"re_bench{pk}")
               for pk, currency, amount in Payment.objects.filter(business=business, status="succeeded")
               .values_list("pk", "currency", "amount")[: len(payments) // 20]]
    Refund.objects.bulk_create(refunds, batch_size=BATCH)

    billables = []
    invoiced = [(pk, currency, bill_to) for pk, currency, status, _, bill_to, _, _ in rows if status != "draft"]
    for pk, currency, bill_to in invoiced:
        for _ in range(4):
            if len(billables) >= n_billables:
                break
            billables.append(Billable(business=business, bill_to_id=bill_to, currency=currency, invoice_id=pk,
                                      status="invoiced", description="Consulting", quantity=Decimal(1),
                                      unit_price=Decimal(rng.randrange(100, 5000))))
    while len(billables) < n_billables:
        billables.append(Billable(business=business, bill_to_id=rng.choice(contact_ids), currency=rng.choice(CURRENCIES),
                                  status="unbilled", description="Support", quantity=Decimal(2), unit_price=Decimal(80)))
    Billable.objects.bulk_create(billables, batch_size=BATCH)
    return business, user, {"invoices": len(rows), "payments": len(payments), "refunds": len(refunds),
                            "billables": len(billables), "contacts": len(contact_ids)}


def measure(client, url, runs):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # warm-up (template loading, caches)
    assert response.status_code == 200, (url, response.status_code)
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, statistics.median(cpu), len(ctx.captured_queries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--invoices", type=int, default=20000)
    parser.add_argument("--billables", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    url = args.database_url
    if not url:
        handle, path = tempfile.mkstemp(prefix="bench_finance_pages_", suffix=".sqlite3")
        os.close(handle)
        url = f"sqlite:///{path}"
    setup_django(url)
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    settings.ALLOWED_HOSTS = ["*"]
    started = time.perf_counter()
    business, user, counts = seed(args.invoices, args.billables)
    if connection.vendor == "postgresql":
        # A production database has its planner statistics and visibility map (autovacuum
        # keeps them); right after a bulk load it has neither until autovacuum gets round to
        # it, and the figures would depend on when that happens.
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    print(f"database: {connection.vendor} ({url.split('@')[-1]}); seeded in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    client = Client()
    client.force_login(user)
    pages = [
        ("Invoices list", "/invoices/"),
        ("Invoices list, page 200", "/invoices/?page=200"),
        ("Invoices: open, search 'Client 00', by total", "/invoices/?status=open&q=Client+00&sort=-total"),
        ("Invoices: overdue, EUR", "/invoices/?overdue=on&currency=EUR"),
        ("Aging report", "/invoices/aging/"),
        ("Aging report, JPY, page 3", "/invoices/aging/?currency=JPY&page=3"),
        ("Billing overview (dashboard)", "/dashboard/"),
        ("Home (money owed)", "/"),
    ]
    print(f"\n{'page':48} {'median ms':>10} {'p95 ms':>8} {'cpu ms':>8} {'queries':>8}")
    for label, path in pages:
        median, p95, cpu, queries = measure(client, path, args.runs)
        print(f"{label:48} {median:10.1f} {p95:8.1f} {cpu:8.1f} {queries:8d}")
    print(f"\n{args.runs} runs per page after a warm-up; target: under 300 ms server time, queries constant.\n"
          f"ms: wall time of the request in this process; cpu ms: this process's CPU time (median) - on SQLite\n"
          f"that includes the database's work, on PostgreSQL not; load average now: {os.getloadavg()[0]:.1f}.")


if __name__ == "__main__":
    main()
