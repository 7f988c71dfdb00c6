"""`celery_worker`: a real Celery worker in its own process, for tests marked `worker`.

Such a test runs the production path: `.delay()` publishes to the broker and a separate
worker process, with its own database connection, runs the task. So the test must be
`django_db(transaction=True)` (the worker only sees committed rows) and should poll the
database with `celery_worker.wait_for(...)`.

- No CELERY_BROKER_URL (the default, eager Celery): the test is skipped.
- CELERY_BROKER_URL set: never skipped. An unreachable broker, a test database that
  another process cannot open (in-memory SQLite) or a worker that does not start fails.

The worker gets this process's environment with DATABASE_URL pointing at the TEST
database pytest-django created, the same broker, and only this run's queue
(CELERY_TASK_DEFAULT_QUEUE, unique per run in .ci/run; under pytest-xdist each process adds
its own suffix, since each has its own test database). Stale messages left in the queue
by earlier tests are purged first. It is stopped after the test; its log is printed if
the test failed.
"""
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

__all__ = ["celery_worker", "celery_eager_except_worker_tests"]

BASE_DIR = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 30  # seconds; a start takes 2-5 s here (more on a busy machine)
STOP_TIMEOUT = 15


class WorkerHandle:
    def __init__(self, process: subprocess.Popen, log_path: Path, queue: str):
        self.process = process
        self.log_path = log_path
        self.queue = queue

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, predicate, *, timeout: float = 20, interval: float = 0.2, what: str = "the worker"):
        """Call `predicate()` until it returns a truthy value (returned) or fail after
        `timeout` seconds, with the worker's log in the failure message."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if self.process.poll() is not None:
                pytest.fail(f"The Celery worker exited (code {self.process.returncode}) while waiting "
                            f"for {what}.\n--- worker log ---\n{self.log()}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"Timed out after {timeout}s waiting for {what}.\n--- worker log ---\n{self.log()}",
                            pytrace=False)
            time.sleep(interval)


def _test_database_url() -> str:
    """DATABASE_URL of the test database (its name comes from the live connection)."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        if connection.creation.is_in_memory_db(name):
            pytest.fail("Worker tests need a test database that another process can open; this one is "
                        "in-memory SQLite. Set DATABASE_URL to PostgreSQL (as .ci/run does).", pytrace=False)
        return f"sqlite:///{name}"
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        pytest.fail("Worker tests on a non-SQLite database need DATABASE_URL in the environment.", pytrace=False)
    # Keep scheme, credentials, host and options; swap only the database name.
    return urlunsplit(urlsplit(url)._replace(path="/" + quote(name, safe="")))


def _use_queue(app, queue: str) -> str:
    """Point the producer side of `app` at `queue`; returns the previous name."""
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    # Celery caches its queues, router and default exchange on app.amqp: rebuild it.
    app.__dict__.pop("amqp", None)
    return previous


@contextmanager
def _queue_of_this_process(app):
    """The configured queue; under pytest-xdist one per process (each has its own test
    database, so a worker must never take another process's task)."""
    xdist_worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not xdist_worker:
        yield app.conf.task_default_queue
        return
    previous = _use_queue(app, f"{app.conf.task_default_queue}.{xdist_worker}")
    try:
        yield app.conf.task_default_queue
    finally:
        _use_queue(app, previous)


def _check_broker_and_purge(app, queue: str) -> None:
    error = None
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=2, interval_start=0.2, interval_step=0.5, timeout=5)
            conn.default_channel.queue_purge(queue)
    except Exception as exc:  # any kombu/redis/socket error: report it, fail below
        error = exc
    if error is not None:
        pytest.fail(f"CELERY_BROKER_URL is set but the broker is unreachable: {error!r}", pytrace=False)


def _print_log_uncaptured(request, text: str) -> None:
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            sys.stderr.write(text)
            sys.stderr.flush()
    else:
        sys.stderr.write(text)


@pytest.fixture
def celery_worker(request, django_db_setup, tmp_path):
    from django.conf import settings

    from config.celery import app

    if not settings.CELERY_BROKER_URL:
        pytest.skip("needs CELERY_BROKER_URL (a real broker and worker; .ci/run sets it on the production path)")

    database_url = _test_database_url()
    with _queue_of_this_process(app) as queue:
        _check_broker_and_purge(app, queue)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "PYTHONUNBUFFERED": "1",
        }
        cmd = [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "--pool=solo", "--concurrency=1", "-Q", queue, "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-n", f"pytest-{uuid.uuid4().hex[:8]}@%h",
        ]
        log_path = tmp_path / "celery-worker.log"
        failed_before = request.session.testsfailed
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(cmd, cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL,
                                       stdout=log_file, stderr=subprocess.STDOUT)
        worker = WorkerHandle(process, log_path, queue)
        try:
            # "<node> ready." is logged once the consumer listens on the queue.
            worker.wait_for(lambda: " ready." in worker.log(), timeout=READY_TIMEOUT,
                            what="the worker to be ready")
            yield worker
        finally:
            process.terminate()  # SIGTERM = warm shutdown: finish the current task, then exit
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if request.session.testsfailed > failed_before:
                _print_log_uncaptured(
                    request, f"\n--- celery worker log ({request.node.nodeid}) ---\n{worker.log()}\n")


@pytest.fixture(autouse=True)
def celery_eager_except_worker_tests(request):
    """On the production path (CELERY_BROKER_URL set, so Celery is not eager) only
    `worker` tests use the broker: every other test runs its tasks in-process, as on the
    default path, instead of leaving them in a queue that no worker reads."""
    if request.node.get_closest_marker("worker"):
        yield
        return
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous
