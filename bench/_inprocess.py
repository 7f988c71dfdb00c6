"""What the in-process benchmarks share (bench/catalog_sync.py, bench/import.py): Django on
an in-memory SQLite with tables straight from the models (as the test runner makes them),
eager Celery, the Stripe sandbox in a thread (or in a forked child process) with a fresh
platform key, and a counter of every SQL statement."""
from __future__ import annotations

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


class QueryCounter:
    """Counts every SQL statement (connection.queries keeps only the last 9,000) and the
    CPU seconds its thread spent running them (the SQL itself, as Django's cursor runs
    it; thread CPU time, so waiting for the GIL, which sqlite3 releases while a statement
    runs, is not counted)."""

    def __init__(self):
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        start = time.thread_time()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.thread_time() - start


from stripe_sandbox.bench import cpu_seconds  # noqa: E402,F401 - the benches' one reading of /proc


def setup_in_memory():
    """Django on an in-memory SQLite with eager Celery, tables made from the models."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DATABASE_URL"] = "sqlite://:memory:"
    os.environ.pop("CELERY_BROKER_URL", None)  # eager: nothing leaves this process
    import django

    django.setup()
    from django.conf import settings
    from django.test.utils import setup_databases

    class _NoMigrations(dict):
        def __contains__(self, item):
            return True

        def __getitem__(self, item):
            return None

    settings.MIGRATION_MODULES = _NoMigrations()
    setup_databases(verbosity=0, interactive=False)


def _point_app_at(base: str, *, secret_key: str, rate_per_second: int) -> None:
    from django.conf import settings

    settings.STRIPE_SECRET_KEY = secret_key
    settings.STRIPE_CONNECT_CLIENT_ID = "ca_bench"
    settings.STRIPE_API_BASE = settings.STRIPE_CONNECT_BASE = base
    settings.STRIPE_RATE_LIMIT_PER_SECOND = rate_per_second


def new_platform_key() -> str:
    return "sk_test_bench" + os.urandom(6).hex()


def sandbox_platform(*, rate_per_second: int):
    """The sandbox in a thread, the app pointed at it with a fresh platform key and the
    gateway's rate limit; returns (server, base URL)."""
    from stripe_sandbox import start_in_thread

    server, base = start_in_thread()
    _point_app_at(base, secret_key=new_platform_key(), rate_per_second=rate_per_second)
    return server, base


def _serve(server) -> None:
    server.sandbox.start()  # webhook workers: started in the child, after the fork
    server.serve_forever(0.1)


def sandbox_in_child(sandbox, *, secret_key: str, rate_per_second: int):
    """Serve `sandbox` (a Sandbox not yet started, filled in this process) from a forked
    child process, its own CPU and GIL, with the state as it is now; point the app at it.
    Returns (process, base URL); `process.terminate()` ends it. Later changes to
    `sandbox` in this process are not seen by the child."""
    import multiprocessing

    from stripe_sandbox.server import SandboxServer

    server = SandboxServer(("127.0.0.1", 0), sandbox)  # bound here: the URL is known before the fork
    process = multiprocessing.get_context("fork").Process(target=_serve, args=(server,), name="stripe-sandbox",
                                                           daemon=True)
    process.start()
    server.socket.close()  # only the child accepts
    _point_app_at(server.base_url, secret_key=secret_key, rate_per_second=rate_per_second)
    return process, server.base_url
