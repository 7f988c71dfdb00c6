"""Celery app. With no CELERY_BROKER_URL the tasks run eagerly in-process (settings)."""
import os

from celery import Celery

from config.logs import attach_to_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task log lines carry the task id and name (config/logs.py).
attach_to_celery()
