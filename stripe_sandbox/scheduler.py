"""What Stripe does on its own, later: a failing refund turns `failed`, a bank debit
settles or fails, a dispute is decided. Handlers schedule a job at a sandbox time
(`schedule(ctx, at=..., kind=..., **data)`, stored as a hidden `sandbox.job` object of
the request's account, journaled and persisted like any object); `run_due(sandbox)`
runs the jobs whose time has come, oldest first, each in its own context whose
events are published like a request's. It runs before every API or hosted-page
request and when the control plane moves the clock (`POST /_sandbox/clock`) or asks
for it (`POST /_sandbox/jobs/run`). Schedules that are not single jobs (the daily
automatic payouts) register with `@sweep` and run after the due jobs.
"""

from __future__ import annotations

import sys
import traceback
from typing import Callable

from .core import Ctx
from .events import publish

_JOB = "sandbox.job"
_kinds: dict[str, Callable] = {}
# Schedules that are not one job each (daily automatic payouts, resources/payouts.py):
# fn(sandbox) -> entries like run_due's, run after the due jobs with the lock held.
_sweeps: list[Callable] = []


def sweep(fn):
    """Register a schedule that run_due runs after the due jobs."""
    if fn not in _sweeps:
        _sweeps.append(fn)
    return fn


def job(kind: str):
    """Register the function that performs jobs of `kind`: fn(ctx, **data)."""
    def register(fn):
        if kind in _kinds:
            raise ValueError(f"job kind {kind!r} registered twice")
        _kinds[kind] = fn
        return fn
    return register


def schedule(ctx, *, at: int, kind: str, **data) -> dict:
    """Run `kind` with `data` for ctx.account once sandbox time reaches `at`."""
    if kind not in _kinds:
        raise ValueError(f"unknown job kind {kind!r}")
    return ctx.insert({"id": ctx.new_id("sjob"), "object": _JOB, "due": int(at), "kind": kind,
                       "data": data, "created": ctx.now()})


def pending(store) -> list[tuple[str, dict]]:
    """(account, job) of every scheduled job, soonest first (lock held)."""
    out = []
    for key, ids in store.index.items():
        account, _, name = key.partition("/")
        if name == _JOB:
            out += [(account, store.objects[i]) for i in ids if i in store.objects]
    return sorted(out, key=lambda aj: (aj[1]["due"], aj[1]["created"], aj[1]["id"]))


def run_due(sandbox) -> list[dict]:
    """Run every job that is due; returns what ran (`id, kind, due, ok, error`)."""
    store = sandbox.store
    ran = []
    with store.lock:
        now = sandbox.clock.now()
        for account, rec in pending(store):
            if rec["due"] > now:
                break
            platform = store.accounts.get(account, {}).get("platform") or account
            ctx = Ctx(sandbox, account=account, platform=platform, request_id=None, method="POST",
                      path=f"/_sandbox/jobs/{rec['kind']}")
            entry = {"id": rec["id"], "kind": rec["kind"], "due": rec["due"], "ok": True, "error": None}
            try:
                _kinds[rec["kind"]](ctx, **rec["data"])
            except Exception as exc:  # a job that cannot run is dropped, and says why
                ctx.rollback()
                traceback.print_exc(file=sys.stderr)
                entry.update(ok=False, error=f"{type(exc).__name__}: {exc}")
            publish(sandbox, ctx)
            _remove(store, account, rec["id"])
            ran.append(entry)
        for fn in _sweeps:
            ran += fn(sandbox)
    return ran


def _remove(store, account: str, job_id: str) -> None:
    store.objects.pop(job_id, None)
    store.owner.pop(job_id, None)
    ids = store.index.get(f"{account}/{_JOB}", [])
    if job_id in ids:
        ids.remove(job_id)
    store.dirty = True
