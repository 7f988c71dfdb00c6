"""What the app knows it put in Stripe: catalog links, customer links, sync runs.

The app keeps its own link tables rather than dj-stripe's mirrors: what the sync needs is
"which Stripe object is this local row, and what did Stripe hold after our last write",
per connection, with history kept (a price whose amount changed stays linked, archived,
so past invoices keep pointing at the price they used).

Every row belongs to the connection's business (`BusinessOwned`), so the admin's tenancy
mixins scope them like any other business row.
"""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from crm.models import BusinessOwned


class SyncState(models.TextChoices):
    PENDING = "pending", "Pending"
    SYNCED = "synced", "Synced"
    ERROR = "error", "Error"
    DRIFT = "drift", "Changed in Stripe (drift)"


# A drifted row waits for a person: it leaves DRIFT only through a forced push ("Push the
# app's version": PENDING, then SYNCED or ERROR) or when Stripe comes back to what the app
# last wrote or wants (SYNCED). A new local edit leaves it DRIFT (catalog.service_sync_request).
SYNC_STATE_TRANSITIONS = {
    SyncState.PENDING: {SyncState.PENDING, SyncState.SYNCED, SyncState.ERROR, SyncState.DRIFT},
    SyncState.SYNCED: {SyncState.PENDING, SyncState.SYNCED, SyncState.ERROR, SyncState.DRIFT},
    SyncState.ERROR: {SyncState.PENDING, SyncState.SYNCED, SyncState.ERROR, SyncState.DRIFT},
    SyncState.DRIFT: {SyncState.DRIFT, SyncState.PENDING, SyncState.SYNCED, SyncState.ERROR},
}


class ServiceSync(BusinessOwned):
    """One service's Stripe product on one connection."""

    connection = models.ForeignKey("stripe_integration.StripeConnection", on_delete=models.PROTECT, related_name="+")
    # PROTECT: a service that has a Stripe product is archived, never deleted
    # (services.services.service_is_in_use asks Django's collector, which sees this).
    service = models.ForeignKey("services.Service", on_delete=models.PROTECT, related_name="stripe_syncs")
    stripe_product_id = models.CharField("Stripe product id", max_length=255, blank=True)
    state = models.CharField(max_length=10, choices=SyncState.choices, default=SyncState.PENDING, db_index=True)
    last_error = models.TextField(blank=True)
    drift = models.JSONField(default=list, blank=True, help_text="Fields changed in Stripe by hand: app / Stripe / last synced values.")
    # What Stripe held after the last successful sync (product fields and linked prices),
    # and its hash: an unchanged catalog is recognised without a single write.
    remote_state = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    # Part of every idempotency key: a retry of the same attempt replays Stripe's first
    # answer; the next change (version + 1) is a new request.
    version = models.PositiveIntegerField(default=1)
    synced_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "service sync"
        ordering = ["service__code"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "service"], name="uniq_service_sync_per_connection"),
            models.UniqueConstraint(
                fields=["connection", "stripe_product_id"], condition=~Q(stripe_product_id=""),
                name="uniq_service_sync_product",
            ),
        ]

    def __str__(self):
        return f"{self.service} -> {self.stripe_product_id or '(no product yet)'}"

    def clean(self):
        self.check_same_business(connection=getattr(self, "connection", None), service=getattr(self, "service", None))


class PriceLink(BusinessOwned):
    """A Stripe price made for (service, currency, amount). Never deleted: the price of an
    old amount stays here, archived (`active=False`), for the invoices that used it."""

    connection = models.ForeignKey("stripe_integration.StripeConnection", on_delete=models.PROTECT, related_name="+")
    service = models.ForeignKey("services.Service", on_delete=models.PROTECT, related_name="stripe_price_links")
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField(help_text="Stripe's unit_amount (finance.money.to_minor).")
    stripe_price_id = models.CharField("Stripe price id", max_length=255)
    active = models.BooleanField(default=True)
    lookup_key = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = "price link"
        ordering = ["service_id", "currency", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "service", "currency", "amount_minor"], name="uniq_price_link_amount"),
            models.UniqueConstraint(fields=["connection", "stripe_price_id"], name="uniq_price_link_stripe_id"),
        ]
        indexes = [models.Index(fields=["connection", "service", "currency", "active"])]

    def __str__(self):
        return f"{self.stripe_price_id} ({self.currency} {self.amount_minor})"

    def clean(self):
        self.check_same_business(connection=getattr(self, "connection", None), service=getattr(self, "service", None))


class CustomerState(models.TextChoices):
    PENDING = "pending", "Update pending"
    SYNCED = "synced", "Synced"
    ERROR = "error", "Error"
    DELETED = "deleted", "Deleted in Stripe"


