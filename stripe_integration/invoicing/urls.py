"""The Send-to-Stripe screens of the staff UI, in the shared `ui` namespace (config/urls.py)."""
from django.urls import path

from . import run_views, views

urlpatterns = [
    path("invoices/unbilled/", run_views.UnbilledRunView.as_view(), name="invoice_unbilled"),
    path("invoices/runs/<int:pk>/", run_views.InvoiceRunView.as_view(), name="invoice_run"),
    path("invoices/preview/", views.InvoicePreviewView.as_view(), name="invoice_preview"),
    path("invoices/send/", views.InvoiceSendView.as_view(), name="invoice_send"),
    path("invoices/<int:pk>/action/", views.InvoiceActionView.as_view(), name="invoice_action"),
]
