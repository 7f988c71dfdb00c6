"""Injected faults and Stripe's rate limit, both set through the control plane.

Fault kinds, matched by regex against "METHOD /path":
* "500": answer 500 api_error WITHOUT performing the change (`"status"` picks another 5xx,
  e.g. 503). The answer is not
  kept under the request's idempotency key: it models a failure in front of the
  API (Stripe keeps results only once an endpoint "started executing"), so a
  retry with the same key performs the request.
* "429": Stripe's `rate_limit` body, or `lock_timeout` with {"code": "lock_timeout"};
  nothing performed.
* "timeout": perform and commit, then sleep `delay_ms` before answering, past the
  client's timeout; a retry with the same idempotency key replays the result.
* "drop": perform and commit, then close the connection without an answer.
* "oauth_error": answer an OAuth-style error `{"error": <code>, "error_description": ...}`
  with `"status"` (default 400) WITHOUT performing anything: lets a test send an error
  code the client library has never heard of, as connect.stripe.com may.
"""

from __future__ import annotations

import collections
import random
import re
import threading
import time

from .errors import OAuthError, StripeError

FAULT_KINDS = ("500", "429", "timeout", "drop", "oauth_error")
EDGE_KINDS = ("500", "429", "oauth_error")  # answered before anything runs
DEFAULT_TIMEOUT_DELAY_MS = 5000


class Fault:
    def __init__(self, spec: dict, seed: int):
        kind = str(spec.get("kind", "500"))
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        self.kind = kind
        self.pattern = spec.get("match", ".*")
        self.regex = re.compile(self.pattern)
        self.rate = float(spec.get("rate", 1.0))
        self.remaining = spec.get("count")
        self.code = spec.get("code", "server_error" if kind == "oauth_error" else "rate_limit")
        self.status = int(spec.get("status", 500 if kind == "500" else 400))
        if kind == "500" and not 500 <= self.status <= 599:
            raise ValueError("status of a 500 fault must be 5xx")
        self.delay_ms = float(spec.get("delay_ms", DEFAULT_TIMEOUT_DELAY_MS))
        self.hits = 0
        self.rng = random.Random(spec.get("seed", seed))

    def describe(self) -> dict:
        return {
            "match": self.pattern, "kind": self.kind, "rate": self.rate, "count": self.remaining,
            "code": self.code, "status": self.status, "delay_ms": self.delay_ms, "hits": self.hits,
        }

    def error(self) -> StripeError | OAuthError:
        if self.kind == "oauth_error":
            return OAuthError(self.status, str(self.code), "Injected by stripe_sandbox.")
        if self.kind == "500":
            return StripeError(
                self.status,
                "An unknown error occurred while processing your request (injected by stripe_sandbox).",
                type="api_error",
            )
        if self.code == "lock_timeout":
            # Stripe marks lock timeouts retryable; its SDKs retry them on their own.
            return StripeError(
                429,
                "This object cannot be accessed right now because another API request or Stripe "
                "process is currently accessing it. If you see this error intermittently, retry "
                "the request. If you see this error frequently and are making multiple concurrent "
                "requests to a single object, make your requests serially or at a lower rate. See "
                "https://stripe.com/docs/rate-limits for more information.",
                code="lock_timeout",
                headers={"Stripe-Should-Retry": "true"},
            )
        return rate_limit_error()


def rate_limit_error() -> StripeError:
    # Real rate limits are not retried by Stripe's SDKs (only lock timeouts are).
    return StripeError(
        429,
        "Request rate limit exceeded. You can learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        code="rate_limit",
        headers={"Stripe-Should-Retry": "false"},
    )


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, spec: dict) -> dict:
        with self._lock:
            fault = Fault(spec, seed=len(self._faults))
            self._faults.append(fault)
            return fault.describe()

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def pick(self, line: str) -> Fault | None:
        """The first fault matching "METHOD /path" that fires this time."""
        if not self._faults:
            return None
        with self._lock:
            for fault in self._faults:
                if fault.remaining is not None and fault.remaining <= 0:
                    continue
                if not fault.regex.search(line):
                    continue
                if fault.rate < 1 and fault.rng.random() >= fault.rate:
                    continue
                fault.hits += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None


class RateLimiter:
    """Stripe's per-account request rate (25/s in test mode), over a sliding
    one-second window per secret key; 0 turns it off (the default)."""

    def __init__(self, clock=time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self.per_second = 0
        self._windows: dict[str, collections.deque] = {}

    def configure(self, per_second: int) -> None:
        with self._lock:
            self.per_second = int(per_second)
            self._windows.clear()

    def check(self, key: str) -> None:
        if not self.per_second:
            return
        now = self._clock()
        with self._lock:
            window = self._windows.setdefault(key, collections.deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self.per_second:
                raise rate_limit_error()
            window.append(now)
