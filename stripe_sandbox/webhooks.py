"""Signed, asynchronous webhook delivery with retries and chaos.

Each (event, endpoint) pair is a job in `store.delivery_jobs`, a list of
[due, seq, job] kept in the store so that `--state` keeps pending retries. A small
pool of worker threads POSTs due jobs outside the store lock, signing each
payload as Stripe does (docs.stripe.com/webhooks#verify-manually):

    Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>

A non-2xx answer or a connection error is retried with exponential backoff
(base * 2**(attempt-1)) up to `max_attempts` attempts; Stripe retries test-mode
deliveries three times, hence 4 attempts by default. Every attempt is recorded.
`pending_webhooks` on the event counts the endpoints not yet answered with 2xx.

Chaos (`configure_chaos`) makes deliveries arrive twice, out of order and late,
which Stripe documents as possible and which webhook handlers must survive.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request

from .core import new_id

DEFAULT_RETRY_BASE_MS = 1000
DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_TIMEOUT_S = 10.0
_DELIVERY_LOG_CAP = 50_000


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # Stripe does not follow redirects: a 3xx answer is a failed delivery.
    def redirect_request(self, *args, **kwargs):
        return None


# Webhook URLs are the app's own; never send them through an environment proxy.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    # Wall time, not the sandbox clock: receivers compare `t` with their own
    # clock (stripe-python's default tolerance is 300 s).
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class WebhookDispatcher:
    def __init__(self, sandbox, *, retry_base_ms=None, max_attempts=None, timeout=None, workers=4):
        self.sandbox = sandbox
        self.store = sandbox.store
        env = os.environ
        self.retry_base_ms = float(
            retry_base_ms if retry_base_ms is not None
            else env.get("STRIPE_SANDBOX_RETRY_BASE_MS", DEFAULT_RETRY_BASE_MS)
        )
        self.max_attempts = int(
            max_attempts if max_attempts is not None
            else env.get("STRIPE_SANDBOX_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)
        )
        self.timeout = float(timeout if timeout is not None else env.get("STRIPE_SANDBOX_WEBHOOK_TIMEOUT", DEFAULT_TIMEOUT_S))
        self._defaults = (self.retry_base_ms, self.max_attempts, self.timeout)
        self.workers = workers
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._inflight = 0
        self._busy: set[str] = set()  # endpoints with a delivery in flight
        self._seq = itertools.count()
        self.configure_chaos({})

    # ----------------------------------------------------------------- config

    def configure_chaos(self, spec: dict) -> dict:
        delay = spec.get("delay_ms") or [0, 0]
        if isinstance(delay, (int, float)):
            delay = [delay, delay]
        self.chaos = {
            "duplicate": float(spec.get("duplicate", 0)),
            "shuffle": bool(spec.get("shuffle", False)),
            "delay_ms": [float(delay[0]), float(delay[1])],
            "seed": spec.get("seed", 0),
        }
        self._rng = random.Random(self.chaos["seed"])
        return self.chaos

    def configure(self, spec: dict) -> dict:
        if "retry_base_ms" in spec:
            self.retry_base_ms = float(spec["retry_base_ms"])
        if "max_attempts" in spec:
            self.max_attempts = int(spec["max_attempts"])
        if "timeout_ms" in spec:
            self.timeout = float(spec["timeout_ms"]) / 1000
        return self.settings()

    def settings(self) -> dict:
        return {
            "retry_base_ms": self.retry_base_ms,
            "max_attempts": self.max_attempts,
            "timeout_ms": self.timeout * 1000,
        }

    def reset_config(self) -> None:
        self.retry_base_ms, self.max_attempts, self.timeout = self._defaults
        self.configure_chaos({})

    # -------------------------------------------------------------- scheduling

    def enqueue(self, event: dict, endpoints: list[dict]) -> None:
        """Queue first attempts (store lock held by the caller)."""
        for ep in endpoints:
            copies = 2 if self.chaos["duplicate"] and self._rng.random() < self.chaos["duplicate"] else 1
            for n in range(copies):
                self._push(
                    {"event": event["id"], "endpoint": ep["id"], "attempt": 1, "duplicate": n > 0},
                    self._chaos_delay(),
                )

    def _chaos_delay(self) -> float:
        lo, hi = self.chaos["delay_ms"]
        delay = self._rng.uniform(lo, hi) if hi > 0 else 0.0
        if self.chaos["shuffle"]:
            # Enough jitter to reorder deliveries queued together.
            delay += self._rng.uniform(0, max(hi, 200.0))
        return delay / 1000

    def _push(self, job: dict, delay_s: float) -> None:
        self.store.delivery_jobs.append([time.time() + delay_s, next(self._seq), job])
        self.store.dirty = True
        self.store.jobs_changed.notify_all()

    # ---------------------------------------------------------------- workers

    def start(self) -> None:
        self._stopping = False
        # Sequence numbers continue after those of reloaded jobs.
        jobs = self.store.delivery_jobs
        self._seq = itertools.count(max((j[1] for j in jobs), default=0) + 1)
        for i in range(self.workers):
            t = threading.Thread(target=self._run, name=f"stripe-sandbox-webhooks-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        with self.store.lock:
            self._stopping = True
            self.store.jobs_changed.notify_all()
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()

    def drain(self, timeout: float) -> bool:
        """Wait until nothing is queued or in flight; False on timeout."""
        with self.store.jobs_changed:
            return self.store.jobs_changed.wait_for(
                lambda: not self.store.delivery_jobs and self._inflight == 0, timeout
            )

    def _next_job(self):
        """The earliest due job for an endpoint with no delivery in flight.

        One delivery at a time per endpoint keeps an endpoint's events in the order
        they happened unless chaos says otherwise (Stripe does not promise order,
        but tests of ordinary behaviour should not depend on thread timing)."""
        cond = self.store.jobs_changed
        with cond:
            while not self._stopping:
                jobs = self.store.delivery_jobs
                eligible = [i for i, entry in enumerate(jobs) if entry[2]["endpoint"] not in self._busy]
                if eligible:
                    i = min(eligible, key=lambda k: (jobs[k][0], jobs[k][1]))
                    wait = jobs[i][0] - time.time()
                    if wait <= 0:
                        job = jobs.pop(i)[2]
                        self._busy.add(job["endpoint"])
                        self._inflight += 1
                        return job, self.store.generation
                    cond.wait(min(wait, 1.0))
                else:
                    cond.wait(1.0)
        return None, None

    def _run(self) -> None:
        while True:
            job, generation = self._next_job()
            if job is None:
                return
            try:
                self._attempt(job, generation)
            finally:
                with self.store.jobs_changed:
                    self._inflight -= 1
                    self._busy.discard(job["endpoint"])
                    self.store.jobs_changed.notify_all()

    def _attempt(self, job: dict, generation: int) -> None:
        store = self.store
        with store.lock:
            event = store.objects.get(job["event"])
            endpoint = store.objects.get(job["endpoint"])
            secret = store.secrets.get(job["endpoint"])
            if event is None or endpoint is None or endpoint.get("deleted") or secret is None:
                return
            payload = json.dumps(event, indent=2)
            url = endpoint["url"]
        status, error, started = None, None, time.time()
        request = urllib.request.Request(
            url,
            data=payload.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": sign(payload, secret),
            },
        )
        try:
            with _opener.open(request, timeout=self.timeout) as resp:
                status = resp.status
                resp.read(65536)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except Exception as exc:  # connection refused, timeout, reset...
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        with store.lock:
            if store.generation != generation:
                return  # reset while in flight
            if len(store.deliveries) >= _DELIVERY_LOG_CAP:
                del store.deliveries[: _DELIVERY_LOG_CAP // 2]
            store.deliveries.append({
                "id": new_id("whdel"),
                "event": job["event"],
                "type": event["type"],
                "endpoint": job["endpoint"],
                "url": url,
                "attempt": job["attempt"],
                "duplicate": job["duplicate"],
                "status": status,
                "error": error,
                "ok": ok,
                "time": self.sandbox.clock.now(),
                "duration_ms": round((time.time() - started) * 1000, 1),
            })
            key = f"{job['event']}|{job['endpoint']}"
            if ok:
                if not store.delivered.get(key):
                    store.delivered[key] = True
                    stored = store.objects.get(job["event"])
                    if stored is not None and stored["pending_webhooks"] > 0:
                        stored["pending_webhooks"] -= 1
            elif job["attempt"] < self.max_attempts and not store.delivered.get(key):
                backoff = self.retry_base_ms * 2 ** (job["attempt"] - 1) / 1000
                self._push(dict(job, attempt=job["attempt"] + 1), backoff)
            store.dirty = True
