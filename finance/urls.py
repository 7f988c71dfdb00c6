"""Finance's pages of the staff UI. They share the `ui` namespace with crm's and the
integration's pages (config/urls.py assembles it), so templates link with one prefix."""
from django.urls import path

from finance import aging, billable_views, dashboard_view, export_views, invoice_list, pages

urlpatterns = [
    path("billables/", pages.BillableListView.as_view(), name="billable_list"),
    path("billables/new/", billable_views.BillableCreateView.as_view(), name="billable_create"),
    path("billables/<int:pk>/edit/", billable_views.BillableUpdateView.as_view(), name="billable_update"),
    path("billables/<int:pk>/delete/", billable_views.BillableDeleteView.as_view(), name="billable_delete"),
    path("invoices/", invoice_list.InvoiceListView.as_view(), name="invoice_list"),
    path("invoices/aging/", aging.AgingReportView.as_view(), name="invoice_aging"),
    path("disputes/", pages.DisputeListView.as_view(), name="dispute_list"),
    path("invoices/<int:pk>/", pages.InvoiceDetailView.as_view(), name="invoice_detail"),
    path("dashboard/", dashboard_view.DashboardView.as_view(), name="dashboard"),
    path("exports/<slug:kind>.<slug:fmt>", export_views.ExportView.as_view(), name="export"),
]
