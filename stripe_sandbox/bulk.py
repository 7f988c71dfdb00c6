"""The sandbox's fast path: a connected account filled with history straight in its
state, by calling its own handlers in this process (no HTTP, no stripe-python, no
events: `_BulkCtx` builds none, and keeps no undo journal, a failed call ending the
filling), for benchmarks that need tens of thousands of objects (bench/import.py). The
objects are the ones the API would make.
"""
from __future__ import annotations

import json

from .accounts import authenticate, connect_account
from .core import Ctx, Response, match
from .forms import decode, encode
from .schema import validate


class _BulkCtx(Ctx):
    """A handler's context that builds no event (a request's would be published; these
    were dropped unpublished) and journals nothing (a failed call raises: the history is
    unusable anyway)."""

    def emit(self, event_type: str, obj: dict, previous_attributes: dict | None = None,
             *, account: str | None = None) -> None:
        return None

    def _journal_before_write(self, oid: str) -> None:
        return None


class AccountWriter:
    def __init__(self, sandbox, *, secret_key: str, email: str):
        self.sandbox = sandbox
        with sandbox.store.lock:
            self.platform = authenticate(sandbox.store, sandbox.clock.now(), secret_key)["account"]
            ctx = Ctx(sandbox, account=self.platform, platform=self.platform)
            self.account = connect_account(ctx, self.platform, email)["id"]

    def call(self, method: str, path: str, params: dict | None = None) -> dict:
        route, names = match(method, path)
        if route is None:
            raise ValueError(f"No route {method} {path}")
        raw = decode(encode(params or {}))  # the same coercion as a request's form body
        ctx = _BulkCtx(self.sandbox, account=self.account, platform=self.platform, method=method, path=path)
        with self.sandbox.store.lock:
            result = route.handler(ctx, validate(route.params, raw) if route.params is not None else raw, **names)
        if isinstance(result, Response):
            if result.status >= 400:
                raise ValueError(f"{method} {path}: {result.status} {result.body[:300]!r}")
            result = json.loads(result.body)
        return result


def bulk_history(sandbox, *, secret_key: str, email: str, customers: int, invoices: int) -> dict:
    """`customers` customers and `invoices` invoices (cycling over the customers): a tenth
    drafts, a tenth void, three tenths open, half paid by card. Returns the account and
    the counts per state."""
    w = AccountWriter(sandbox, secret_key=secret_key, email=email)
    ids, cards = [], {}
    for i in range(customers):
        ids.append(w.call("POST", "/v1/customers", {"name": f"Bulk {i}", "email": f"bulk{i}@example.test"})["id"])
    counts = {"draft": 0, "void": 0, "open": 0, "paid": 0}
    for n in range(invoices):
        customer = ids[n % len(ids)]
        inv = w.call("POST", "/v1/invoices", {"customer": customer, "collection_method": "send_invoice",
                                              "days_until_due": 30, "currency": "usd"})
        w.call("POST", f"/v1/invoices/{inv['id']}/add_lines",
               {"lines": [{"amount": 1000 + n % 5000, "description": f"Work {n}"}]})
        kind = n % 10
        state = "draft" if kind == 0 else "void" if kind == 1 else "open" if kind < 5 else "paid"
        counts[state] += 1
        if state == "draft":
            continue
        w.call("POST", f"/v1/invoices/{inv['id']}/finalize")
        if state == "void":
            w.call("POST", f"/v1/invoices/{inv['id']}/void")
        elif state == "paid":
            if customer not in cards:
                cards[customer] = w.call("POST", "/v1/payment_methods/pm_card_visa/attach", {"customer": customer})["id"]
            w.call("POST", f"/v1/invoices/{inv['id']}/pay", {"payment_method": cards[customer]})
    return {"account": w.account, "customers": customers, "invoices": counts}