class CustomerOrigin(models.TextChoices):
    CREATED = "created", "Created by the app"
    FOUND = "found", "Found in Stripe (by e-mail and metadata)"
    LINKED = "linked", "Linked by staff"
    IMPORTED = "imported", "Imported from Stripe"


class CustomerLink(BusinessOwned):
    """The one Stripe customer of a bill-to contact on a connection."""

    connection = models.ForeignKey("stripe_integration.StripeConnection", on_delete=models.PROTECT, related_name="+")
    contact = models.ForeignKey("crm.Contact", on_delete=models.PROTECT, related_name="stripe_customer_links")
    stripe_customer_id = models.CharField("Stripe customer id", max_length=255)
    origin = models.CharField(max_length=10, choices=CustomerOrigin.choices)
    state = models.CharField(max_length=10, choices=CustomerState.choices, default=CustomerState.SYNCED, db_index=True)
    last_error = models.TextField(blank=True)
    note = models.CharField(max_length=300, blank=True, help_text="Something the app could not send, e.g. a tax id of unknown type.")
    # The contact details last sent (hash), the tax id value on the customer and its
    # Stripe id: an edit that changes nothing Stripe holds costs no call.
    fingerprint = models.CharField(max_length=64, blank=True)
    synced_tax_id = models.CharField(max_length=50, blank=True)
    stripe_tax_id = models.CharField("Stripe tax id object", max_length=255, blank=True)
    # Idempotency keys: `generation` counts customers made for this contact (a new one
    # after a deletion in Stripe), `version` the updates sent.
    generation = models.PositiveIntegerField(default=1)
    version = models.PositiveIntegerField(default=1)
    linked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    synced_at = models.DateTimeField(null=True, blank=True)
    # The customer's default card for invoices, as the webhooks last saw Stripe make it
    # (customers/cards.py): what charge_automatically charges.
    card_id = models.CharField("default card", max_length=255, blank=True, editable=False)
    card_brand = models.CharField(max_length=20, blank=True, editable=False)
    card_last4 = models.CharField(max_length=4, blank=True, editable=False)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True, editable=False,
                                                      validators=[MinValueValidator(1), MaxValueValidator(12)])
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    # How this contact's invoices are collected, over the business's setting ("" = as the
    # business does): charge_automatically charges the default card above.
    collection_method = models.CharField(max_length=24, blank=True, default="", choices=[
        ("", "As the business does"), ("send_invoice", "Send the invoice"),
        ("charge_automatically", "Charge the saved card automatically")])

    class Meta:
        verbose_name = "customer link"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "contact"], name="uniq_customer_link_contact"),
            models.UniqueConstraint(fields=["connection", "stripe_customer_id"], name="uniq_customer_link_stripe_id"),
        ]

    def __str__(self):
        return f"{self.contact} -> {self.stripe_customer_id}"

    def clean(self):
        self.check_same_business(connection=getattr(self, "connection", None), contact=getattr(self, "contact", None))


class SyncRunStatus(models.TextChoices):
    PENDING = "pending", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Finished"
    PARTIAL = "partial", "Finished with errors"
    FAILED = "failed", "Failed"


SYNC_RUN_TRANSITIONS = {
    SyncRunStatus.PENDING: {SyncRunStatus.RUNNING, SyncRunStatus.FAILED},
    SyncRunStatus.RUNNING: {SyncRunStatus.SUCCEEDED, SyncRunStatus.PARTIAL, SyncRunStatus.FAILED},
    SyncRunStatus.SUCCEEDED: set(),
    SyncRunStatus.PARTIAL: set(),
    SyncRunStatus.FAILED: set(),
}
ACTIVE_RUN_STATUSES = (SyncRunStatus.PENDING, SyncRunStatus.RUNNING)


class SyncRunKind(models.TextChoices):
    CATALOG = "catalog", "Catalog"


class SyncRun(BusinessOwned):
    """A whole-catalog sync: the settings page shows its progress and counts."""

    connection = models.ForeignKey("stripe_integration.StripeConnection", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=SyncRunKind.choices, default=SyncRunKind.CATALOG)
    status = models.CharField(max_length=10, choices=SyncRunStatus.choices, default=SyncRunStatus.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="products/prices created, updated, archived, unchanged; failed; drift.")
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "sync run"
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One catalog run at a time per business and connection (mode): two would race
            # for the same products.
            models.UniqueConstraint(
                fields=["business", "connection", "kind"], condition=Q(status__in=["pending", "running"]), name="uniq_active_sync_run",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} sync #{self.pk} ({self.get_status_display()})"

    @property
    def is_active(self):
        return self.status in ACTIVE_RUN_STATUSES

    @property
    def percent(self):
        return int(100 * self.done / self.total) if self.total else (100 if not self.is_active else 0)

    def clean(self):
        self.check_same_business(connection=getattr(self, "connection", None))
