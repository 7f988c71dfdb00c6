"""What the invoice push made once in a connected account and reuses (issue 6).

Tax rates ("reused per rate and country"), the coupons that carry line discounts, and the
catch-all product of lines priced inline: each is made once per connection, with a
deterministic idempotency key (coupons also with a deterministic id), and remembered here
so later invoices cost no extra call.
"""
from django.conf import settings
from django.db import models

from crm.models import BusinessOwned


class BillingObjectKind(models.TextChoices):
    TAX_RATE = "tax_rate", "Tax rate"
    COUPON = "coupon", "Coupon"
    PRODUCT = "product", "Product"


class StripeBillingObject(BusinessOwned):
    connection = models.ForeignKey("stripe_integration.StripeConnection", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=BillingObjectKind.choices)
    # tax_rate: "20|exclusive|GB"; coupon: "percent:12.5" or "amount:usd:1500"; product: "inline"
    key = models.CharField(max_length=100)
    stripe_id = models.CharField("Stripe id", max_length=255)

    class Meta:
        verbose_name = "Stripe billing object"
        ordering = ["connection", "kind", "key"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "kind", "key"], name="uniq_billing_object_per_connection"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.key} -> {self.stripe_id}"

    def clean(self):
        self.check_same_business(connection=getattr(self, "connection", None))


# --- "Invoice everything unbilled" from the staff UI (issue 14) ---------------------------
class InvoiceRunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Stopped on an error"


INVOICE_RUN_TRANSITIONS = {
    InvoiceRunStatus.RUNNING: {InvoiceRunStatus.DONE, InvoiceRunStatus.FAILED},
    InvoiceRunStatus.DONE: set(),
    InvoiceRunStatus.FAILED: set(),
}


class InvoiceRun(BusinessOwned):
    """One "Invoice everything unbilled": the invoices it made (and the unfinished pushes
    it resumed), and its progress as their pushes end, for the progress page."""

    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    status = models.CharField(max_length=10, choices=InvoiceRunStatus.choices, default=InvoiceRunStatus.RUNNING)
    invoice_ids = models.JSONField(default=list, blank=True, help_text="Made by this run, then resumed ones.")
    made = models.PositiveIntegerField(default=0)
    resumed = models.PositiveIntegerField(default=0)
    # invoice id (str) -> the push's outcome (finance: pushed, skipped, gone, failed,
    # mismatch, awaiting_approval, busy): set per invoice, so a task run again counts each once.
    outcomes = models.JSONField(default=dict, blank=True)
    summary = models.TextField(blank=True, help_text="Totals per currency and what was left out, as previewed.")
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"Invoice run {self.pk} ({self.get_status_display().lower()})"

    @property
    def total(self) -> int:
        return len(self.invoice_ids)

    @property
    def pushed(self) -> int:
        return sum(1 for o in self.outcomes.values() if o in OK_OUTCOMES)

    @property
    def failed(self) -> int:
        """Failed, totals mismatch, waiting for approval, or busy in another worker."""
        return len(self.outcomes) - self.pushed

    @property
    def done_count(self) -> int:
        return len(self.outcomes)

    @property
    def percent(self) -> int:
        return 100 if not self.invoice_ids else round(100 * self.done_count / len(self.invoice_ids))


# In Stripe now ("skipped": it already was; "gone": its draft was deleted meanwhile).
OK_OUTCOMES = frozenset({"pushed", "skipped", "gone"})
