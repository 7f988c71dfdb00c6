"""The webhook inbox: every Stripe event the app received, with what became of it.

One row per (event id, account): Stripe delivers an event to an endpoint at least once,
and the same event id can come again (retries, duplicates, the catch-up listing), so the
database's unique constraint is what makes "stored once" true under concurrency. The
intake writes the row in a single INSERT ... ON CONFLICT DO NOTHING (`webhooks/intake.py`),
the raw body exactly as signed and never rewritten; processing (`webhooks/processing.py`)
only updates the bookkeeping columns.

dj-stripe's `WebhookEventTrigger` keeps the same facts, but its intake costs three SELECTs,
an INSERT and an UPDATE that rewrites the whole body in two commits per delivery (see
webhooks/README.md); this table is written once per delivery and updated once per processing.
"""
from django.db import models
from django.db.models import Q


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", "Received (queued)"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    PARKED = "parked", "Parked (waiting for the object)"
    FAILED = "failed", "Failed"


# A delivery in one of these states is never handled again (unless staff reprocess it).
DONE_STATUSES = frozenset({DeliveryStatus.PROCESSED, DeliveryStatus.IGNORED})
# ... and these are picked up again by the retry sweep.
PENDING_STATUSES = frozenset({DeliveryStatus.RECEIVED, DeliveryStatus.PARKED, DeliveryStatus.FAILED})


class DeliverySource(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    CATCH_UP = "catch_up", "Catch-up (listed from Stripe)"


class WebhookDelivery(models.Model):
    event_id = models.CharField(max_length=255)
    # The connected account the event happened on; "" for the platform's own events.
    account = models.CharField(max_length=255, blank=True)
    livemode = models.BooleanField(default=False)
    type = models.CharField(max_length=100)
    api_version = models.CharField(max_length=40, blank=True)
    created = models.DateTimeField("created at Stripe", null=True, blank=True)
    object_id = models.CharField("object id", max_length=255, blank=True, help_text="data.object.id of the event")
    payload = models.TextField(help_text="The body exactly as received (signed bytes, UTF-8).")
    source = models.CharField(max_length=10, choices=DeliverySource.choices, default=DeliverySource.WEBHOOK)
    received_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Set when processing finds the business that owns `account` (tenancy in the admin).
    business = models.ForeignKey("crm.Business", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["event_id", "account"], name="uniq_webhook_event_per_account"),
        ]
        indexes = [
            # The retry sweep reads only the unfinished rows: a partial index stays small.
            models.Index(
                fields=["status", "next_attempt_at"], name="webhook_delivery_pending",
                condition=Q(status__in=["received", "parked", "failed"]),
            ),
        ]

    def __str__(self):
        return f"{self.type} {self.event_id}"

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATUSES
