from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from health_check.views import MainView as HealthReadyView

from crm import urls as crm_urls
from finance import urls as finance_urls
from stripe_integration.health.views import liveness
from stripe_integration.invoicing import urls as invoicing_urls
from stripe_integration.webhooks.intake import stripe_webhook

# One "ui" namespace for the staff UI, assembled from each layer's pages (crm cannot
# import the apps above it), so templates keep linking with one prefix.
ui_urlpatterns = [*crm_urls.urlpatterns, *finance_urls.urlpatterns, *invoicing_urls.urlpatterns]

# The admin carries the product's name, not "Django administration".
admin.site.site_header = f"{settings.PRODUCT_NAME} admin"
admin.site.site_title = settings.PRODUCT_NAME
admin.site.index_title = "Administration"

urlpatterns = [
    # Liveness and readiness (database, cache, migrations, broker, Stripe): README, "Production".
    path("health/", liveness, name="health_live"),
    path("health/ready/", HealthReadyView.as_view(), name="health_ready"),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("integrations/stripe/", include("stripe_integration.urls")),
    path("stripe/webhook/", stripe_webhook, name="stripe_webhook"),
    path("", include((ui_urlpatterns, "ui"))),
]
