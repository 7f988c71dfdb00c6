"""`python manage.py stripe_periodic [--once] [--tick 5]`: Celery beat for the embedded
default.

Without a broker (`CELERY_BROKER_URL` unset) tasks run eagerly inside the request and no
beat runs, so nothing would sweep failed invoice pushes, retry parked webhook deliveries
or catch up on events. This command runs the tasks of `CELERY_BEAT_SCHEDULE` (the same
entries beat runs in production) on their own schedules, in this process, one after the
other: `bin/run` starts it beside the server and stops it with the server. With a broker,
run `celery -A config beat` and a worker instead (this command runs each scheduled task
in its own process, while what those tasks queue goes to the broker).

--once runs every entry once and exits (what the tests and cron-like use need).
A task that raises is logged and does not stop the loop.
"""
import logging
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
        out.append((name, task, maybe_schedule(entry["schedule"]), tuple(entry.get("args", ())),
                    dict(entry.get("kwargs", {}))))
    return out


class Command(BaseCommand):
    help = "Run the Celery beat schedule's tasks in this process (the embedded default has no beat)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run every scheduled task once, then exit.")
        parser.add_argument("--tick", type=float, default=5.0, help="Seconds between checks of the schedule.")

    def handle(self, *args, once=False, tick=5.0, **options):
        if tick <= 0:
            raise CommandError("--tick must be positive.")
        entries = _tasks()
        last_run: dict[str, datetime] = {}
        while True:
            for name, task, schedule, task_args, task_kwargs in entries:
                previous = last_run.get(name)
                if previous is not None and not schedule.is_due(previous).is_due:
                    continue
                last_run[name] = datetime.now(dt_timezone.utc)
                try:
                    task.apply(args=task_args, kwargs=task_kwargs, throw=True)
                except Exception:  # noqa: BLE001 - one failing task must not stop the others
                    log.exception("Periodic task %s failed", name)
                    self.stderr.write(f"{name}: failed (logged)")
                else:
                    self.stdout.write(f"{name}: ran")
            if once:
                return
            time.sleep(tick)
