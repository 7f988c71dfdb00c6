"""The audit log (issue 14): who did what to money, when, from where.

The lowest layer holds it so every app can write to it: finance and stripe_integration
call `audit_record(...)` from the service functions of money actions (invoices created,
pushed, sent, voided, marked uncollectible or paid outside Stripe, drafts deleted, Stripe
disconnected, credit notes made or voided: a refund from the CRM is a credit note's refund part) and for each Stripe event
processed about an invoice (what it changed, or "no change").
Entries are only ever added, never edited (read-only in the admin and the staff UI).
"""
from django.conf import settings
from django.db import models

from crm.models import Business


# How actions read in the staff UI; an action not listed shows as its name.
ACTION_LABELS = {
    "invoice_create": "Invoice created", "invoice_push_pushed": "Pushed to Stripe",
    "invoice_push_failed": "Push failed", "invoice_push_mismatch": "Push stopped: totals differ",
    "invoice_retry": "Retry requested", "invoice_approve": "Approved", "invoice_void": "Voided",
    "invoice_mark_uncollectible": "Marked uncollectible", "invoice_mark_paid_out_of_band": "Marked paid outside Stripe",
    "invoice_resend": "Sent again", "invoice_delete_draft": "Draft deleted", "stripe_event": "Stripe event",
    "stripe_disconnect": "Stripe disconnected", "credit_note_create": "Credit note",
    "credit_note_void": "Credit note voided",
}


class AuditEntry(models.Model):
    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="+")
    # None: the app itself (a push worker, a Stripe webhook, a periodic sweep).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=100, blank=True, help_text="app_label.model of the object acted on")
    object_id = models.CharField(max_length=64, blank=True)
    object_label = models.CharField(max_length=200, blank=True)
    amount = models.DecimalField(max_digits=18, decimal_places=3, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        app_label = "crm"
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["business", "created_at"], name="audit_biz_created"),
            models.Index(fields=["business", "object_type", "object_id"], name="audit_biz_object"),
        ]

    def __str__(self):
        who = self.user or "the app"
        return f"{self.created_at:%Y-%m-%d %H:%M} {who}: {self.action} {self.object_label}".strip()

    @property
    def action_label(self) -> str:
        return ACTION_LABELS.get(self.action, self.action.replace("_", " ").capitalize())

    @property
    def actor(self) -> str:
        return self.user.get_username() if self.user_id else "the app (Stripe, a worker or a sweep)"


def client_ip(request) -> str | None:
    """The address the request came from (REMOTE_ADDR: behind a proxy, configure the proxy
    to set it; forwarded headers are not trusted here)."""
    return (request.META.get("REMOTE_ADDR") or None) if request is not None else None


def audit_record(*, business, user, action: str, obj=None, ip=None, detail: str = "",
                 amount=None, currency: str = "") -> AuditEntry:
    """Add one entry. `user` None (or anonymous) is the app itself; `obj` any model
    instance (its type, id and label are kept, so the entry outlives it); `ip` from
    `client_ip(request)`. Runs inside the caller's transaction: the entry commits with
    the action or not at all."""
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    entry = AuditEntry(
        business=business, user=user, action=action[:64], detail=detail, ip_address=ip or None,
        amount=amount, currency=(currency or "").upper()[:3],
    )
    if obj is not None:
        entry.object_type = obj._meta.label_lower
        entry.object_id = str(obj.pk)[:64]
        entry.object_label = str(obj)[:200]
    entry.full_clean(exclude=["business", "user"])
    entry.save()
    return entry


def audit_for_object(*, business, obj):
    """The entries about one object, oldest first."""
    return (AuditEntry.objects.filter(business=business, object_type=obj._meta.label_lower, object_id=str(obj.pk))
            .select_related("user").order_by("created_at", "pk"))
