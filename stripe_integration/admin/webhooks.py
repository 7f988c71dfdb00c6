"""Admin of the webhook inbox: every stored delivery with its outcome, error and
traceback, and a Reprocess action.

Owner and finance roles see their own business's deliveries (set when processing finds
the business that owns the event's account); deliveries of no business (unknown
accounts, the other mode) are for superusers. Deliveries are evidence: never added,
edited or deleted here.
"""
import json
from collections import Counter

from django.contrib import admin
from django.utils.html import format_html
from django.utils.text import Truncator

from crm.admin_base import BusinessScopedAdminMixin

from ..webhooks.processing import delivery_reprocess
from ..models import WebhookDelivery

__all__ = ["WebhookDeliveryAdmin"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    finance_only = True
    list_display = ("received_at", "type", "event_id", "account", "business", "status", "attempts",
                    "outcome", "source", "processed_at")
    list_select_related = ("business",)
    list_filter = ("status", "type", "source", "livemode", "received_at")
    search_fields = ("event_id", "account", "object_id", "type", "error")
    date_hierarchy = "received_at"
    actions = ["reprocess"]
    fieldsets = (
        (None, {"fields": ("event_id", "type", "account", "business", "livemode", "api_version", "created", "object_id")}),
        ("Outcome", {"fields": ("status", "error", "attempts", "next_attempt_at", "processed_at", "traceback_display")}),
        ("Delivery", {"fields": ("source", "received_at", "payload_display")}),
    )
    readonly_fields = ("event_id", "type", "account", "business", "livemode", "api_version", "created", "object_id",
                       "status", "error", "attempts", "next_attempt_at", "processed_at", "traceback_display",
                       "source", "received_at", "payload_display")

    @admin.display(description="error / note")
    def outcome(self, obj):
        return Truncator(obj.error).chars(80) or "-"

    @admin.display(description="traceback")
    def traceback_display(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", obj.traceback) if obj.traceback else "-"

    @admin.display(description="payload")
    def payload_display(self, obj):
        try:
            text = json.dumps(json.loads(obj.payload), indent=2, sort_keys=True)
        except ValueError:
            text = obj.payload
        return format_html("<pre style='white-space:pre-wrap;max-height:40em;overflow:auto'>{}</pre>", text)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_reprocess_permission(self, request):
        return self.has_role_access(request)

    @admin.action(description="Reprocess the selected deliveries now", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        outcomes = Counter(delivery_reprocess(delivery=delivery).status for delivery in queryset.order_by("created", "pk"))
        summary = ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items()))
        self.message_user(request, f"Reprocessed {sum(outcomes.values())} deliveries: {summary}.")
