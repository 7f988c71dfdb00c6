"""Admin of the Stripe integration (owner/finance roles, scoped to the member's business
by `crm.admin_base`).

Stripe ids are read-only everywhere; the connection's tokens are never shown (they are
not admin fields at all). Rows that record what Stripe holds (product/price/customer
links, sync runs) are written only by the sync services: the admin shows them and offers
the workflows as actions (sync again, push the app's version over drift, push a contact's
details, link an existing customer).
"""
from django import forms
from django.contrib import admin, messages
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from crm.admin_base import BusinessScopedAdminMixin, NoWritesAdminMixin
from finance.money import format_money, from_minor

from ..catalog import sync as catalog
from ..customers import links as customers
from ..models import (
    CustomerLink, CustomerState, IntegrationSettings, PriceLink, ServiceSync, StripeConnection, SyncRun, SyncState,
)
from ..connect.oauth import connection_get_active
from ..runs.disable import integration_enabled_only, integration_skipped_messages

STATE_COLOURS = {"synced": "#1a7f37", "pending": "#9a6700", "error": "#cf222e", "drift": "#cf222e", "deleted": "#cf222e"}


def state_badge(state: str, label: str):
    return format_html('<strong style="color:{}">{}</strong>', STATE_COLOURS.get(state, "inherit"), label)


def drift_table(drift):
    """The drift details of a ServiceSync as a small table (app / Stripe / last synced)."""
    if not drift:
        return "-"
    rows = format_html_join(
        "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((f"{d.get('object')}.{d.get('field')}", d.get("app"), d.get("stripe"), d.get("synced")) for d in drift),
    )
    return format_html(
        '<table><thead><tr><th>field</th><th>app</th><th>Stripe now</th><th>last synced</th></tr></thead>'
        "<tbody>{}</tbody></table>", rows,
    )


class ReadOnlyScopedAdmin(NoWritesAdminMixin, BusinessScopedAdminMixin, admin.ModelAdmin):
    """Rows the services write: viewable (and acted on) by owner/finance, never edited here."""

    finance_only = True

    def has_sync_permission(self, request):
        return self.has_role_access(request)


# --- the connection and its settings --------------------------------------------------------
@admin.register(StripeConnection)
class StripeConnectionAdmin(ReadOnlyScopedAdmin):
    list_display = ("stripe_user_id", "account_name", "mode", "status", "connected_at", "connected_by", "last_error")
    list_filter = ("status", "livemode")
    list_select_related = ("connected_by",)
    # The tokens are deliberately absent (and not editable model fields either).
    fields = ("business", "stripe_user_id", "livemode", "scope", "status", "account_name", "account_email",
              "account_country", "connected_at", "connected_by", "disconnected_at", "disconnected_by",
              "last_checked_at", "last_error", "created_at", "updated_at")

    @admin.display(description="mode")
    def mode(self, obj):
        return obj.mode_label


@admin.register(IntegrationSettings)
class IntegrationSettingsAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    finance_only = True
    list_display = ("business", "auto_create_customers", "collection_method", "days_until_due", "disabled")
    # Auto-disable's state (issue 15): shown, changed only by the runs (and Re-enable).
    readonly_fields = ("disabled", "disabled_at", "disabled_reason", "failed_streaks")
    actions = ["reenable"]

    def has_add_permission(self, request):
        return False  # one row per business, made by the settings page

    def has_reenable_permission(self, request):
        return self.has_role_access(request)

    @admin.action(description="Re-enable the Stripe integration and retry what waited", permissions=["reenable"])
    def reenable(self, request, queryset):
        from ..runs.disable import integration_reenable

        done = [s.business for s in queryset.select_related("business") if s.disabled]
        for business in done:
            integration_reenable(business=business, user=request.user)
        self.message_user(request, f"Re-enabled {len(done)} business(es)." if done else "Nothing was disabled.")

    def has_delete_permission(self, request, obj=None):
        return False


