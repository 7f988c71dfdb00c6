"""Automatic payouts and the balance (docs.stripe.com/api/payouts, /api/balance,
docs.stripe.com/payouts#payout-schedule, /reports/payout-reconciliation).

Every balance transaction (charge, refund, dispute adjustment or reversal, refund
failure) waits for a payout once it is available. Stripe's default schedule is a daily
automatic payout: at each midnight (UTC) of sandbox time, each account's funds that
are available by then become one payout per currency (`automatic: true`, `pending`,
`arrival_date` the next midnight, its own `payout` balance transaction of minus the
amount), with `payout.created`; at `arrival_date` it is `paid` (`payout.updated`,
`payout.paid`), or `failed` when the control plane asked for failures
(`POST /_sandbox/payouts/failures`: `payout.updated`, `payout.failed`, the amount back in
the balance, payouts paused until the failures are stopped). A currency whose available total is not positive waits for the next day. `GET /v1/balance_transactions?payout=po_...` lists what an automatic payout
carried (its own transaction included, as on Stripe).

The schedule runs from `scheduler.run_due` (before every request, and when the control
plane moves the clock); a clock moved several days at once makes the payouts of each
day in turn. The per-account bookkeeping is a hidden `sandbox.payout_state` object.
"""

from __future__ import annotations

import sys
import traceback

import stripe

from ..core import Ctx, route
from ..errors import resource_missing
from ..events import publish
from ..scheduler import sweep
from ..schema import shape
from .payments_charges import new_balance_transaction

DAY = 86400
_STATE = "sandbox.payout_state"


