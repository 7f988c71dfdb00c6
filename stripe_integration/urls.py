from django.urls import path

from .connect import views
from .customers import views as customer_views
from .payouts import views as payout_views
from .rules import views as rules_views
from .runs import views as run_views
from .importing import views as import_views

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
    # payouts and fees (issue 15)
    path("payouts/", payout_views.PayoutListView.as_view(), name="payout_list"),
    path("payouts/exceptions/", payout_views.PayoutExceptionsView.as_view(), name="payout_exceptions"),
    path("payouts/<int:pk>/", payout_views.PayoutDetailView.as_view(), name="payout_detail"),
    path("payouts/<int:pk>/export.csv", payout_views.PayoutExportView.as_view(), name="payout_export"),
    # rules and custom fields (issue 15)
    path("rules/", rules_views.StripeRulesView.as_view(), name="rules"),
    # runs and events, auto-disable (issue 15)
    path("runs/", run_views.RunListView.as_view(), name="run_list"),
    path("runs/<int:pk>/", run_views.RunDetailView.as_view(), name="run_detail"),
    path("events/", run_views.EventListView.as_view(), name="event_list"),
    path("events/<int:pk>/actioned/", run_views.EventActionedView.as_view(), name="event_actioned"),
    path("reenable/", run_views.ReenableView.as_view(), name="reenable"),
    path("pause/", run_views.PauseView.as_view(), name="pause"),
    # import of the account's history (issue 15)
    path("import/", import_views.ImportStartView.as_view(), name="import_start"),
    path("import/<int:pk>/", import_views.ImportProgressView.as_view(), name="import_progress"),
    path("import/rules/", import_views.ImportRulesView.as_view(), name="import_rules"),
]