# --- catalog --------------------------------------------------------------------------------
@admin.register(ServiceSync)
class ServiceSyncAdmin(ReadOnlyScopedAdmin):
    list_display = ("service", "state_display", "stripe_product_id", "synced_at", "last_error")
    list_filter = ("state",)
    list_select_related = ("service",)
    search_fields = ("service__code", "service__name", "stripe_product_id")
    fields = ("service", "connection", "state", "stripe_product_id", "last_error", "drift_details", "synced_at",
              "last_attempt_at", "version", "fingerprint", "created_at", "updated_at")
    readonly_fields = ("drift_details",)
    actions = ["sync_again", "push_app_version"]

    @admin.display(description="state", ordering="state")
    def state_display(self, obj):
        return state_badge(obj.state, obj.get_state_display())

    @admin.display(description="drift (changed in Stripe by hand)")
    def drift_details(self, obj):
        return drift_table(obj.drift)

    @admin.action(permissions=["sync"], description="Sync again (retry)")
    def sync_again(self, request, queryset):
        report_sync(self, request, [row.service for row in queryset], force=False)

    @admin.action(permissions=["sync"], description="Push the app's version to Stripe (overwrites changes made in Stripe)")
    def push_app_version(self, request, queryset):
        report_sync(self, request, [row.service for row in queryset], force=True)


def report_sync(model_admin, request, services, *, force: bool):
    """Queue each service's sync and say what became of it (with eager Celery it has run
    by now; with a worker the rows show "pending" until it has)."""
    services, skipped = integration_enabled_only(services, business_id_of=lambda s: s.business_id)
    for line in integration_skipped_messages(skipped, "service(s)"):
        model_admin.message_user(request, line, messages.WARNING)
    queued = [s for s in services if catalog.service_sync_request(service=s, force=force) is not None]
    if not queued:
        model_admin.message_user(request, "Nothing to sync: the business is not connected to Stripe, or the "
                                          "selected services were never in Stripe and are inactive.", messages.WARNING)
        return
    rows = ServiceSync.objects.filter(service__in=queued, connection__status="connected").select_related(
        "service", "connection")
    by_state = {}
    for row in rows:
        by_state.setdefault(row.state, []).append(row)
    for state, level in ((SyncState.SYNCED, messages.SUCCESS), (SyncState.PENDING, messages.INFO)):
        if by_state.get(state):
            model_admin.message_user(request, f"{len(by_state[state])} service(s) {state}.", level)
    # Pending because an import holds the catalog sync: say so, and what to do.
    connections = {row.connection_id: row.connection for row in by_state.get(SyncState.PENDING, [])}
    holding = [catalog.import_holding_sync(connection) for connection in connections.values()]
    for job in (job for job in holding if job is not None):
        model_admin.message_user(
            request, catalog.IMPORT_STOPPED_MESSAGE if job.status == "error" else
            "An import from Stripe is running: the catalog sync starts by itself when it completes.", messages.WARNING)
    for row in by_state.get(SyncState.ERROR, []):
        model_admin.message_user(request, f"{row.service}: {row.last_error}", messages.ERROR)
    for row in by_state.get(SyncState.DRIFT, []):
        model_admin.message_user(
            request, f"{row.service}: changed in Stripe by hand, not overwritten. Review the drift and use "
                     "“Push the app's version to Stripe” to overwrite it.", messages.WARNING)


@admin.register(PriceLink)
class PriceLinkAdmin(ReadOnlyScopedAdmin):
    list_display = ("service", "currency", "amount", "stripe_price_id", "active", "lookup_key", "created_at")
    list_filter = ("active", "currency")
    list_select_related = ("service",)
    search_fields = ("service__code", "service__name", "stripe_price_id", "lookup_key")

    @admin.display(description="amount")
    def amount(self, obj):
        return format_money(from_minor(obj.amount_minor, obj.currency), obj.currency)


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyScopedAdmin):
    list_display = ("__str__", "status", "progress", "started_by", "started_at", "finished_at", "error")
    list_filter = ("status", "kind")
    list_select_related = ("started_by",)
    fields = ("kind", "status", "total", "done", "counts", "error", "started_by", "started_at", "finished_at")

    @admin.display(description="progress")
    def progress(self, obj):
        return f"{obj.done}/{obj.total}"


