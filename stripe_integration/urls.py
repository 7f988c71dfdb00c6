from django.urls import path

from .connect import views
from .customers import views as customer_views

app_name = "stripe_integration"

urlpatterns = [
    path("", views.SettingsView.as_view(), name="settings"),
    path("connect/", views.ConnectView.as_view(), name="connect"),
    path("oauth/callback/", views.OAuthCallbackView.as_view(), name="oauth_callback"),
    path("disconnect/", views.DisconnectView.as_view(), name="disconnect"),
    path("test/", views.TestConnectionView.as_view(), name="test"),
    path("mode/", views.ModeSwitchView.as_view(), name="mode_switch"),
    # catalog sync and customers (issue 5)
    path("settings/", views.IntegrationSettingsView.as_view(), name="integration_settings"),
    path("catalog/sync/", views.CatalogSyncView.as_view(), name="catalog_sync"),
    path("customers/<int:pk>/link/", views.CustomerLinkView.as_view(), name="customer_link"),
    # save a card (issue 13)
    path("customers/<int:pk>/save-card/", customer_views.CardSetupLinkView.as_view(), name="card_setup_link"),
    path("customers/<int:pk>/collection/", customer_views.CollectionMethodView.as_view(), name="collection_method"),
    path("card-saved/", customer_views.card_saved, name="card_saved"),
]
