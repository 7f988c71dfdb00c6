"""One request limiter for every call to Stripe, shared by all workers.

Stripe allows 25 read/write requests per second in test mode and 100 in live mode
(docs.stripe.com/rate-limits) per account; past that it answers 429. Every Celery
worker, web process and management command counts against the same budget, so the
limiter lives where they all see it:

* Redis (production): STRIPE_RATE_LIMIT_REDIS_URL, else CELERY_BROKER_URL when it is a
  Redis URL and Celery is not eager. One sorted set per platform key, read and changed
  atomically by Lua scripts that use Redis's own clock (the workers' clocks never matter).
* In-process (the embedded default: eager Celery, one process): the same in a dict under
  a lock, shared by the threads of the process.

The rule: a request may start only while fewer than N requests (N per second) have
FINISHED within the last STRIPE_RATE_LIMIT_WINDOW seconds (default 1.01) or are still in
flight. Counting from when a request finished, not when it started, is what makes the
limit hold whatever the network and server delays: Stripe counts a request somewhere
between our send and its answer, so request k+N, sent a window after request k was
answered, is always counted a full window after request k. (Counting start times, as a
plain sliding window does, let 2 % of the requests of the benchmark draw 429s whenever a
slow request bunched the next few together.) The price is the average latency per N
requests. A 429 that still gets through pauses the limiter for everyone (`pause`), then
the gateway retries.

Keys are per platform secret key (hashed: the key itself is never stored or logged).
If Redis cannot be reached the process falls back to its own limiter and logs it: a
Redis blip slows nobody down to zero, and Stripe's 429s are still honoured. A slot whose
worker died in flight expires after STRIPE_HTTP_TIMEOUT plus a margin.
"""
from __future__ import annotations

import hashlib
import logging
import math
import random
import threading
import time
import uuid

from django.conf import settings

from .types import is_live_key

log = logging.getLogger(__name__)

TEST_MODE_PER_SECOND = 25
LIVE_MODE_PER_SECOND = 100
POLL = 0.01  # seconds between looks while every slot is in flight

# KEYS: slots, pause. ARGV: window, limit, token, in-flight ttl. Returns "0" when the
# token took a slot, else the seconds to wait before asking again.
_LUA_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then return tostring(pause / 1000) end
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local ttl = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil((window + ttl) * 1000))
  return '0'
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
if oldest > now then return tostring(ARGV[5]) end
return tostring(math.max(oldest + window - now, 0.000001))
"""

# KEYS: slots. ARGV: token. The request finished now.
_LUA_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
return 1
"""

_LUA_PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
"""


class LocalLimiter:
    """The rule of the module doc for the threads of one process."""

    backend = "local"

    def __init__(self, *, limit: int, window: float, clock=time.monotonic, sleep=time.sleep):
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots: dict[str, float] = {}  # token -> finished at (inf while in flight)
        self._paused_until = 0.0

    def _try(self, token: str) -> float:
        now = self._clock()
        with self._lock:
            if self._paused_until > now:
                return self._paused_until - now
            for old in [t for t, at in self._slots.items() if at <= now - self.window]:
                del self._slots[old]
            if len(self._slots) < self.limit:
                self._slots[token] = math.inf
                return 0.0
            oldest = min(self._slots.values())
            if oldest == math.inf:
                return POLL
            # Never 0 when refused (float rounding at the window's edge): 0 means "taken".
            return max(oldest + self.window - now, 1e-6)

    def acquire(self) -> str:
        """Block until a request may start; returns the slot's token for `release`."""
        token = uuid.uuid4().hex
        while True:
            wait = self._try(token)
            if wait <= 0:
                return token
            self._sleep(wait)

    def release(self, token: str) -> None:
        with self._lock:
            if token in self._slots:
                self._slots[token] = self._clock()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


