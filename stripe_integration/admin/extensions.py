"""What the Stripe integration adds to the lower apps' admin pages, through
`crm.admin_extensions.admin_extend` (the lower apps import nothing of Stripe):

- services: the "Stripe" sync column, the sync details with their drift table, the
  "Sync to Stripe" action and button;
- billables and invoices: the Send-to-Stripe preview, push state and invoice actions
  (`stripe_integration.invoicing.admin`); the invoice's "Refund / credit note" page
  (`stripe_integration.credit_notes.admin`).
"""
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.utils.html import format_html

from crm.admin_extensions import admin_extend
from finance.models import Billable, Invoice
from services.models import Service

from ..credit_notes.admin import InvoiceCreditNoteMixin
from ..invoicing.admin import BillableInvoicingMixin, InvoiceStripeMixin
from .integration import drift_table, report_sync, service_sync_cell, service_sync_rows_prefetch


class ServiceStripeMixin:
    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(service_sync_rows_prefetch())

    def get_list_display(self, request):
        # The sync state sits beside the service's own "active" column.
        columns = list(super().get_list_display(request))
        at = columns.index("active") + 1 if "active" in columns else len(columns)
        return (*columns[:at], "stripe_sync", *columns[at:])

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "stripe_sync_details")

    # --- Stripe sync --------------------------------------------------------------------
    @admin.display(description="Stripe")
    def stripe_sync(self, obj):
        return service_sync_cell(obj)

    @admin.display(description="Stripe sync")
    def stripe_sync_details(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        syncs = getattr(obj, "active_stripe_syncs", None)
        if syncs is None:
            syncs = list(obj.stripe_syncs.filter(connection__status="connected"))
        if not syncs:
            return "Not in Stripe (the business is not connected, or the service was never synced)."
        row = syncs[0]
        button = format_html('<button type="submit" name="_stripe_sync" value="1">{}</button>',
                             "Retry sync to Stripe" if row.state == "error" else "Sync to Stripe now")
        parts = [service_sync_cell(obj), format_html(" &middot; product <code>{}</code>", row.stripe_product_id or "-")]
        if row.state == "drift":
            parts.append(format_html("<p>Changed in Stripe by hand; the app did not overwrite it. Use the "
                                     "“Push the app's version” action of the service syncs to overwrite.</p>{}",
                                     drift_table(row.drift)))
        parts.append(format_html("<p>{}</p>", button))
        return format_html("{}" * len(parts), *parts)

    @admin.action(permissions=["change"], description="Sync to Stripe")
    def sync_to_stripe(self, request, queryset):
        report_sync(self, request, list(queryset), force=False)

    def response_change(self, request, obj):
        if "_stripe_sync" in request.POST:
            report_sync(self, request, [obj], force=False)
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)


admin_extend(Service, ServiceStripeMixin, actions=[*admin.site._registry[Service].actions, "sync_to_stripe"])
admin_extend(Billable, BillableInvoicingMixin)
admin_extend(Invoice, InvoiceCreditNoteMixin, InvoiceStripeMixin)
