"""Connect OAuth start / callback / disconnect / test, and the integration settings page.

Finance and owner roles only (MemberRequiredMixin.finance_required); others get 403.
Views call services and turn their ConnectError into a message; never a 500.
"""
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views import View

from crm.tenancy import MemberRequiredMixin

from . import services


class FinanceView(MemberRequiredMixin, View):
    finance_required = True


class SettingsView(FinanceView):
    def get(self, request):
        overview = services.connection_overview(business=self.business)
        return render(request, "stripe_integration/settings.html", {"overview": overview, "business": self.business})


class ConnectView(FinanceView):
    """The Connect button is a link: GET redirects to Stripe's consent page."""

    def get(self, request):
        try:
            url = services.oauth_start(session=request.session, business=self.business, user=request.user)
        except services.ConnectError as exc:
            messages.error(request, exc.message)
            return redirect("stripe_integration:settings")
        return redirect(url)


class OAuthCallbackView(FinanceView):
    def get(self, request):
        state = request.GET.get("state")
        error = request.GET.get("error")
        try:
            services.oauth_state_consume(session=request.session, state=state, business=self.business, user=request.user)
        except services.ConnectError as exc:
            messages.error(request, exc.message)
            return redirect("stripe_integration:settings")
        if error:
            if error == "access_denied":
                messages.warning(request, "The Stripe account owner declined the connection. Nothing was changed.")
            else:
                desc = request.GET.get("error_description", "")[:200]
                messages.error(request, f"Stripe did not connect the account ({error[:50]}). {desc}".strip())
            return redirect("stripe_integration:settings")
        code = request.GET.get("code")
        if not code:
            messages.error(request, "Stripe's answer had no authorization code. Start again from the Connect button.")
            return redirect("stripe_integration:settings")
        try:
            connection = services.connection_connect(business=self.business, user=request.user, code=code)
        except services.ConnectError as exc:
            messages.error(request, exc.message)
            return redirect("stripe_integration:settings")
        messages.success(request, f"Connected Stripe account {connection.account_name or connection.stripe_user_id} ({connection.stripe_user_id}).")
        return redirect("stripe_integration:settings")


class DisconnectView(FinanceView):
    def post(self, request):
        connection = services.connection_get_active(business=self.business)
        if connection is None:
            messages.info(request, "This business is not connected to Stripe.")
            return redirect("stripe_integration:settings")
        try:
            services.connection_disconnect(connection=connection, user=request.user)
        except services.ConnectError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Disconnected Stripe account {connection.stripe_user_id}.")
        return redirect("stripe_integration:settings")


class TestConnectionView(FinanceView):
    def post(self, request):
        connection = services.connection_get_active(business=self.business)
        if connection is None:
            messages.info(request, "This business is not connected to Stripe.")
            return redirect("stripe_integration:settings")
        try:
            info = services.connection_test(connection=connection)
        except services.ConnectError as exc:
            messages.error(request, f"Connection test failed: {exc.message}")
        else:
            messages.success(request, f"Connection works: Stripe account {info.display_name} ({info.id}), charges {'enabled' if info.charges_enabled else 'not enabled yet'}.")
        return redirect("stripe_integration:settings")
