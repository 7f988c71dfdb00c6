"""The business's Stripe connection and the platform's Connect webhook endpoint.

Tokens and signing secrets are encrypted at rest (`crypto.EncryptedTextField`). dj-stripe's
`WebhookEndpoint` would be the natural home for the endpoint, but it keeps the webhook
secret in plain text; `ConnectWebhookEndpoint` keeps the same facts with the secret
encrypted.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q

from crm.models import BusinessOwned

from ..crypto import EncryptedTextField


class ConnectionStatus(models.TextChoices):
    CONNECTED = "connected", "Connected"
    DISCONNECTED = "disconnected", "Disconnected"
    REVOKED = "revoked", "Revoked by Stripe"


class StripeConnection(BusinessOwned):
    stripe_user_id = models.CharField("Stripe account id", max_length=255)
    livemode = models.BooleanField(default=False)
    scope = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=16, choices=ConnectionStatus.choices, default=ConnectionStatus.CONNECTED, db_index=True)
    access_token = EncryptedTextField(blank=True, editable=False)
    refresh_token = EncryptedTextField(blank=True, editable=False)
    account_name = models.CharField(max_length=255, blank=True)
    account_email = models.CharField(max_length=255, blank=True)
    account_country = models.CharField(max_length=2, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    connected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    disconnected_at = models.DateTimeField(null=True, blank=True)
    disconnected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One active connection per business and mode ...
            models.UniqueConstraint(
                fields=["business", "livemode"], condition=Q(status="connected"), name="uniq_active_connection_per_business_mode"
            ),
            # ... and a Stripe account serves one business at a time.
            models.UniqueConstraint(
                fields=["stripe_user_id", "livemode"], condition=Q(status="connected"), name="uniq_active_connection_per_account"
            ),
        ]

    def __str__(self):
        return f"{self.stripe_user_id} ({'live' if self.livemode else 'test'}, {self.status})"

    @property
    def is_active(self):
        return self.status == ConnectionStatus.CONNECTED

    @property
    def mode_label(self):
        return "live" if self.livemode else "test"


class ConnectWebhookEndpoint(models.Model):
    """The platform's one Connect (`connect=true`) webhook endpoint per URL and mode."""

    stripe_id = models.CharField(max_length=255, unique=True)
    url = models.URLField(max_length=500)
    livemode = models.BooleanField(default=False)
    secret = EncryptedTextField(editable=False)
    enabled_events = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["url", "livemode"], name="uniq_connect_endpoint_url_mode")]

    def __str__(self):
        return f"{self.stripe_id} -> {self.url}"


class LineOrder(models.TextChoices):
    NONE = "none", "As entered"
    AMOUNT = "amount", "By amount (largest first)"
    SERVICE = "service", "By service"


class IntegrationSettings(BusinessOwned):
    """Per-business choices for customers and invoices (the settings page)."""

    business = models.OneToOneField("crm.Business", on_delete=models.CASCADE, related_name="stripe_settings")
    auto_create_customers = models.BooleanField(
        "Create customers in Stripe automatically", default=True,
        help_text="Create the Stripe customer on first need; otherwise staff link an existing cus_... id.",
    )
    collection_method = models.CharField(
        max_length=24, default="send_invoice",
        choices=[("send_invoice", "Send invoice (customer pays on the hosted page)"),
                 ("charge_automatically", "Charge the saved card automatically")],
    )
    days_until_due = models.PositiveSmallIntegerField(default=30)
    send_due_date = models.BooleanField(default=True, help_text="Show the due date on the Stripe invoice.")
    only_approved = models.BooleanField(default=False, help_text="Only invoices marked approved are sent.")
    automatic_collection = models.BooleanField(
        "Let Stripe collect", default=True,
        help_text="Invoices are finalized with Stripe's automatic collection on: Stripe retries a declined "
                  "automatic charge (Smart Retries) and sends the reminders the Stripe account is set up for. "
                  "Off: nothing is retried; staff collect unpaid invoices themselves.",
    )
    excluded_line_types = models.JSONField(default=list, blank=True, help_text='Line types left out, e.g. ["credit"].')
    line_order = models.CharField(max_length=16, choices=LineOrder.choices, default=LineOrder.NONE)
    po_number_field = models.CharField(
        "PO number field name", max_length=40, blank=True, default="PO number",
        help_text="Name of the invoice custom field the PO number is copied into (blank: not sent).",
    )
    footer = models.CharField(max_length=500, blank=True)
    # --- auto-disable (issue 15; state written only by stripe_integration.runs) ---
    auto_disable_after = models.PositiveSmallIntegerField(
        "Disable after failed runs in a row", default=10,
        help_text="After this many failed runs in a row (errors, authentication failures, rate limits, "
                  "timeouts) the integration stops calling Stripe until someone re-enables it. 0: never.",
    )
    alert_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+", verbose_name="E-mail when disabled",
        help_text="Members of the business e-mailed when the integration disables itself.",
    )
    # {run kind: failed runs of it in a row} (runs.tracking.streak_update)
    failed_streaks = models.JSONField(default=dict, blank=True, editable=False)
    disabled = models.BooleanField("Integration disabled", default=False, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.TextField(blank=True, editable=False)

    class Meta:
        verbose_name = "Stripe integration settings"
        verbose_name_plural = "Stripe integration settings"

    def __str__(self):
        return f"Stripe settings of {self.business}"

    @property
    def failed_run_streak(self) -> int:
        """The longest streak of failed runs of one kind of job."""
        return max(self.failed_streaks.values(), default=0)

    @classmethod
    def for_business(cls, business):
        obj, _ = cls.objects.get_or_create(business=business)
        return obj
