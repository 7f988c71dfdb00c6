"""One limiter for every Stripe call (in-process, or Redis shared by all workers), and the
gateway's own retries: 429 / lock_timeout / Stripe-Should-Retry / connection errors, with
backoff and jitter and the same idempotency key; the OAuth exchange never retried."""
import time
import uuid

import pytest

from stripe_integration.gateway import ratelimit
from stripe_integration.gateway.client import Gateway, GatewayError, StripeUnavailable
from stripe_integration.tests import invoicing_helpers as h
from stripe_integration.gateway.types import LIVE_KEY_PREFIXES


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def _call(limiter, clock, latency=0.0):
    """One request: take a slot, spend `latency`, release it; returns the start time."""
    token = limiter.acquire()
    started = clock.now
    clock.now += latency
    limiter.release(token)
    return started


def test_local_limiter_lets_limit_through_per_window_then_waits():
    clock = FakeClock()
    limiter = ratelimit.LocalLimiter(limit=25, window=1.0, clock=clock, sleep=clock.sleep)
    starts = [_call(limiter, clock) for _ in range(25)]
    assert starts == [100.0] * 25
    assert _call(limiter, clock) == pytest.approx(101.0)  # the 26th waits for the window
    starts += [101.0] + [_call(limiter, clock) for _ in range(49)]
    # Never more than 25 starts in any window.
    assert all(starts[i + 25] - starts[i] >= 1.0 - 1e-9 for i in range(len(starts) - 25))


def test_local_limiter_counts_the_window_from_the_answer():
    """Slow answers push the next starts back: Stripe counts a request anywhere between
    our send and its answer, so 26 requests can never be counted within one second."""
    clock = FakeClock()
    limiter = ratelimit.LocalLimiter(limit=5, window=1.0, clock=clock, sleep=clock.sleep)
    starts = [_call(limiter, clock, latency=0.2) for _ in range(6)]
    # Five requests of 0.2 s, answered at 100.2 ... 101.0: the sixth starts a window after the
    # first ANSWER (101.2), not after the first start (101.0, which a start-time window allows).
    assert starts == pytest.approx([100.0, 100.2, 100.4, 100.6, 100.8, 101.2])


def test_local_limiter_waits_while_every_slot_is_in_flight():
    clock = FakeClock()
    limiter = ratelimit.LocalLimiter(limit=2, window=1.0, clock=clock, sleep=clock.sleep)
    first, second = limiter.acquire(), limiter.acquire()
    polls = []

    def sleep(seconds):  # the third asks again until a slot is answered, then a window more
        polls.append(seconds)
        clock.now += seconds
        if len(polls) == 3:
            limiter.release(first)

    limiter._sleep = sleep
    limiter.acquire()
    assert polls[:3] == [ratelimit.POLL] * 3 and sum(polls[3:]) == pytest.approx(1.0)


def test_local_limiter_pause_holds_everyone():
    clock = FakeClock()
    limiter = ratelimit.LocalLimiter(limit=25, window=1.0, clock=clock, sleep=clock.sleep)
    limiter.pause(2.5)
    assert _call(limiter, clock) == pytest.approx(102.5)


def test_backoff_grows_with_jitter_and_a_cap():
    delays = [ratelimit.backoff_delay(n, base=0.5, cap=4) for n in range(6)]
    for n, d in enumerate(delays):
        top = min(4, 0.5 * 2 ** n)
        assert top / 2 <= d <= top
    assert len({ratelimit.backoff_delay(3, base=0.5, cap=4) for _ in range(20)}) > 1  # jitter


def _redis_or_skip(url="redis://127.0.0.1:6379/15"):
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except Exception:
        pytest.skip(f"no Redis at {url} (CI's production path has one)")
    return client


def test_redis_limiter_is_shared_between_processes():
    client = _redis_or_skip()
    key = f"crm:test-rate:{uuid.uuid4().hex}"
    # Two limiters on one key = two worker processes.
    a, b = (ratelimit.RedisLimiter(client=client, key=key, limit=6, window=0.4,
                                   fallback=ratelimit.LocalLimiter(limit=6, window=0.4)) for _ in range(2))
    started = time.monotonic()
    tokens = [(a if i % 2 else b).acquire() for i in range(6)]
    assert time.monotonic() - started < 0.3
    for i, token in enumerate(tokens):
        (a if i % 2 else b).release(token)
    released = time.monotonic()
    b.release(b.acquire())  # the 7th, from either process, waits a window after the answers
    assert time.monotonic() - released >= 0.35
    a.pause(0.3)
    paused = time.monotonic()
    a.release(b.acquire())
    assert time.monotonic() - paused >= 0.25
    client.delete(key, key + ":pause")


