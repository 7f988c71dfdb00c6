"""The control plane: `/_sandbox/*`, JSON in and out, no auth. Not Stripe's API;
it lets tests and the demo reset state, watch requests, inject faults, shape
webhook delivery, move the clock and make connected accounts without the
consent page. Endpoints are listed in README.md.
"""

from __future__ import annotations

import json
from typing import Callable
from urllib.parse import parse_qs

from .accounts import authenticate, connect_account
from .core import Ctx, Response, new_id
from .events import publish
from .oauth import issue_code
from .scheduler import pending, run_due

_routes: dict[tuple[str, str], Callable] = {}


def _control(method: str, path: str):
    def register(fn):
        _routes[(method, "/_sandbox" + path)] = fn
        return fn

    return register


def dispatch(sandbox, req) -> Response:
    fn = _routes.get((req.method, req.path.rstrip("/") or "/"))
    if fn is None:
        known = sorted(f"{m} {p}" for m, p in _routes)
        return Response.json({"error": f"no control endpoint {req.method} {req.path}", "endpoints": known}, 404)
    try:
        if getattr(fn, "form", False):  # the HTML page's forms
            body = {k: v[-1] for k, v in parse_qs((req.body or b"").decode()).items()}
        else:
            body = json.loads(req.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        query = {k: v[-1] for k, v in parse_qs(req.query).items()}
        result = fn(sandbox, body, query)
    except (ValueError, KeyError, TypeError) as exc:
        return Response.json({"error": f"{type(exc).__name__}: {exc}"}, 400)
    return result if isinstance(result, Response) else Response.json(result)


def _ctx(sandbox, account: str) -> Ctx:
    return Ctx(sandbox, account=account, platform=account, request_id=None)


@_control("GET", "/health")
def health(sandbox, body, query):
    return {"ok": True}


@_control("POST", "/reset")
def reset(sandbox, body, query):
    sandbox.reset()
    return {"ok": True}


@_control("POST", "/save")
def save(sandbox, body, query):
    sandbox.save()
    return {"ok": True, "state_file": sandbox.state_file}


@_control("GET", "/requests")
def requests(sandbox, body, query):
    entries, next_index = sandbox.requests_since(int(query.get("since", 0)))
    return {"data": entries, "next": next_index}


@_control("GET", "/faults")
def faults_list(sandbox, body, query):
    return {"data": sandbox.faults.list()}


@_control("POST", "/faults")
def faults_add(sandbox, body, query):
    return sandbox.faults.add(body)


@_control("DELETE", "/faults")
def faults_clear(sandbox, body, query):
    sandbox.faults.clear()
    return {"ok": True}


@_control("POST", "/rate_limit")
def rate_limit(sandbox, body, query):
    sandbox.rate_limiter.configure(int(body.get("per_second", 0)))
    return {"per_second": sandbox.rate_limiter.per_second}


@_control("POST", "/clock")
def clock_advance(sandbox, body, query):
    """Move sandbox time forward, then run what became due (refund failures, bank
    debits settling, disputes decided): `ran` lists those jobs."""
    seconds = float(body.get("advance_seconds", 0))
    if seconds < 0:
        raise ValueError("advance_seconds must be >= 0: the sandbox clock only moves forward")
    now = sandbox.clock.advance(seconds)
    return {"now": now, "ran": run_due(sandbox)}


@_control("GET", "/jobs")
def jobs_list(sandbox, body, query):
    """What the sandbox will do on its own, soonest first."""
    with sandbox.store.lock:
        data = [{"id": j["id"], "kind": j["kind"], "due": j["due"], "account": a, "data": j["data"]}
                for a, j in pending(sandbox.store)]
        return {"now": sandbox.clock.now(), "data": data}


@_control("POST", "/jobs/run")
def jobs_run(sandbox, body, query):
    """Run the jobs that are due now, without moving the clock."""
    return {"now": sandbox.clock.now(), "ran": run_due(sandbox)}


@_control("POST", "/clock/reset")
def clock_reset(sandbox, body, query):
    """Sandbox time back to wall time (a test suite's isolation between tests that share
    one sandbox: a test that moved the clock 31 days ahead would otherwise make every later
    absolute due date "in the past"). Objects keep their timestamps; jobs due later wait."""
    with sandbox.store.lock:
        sandbox.store.clock_offset = 0.0
        sandbox.store.dirty = True
    return {"now": sandbox.clock.now()}


@_control("GET", "/clock")
def clock_now(sandbox, body, query):
    return {"now": sandbox.clock.now()}


@_control("POST", "/webhooks/chaos")
def chaos(sandbox, body, query):
    return sandbox.webhooks.configure_chaos(body)


@_control("DELETE", "/webhooks/chaos")
def chaos_clear(sandbox, body, query):
    return sandbox.webhooks.configure_chaos({})


@_control("POST", "/webhooks/config")
def webhook_config(sandbox, body, query):
    return sandbox.webhooks.configure(body)


@_control("GET", "/webhooks/deliveries")
def deliveries(sandbox, body, query):
    with sandbox.store.lock:
        data = [
            d for d in sandbox.store.deliveries
            if all(str(d.get(k)) == v for k, v in query.items() if k in ("event", "endpoint", "type"))
        ]
        pending = len(sandbox.store.delivery_jobs)
    return {"data": data, "pending": pending}


@_control("POST", "/webhooks/drain")
def drain(sandbox, body, query):
    """Block until every queued delivery (retries included) is done."""
    done = sandbox.webhooks.drain(float(body.get("timeout", 10)))
    return {"drained": done}


def _platform(sandbox, secret_key: str) -> str:
    with sandbox.store.lock:
        return authenticate(sandbox.store, sandbox.clock.now(), secret_key)["account"]


@_control("POST", "/accounts")
def accounts_create(sandbox, body, query):
    """A connected account for a platform key, as if it had gone through OAuth."""
    platform = _platform(sandbox, body["secret_key"])
    email = body.get("email") or f"{new_id('user').lower()}@example.test"
    with sandbox.store.lock:
        ctx = _ctx(sandbox, platform)
        account = connect_account(
            ctx, platform, email,
            business_name=body.get("business_name"),
            country=body.get("country", "US"),
            currency=body.get("default_currency", "usd"),
        )
        publish(sandbox, ctx)
    return {"id": account["id"], "email": email, "platform": platform}


@_control("POST", "/payouts/failures")
def payouts_failures(sandbox, body, query):
    """The account's payouts fail at their arrival date with Stripe's `failure_code`
    (`no_account`, `account_closed`, `insufficient_funds`, `invalid_account_number`);
    `null` makes them succeed again."""
    from .resources.payouts import payout_failures

    with sandbox.store.lock:
        payout_failures(sandbox, body["account"], body.get("failure_code"))
    return {"account": body["account"], "failure_code": body.get("failure_code")}


@_control("POST", "/oauth/code")
def oauth_code(sandbox, body, query):
    """A fresh authorization code, as if the user had clicked Authorize."""
    platform = _platform(sandbox, body["secret_key"])
    with sandbox.store.lock:
        code = issue_code(
            sandbox, client_id=body.get("client_id"), email=body.get("email"),
            scope=body.get("scope", "read_write"), platform=platform,
            business_name=body.get("business_name"),
        )
    return {"code": code}


# ----------------------------------------------------------- the HTML page

_STEPS = (("+1 hour", 3600), ("+1 day", 86400), ("+8 days", 8 * 86400))


@_control("GET", "/ui")
def ui(sandbox, body, query):
    """A small page for people (`make run`): the clock, its buttons, pending jobs."""
    import html
    import time

    with sandbox.store.lock:
        now = sandbox.clock.now()
        from .resources.payouts import next_payouts

        jobs = sorted([(j["kind"], j["due"], a) for a, j in pending(sandbox.store)]
                      + [("automatic payout", due, a) for a, due in next_payouts(sandbox)], key=lambda j: j[1])
    fmt = lambda t: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))  # noqa: E731
    buttons = "".join(
        f'<button type=submit name=advance_seconds value={secs} id=advance-{secs}>{label}</button> '
        for label, secs in _STEPS)
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{fmt(d)}</td><td>{html.escape(a)}</td></tr>"
                   for k, d, a in jobs) or "<tr><td colspan=3>nothing pending</td></tr>"
    ran = html.escape(query.get("ran", ""))
    page = f"""<!doctype html><html lang=en><head><meta charset=utf-8><title>stripe_sandbox control</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem}}td,th{{padding:.2rem .8rem;text-align:left}}
button{{padding:.4rem .8rem;margin-right:.4rem}}</style></head><body>
<h1>stripe_sandbox control</h1>
<p>Sandbox time: <strong id=now>{fmt(now)}</strong></p>
<form method=post action="/_sandbox/ui/clock"><p>Advance the clock (runs what Stripe would have done by
then: failing refunds, bank debits settling, disputes decided, daily automatic payouts at
midnight UTC of funds available by then): {buttons}</p></form>
{f'<p id=ran>Ran: {ran}</p>' if ran else ''}
<h2>Pending</h2><table id=jobs><tr><th>Job</th><th>Due</th><th>Account</th></tr>{rows}</table>
</body></html>"""
    return Response.html(page)


@_control("POST", "/ui/clock")
def ui_clock(sandbox, body, query):
    from urllib.parse import quote

    result = clock_advance(sandbox, {"advance_seconds": float(body.get("advance_seconds", 0))}, {})
    ran = ", ".join(f"{r['kind']}{'' if r['ok'] else ' (failed: ' + r['error'] + ')'}" for r in result["ran"])
    return Response.redirect("/_sandbox/ui?ran=" + quote(ran or "nothing"))


ui_clock.form = True