class RedisLimiter:
    """The same rule in Redis, shared by every process that uses the same URL and key."""

    backend = "redis"

    def __init__(self, *, client, key: str, limit: int, window: float, fallback: LocalLimiter,
                 in_flight_ttl: float = 60.0, sleep=time.sleep):
        self.limit = limit
        self.window = window
        self._client = client
        self._key = key
        self._pause_key = key + ":pause"
        self._ttl = in_flight_ttl
        self._fallback = fallback
        self._sleep = sleep
        self._acquire = client.register_script(_LUA_ACQUIRE)
        self._release = client.register_script(_LUA_RELEASE)
        self._pause = client.register_script(_LUA_PAUSE)

    def acquire(self) -> str:
        token = uuid.uuid4().hex
        while True:
            try:
                wait = float(self._acquire(keys=[self._key, self._pause_key],
                                           args=[self.window, self.limit, token, self._ttl, POLL]))
            except Exception as exc:  # redis.RedisError, OSError: any failure to reach it
                log.warning("Stripe rate limiter: Redis unavailable (%s); limiting in-process", type(exc).__name__)
                return "local:" + self._fallback.acquire()
            if wait <= 0:
                return token
            self._sleep(wait)

    def release(self, token: str) -> None:
        if token.startswith("local:"):
            self._fallback.release(token[len("local:"):])
            return
        try:
            self._release(keys=[self._key], args=[token])
        except Exception as exc:  # the slot then expires with its in-flight ttl
            log.warning("Stripe rate limiter: could not release in Redis (%s)", type(exc).__name__)

    def pause(self, seconds: float) -> None:
        self._fallback.pause(seconds)
        try:
            self._pause(keys=[self._pause_key], args=[max(1, int(seconds * 1000))])
        except Exception as exc:
            log.warning("Stripe rate limiter: could not pause in Redis (%s)", type(exc).__name__)


# --- configuration ------------------------------------------------------------------------

def per_second_for(secret_key: str) -> int:
    configured = getattr(settings, "STRIPE_RATE_LIMIT_PER_SECOND", 0) or 0
    if configured > 0:
        return int(configured)
    live = is_live_key(secret_key)
    return LIVE_MODE_PER_SECOND if live else TEST_MODE_PER_SECOND


def redis_url() -> str:
    explicit = getattr(settings, "STRIPE_RATE_LIMIT_REDIS_URL", "")
    if explicit:
        return explicit
    broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if broker.startswith(("redis://", "rediss://")) and not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return broker
    return ""


_limiters: dict[tuple, object] = {}
_limiters_lock = threading.Lock()


def limiter_for(*, secret_key: str):
    """The process's limiter for this platform key (made once, then reused)."""
    limit = per_second_for(secret_key)
    window = float(getattr(settings, "STRIPE_RATE_LIMIT_WINDOW", 1.01))
    url = redis_url()
    digest = hashlib.sha256(secret_key.encode()).hexdigest()[:24]
    cache_key = (url, digest, limit, window)
    with _limiters_lock:
        limiter = _limiters.get(cache_key)
        if limiter is None:
            local = LocalLimiter(limit=limit, window=window)
            limiter = local
            if url:
                import redis  # only when configured: the embedded default needs no Redis

                client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
                ttl = float(getattr(settings, "STRIPE_HTTP_TIMEOUT", 30)) + 30
                limiter = RedisLimiter(client=client, key=f"crm:stripe-rate:{digest}", limit=limit, window=window,
                                       fallback=local, in_flight_ttl=ttl)
            _limiters[cache_key] = limiter
    return limiter


def backoff_delay(attempt: int, *, base: float | None = None, cap: float | None = None) -> float:
    """Exponential backoff with jitter for retry `attempt` (0-based): a random delay in
    [d/2, d], d = min(cap, base * 2**attempt). Half-jitter keeps a floor (a 429 needs
    the window to move) while spreading workers that failed together."""
    base = getattr(settings, "STRIPE_RETRY_BASE_DELAY", 0.25) if base is None else base
    cap = getattr(settings, "STRIPE_RETRY_MAX_DELAY", 8.0) if cap is None else cap
    delay = min(cap, base * (2 ** attempt))
    return delay / 2 + random.uniform(0, delay / 2)
