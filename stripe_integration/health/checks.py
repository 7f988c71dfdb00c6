"""The broker, migrations and Stripe checks (see the package docstring)."""
from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from health_check.backends import BaseHealthCheckBackend
from health_check.exceptions import ServiceUnavailable

from stripe_integration.gateway import client as gateway

# A readiness probe must answer before the load balancer gives up on it (a few seconds).
PROBE_TIMEOUT = 3.0


class BrokerCheck(BaseHealthCheckBackend):
    """Connects to CELERY_BROKER_URL. Without a broker tasks run in-process (the embedded
    default): nothing to reach, reported as working."""

    def identifier(self):
        return "Broker"

    def check_status(self):
        url = settings.CELERY_BROKER_URL
        if not url:
            return
        from kombu import Connection

        try:
            with Connection(url, connect_timeout=PROBE_TIMEOUT,
                            transport_options={"socket_timeout": PROBE_TIMEOUT}) as conn:
                conn.ensure_connection(max_retries=0, timeout=PROBE_TIMEOUT)
        except Exception as exc:
            # The URL may carry a password: only the error's class and the host are shown.
            raise ServiceUnavailable(f"broker unreachable ({type(exc).__name__})") from None


class StripeCheck(BaseHealthCheckBackend):
    """One call with the platform key (GET /v1/account), no retries, short timeout."""

    def identifier(self):
        return "Stripe"

    def check_status(self):
        from stripe_integration.connect import modes

        configured = modes.configured_modes()
        if not configured:
            raise ServiceUnavailable("STRIPE_SECRET_KEY is not set")
        for livemode in configured:  # each mode's key (test and live side by side)
            try:
                gw = gateway.Gateway(secret_key=modes.secret_key(livemode), api_base=settings.STRIPE_API_BASE,
                                     connect_base=settings.STRIPE_CONNECT_BASE, timeout=PROBE_TIMEOUT, max_retries=0)
                gw.platform_account_id()
            except gateway.GatewayError as exc:
                raise ServiceUnavailable(f"Stripe unreachable with the platform's {modes.mode_name(livemode)}-mode key "
                                         f"({type(exc).__name__})") from None


class MigrationsCheck(BaseHealthCheckBackend):
    """Every migration applied (MIGRATE_EXCEPT aside, with what depends on it)."""

    def identifier(self):
        return "Migrations"

    def check_status(self):
        try:
            executor = MigrationExecutor(connections["default"])
            leaves = [n for n in executor.loader.graph.leaf_nodes() if n[0] not in settings.MIGRATE_EXCEPT]
            plan = executor.migration_plan(leaves)
        except DatabaseError:
            raise ServiceUnavailable("database not reachable") from None
        if plan:
            raise ServiceUnavailable(f"{len(plan)} migration(s) to apply, e.g. {plan[0][0]}")


def register() -> None:
    from health_check.plugins import plugin_dir

    plugin_dir.register(BrokerCheck)
    plugin_dir.register(MigrationsCheck)
    plugin_dir.register(StripeCheck)
