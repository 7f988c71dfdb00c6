"""`python manage.py stripe_periodic [--once] [--tick 5]`: Celery beat for the embedded
default.

Without a broker (`CELERY_BROKER_URL` unset) tasks run eagerly inside the request and no
beat runs, so nothing would sweep failed invoice pushes, retry parked webhook deliveries,
catch up on events or start the imports queued on connect. This command runs the tasks of `CELERY_BEAT_SCHEDULE` (the same
entries beat runs in production) on their own schedules, in this process, each in its own
thread (a lane): a task still running when it falls due again is not started a second
time, and a long one (the import sweep importing a big account) holds up none of the
others, as separate Celery workers would not. `bin/run` starts it beside the server and
stops it with the server. With a broker,
run `celery -A config beat` and a worker instead (this command runs each scheduled task
in its own process, while what those tasks queue goes to the broker).

It keeps the same rows beat keeps (django-celery-beat's Periodic tasks, written from
`CELERY_BEAT_SCHEDULE` at start): a task the operator paused in the admin is skipped and
one re-timed there runs on its new interval, and each run moves the row's last run and
run count, as beat's do.

--once runs every enabled entry once, one after the other in this thread, and exits
(what the tests and cron-like use need). A task that raises is logged and does not stop
the loop or the other tasks.
"""
import logging
import threading
import time
from datetime import datetime, timezone as dt_timezone

from celery.schedules import maybe_schedule
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

log = logging.getLogger(__name__)


def _tasks():
    from config.celery import app

    app.loader.import_default_modules()  # autodiscovery: every app's tasks module
    out = []
    for name, entry in sorted(settings.CELERY_BEAT_SCHEDULE.items()):
        task = app.tasks.get(entry["task"])
        if task is None:
            raise CommandError(f"Beat entry {name!r} names an unknown task {entry['task']!r}.")
        out.append((name, task, tuple(entry.get("args", ())), dict(entry.get("kwargs", {})), entry["schedule"]))
    return out


def _write_rows():
    """The schedule's Periodic task rows, made when missing, by name as beat makes them
    (a row paused or re-timed in the admin is left as it is). Not through beat's
    DatabaseScheduler: it closes the database connection it finds inside a transaction."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        every = maybe_schedule(entry["schedule"]).run_every  # seconds or a timedelta, as beat reads it
        interval, _ = IntervalSchedule.objects.get_or_create(every=int(every.total_seconds()),
                                                             period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": entry["task"], "interval": interval})


def _database_rows():
    from django_celery_beat.models import PeriodicTask

    return {row.name: row for row in PeriodicTask.objects.filter(name__in=settings.CELERY_BEAT_SCHEDULE)
            .select_related("interval", "crontab", "solar", "clocked")}


def _mark_run(row):
    from django.db.models import F
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(pk=row.pk).update(last_run_at=timezone.now(), total_run_count=F("total_run_count") + 1)


class Lanes:
    """One thread per scheduled task. `run(name, fn)` starts `fn` in the task's lane unless
    its previous run is still going (then returns False: the task is not started twice).
    Each lane closes its database connections when its run ends."""

    def __init__(self):
        self._threads: dict[str, threading.Thread] = {}

    def busy(self, name: str) -> bool:
        thread = self._threads.get(name)
        return thread is not None and thread.is_alive()

    def run(self, name: str, fn) -> bool:
        if self.busy(name):
            return False
        thread = threading.Thread(target=self._run, args=(fn,), name=f"periodic-{name}", daemon=True)
        self._threads[name] = thread
        thread.start()
        return True

    @staticmethod
    def _run(fn) -> None:
        from django.db import connections

        try:
            fn()
        finally:
            connections.close_all()

    def join(self, timeout: float | None = None) -> None:
        for thread in list(self._threads.values()):
            thread.join(timeout)


class Command(BaseCommand):
    help = "Run the Celery beat schedule's tasks in this process (the embedded default has no beat)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run every scheduled task once, then exit.")
        parser.add_argument("--tick", type=float, default=5.0, help="Seconds between checks of the schedule.")

    def handle(self, *args, once=False, tick=5.0, **options):
        if tick <= 0:
            raise CommandError("--tick must be positive.")
        entries = _tasks()
        _write_rows()
        last_run: dict[str, datetime] = {}
        lanes = None if once else Lanes()
        while True:
            self.tick(entries, last_run, lanes)
            if once:
                return
            time.sleep(tick)

    def tick(self, entries, last_run: dict[str, datetime], lanes: Lanes | None) -> None:
        """Start every enabled task that is due: in its lane, or here one after the other
        when `lanes` is None. A task whose lane is still busy waits for a later tick."""
        rows = _database_rows()  # each tick: a pause or a new interval takes effect
        for name, task, task_args, task_kwargs, default_schedule in entries:
            row = rows.get(name)
            if row is not None and not row.enabled:
                continue
            if lanes is not None and lanes.busy(name):
                continue
            schedule = maybe_schedule(row.schedule if row is not None else default_schedule)
            previous = last_run.get(name)
            if previous is not None and not schedule.is_due(previous).is_due:
                continue
            last_run[name] = datetime.now(dt_timezone.utc)
            if row is not None:
                _mark_run(row)

            def apply(name=name, task=task, task_args=task_args, task_kwargs=task_kwargs):
                try:
                    task.apply(args=task_args, kwargs=task_kwargs, throw=True)
                except Exception:  # noqa: BLE001 - one failing task must not stop the others
                    log.exception("Periodic task %s failed", name)
                    self.stderr.write(f"{name}: failed (logged)")
                else:
                    self.stdout.write(f"{name}: ran")

            if lanes is None:
                apply()
            else:
                lanes.run(name, apply)
