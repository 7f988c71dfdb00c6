"""Runs and events of the Stripe integration (issue 15, m3ter's "integration runs").

An `IntegrationRun` is one Stripe-facing job for one business (a catalog sync, an invoice
push, a catch-up, a batch of webhook deliveries, an import, a payout sync): its status,
timings, counts, the Stripe request ids it caused and a short log. Each failure is an
`IntegrationEvent` of a kind, with what to do about it and an "actioned" mark set by
whoever resolved it. Written only through `stripe_integration.runs` (`track_run`).
"""
from django.conf import settings
from django.db import models

from crm.models import BusinessOwned

LOG_MAX_CHARS = 20_000  # a run's log keeps its first lines up to this size, then says it stopped
REQUEST_IDS_MAX = 500  # Stripe request ids kept per run (a whole-catalog sync makes hundreds)


class RunKind(models.TextChoices):
    CATALOG_SYNC = "catalog_sync", "Catalog sync"
    INVOICE_PUSH = "invoice_push", "Invoice push"
    IMPORT = "import", "Import"
    CATCH_UP = "catch_up", "Catch-up"
    WEBHOOK_PROCESSING = "webhook_processing", "Webhook processing"
    PAYOUT_SYNC = "payout_sync", "Payout sync"


class RunStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    STARTED = "started", "Started"
    COMPLETE = "complete", "Complete"
    ERROR = "error", "Error"
    AWAITING_RETRY = "awaiting_retry", "Awaiting retry"
    AUTH_FAILED = "auth_failed", "Authentication failed"
    RATE_LIMITED = "rate_limited", "Rate limited"
    DISABLED = "disabled", "Disabled (not run)"
    TIMED_OUT = "timed_out", "Timed out"


# The statuses that count towards auto-disable's streak; COMPLETE ends a streak; the others
# (waiting, started, awaiting retry, disabled) leave it as it is.
FAILED_RUN_STATUSES = frozenset({RunStatus.ERROR, RunStatus.AUTH_FAILED, RunStatus.RATE_LIMITED, RunStatus.TIMED_OUT})
FINISHED_RUN_STATUSES = frozenset(set(RunStatus) - {RunStatus.WAITING, RunStatus.STARTED})
# A run moves forward only: waiting -> started -> one finished status.
RUN_TRANSITIONS = {
    RunStatus.WAITING: {RunStatus.STARTED} | FINISHED_RUN_STATUSES,
    RunStatus.STARTED: set(FINISHED_RUN_STATUSES),
    **{s: set() for s in FINISHED_RUN_STATUSES},
}


class EventKind(models.TextChoices):
    VALIDATION = "validation", "Validation"
    MISSING_MAPPING = "missing_mapping", "Missing mapping"
    AUTHENTICATION = "authentication", "Authentication"
    STRIPE_ERROR = "stripe_error", "Stripe error"
    RATE_LIMIT = "rate_limit", "Rate limit"
    TIMEOUT = "timeout", "Timeout"
    DISABLED = "disabled", "Integration disabled"
    INTERNAL = "internal", "Internal error"


class EventAction(models.TextChoices):
    VIEW_RUN = "view_run", "View the run"
    MAP_SERVICE = "map_service", "Map the service"
    RECONNECT = "reconnect", "Reconnect Stripe"
    RETRY = "retry", "Retry"
    REENABLE = "reenable", "Re-enable the integration"


class IntegrationRun(BusinessOwned):
    kind = models.CharField(max_length=24, choices=RunKind.choices, db_index=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.STARTED, db_index=True)
    livemode = models.BooleanField(default=False)
    subject = models.CharField(max_length=100, blank=True,
                               help_text='What the run was about, e.g. "invoice:42" or "service:7".')
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    request_ids = models.JSONField("Stripe request ids", default=list, blank=True)
    message = models.TextField(blank=True, help_text="The outcome in one line (the error, when it failed).")
    log = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["business", "-created_at"]),
                   models.Index(fields=["business", "kind", "status"])]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} ({self.get_status_display()})"

    @property
    def failed(self) -> bool:
        return self.status in FAILED_RUN_STATUSES


class IntegrationEvent(BusinessOwned):
    run = models.ForeignKey(IntegrationRun, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=EventKind.choices, db_index=True)
    message = models.TextField()
    action = models.CharField("suggested action", max_length=16, choices=EventAction.choices, default=EventAction.VIEW_RUN)
    action_url = models.CharField(max_length=500, blank=True, help_text="Where the suggested action is done.")
    actioned_at = models.DateTimeField(null=True, blank=True, db_index=True)
    actioned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["business", "-created_at"])]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.message[:60]}"

    def clean(self):
        self.check_same_business(run=getattr(self, "run", None))
