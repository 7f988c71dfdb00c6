"""Webhook intake speed: the app's intake against a floor, side by side in one run.

    .venv/bin/python bench/webhooks.py [--slices 6] [--concurrency 16]

What runs: gunicorn (2 sync workers per target) serving the app on 127.0.0.1, on a
throwaway PostgreSQL database (postgres://postgres@127.0.0.1:5432, created and dropped
here), with Redis (redis://127.0.0.1:6379) as the Celery broker and no worker, so intake
and processing are apart: the intake's tasks just queue (a queue of this run, deleted at
the end). Two targets, same settings, middleware and table:

* floor:  a view that only verifies the signature and inserts one row
          (bench/floor/views.py, served with ROOT_URLCONF=bench.floor.urls);
* intake: the app's /stripe/webhook/ (verify, parse, INSERT ... ON CONFLICT, queue).

Load: signed `invoice.paid` events of about 5 KB, each with its own id, POSTed by threads
with http.client (keep-alive when offered; gunicorn's sync workers close after each
response). Figures: events per second at saturation (`--concurrency` clients back to
back) and p50/p99 latency at a paced 100 events per second (from each request's
scheduled time, so a stall is not hidden). Both servers run at once, so whatever else
loads the machine weighs on both alike: saturation alternates 1-second slices between
them (order flipping each slice); the paced phase sends 100/s to each at the same time,
their requests interleaved one by one. Targets: intake >= 0.7x the floor's throughput,
p99 at 100/s <= 1.5x the floor's. Exit status 0 when both are met.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import queue
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

# Run as `.venv/bin/python bench/webhooks.py` from anywhere: the repository root is not on
# sys.path then (only bench/ is), and the app's modules are imported from it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from stripe_integration.gateway.types import WEBHOOK_SECRET_PREFIX  # noqa: E402

BASE = Path(__file__).resolve().parent.parent
VENV_BIN = BASE / ".venv" / "bin"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
EVENT_BYTES = 5 * 1024
PACED_RATE = 100  # events per second
PACED_SECONDS = 10


# --- the events -----------------------------------------------------------------------
def event_template(account: str) -> bytes:
    """A signed-shape invoice.paid event of about 5 KB; b"EVTID" marks its id."""
    now = int(time.time())
    lines = [{"id": f"il_{i:024d}", "object": "line_item", "amount": 12500 + i, "currency": "usd",
              "description": f"Consulting, week {i}", "invoice": "in_bench", "livemode": False, "metadata": {},
              "period": {"end": now, "start": now - 604800}, "quantity": 1} for i in range(6)]
    invoice = {"id": "in_bench", "object": "invoice", "account_country": "GB", "account_name": "Bench Ltd",
               "amount_due": 75090, "amount_paid": 75090, "amount_remaining": 0, "attempt_count": 1,
               "attempted": True, "collection_method": "send_invoice", "created": now - 3600, "currency": "usd",
               "customer": "cus_bench", "customer_email": "ada@example.test", "customer_name": "Ada Lovelace",
               "hosted_invoice_url": "https://invoice.stripe.com/i/acct_bench/test_bench",
               "invoice_pdf": "https://pay.stripe.com/invoice/acct_bench/test_bench/pdf",
               "lines": {"object": "list", "data": lines, "has_more": False, "url": "/v1/invoices/in_bench/lines"},
               "livemode": False, "metadata": {"crm_invoice_id": "42"}, "number": "BENCH-0001", "status": "paid",
               "status_transitions": {"finalized_at": now - 3000, "paid_at": now, "voided_at": None},
               "subtotal": 75090, "total": 75090, "footer": ""}
    event = {"id": "EVTID", "object": "event", "account": account, "api_version": "2026-08-26.dahlia",
             "created": now, "data": {"object": invoice}, "livemode": False, "pending_webhooks": 1,
             "request": {"id": None, "idempotency_key": None}, "type": "invoice.paid"}
    body = json.dumps(event, indent=2)
    invoice["footer"] = "x" * max(0, EVENT_BYTES - len(body) - 16)  # pad to ~5 KB (an id is ~30 bytes)
    return json.dumps(event, indent=2).encode()


class Events:
    def __init__(self, template: bytes, secret: str, run: str):
        self.template, self.secret, self.run = template, secret.encode(), run
        self._n = 0
        self._lock = threading.Lock()

    def next(self) -> tuple[bytes, str]:
        with self._lock:
            self._n += 1
            n = self._n
        body = self.template.replace(b"EVTID", f"evt_{self.run}_{n:010d}".encode(), 1)
        t = int(time.time())
        mac = hmac.new(self.secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return body, f"t={t},v1={mac}"


# --- load -------------------------------------------------------------------------------
class Client:
    def __init__(self, port: int):
        self.port = port
        self.conn = None

    def post(self, body: bytes, signature: str) -> int:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request("POST", "/stripe/webhook/", body=body, headers={
                    "Content-Type": "application/json", "Stripe-Signature": signature})
                resp = self.conn.getresponse()
                resp.read()
                if resp.will_close:
                    self.conn.close()
                    self.conn = None
                return resp.status
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def saturate(port: int, events: Events, *, seconds: float, concurrency: int) -> tuple[float, int, int]:
    """(events/s, ok, errors) with `concurrency` clients sending back to back."""
    deadline = time.perf_counter() + seconds
    counts = [[0, 0] for _ in range(concurrency)]

    def worker(i):
        client = Client(port)
        while time.perf_counter() < deadline:
            body, sig = events.next()
            try:
                ok = client.post(body, sig) == 200
            except OSError:
                ok = False
            counts[i][0 if ok else 1] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    ok = sum(c[0] for c in counts)
    return ok / elapsed, ok, sum(c[1] for c in counts)


def paced(ports: dict[str, int], events: Events, *, rate: int, seconds: float, workers: int = 24) -> tuple[dict, dict]:
    """Every target at `rate` events/s at once, their requests interleaved one by one, so a
    stall of the machine falls on all alike. Returns ({target: latencies in ms}, {target:
    errors}); latency runs from each request's scheduled time."""
    jobs: queue.Queue = queue.Queue()
    names = list(ports)
    latencies = {name: [] for name in names}
    errors = {name: 0 for name in names}
    lock = threading.Lock()

    def worker():
        clients = {name: Client(port) for name, port in ports.items()}
        while True:
            item = jobs.get()
            if item is None:
                return
            name, scheduled, body, sig = item
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                status = clients[name].post(body, sig)
            except OSError:
                status = 0
            done = time.perf_counter()
            with lock:
                if status == 200:
                    latencies[name].append((done - scheduled) * 1000)
                else:
                    errors[name] += 1

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    start = time.perf_counter() + 0.2
    slots = int(rate * seconds) * len(names)
    for i in range(slots):
        scheduled = start + i / (rate * len(names))
        # ABBA order, so neither target always goes first in a pair.
        name = names[(i + (i // len(names))) % len(names)]
        body, sig = events.next()
        while scheduled - time.perf_counter() > 0.05:  # keep the queue short: at most ~50 ms ahead
            time.sleep(0.01)
        jobs.put((name, scheduled, body, sig))
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    return latencies, errors


# --- the environment ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def django_env(db_url: str, queue_name: str, secret: str) -> dict:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "STRIPE_"))}
    env.update({
        "DJANGO_DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "FIELD_ENCRYPTION_KEY": key,
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0", "DATABASE_URL": db_url,
        "CONN_MAX_AGE": "600", "CELERY_BROKER_URL": REDIS_URL, "CELERY_TASK_DEFAULT_QUEUE": queue_name,
        "STRIPE_SECRET_KEY": "sk_test_bench", "LOG_LEVEL": "ERROR", "BENCH_WEBHOOK_SECRET": secret,
        "PYTHONPATH": str(BASE),
    })
    return env


def manage(env: dict, *args: str) -> None:
    subprocess.run([str(VENV_BIN / "python"), "manage.py", *args], cwd=BASE, env=env, check=True,
                   stdout=subprocess.DEVNULL)


class Server:
    def __init__(self, env: dict, *, urlconf: str | None):
        self.port = free_port()
        env = dict(env)
        if urlconf:
            env["ROOT_URLCONF"] = urlconf
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "config.wsgi:application", "--workers", "2", "--worker-class", "sync",
             "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", "--backlog", "2048"],
            cwd=BASE, env=env, stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit("gunicorn exited during start-up")
                time.sleep(0.2)
        raise SystemExit("gunicorn did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def measure(ports: dict[str, int], events: Events, args) -> dict:
    """Both servers run side by side: saturation in alternating 1-second slices (the order
    flips every slice), the paced phase interleaved request by request."""
    names = list(ports)
    for name in names:  # warm-up: workers booted, connections and caches made
        saturate(ports[name], events, seconds=1.0, concurrency=args.concurrency)
    done = {name: [0, 0.0, 0] for name in names}  # ok, seconds, errors
    for i in range(args.slices):
        for name in (names if i % 2 == 0 else names[::-1]):
            rate, ok, errors = saturate(ports[name], events, seconds=1.0, concurrency=args.concurrency)
            done[name][0] += ok
            done[name][1] += ok / rate if rate else 1.0
            done[name][2] += errors
    time.sleep(0.5)
    latencies, paced_errors = paced(ports, events, rate=PACED_RATE, seconds=PACED_SECONDS)
    results = {}
    for name in names:
        ordered = sorted(latencies[name])
        pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        results[name] = {"rate": done[name][0] / done[name][1], "ok": done[name][0], "p50": pick(0.50),
                         "p99": pick(0.99), "samples": len(ordered), "errors": done[name][2] + paced_errors[name]}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=6, help="1-second saturation slices per target")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    run = f"{os.getpid()}_{secrets.token_hex(3)}"
    db_name = f"crm_bench_webhooks_{run}"
    db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
    queue_name = f"bench-webhooks-{run}"
    secret = WEBHOOK_SECRET_PREFIX + secrets.token_hex(24)
    env = django_env(db_url, queue_name, secret)
    import redis

    broker = redis.Redis.from_url(REDIS_URL)
    broker.ping()
    pg_admin(f'CREATE DATABASE "{db_name}"')
    try:
        # Only the integration's tables (and what they depend on): dj-stripe's migrations
        # are not needed to receive webhooks.
        manage(env, "migrate", "stripe_integration", "--noinput")
        manage(env, "shell", "-c", (
            "from stripe_integration.models import ConnectWebhookEndpoint as E; import os; "
            "E.objects.create(stripe_id='we_bench', url='http://127.0.0.1/stripe/webhook/', livemode=False, "
            "secret=os.environ['BENCH_WEBHOOK_SECRET'], enabled_events=['invoice.paid'])"))
        events = Events(event_template("acct_bench"), secret, run)
        size = len(events.next()[0])
        servers = {"floor": Server(env, urlconf="bench.floor.urls"), "intake": Server(env, urlconf=None)}
        try:
            best = measure({name: server.port for name, server in servers.items()}, events, args)
        finally:
            for server in servers.values():
                server.stop()
        queued = broker.llen(queue_name)
        stored = int(subprocess.run(
            [str(VENV_BIN / "python"), "manage.py", "shell", "-c",
             "from stripe_integration.models import WebhookDelivery as D; print(D.objects.exclude(type='floor').count())"],
            cwd=BASE, env=env, check=True, capture_output=True, text=True).stdout.split()[-1])
    finally:
        for key in broker.scan_iter(f"*{queue_name}*"):
            broker.delete(key)
        pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')

    floor, intake = best["floor"], best["intake"]
    print(f"Webhook intake: {size}-byte signed invoice.paid events, gunicorn 2 sync workers, PostgreSQL, "
          f"Redis broker (no worker); floor and intake side by side: {args.slices} alternating 1 s slices each "
          f"at saturation ({args.concurrency} clients), then {PACED_RATE}/s to each at once for {PACED_SECONDS} s, "
          f"requests interleaved")
    print(f"{'':26}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, label in (("floor", "floor (verify + 1 insert)"), ("intake", "intake (this app)")):
        row = best[name]
        print(f"{label:26}{row['rate']:>10.0f}{row['p50']:>9.2f}{row['p99']:>9.2f}{row['errors']:>8}")
    ratio, p99_ratio = intake["rate"] / floor["rate"], intake["p99"] / floor["p99"]
    print(f"{'intake / floor':26}{ratio:>9.2f}x{'':9}{p99_ratio:>8.2f}x   "
          f"(targets: >= 0.70x throughput, <= 1.50x p99)")
    print(f"intake: {intake['ok']} + {intake['samples']} deliveries answered 200 in the measured slices; "
          f"{stored} stored in all (warm-up included), {queued} drain tasks queued in Redis "
          f"(one per {0.2:.1f} s per worker at most, the rows are the queue)")
    ok = ratio >= 0.7 and p99_ratio <= 1.5 and intake["errors"] == 0 and floor["errors"] == 0 and queued > 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
