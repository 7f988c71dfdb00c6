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
