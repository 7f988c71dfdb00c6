"""What a Stripe rules filter costs (cel-python), printed, never asserted.

    .venv/bin/python bench/rules_filter.py [--contacts 2000]

1. a typical filter evaluated on N contact maps (what "Test this filter" and an unbilled
   run do per contact): time per contact;
2. the costliest filter the checks let through: 1,000 characters of arithmetic and
   comparisons (no loops: comprehension macros are refused), one evaluation;
3. for the record, what the refused loops would cost: one comprehension over a list
   literal with a 50-term body (seconds: 1.9 to 4 s measured here).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=2000)
    args = parser.parse_args()
    import django

    django.setup()
    from stripe_integration.rules.expressions import CompiledFilter, FilterError, filter_compile

    def contact(i):
        return {"id": i, "kind": "organization", "name": f"Contact {i}", "email": f"c{i}@example.com", "phone": "",
                "address_line1": "", "address_line2": "", "city": "London", "postal_code": "", "state": "",
                "country": "GB" if i % 2 else "US", "tax_id": "", "organization": "",
                "custom_fields": {"po": f"PO-{i}"} if i % 3 else {}}

    typical = filter_compile('contact.country == "GB" && has(contact.custom_fields.po)', definitions=[])
    maps = [contact(i) for i in range(args.contacts)]
    start = time.perf_counter()
    passed = sum(typical.evaluate(m) for m in maps)
    took = time.perf_counter() - start
    print(f"typical filter: {args.contacts} contacts in {took:.2f} s ({took / args.contacts * 1e6:.0f} us each), "
          f"{passed} pass")

    term = "contact.id + 1 > 0"
    costly = " && ".join([term] * (1000 // (len(term) + 4)))
    start = time.perf_counter()
    compiled = filter_compile(costly, definitions=[])
    compile_took = time.perf_counter() - start
    start = time.perf_counter()
    compiled.evaluate(maps[0])
    print(f"costliest allowed filter ({len(costly)} chars): compile+check {compile_took * 1000:.0f} ms, "
          f"one evaluation {(time.perf_counter() - start) * 1000:.0f} ms")

    loop = "[" + ",".join(["1"] * 120) + "].all(x, " + " && ".join(["x + 1 > 0"] * 50) + ")"
    try:
        filter_compile(loop, definitions=[])
    except FilterError as exc:
        print(f"refused loop ({len(loop)} chars): {exc.message[:60]}...")
    import celpy

    env = celpy.Environment()
    start = time.perf_counter()
    CompiledFilter(loop, env.program(env.compile(loop))).evaluate(maps[0])
    print(f"  had it been allowed: one evaluation {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
