"""Read-only admin of payouts and their items (issue 15): what Stripe paid out and what
each payout carried; they come only from Stripe (the payout sync), so nothing is added,
changed or deleted here. The staff UI's payout pages reconcile them against invoices."""
from django.contrib import admin

from crm.admin_base import BusinessScopedInlineMixin, NoWritesAdminMixin

from ..models import Payout, PayoutItem
from .integration import ReadOnlyScopedAdmin


class PayoutItemInline(NoWritesAdminMixin, BusinessScopedInlineMixin, admin.TabularInline):
    finance_only = True  # owner and finance roles, as the payout pages
    model = PayoutItem
    fields = ("type", "stripe_balance_transaction_id", "source_id", "invoice", "amount", "fee", "net", "currency",
              "exception", "exception_detail")
    readonly_fields = fields
    extra = 0
    show_change_link = False


@admin.register(Payout)
class PayoutAdmin(ReadOnlyScopedAdmin):
    list_display = ("stripe_id", "business", "status", "amount", "currency", "arrival_date", "net", "fees",
                    "exception_count", "livemode")
    list_filter = ("status", "currency", "livemode", "automatic")
    search_fields = ("stripe_id", "account")
    readonly_fields = ("business", "connection", "account", "livemode", "stripe_id", "amount", "currency", "status",
                       "automatic", "arrival_date", "stripe_created", "description", "failure_message",
                       "items_synced_at", "item_count", "gross", "fees", "net", "exception_count")
    inlines = [PayoutItemInline]


@admin.register(PayoutItem)
class PayoutItemAdmin(ReadOnlyScopedAdmin):
    list_display = ("stripe_balance_transaction_id", "business", "payout", "type", "amount", "fee", "net", "currency",
                    "invoice", "exception")
    list_filter = ("type", "exception", "currency")
    search_fields = ("stripe_balance_transaction_id", "source_id", "charge_id", "payout__stripe_id")
    readonly_fields = [f.name for f in PayoutItem._meta.fields]
    list_select_related = ("payout", "invoice", "business")
