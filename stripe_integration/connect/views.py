"""Connect OAuth start / callback / disconnect / test, and the integration settings page.

Finance and owner roles only (MemberRequiredMixin.finance_required); others get 403.
Views call services and turn their ConnectError into a message; never a 500.
"""
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from crm import selectors as crm_selectors
from crm.models import Contact
from crm.audit import client_ip
from crm.tenancy import MemberRequiredMixin

from ..catalog import sync as catalog
from ..customers import links as customers
from . import oauth as services
from .forms import CustomerLinkForm, IntegrationSettingsForm
from ..models import IntegrationSettings
from ..runs.disable import integration_require_enabled


CHARGES_LEFT_OUT_WARNING = (
    "Charges are left out of invoices: every billable of type Charge stays unbilled, so invoices carry only "
    "credits (or are not made at all). Untick Charge under \"Line types left out of invoices\" to bill them.")


class FinanceView(MemberRequiredMixin, View):
    finance_required = True


class SettingsView(FinanceView):
    def get(self, request):
        return render_settings(request, self.business)


def render_settings(request, business, *, settings_form=None):
    """The settings page: the connection, the catalog sync and its latest run, the
    integration settings form (bound and with errors after a failed POST)."""
    overviews = services.connection_overviews(business=business)
    # The catalog section is the current mode's (the mode switch), else the first connected.
    current, _ = services.session_livemode(session=request.session, business=business)
    connected = [o for o in overviews if o.state in ("connected", "error")]
    shown = next((o for o in connected if o.livemode == current), connected[0] if connected else overviews[0])
    multi = len(overviews) > 1
    connection = services.connection_get_active(business=business, livemode=shown.livemode if multi else None)
    context = {
        "overview": shown,
        "overviews": overviews,
        "business": business,
        "settings_form": settings_form or IntegrationSettingsForm(instance=IntegrationSettings.for_business(business)),
        "charges_left_out_warning": CHARGES_LEFT_OUT_WARNING,
        "catalog_run": catalog.sync_run_latest(business=business, livemode=shown.livemode if multi else None),
        "catalog_summary": catalog.catalog_summary(business=business, livemode=shown.livemode if multi else None),
        # The import the catalog sync waits for (running, waiting, or stopped on an error).
        "catalog_held_by": catalog.import_holding_sync(connection) if connection is not None else None,
    }
    return render(request, "stripe_integration/settings.html", context)


def _mode_param(request) -> bool | None:
    """`?mode=test|live` (the panel a button is on); None: the default mode."""
    value = (request.GET.get("mode") or request.POST.get("mode") or "").lower()
    return {"live": True, "test": False}.get(value)


class ConnectView(FinanceView):
    """The Connect button is a link: GET redirects to Stripe's consent page (of the mode
    of the panel it is on: `?mode=test|live`)."""

    def get(self, request):
        try:
            url = services.oauth_start(session=request.session, business=self.business, user=request.user,
                                       livemode=_mode_param(request))
        except services.ConnectError as exc:
            messages.error(request, exc.message)
            return redirect("stripe_integration:settings")
        return redirect(url)


class OAuthCallbackView(FinanceView):
    def get(self, request):
        state = request.GET.get("state")
        error = request.GET.get("error")
        try:
            livemode = services.oauth_state_consume(session=request.session, state=state, business=self.business,
                                                    user=request.user)
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
            connection = services.connection_connect(business=self.business, user=request.user, code=code,
                                                     livemode=livemode)
        except services.ConnectError as exc:
            messages.error(request, exc.message)
            return redirect("stripe_integration:settings")
        messages.success(request, f"Connected Stripe account {connection.account_name or connection.stripe_user_id} "
                                  f"({connection.stripe_user_id}) in {connection.mode_label} mode.")
        return redirect("stripe_integration:settings")


class ConnectionActionView(FinanceView):
    """A POST action on the business's active connection; without one, say so."""

    def post(self, request):
        connection = services.connection_get_active(business=self.business, livemode=_mode_param(request))
        if connection is None:
            messages.info(request, "This business is not connected to Stripe.")
        else:
            self.act(request, connection)
        return redirect("stripe_integration:settings")

    def act(self, request, connection):
        raise NotImplementedError