def test_redis_limiter_falls_back_in_process_when_redis_is_down():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=0.2, socket_connect_timeout=0.2)
    limiter = ratelimit.RedisLimiter(client=client, key="crm:test-rate:down", limit=2, window=1.0,
                                     fallback=ratelimit.LocalLimiter(limit=2, window=1.0))
    token = limiter.acquire()
    assert token.startswith("local:")
    limiter.release(token)


def test_limiter_backend_follows_the_settings(settings):
    settings.STRIPE_RATE_LIMIT_REDIS_URL = ""
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert ratelimit.redis_url() == ""  # eager: one process, in-process limiter
    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert ratelimit.redis_url() == "redis://127.0.0.1:6379/0"
    settings.STRIPE_RATE_LIMIT_REDIS_URL = "redis://other:6379/3"
    assert ratelimit.redis_url() == "redis://other:6379/3"
    settings.STRIPE_RATE_LIMIT_PER_SECOND = 0
    assert ratelimit.per_second_for("sk_test_x") == 25 and ratelimit.per_second_for(LIVE_KEY_PREFIXES[0] + "x") == 100
    settings.STRIPE_RATE_LIMIT_PER_SECOND = 7
    assert ratelimit.per_second_for(LIVE_KEY_PREFIXES[0] + "x") == 7


@pytest.fixture
def sandbox_rate_limit(stripe_env):
    stripe_env._call("POST", "/_sandbox/rate_limit", {"per_second": 25})
    yield stripe_env
    stripe_env._call("POST", "/_sandbox/rate_limit", {"per_second": 0})


@pytest.mark.django_db
def test_limiter_keeps_a_burst_under_stripes_rate_limit(client, finance_a, business_a, sandbox_rate_limit, settings):
    conn = h.connect(client, finance_a, business_a)
    stripe_env = sandbox_rate_limit
    stripe_env.mark()
    gw, started = Gateway.from_settings(), time.monotonic()
    for _ in range(60):
        gw.account_retrieve(account=conn.stripe_user_id)
    rows = stripe_env.requests(path="/v1/account")
    assert len(rows) == 60 and {r["status"] for r in rows} == {200}
    assert time.monotonic() - started >= 1.5  # 60 calls at 25 per 1.05 s: two full windows


@pytest.mark.django_db
def test_gateway_honours_429_with_backoff_when_limiter_allows_too_much(client, finance_a, business_a,
                                                                       sandbox_rate_limit, settings):
    conn = h.connect(client, finance_a, business_a)
    stripe_env = sandbox_rate_limit
    settings.STRIPE_RATE_LIMIT_PER_SECOND = 1000  # a misconfigured limiter: Stripe's 429 is the last word
    settings.STRIPE_RETRY_BASE_DELAY = 0.2
    stripe_env.mark()
    gw = Gateway.from_settings()
    for _ in range(40):
        gw.account_retrieve(account=conn.stripe_user_id)  # every call ends well
    statuses = [r["status"] for r in stripe_env.requests(path="/v1/account")]
    assert statuses.count(200) == 40 and statuses.count(429) >= 1


@pytest.mark.django_db
def test_gateway_gives_up_after_max_retries_with_a_clear_error(client, finance_a, business_a, stripe_env, settings):
    conn = h.connect(client, finance_a, business_a)
    settings.STRIPE_RETRY_BASE_DELAY = 0.001
    settings.STRIPE_MAX_RETRIES = 3
    stripe_env.fault(r"^GET /v1/account$", kind="500")
    stripe_env.mark()
    with pytest.raises(StripeUnavailable):
        Gateway.from_settings().account_retrieve(account=conn.stripe_user_id)
    assert len(stripe_env.requests(path="/v1/account")) == 4  # the call and 3 retries


@pytest.mark.django_db
def test_write_without_key_gets_one_key_for_all_its_retries(client, finance_a, business_a, stripe_env, settings):
    conn = h.connect(client, finance_a, business_a)
    settings.STRIPE_RETRY_BASE_DELAY = 0.001
    stripe_env.fault(r"^POST /v1/customers$", kind="drop", count=1)
    stripe_env.mark()
    gw = Gateway.from_settings()
    gw._call(gw._client.v1.customers.create, params={"name": "Once"}, options=gw._options(conn.stripe_user_id))
    calls = stripe_env.requests(method="POST", path="/v1/customers")
    assert len(calls) == 2 and calls[0]["idempotency_key"] == calls[1]["idempotency_key"] and calls[1]["replayed"]


@pytest.mark.django_db
def test_oauth_code_exchange_is_never_retried(stripe_env, settings):
    settings.STRIPE_RETRY_BASE_DELAY = 0.001
    stripe_env.fault(r"^POST /oauth/token$", kind="500")
    with pytest.raises(GatewayError):
        Gateway.from_settings().oauth_exchange_code(code="ac_whatever")
    assert len(stripe_env.requests(method="POST", path="/oauth/token")) == 1
