"""CPU the sandbox spends answering list pages and single objects, in-process.

    .venv/bin/python -m stripe_sandbox.bench_pages [--customers 1000] [--invoices 3000] [--reps 30]

Fills a connected account with `bulk.bulk_history` (a tenth drafts, a tenth void, three
tenths open, half paid by card), then times `Sandbox.handle` (the whole pipeline:
authentication, parameters, the handler, `expand[]`, shaping by the spec, JSON) for
the pages the app's import lists (`limit=100`; payment intents with
`data.latest_charge.balance_transaction` expanded, as the import asks) and a few single
objects. No HTTP and no client: what is left of a call over HTTP is the server's
socket work and the client's (stripe-python, JSON parsing). Prints the best of `reps`
runs in thread CPU time (the least disturbed by other work on the machine), never
asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from .app import Request, Sandbox
from .bulk import bulk_history

PAGES = [
    ("invoices", "/v1/invoices", "limit=100"),
    ("customers", "/v1/customers", "limit=100"),
    ("payment_intents", "/v1/payment_intents", "limit=100&expand[]=data.latest_charge.balance_transaction"),
    ("charges", "/v1/charges", "limit=100"),
    ("invoice_payments", "/v1/invoice_payments", "limit=100"),
]


def _best_ms(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        start = time.thread_time_ns()
        fn()
        best = min(best, time.thread_time_ns() - start)
    return best / 1e6


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--invoices", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args(argv)

    sandbox = Sandbox()
    key = "sk_test_pages" + os.urandom(6).hex()
    start = time.perf_counter()
    account = bulk_history(sandbox, secret_key=key, email="pages@example.test", customers=args.customers,
                           invoices=args.invoices)["account"]
    print(f"filled {args.customers} customers, {args.invoices} invoices in {time.perf_counter() - start:.1f} s")
    sandbox.rate_limiter.configure(0)  # no limit: this measures the work, not the limiter
    headers = {"Authorization": f"Bearer {key}", "Stripe-Account": account}

    def get(path: str, query: str):
        resp = sandbox.handle(Request("GET", path, query, headers))
        if resp.status != 200:
            raise SystemExit(f"GET {path}?{query}: {resp.status} {resp.body[:300]!r}")
        return resp

    print(f"\nSandbox.handle, best of {args.reps} (thread CPU):")
    first = {}
    for name, path, query in PAGES:
        body = get(path, query).body
        first[name] = json.loads(body)["data"]
        ms = _best_ms(lambda: get(path, query), args.reps)  # noqa: B023
        print(f"  GET {path:22s} page of {len(first[name]):3d}  {ms:7.2f} ms  ({len(body) / 1000:.0f} KB)")
    singles = [
        (f"/v1/invoices/{first['invoices'][0]['id']}", ""),
        (f"/v1/payment_intents/{first['payment_intents'][0]['id']}", "expand[]=latest_charge.balance_transaction"),
        (f"/v1/charges/{first['charges'][0]['id']}", ""),
        (f"/v1/customers/{first['customers'][0]['id']}", "expand[]=tax_ids"),
    ]
    for path, query in singles:
        ms = _best_ms(lambda: get(path, query), args.reps)  # noqa: B023
        shown = path.rsplit("/", 1)[0] + "/{id}" + (f"?{query}" if query else "")
        print(f"  GET {shown:72s} {ms:7.3f} ms")


if __name__ == "__main__":
    main()