class DisconnectView(ConnectionActionView):
    """GET: a page that says what disconnecting does; its POST (`confirmed=yes`) does it.
    A POST without the confirmation comes back to that page, nothing done."""

    def get(self, request):
        connection = services.connection_get_active(business=self.business, livemode=_mode_param(request))
        if connection is None:
            messages.info(request, "This business is not connected to Stripe.")
            return redirect("stripe_integration:settings")
        return render(request, "stripe_integration/disconnect_confirm.html",
                      {"connection": connection, "business": self.business, "title": "Disconnect Stripe?"})

    def post(self, request):
        if request.POST.get("confirmed") != "yes":
            mode = _mode_param(request)
            url = reverse("stripe_integration:disconnect")
            return redirect(url if mode is None else f"{url}?mode={'live' if mode else 'test'}")
        return super().post(request)

    def act(self, request, connection):
        try:
            services.connection_disconnect(connection=connection, user=request.user, ip=client_ip(request))
        except services.ConnectError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Disconnected Stripe account {connection.stripe_user_id}.")


class TestConnectionView(ConnectionActionView):
    def act(self, request, connection):
        try:
            info = services.connection_test(connection=connection)
        except services.ConnectError as exc:
            messages.error(request, f"Connection test failed: {exc.message}")
        else:
            messages.success(request, f"Connection works: Stripe account {info.display_name} ({info.id}), charges {'enabled' if info.charges_enabled else 'not enabled yet'}.")


# --- catalog sync and customers (issue 5) ---
class IntegrationSettingsView(FinanceView):
    def post(self, request):
        form = IntegrationSettingsForm(request.POST, instance=IntegrationSettings.for_business(self.business))
        if not form.is_valid():
            return render_settings(request, self.business, settings_form=form)
        customers.integration_settings_update(business=self.business, data=form.cleaned_data)
        messages.success(request, "Settings saved.")
        if form.charges_left_out():
            messages.warning(request, CHARGES_LEFT_OUT_WARNING)
        return redirect("stripe_integration:settings")


class CatalogSyncView(FinanceView):
    """"Sync catalog now": queue a whole-catalog run; the settings page shows its progress."""

    def post(self, request):
        integration_require_enabled(business=self.business)
        try:
            run = catalog.catalog_sync_start(business=self.business, user=request.user, livemode=_mode_param(request),
                                             before_import=request.POST.get("before_import") == "yes")
        except catalog.CatalogSyncError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Catalog sync started for {run.total} service(s).")
        return redirect(reverse("stripe_integration:settings") + "#catalog")


class CustomerLinkView(FinanceView):
    """Link an existing Stripe customer (cus_...) to a contact; a wrong id is a form error."""

    template_name = "stripe_integration/customer_link.html"

    def _contact(self, pk):
        try:
            return crm_selectors.contact_get(business=self.business, pk=pk)
        except Contact.DoesNotExist:
            raise Http404("No such contact in this business.")

    def _render(self, request, contact, form, status=200):
        connection, link = customers.customer_link_for(business=self.business, contact=contact)
        return render(request, self.template_name, {"contact": contact, "form": form, "link": link,
                                                    "connection": connection}, status=status)

    def get(self, request, pk):
        return self._render(request, self._contact(pk), CustomerLinkForm())

    def post(self, request, pk):
        contact = self._contact(pk)
        form = CustomerLinkForm(request.POST)
        if form.is_valid():
            connection = services.connection_get_active(business=self.business)
            if connection is None:
                form.add_error(None, "This business is not connected to Stripe.")
            else:
                try:
                    link = customers.customer_link_existing(connection=connection, contact=contact,
                                                            customer_id=form.cleaned_data["customer_id"], user=request.user)
                except customers.CustomerLinkError as exc:
                    form.add_error("customer_id", exc.message)
                else:
                    messages.success(request, f"Linked Stripe customer {link.stripe_customer_id} to {contact.name}.")
                    return redirect(reverse("ui:contact_detail", args=[contact.pk]) + "#stripe-customer")
        return self._render(request, contact, form)


# --- the current mode (issue 15: test and live side by side) ------------------------------------
class ModeSwitchView(FinanceView):
    """POST mode=test|live: the finance screens of this session show that mode's data."""

    def post(self, request):
        livemode = _mode_param(request)
        if livemode is None:
            messages.error(request, "Choose test or live mode.")
        else:
            try:
                services.session_livemode_set(session=request.session, business=self.business, livemode=livemode)
            except services.ConnectError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"Showing {'live' if livemode else 'test'}-mode data.")
        target = request.POST.get("next") or ""
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
            target = reverse("ui:invoice_list")
        return redirect(target)
