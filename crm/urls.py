"""The staff UI's CRM pages (namespace "ui"). Finance's pages (finance/urls.py) and the
integration's (stripe_integration/invoicing/urls.py) share the namespace: config/urls.py
assembles it, so templates link with one prefix."""
from django.urls import path

from crm import audit_views, views
from crm.contact_lookup import ContactLookupView
from crm.models import ContactKind

app_name = "ui"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("business/switch/", views.SwitchBusinessView.as_view(), name="switch_business"),
    path("contacts/", views.ContactListView.as_view(), name="contact_list"),
    path("contacts/new/individual/", views.ContactCreateView.as_view(), {"kind": ContactKind.INDIVIDUAL},
         name="individual_create"),
    path("contacts/new/organization/", views.ContactCreateView.as_view(), {"kind": ContactKind.ORGANIZATION},
         name="organization_create"),
    path("contacts/lookup/", ContactLookupView.as_view(), name="contact_lookup"),
    path("contacts/<int:pk>/", views.ContactDetailView.as_view(), name="contact_detail"),
    path("contacts/<int:pk>/edit/", views.ContactUpdateView.as_view(), name="contact_update"),
    path("opportunities/", views.OpportunityListView.as_view(), name="opportunity_list"),
    path("opportunities/new/", views.OpportunityCreateView.as_view(), name="opportunity_create"),
    path("opportunities/<int:pk>/", views.OpportunityDetailView.as_view(), name="opportunity_detail"),
    path("opportunities/<int:pk>/edit/", views.OpportunityUpdateView.as_view(), name="opportunity_update"),
    path("tickets/", views.TicketListView.as_view(), name="ticket_list"),
    path("tickets/new/", views.TicketCreateView.as_view(), name="ticket_create"),
    path("tickets/<int:pk>/", views.TicketDetailView.as_view(), name="ticket_detail"),
    path("audit/", audit_views.AuditLogView.as_view(), name="audit_log"),
    path("tickets/<int:pk>/edit/", views.TicketUpdateView.as_view(), name="ticket_update"),
]
