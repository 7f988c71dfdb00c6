"""Liveness and readiness: /health/ready/ and `manage.py health` are green with the
database, cache, broker and Stripe reachable, and red, naming the failing part, when one
is not (pointed at a closed port); /health/ stays green throughout."""
import json
import socket

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def ready(client):
    resp = client.get("/health/ready/", HTTP_ACCEPT="application/json")
    return resp.status_code, resp.json()


@pytest.fixture
def reachable(settings, stripe_env):
    settings.CELERY_BROKER_URL = ""  # eager: nothing to reach (the production path sets Redis below)
    return settings


def test_health_ready_green_when_everything_answers(client, reachable):
    status, body = ready(client)

    assert status == 200, body
    assert set(body) == {"Broker", "Cache backend: default", "DatabaseHeartBeatCheck", "Migrations", "Stripe"}
    assert set(body.values()) == {"working"}


def test_health_ready_red_when_stripe_unreachable(client, reachable):
    reachable.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"

    status, body = ready(client)

    assert status == 500
    assert "Stripe unreachable" in body["Stripe"]
    assert body["DatabaseHeartBeatCheck"] == "working"


def test_health_ready_red_when_broker_unreachable_and_green_again(client, reachable):
    reachable.CELERY_BROKER_URL = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"

    status, body = ready(client)

    assert status == 500
    assert body["Broker"].startswith("unavailable: broker unreachable") and "hunter2" not in body["Broker"]
    reachable.CELERY_BROKER_URL = ""
    assert ready(client)[0] == 200


def test_health_ready_red_when_cache_unreachable(client, reachable):
    reachable.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                    "LOCATION": f"redis://127.0.0.1:{closed_port()}/0"}}

    status, body = ready(client)

    assert status == 500 and body["Cache backend: default"] != "working"


def test_health_ready_red_when_database_unreachable(client, reachable, settings):
    # A second alias like the default one but at a closed PostgreSQL port; the heartbeat
    # check uses `django.db.connection`, so the default alias is swapped for the request.
    broken = {**connections["default"].settings_dict, "ENGINE": "django.db.backends.postgresql",
              "HOST": "127.0.0.1", "PORT": str(closed_port()), "NAME": "crm", "OPTIONS": {"connect_timeout": 2}}
    from django.db.utils import ConnectionHandler

    from health_check.contrib.db_heartbeat import backends

    handler = ConnectionHandler({"default": broken})
    original = backends.connection
    backends.connection = handler["default"]
    try:
        status, body = ready(client)
    finally:
        backends.connection = original
        handler["default"].close()

    assert status == 500
    assert body["DatabaseHeartBeatCheck"].startswith("unavailable: Database health check failed")


def test_health_liveness_green_while_ready_is_red(client, reachable):
    reachable.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port()}"

    resp = client.get("/health/")

    assert resp.status_code == 200 and resp.json() == {"status": "ok"}
    assert ready(client)[0] == 500


def test_health_command_prints_each_check_and_exits_1_when_red(reachable, capsys):
    call_command("health")
    out = capsys.readouterr().out
    assert "Stripe" in out and "ready" in out.splitlines()[-1]

    reachable.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    with pytest.raises(SystemExit) as exit_:
        call_command("health", "--json")
    assert exit_.value.code == 1
    body = json.loads(capsys.readouterr().out)
    assert body["Broker"].startswith("unavailable") and body["Stripe"] == "working"


def test_health_command_only_runs_the_named_checks(reachable, capsys):
    reachable.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"  # red, but not asked about

    call_command("health", "--only", "Migrations", "--only", "Stripe", "--json")

    assert json.loads(capsys.readouterr().out) == {"Migrations": "working", "Stripe": "working"}
    with pytest.raises(CommandError, match="No such check: Nope"):
        call_command("health", "--only", "Nope")
