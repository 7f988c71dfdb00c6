"""Admin of runs and events: read-only, scoped to the member's business (finance and
owner roles), with list filters and a "Mark actioned" action on events."""
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from crm.admin_base import BusinessScopedAdminMixin, BusinessScopedInlineMixin, NoWritesAdminMixin
from crm.audit import client_ip

from ..models import IntegrationEvent, IntegrationRun
from .services import event_mark_actioned


class IntegrationEventInline(NoWritesAdminMixin, BusinessScopedInlineMixin, admin.TabularInline):
    model = IntegrationEvent
    finance_only = True
    extra = 0
    fields = ("created_at", "kind", "message", "action", "action_url", "actioned_at", "actioned_by")
    readonly_fields = fields


@admin.register(IntegrationRun)
class IntegrationRunAdmin(NoWritesAdminMixin, BusinessScopedAdminMixin, admin.ModelAdmin):
    finance_only = True
    list_display = ("id", "kind", "status", "livemode", "subject", "started_at", "duration", "counts", "business")
    list_select_related = ("business",)
    list_filter = ("kind", "status", "livemode", "created_at")
    search_fields = ("subject", "message")
    date_hierarchy = "created_at"
    inlines = [IntegrationEventInline]
    fields = ("kind", "status", "livemode", "subject", "started_at", "finished_at", "duration", "counts", "message",
              "request_ids_display", "log_display")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("log", "request_ids")

    @admin.display(description="Stripe request ids")
    def request_ids_display(self, obj):
        return format_html_join("", "<code>{}</code><br>", ((rid,) for rid in obj.request_ids)) or "-"

    @admin.display(description="log")
    def log_display(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", obj.log) if obj.log else "-"


@admin.register(IntegrationEvent)
class IntegrationEventAdmin(NoWritesAdminMixin, BusinessScopedAdminMixin, admin.ModelAdmin):
    finance_only = True
    list_display = ("created_at", "kind", "run", "message", "action_link", "actioned_at", "actioned_by", "business")
    list_select_related = ("run", "actioned_by", "business")
    list_filter = ("kind", "action", ("actioned_at", admin.EmptyFieldListFilter), "run__status", "created_at")
    search_fields = ("message",)
    date_hierarchy = "created_at"
    actions = ["mark_actioned"]
    fields = ("run", "kind", "message", "action", "action_url", "actioned_at", "actioned_by")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("run__log", "run__request_ids")

    @admin.display(description="what to do")
    def action_link(self, obj):
        if obj.action_url:
            return format_html('<a href="{}">{}</a>', obj.action_url, obj.get_action_display())
        return obj.get_action_display()

    def has_mark_actioned_permission(self, request):
        return self.has_role_access(request)

    @admin.action(description="Mark the selected events actioned", permissions=["mark_actioned"])
    def mark_actioned(self, request, queryset):
        events = list(queryset.filter(actioned_at__isnull=True).select_related("business"))
        for event in events:
            event_mark_actioned(event=event, user=request.user, ip=client_ip(request))
        self.message_user(request, f"Marked {len(events)} event(s) actioned.")
