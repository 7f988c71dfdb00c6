"""Settings: production settings pass `check --deploy`, refuse to start without their
secrets, and the embedded default database is SQLite in WAL mode with IMMEDIATE
transactions."""
import copy
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import OperationalError, connections, transaction

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# Variables that decide which settings load; removed from the inherited environment so
# each test states its own (an empty value also stops a local .env from filling it in).
SETTINGS_VARIABLES = ("DJANGO_DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "FIELD_ENCRYPTION_KEY", "DATABASE_URL")


def production_env(**overrides):
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    env.update(
        DJANGO_DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),  # 86 characters
        ALLOWED_HOSTS="crm.example.com",
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        # `check` does not connect unless given --database: any PostgreSQL address will do.
        DATABASE_URL="postgres://crm@db.example.invalid:5432/crm",
    )
    env.update(overrides)
    return env


def manage(env, *args):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_settings_production_passes_check_deploy():
    result = manage(production_env(), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("variable", ["SECRET_KEY", "FIELD_ENCRYPTION_KEY"])
def test_settings_production_without_secret_fails_clearly(variable):
    result = manage(production_env(**{variable: ""}), "check")

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {variable} must be set when DJANGO_DEBUG=0" in result.stderr


@pytest.fixture
def sqlite_probe(tmp_path, django_db_blocker):
    """Open extra connections configured exactly like the default database (its OPTIONS
    from settings) but on a scratch file: the test database itself is in memory."""
    default = connections["default"]
    if default.vendor != "sqlite":
        pytest.skip("DATABASE_URL points at another database; the embedded default is SQLite")
    opened = []

    def open_connection(alias, **options):
        settings_dict = copy.deepcopy(default.settings_dict)
        settings_dict["NAME"] = str(tmp_path / "probe.sqlite3")
        settings_dict["OPTIONS"].update(options)
        wrapper = type(default)(settings_dict, alias)
        opened.append(wrapper)
        return wrapper

    with django_db_blocker.unblock():
        yield open_connection
        for wrapper in opened:
            wrapper.close()


def test_settings_default_database_is_sqlite_in_wal_mode(sqlite_probe):
    probe = sqlite_probe("probe")

    with probe.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"


def test_settings_default_database_begins_immediate_transactions(sqlite_probe):
    writer = sqlite_probe("probe_writer")
    other = sqlite_probe("probe_other", timeout=0.05)

    connections["probe_writer"] = writer
    try:
        # BEGIN IMMEDIATE takes the write lock at once, before any statement: a second
        # writer must wait (here: give up after 50 ms). With DEFERRED it would get in.
        with transaction.atomic(using="probe_writer"):
            assert writer.transaction_mode == "IMMEDIATE"
            with pytest.raises(OperationalError, match="locked"), other.cursor() as cursor:
                cursor.execute("BEGIN IMMEDIATE")
    finally:
        del connections["probe_writer"]


def test_settings_production_collectstatic_hashes_every_app_file(tmp_path):
    """What `bin/serve web` runs first: the hashed, compressed storage follows every
    reference inside CSS and JS (a vendored file's sourceMappingURL included) and fails the
    whole start on one missing file, so the default path's plain storage cannot see it."""
    result = manage(production_env(STATIC_ROOT=str(tmp_path)), "collectstatic", "--noinput", "-v", "0")

    assert result.returncode == 0, result.stdout + result.stderr
    manifest = (tmp_path / "staticfiles.json").read_text()
    assert "finance/vendor/chartjs/chart.umd.min.js" in manifest
    assert "finance/dashboard.js" in manifest
