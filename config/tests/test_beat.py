"""Celery beat keeps its schedule in the database (django-celery-beat): starting the
scheduler writes CELERY_BEAT_SCHEDULE as periodic tasks an operator can pause."""
import pytest
from django.conf import settings
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from config.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


def test_beat_writes_the_schedule_as_periodic_tasks():
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"

    DatabaseScheduler(app=app)

    tasks = {t.name: t for t in PeriodicTask.objects.all()}
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert tasks[name].task == entry["task"] and tasks[name].enabled
        assert tasks[name].interval.every == int(entry["schedule"]) and tasks[name].interval.period == "seconds"


def test_beat_leaves_a_paused_task_paused_at_restart():
    DatabaseScheduler(app=app)
    PeriodicTask.objects.filter(name="stripe-catch-up").update(enabled=False)

    scheduler = DatabaseScheduler(app=app)  # beat restarted

    assert not PeriodicTask.objects.get(name="stripe-catch-up").enabled
    assert "stripe-catch-up" not in scheduler.schedule and "stripe-webhook-retry" in scheduler.schedule


def test_stripe_periodic_skips_a_task_paused_in_the_admin_and_counts_the_others(settings):
    """The embedded default's beat (`manage.py stripe_periodic`) keeps beat's rows: a pause
    made in the admin holds under `make run` too, and each run shows as the row's last run."""
    from io import StringIO

    from django.core.management import call_command

    settings.CELERY_BEAT_SCHEDULE = {
        "stripe-webhook-retry": settings.CELERY_BEAT_SCHEDULE["stripe-webhook-retry"],
        "stripe-catch-up": settings.CELERY_BEAT_SCHEDULE["stripe-catch-up"],
    }
    DatabaseScheduler(app=app)
    PeriodicTask.objects.filter(name="stripe-catch-up").update(enabled=False)

    out = StringIO()
    call_command("stripe_periodic", once=True, stdout=out)

    assert "stripe-webhook-retry: ran" in out.getvalue()
    assert "stripe-catch-up" not in out.getvalue()
    ran = PeriodicTask.objects.get(name="stripe-webhook-retry")
    paused = PeriodicTask.objects.get(name="stripe-catch-up")
    assert ran.total_run_count == 1 and ran.last_run_at is not None
    assert paused.total_run_count == 0 and not paused.enabled


@pytest.mark.parametrize("role", ["finance_a", "owner_a"])
def test_admin_periodic_tasks_are_visible_to_finance_but_not_changeable(client, request, role):
    from django.urls import reverse

    DatabaseScheduler(app=app)
    task = PeriodicTask.objects.get(name="stripe-catch-up")
    client.force_login(request.getfixturevalue(role))

    listing = client.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    assert listing.status_code == 200 and "stripe-catch-up" in listing.content.decode()
    # Read-only: the pause would stop every business's catch-up, the operator's act.
    response = client.post(reverse("admin:django_celery_beat_periodictask_changelist"),
                           {"action": "disable_tasks", "_selected_action": [task.pk]})
    task.refresh_from_db()
    assert task.enabled
    change = client.post(reverse("admin:django_celery_beat_periodictask_change", args=[task.pk]),
                         {"name": task.name, "task": task.task, "enabled": ""})
    task.refresh_from_db()
    assert task.enabled and change.status_code in (200, 403)
    assert response.status_code in (200, 302)


def test_admin_periodic_tasks_are_not_for_the_staff_role(client, staff_a):
    from django.urls import reverse

    staff_a.is_staff = True
    staff_a.save()
    client.force_login(staff_a)
    assert client.get(reverse("admin:django_celery_beat_periodictask_changelist")).status_code == 403


def test_admin_superuser_pauses_a_periodic_task(client, django_user_model):
    from django.urls import reverse

    DatabaseScheduler(app=app)
    task = PeriodicTask.objects.get(name="stripe-catch-up")
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    client.post(reverse("admin:django_celery_beat_periodictask_changelist"),
                {"action": "disable_tasks", "_selected_action": [task.pk]})
    task.refresh_from_db()
    assert not task.enabled


class _Task:
    """Stands for a Celery task in the periodic runner's schedule: counts its runs; a
    `gate` makes a run wait until the test opens it (a long import, say)."""

    def __init__(self, gate=None):
        import threading

        self.gate = gate
        self.runs = 0
        self.ran = threading.Event()

    def apply(self, args=(), kwargs=None, throw=False):
        self.runs += 1
        self.ran.set()
        if self.gate is not None:
            assert self.gate.wait(30), "the test never opened the gate"


def test_stripe_periodic_runs_each_task_in_its_own_lane_so_a_long_one_holds_up_no_other():
    """Under `make run` the import sweep can run for minutes (a big account): the other
    tasks (push sweep, webhook retries, catch-up) keep their schedules meanwhile, and the
    long task is not started a second time while it still runs."""
    import threading
    from io import StringIO

    from stripe_integration.management.commands.stripe_periodic import Command, Lanes

    gate = threading.Event()
    slow, quick = _Task(gate), _Task()
    every_tick = 0  # seconds: due at every tick
    entries = [("slow", slow, (), {}, every_tick), ("quick", quick, (), {}, every_tick)]
    command, lanes, last_run = Command(stdout=StringIO(), stderr=StringIO()), Lanes(), {}
    try:
        command.tick(entries, last_run, lanes)
        assert slow.ran.wait(10) and quick.ran.wait(10)
        _wait_idle(lanes, "quick")
        quick.ran.clear()

        command.tick(entries, last_run, lanes)  # slow is still running
        assert quick.ran.wait(10)
        _wait_idle(lanes, "quick")

        assert quick.runs == 2 and slow.runs == 1 and lanes.busy("slow")
    finally:
        gate.set()
        lanes.join(10)
    assert not lanes.busy("slow")
    command.tick(entries, last_run, lanes)  # its lane is free again
    lanes.join(10)
    assert slow.runs == 2 and quick.runs == 3


def _wait_idle(lanes, name):
    import time

    deadline = time.monotonic() + 10
    while lanes.busy(name):
        assert time.monotonic() < deadline, f"{name} never finished"
        time.sleep(0.01)
