from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from stripe_integration.webhooks import stripe_webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("integrations/stripe/", include("stripe_integration.urls")),
    path("stripe/webhook/", stripe_webhook, name="stripe_webhook"),
    path("", include("crm.urls")),
]
