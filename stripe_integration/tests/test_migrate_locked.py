"""`manage.py migrate_locked`: on PostgreSQL the second of two concurrent runs waits for the
first's advisory lock; MIGRATE_EXCEPT leaves an app's migrations out."""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, connections

from stripe_integration.management.commands.migrate_locked import LOCK_KEY

BASE_DIR = Path(__file__).resolve().parent.parent.parent


@pytest.mark.django_db(transaction=True)
def test_migrate_locked_waits_for_the_lock_another_host_holds(settings):
    if connection.vendor != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's")
    settings.MIGRATE_EXCEPT = []
    other = connections.create_connection("default")  # "another host"
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
    done = threading.Event()

    def run():
        try:
            call_command("migrate_locked", "--noinput", "--plan", verbosity=0)
        finally:
            connections.close_all()
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert not done.wait(2), "migrate_locked ran while another host held the lock"
    finally:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        other.close()
    assert done.wait(60)
    thread.join()


def test_migrate_locked_leaves_out_the_apps_in_migrate_except_and_ready_agrees(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "MIGRATE_EXCEPT": "django_celery_beat"}
    env.pop("CELERY_BROKER_URL", None)

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True,
                              text=True, timeout=300)

    assert manage("migrate_locked", "--noinput").returncode == 0
    shown = manage("showmigrations", "crm", "django_celery_beat").stdout
    assert "[X] 0001_initial" in shown.split("django_celery_beat")[0] and "[X]" not in shown.split("django_celery_beat")[1]
    health = json.loads(manage("health", "--json").stdout)
    assert health["Migrations"] == "working"

    env["MIGRATE_EXCEPT"] = ""  # production: django_celery_beat's migrations are owed
    health = json.loads(manage("health", "--json").stdout)
    assert health["Migrations"].startswith("unavailable:") and "django_celery_beat" in health["Migrations"]