def _midnight_at_or_after(t: int) -> int:
    return -(-int(t) // DAY) * DAY


def _state_id(account: str) -> str:
    return f"spst_{account}"


def _state(ctx) -> dict:
    """This account's payout bookkeeping, to change (journaled)."""
    sid = _state_id(ctx.account)
    if ctx.find(sid, _STATE) is None:
        return ctx.insert({"id": sid, "object": _STATE, "unpaid": [], "pending": [], "payouts": {},
                           "last_run": None})
    state = ctx.get(_STATE, sid)
    ctx.save(state)
    return state


# The soonest payout run of any account, so that the sweep before every request costs
# nothing until then. Not persisted: None (after a start, load or reset) means "scan once".
_SOONEST = "_payouts_soonest"


def _lower_soonest(store, due: int) -> None:
    current = getattr(store, _SOONEST, None)
    if current is not None and due < current:
        setattr(store, _SOONEST, due)


def awaiting_payout(ctx, txn: dict) -> None:
    """Called for each new balance transaction: it goes out with a later payout."""
    _state(ctx)["unpaid"].append(txn["id"])
    _lower_soonest(ctx.store, _midnight_at_or_after(txn["available_on"]))


def payout_transaction_ids(ctx, payout_id) -> set[str]:
    """The balance transactions an automatic payout carried, its own included; 400 for
    a payout that is not this account's."""
    payout = ctx.find(payout_id, "payout")
    if payout is None:
        raise resource_missing("payout", str(payout_id), param="payout")
    state = ctx.find(_state_id(ctx.account), _STATE) or {"payouts": {}}
    return set(state["payouts"].get(payout["id"], [])) | {payout["balance_transaction"]}


def _next_due(ctx, state: dict) -> int | None:
    objects = ctx.store.objects
    candidates = [objects[p]["arrival_date"] for p in state["pending"]]
    floor = state["last_run"] + DAY if state["last_run"] is not None else 0
    candidates += [max(_midnight_at_or_after(objects[t]["available_on"]), floor) for t in state["unpaid"]]
    return min(candidates) if candidates else None


# Stripe's payout failure codes and messages (docs.stripe.com/api/payouts/failures), for
# the ones the control plane can ask for (`POST /_sandbox/payouts/failures`).
FAILURES = {
    "account_closed": "The bank account has been closed.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "invalid_account_number": "The routing number seems correct, but the account number is invalid.",
    "no_account": "The bank account details on file are probably incorrect. No bank account could be "
                  "located with those details.",
}


def _pay_arrived(ctx, state: dict, at: int) -> None:
    for pid in list(state["pending"]):
        payout = ctx.get("payout", pid)
        if payout["arrival_date"] > at:
            continue
        previous = {"status": payout["status"], "reconciliation_status": payout["reconciliation_status"]}
        failure = state.get("fail_with")
        if failure:
            # The bank refused it: the amount comes back to the balance (a payout_failure
            # transaction, paid out again with a later payout), payout.failed.
            back = new_balance_transaction(ctx, amount=payout["amount"], currency=payout["currency"], source=pid,
                                           kind="payout_failure", description="STRIPE PAYOUT FAILURE",
                                           created=at, available_on=at)
            previous.update(failure_code=None, failure_message=None, failure_balance_transaction=None)
            payout.update(status="failed", failure_code=failure, failure_message=FAILURES[failure],
                          failure_balance_transaction=back["id"])
            # Stripe pauses payouts until the bank account is fixed (here: until the
            # control plane stops the failures).
            state["paused"] = True
        else:
            payout.update(status="paid", reconciliation_status="completed")
        ctx.save(payout)
        state["pending"].remove(pid)
        ctx.emit("payout.updated", payout, previous)
        ctx.emit("payout.failed" if failure else "payout.paid", payout)


def payout_failures(sandbox, account: str, failure_code: str | None) -> None:
    """From now on the account's payouts fail at their arrival date with `failure_code`
    (None: they are paid again). Control plane only (lock held)."""
    if failure_code and failure_code not in FAILURES:
        raise ValueError(f"failure_code must be one of {sorted(FAILURES)}")
    if account not in sandbox.store.accounts:
        raise KeyError(f"no account {account}")
    ctx = Ctx(sandbox, account=account, platform=account, method="POST", path="/_sandbox/payouts/failures")
    state = _state(ctx)
    state["fail_with"] = failure_code or None
    if not failure_code:
        state["paused"] = False


def _make_payouts(ctx, state: dict, at: int) -> None:
    if state.get("paused"):
        return
    objects = ctx.store.objects
    ready: dict[str, list[str]] = {}
    for tid in state["unpaid"]:
        txn = objects[tid]
        if txn["available_on"] <= at:
            ready.setdefault(txn["currency"], []).append(tid)
    for currency, ids in sorted(ready.items()):
        amount = sum(objects[t]["net"] for t in ids)
        if amount <= 0:  # Stripe carries a negative balance until funds cover it
            continue
        pid = ctx.new_id("po")
        txn = new_balance_transaction(
            ctx, amount=-amount, currency=currency, source=pid, kind="payout", description="STRIPE PAYOUT",
            created=at, available_on=at, paid_out=True,
        )
        payout = shape(
            "payout",
            id=pid,
            amount=amount,
            arrival_date=at + DAY,
            automatic=True,
            balance_transaction=txn["id"],
            created=at,
            currency=currency,
            description="STRIPE PAYOUT",
            livemode=False,
            method="standard",
            reconciliation_status="in_progress",
            source_type="card",
            status="pending",
            type="bank_account",
        )
        ctx.insert(payout)
        state["payouts"][pid] = ids
        state["pending"].append(pid)
        state["unpaid"] = [t for t in state["unpaid"] if t not in set(ids)]
        ctx.emit("payout.created", payout)


@sweep
def run_payouts(sandbox) -> list[dict]:
    """Every midnight that has come since an account last paid out (store lock held)."""
    store = sandbox.store
    now = sandbox.clock.now()
    ran = []
    soonest = getattr(store, _SOONEST, None)
    if soonest is not None and soonest > now and getattr(store, "_payouts_generation", None) == store.generation:
        return ran
    soonest = None
    for key in [k for k in store.index if k.endswith("/" + _STATE)]:
        account = key.partition("/")[0]
        stored = store.objects.get(_state_id(account))
        if stored is None:
            continue
        due = _next_due(Ctx(sandbox, account=account), stored)
        if due is None or due > now:
            soonest = due if soonest is None or (due is not None and due < soonest) else soonest
            continue
        platform = store.accounts.get(account, {}).get("platform") or account
        ctx = Ctx(sandbox, account=account, platform=platform, request_id=None, method="POST",
                  path="/_sandbox/jobs/payouts")
        try:
            state = _state(ctx)
            while due is not None and due <= now:
                _pay_arrived(ctx, state, due)
                _make_payouts(ctx, state, due)
                state["last_run"] = due
                due = _next_due(ctx, state)
            entry = {"id": _state_id(account), "kind": "payouts", "due": state["last_run"], "ok": True, "error": None}
        except Exception as exc:  # like a job that cannot run: rolled back, and says why
            ctx.rollback()
            traceback.print_exc(file=sys.stderr)
            entry = {"id": _state_id(account), "kind": "payouts", "due": due, "ok": False,
                     "error": f"{type(exc).__name__}: {exc}"}
        if ctx.pending_events or not entry["ok"]:
            ran.append(entry)
        publish(sandbox, ctx)
        after = _next_due(ctx, store.objects.get(_state_id(account)) or {"pending": [], "unpaid": [], "last_run": None})
        if after is not None and (soonest is None or after < soonest):
            soonest = after
    # Nothing scheduled: a day ahead is as good as never (a new transaction lowers it).
    setattr(store, _SOONEST, soonest if soonest is not None else now + DAY)
    store._payouts_generation = store.generation
    return ran


def next_payouts(sandbox) -> list[tuple[str, int]]:
    """(account, when) of each account's next payout run (for the control page)."""
    store = sandbox.store
    out = []
    for key in [k for k in store.index if k.endswith("/" + _STATE)]:
        account = key.partition("/")[0]
        stored = store.objects.get(_state_id(account))
        due = _next_due(Ctx(sandbox, account=account), stored) if stored else None
        if due is not None:
            out.append((account, due))
    return out


# ------------------------------------------------------------------ routes


@route("GET", "/v1/payouts", params=stripe.params.PayoutListParams)
def list_payouts(ctx, params):
    checks = [(k, params[k]) for k in ("status", "destination") if k in params]
    arrival = params.get("arrival_date")
    from ..core import in_range

    return ctx.list("payout", params, url="/v1/payouts", where=lambda p: all(p.get(k) == v for k, v in checks)
                    and (arrival is None or in_range(p["arrival_date"], arrival)))


@route("GET", "/v1/payouts/{payout}", params=stripe.params.PayoutRetrieveParams)
def retrieve_payout(ctx, params, payout):
    return ctx.get("payout", payout)


@route("GET", "/v1/balance", params=stripe.params.BalanceRetrieveParams)
def retrieve_balance(ctx, params):
    """Available and pending funds per currency: every balance transaction's net,
    available from its `available_on`."""
    now = ctx.now()
    available: dict[str, int] = {}
    pending: dict[str, int] = {}
    for txn in ctx.objects("balance_transaction"):
        bucket = available if txn["available_on"] <= now else pending
        bucket[txn["currency"]] = bucket.get(txn["currency"], 0) + txn["net"]
    account = ctx.store.objects.get(ctx.account) or {}
    default = account.get("default_currency") or "usd"
    for bucket in (available, pending):
        bucket.setdefault(default, 0)

    def amounts(bucket):
        return [{"amount": amount, "currency": cur, "source_types": {"card": amount}}
                for cur, amount in sorted(bucket.items())]

    return {"object": "balance", "available": amounts(available), "livemode": False, "pending": amounts(pending)}