# --- customers ------------------------------------------------------------------------------
class CustomerLinkAddForm(forms.ModelForm):
    """Link an existing Stripe customer: the id is retrieved on the business's account
    before anything is saved, so a wrong id is a form error."""

    class Meta:
        model = CustomerLink
        fields = ("contact", "stripe_customer_id")
        help_texts = {"stripe_customer_id": "Paste the customer's id from Stripe (cus_...)."}

    def clean(self):
        cleaned = super().clean()
        contact, customer_id = cleaned.get("contact"), cleaned.get("stripe_customer_id")
        if not contact or not customer_id:
            return cleaned
        connection = connection_get_active(business=contact.business)
        if connection is None:
            raise forms.ValidationError("This business is not connected to Stripe.")
        try:
            self.customer = customers.customer_lookup(connection=connection, customer_id=customer_id)
        except customers.CustomerLinkError as exc:
            self.add_error("stripe_customer_id", exc.message)
        self.connection = connection
        return cleaned

    def _get_validation_exclusions(self):
        # The link's uniqueness is the service's to check (it replaces a contact's old link).
        return {f.name for f in self._meta.model._meta.fields}


@admin.register(CustomerLink)
class CustomerLinkAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    finance_only = True
    list_display = ("contact", "stripe_customer_id", "origin", "state_display", "synced_at", "last_error", "note")
    list_filter = ("state", "origin")
    list_select_related = ("contact",)
    search_fields = ("contact__name", "stripe_customer_id")
    autocomplete_fields = ("contact",)
    actions = ["push_contact_details"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["contact", "stripe_customer_id"]
        return ["contact", "connection", "stripe_customer_id", "origin", "state", "last_error", "note", "synced_tax_id",
                "stripe_tax_id", "linked_by", "synced_at", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return self.get_fields(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = CustomerLinkAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_sync_permission(self, request):
        return self.has_role_access(request)

    def save_model(self, request, obj, form, change):
        link = customers.customer_link_existing(
            connection=form.connection, contact=obj.contact, customer_id=form.customer.id, user=request.user,
            customer=form.customer,
        )
        obj.pk, obj._state.adding, obj._state.db = link.pk, False, link._state.db

    @admin.display(description="state", ordering="state")
    def state_display(self, obj):
        return state_badge(obj.state, obj.get_state_display())

    @admin.action(permissions=["sync"], description="Push the contacts' details to Stripe (retry)")
    def push_contact_details(self, request, queryset):
        done = 0
        links, skipped = integration_enabled_only(queryset.select_related("connection", "contact"),
                                                  business_id_of=lambda link: link.business_id)
        for line in integration_skipped_messages(skipped, "customer(s)"):
            self.message_user(request, line, messages.WARNING)
        for link in links:
            if link.state == CustomerState.DELETED:
                self.message_user(request, f"{link.contact}: {link.stripe_customer_id} was deleted in Stripe; "
                                           "link another customer.", messages.WARNING)
                continue
            try:
                customers.customer_push(link=link, force=True)
            except customers.CustomerLinkError as exc:
                self.message_user(request, f"{link.contact}: {exc.message}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"Updated {done} Stripe customer(s).", messages.SUCCESS)


def service_sync_rows_prefetch():
    """For the service admin's sync column: the rows of connected connections only."""
    return Prefetch("stripe_syncs", queryset=ServiceSync.objects.filter(connection__status="connected"),
                    to_attr="active_stripe_syncs")


def service_sync_cell(service):
    rows = getattr(service, "active_stripe_syncs", None)
    if not rows:
        return "-"
    row = rows[0]
    url = reverse("admin:stripe_integration_servicesync_change", args=[row.pk])
    label = row.get_state_display()
    if row.state == SyncState.ERROR and row.last_error:
        label = f"{label}: {row.last_error[:120]}"
    return format_html('<a href="{}">{}</a>', url, state_badge(row.state, label))


# --- webhooks (issue 7): the inbox's admin lives in its own module ---
from .webhooks import WebhookDeliveryAdmin  # noqa: E402,F401  (registers it)
