"""Service catalog admin (owner/finance). Saves and deletes go through services.services:
a service in use is archived, never deleted, and the user is told so."""
from collections import Counter

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from crm.admin_base import BusinessScopedAdminMixin, BusinessScopedInlineMixin, format_money
from services.models import Service, ServicePrice
from services.services import (
    ARCHIVED, DELETED, service_archive, service_create, service_delete_or_archive, service_is_in_use,
    service_prices_changed, service_update,
)

_OUTCOME_ATTR = "_service_delete_outcome"


class ServicePriceInline(BusinessScopedInlineMixin, admin.TabularInline):
    model = ServicePrice
    finance_only = True
    extra = 0
    fields = ("currency", "amount", "updated_at")
    readonly_fields = ("updated_at",)


@admin.register(Service)
class ServiceAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    finance_only = True
    list_display = ("code", "name", "price_list", "active", "created_at", "updated_at")
    list_filter = ("active", "created_at")
    search_fields = ("code", "name", "description")
    readonly_fields = ("created_at", "updated_at")
    inlines = [ServicePriceInline]
    actions = ["delete_selected", "archive_selected", "restore_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("prices")

    @admin.display(description="prices")
    def price_list(self, obj):
        return ", ".join(format_money(price.amount, price.currency) for price in obj.prices.all()) or "-"

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # service_create/service_update already queued the sync (it runs after the commit,
        # so it sees these prices); a change to the prices alone queues it here.
        service_changed = any(name in ("code", "name", "description", "active") for name in form.changed_data)
        if change and not service_changed and any(formset.has_changed() for formset in formsets):
            service_prices_changed(service=form.instance)

    # --- saving -----------------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        if change:
            changed = [name for name in form.changed_data if name in ("code", "name", "description", "active")]
            service_update(service=obj, **{name: getattr(obj, name) for name in changed})
            return
        created = service_create(
            business=obj.business, code=obj.code, name=obj.name, description=obj.description, active=obj.active,
        )
        # The admin goes on with `obj` (the price inlines are saved against it, the log
        # entry and redirect use its pk): give it the identity of the row just created.
        obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at
        obj._state.adding, obj._state.db = False, created._state.db

    # --- deleting: archive what is in use -----------------------------------------------
    def get_deleted_objects(self, objs, request):
        services = list(objs)
        in_use = [service for service in services if service_is_in_use(service=service)]
        unused = [service for service in services if service not in in_use]
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(unused, request)
        # What references a service in use blocks nothing: it is archived instead.
        for service in in_use:
            url = reverse("admin:services_service_change", args=[service.pk])
            to_delete.append(
                format_html('Service: <a href="{}">{}</a> (in use: will be archived, not deleted)', url, service)
            )
        return to_delete, model_count, perms_needed, protected

    def log_deletions(self, request, queryset):
        """Written by _delete_or_archive once the outcome (deleted or archived) is known."""

    def delete_model(self, request, obj):
        setattr(request, _OUTCOME_ATTR, self._delete_or_archive(request, [obj]))

    def delete_queryset(self, request, queryset):
        setattr(request, _OUTCOME_ATTR, self._delete_or_archive(request, queryset))

    def _delete_or_archive(self, request, services):
        outcome = Counter()
        for service in services:
            pk = service.pk
            result = service_delete_or_archive(service=service)
            outcome[result] += 1
            if result == DELETED:
                service.pk = pk  # Model.delete() cleared it; the log entry keeps the id
                super().log_deletions(request, [service])
                service.pk = None
            else:
                self.log_change(request, service, "Archived instead of deleted: the service is in use.")
        return outcome

    def response_delete(self, request, obj_display, obj_id):
        outcome = getattr(request, _OUTCOME_ATTR, Counter())
        if not outcome[ARCHIVED]:
            return super().response_delete(request, obj_display, obj_id)
        self.message_user(
            request, f"The service “{obj_display}” is in use, so it was archived instead of deleted.", messages.WARNING,
        )
        url = reverse("admin:services_service_changelist", current_app=self.admin_site.name)
        return HttpResponseRedirect(url)

    @admin.action(permissions=["delete"], description="Delete selected services (archives those in use)")
    def delete_selected(self, request, queryset):
        if not request.POST.get("post"):
            return django_delete_selected(self, request, queryset)  # the confirmation page
        if not self.has_delete_permission(request):
            raise PermissionDenied
        outcome = self._delete_or_archive(request, list(queryset))
        if outcome[DELETED]:
            self.message_user(
                request, f"Deleted {outcome[DELETED]} {model_ngettext(self.opts, outcome[DELETED])}.", messages.SUCCESS,
            )
        if outcome[ARCHIVED]:
            self.message_user(
                request,
                f"Archived {outcome[ARCHIVED]} {model_ngettext(self.opts, outcome[ARCHIVED])}"
                " instead of deleting: in use.",
                messages.WARNING,
            )
        return None

    # --- archive / restore ------------------------------------------------------------
    @admin.action(permissions=["change"], description="Archive selected services")
    def archive_selected(self, request, queryset):
        services = list(queryset.filter(active=True))
        for service in services:
            service_archive(service=service)
            self.log_change(request, service, "Archived.")
        self.message_user(request, f"Archived {len(services)} {model_ngettext(self.opts, len(services))}.")

    @admin.action(permissions=["change"], description="Restore selected services")
    def restore_selected(self, request, queryset):
        services = list(queryset.filter(active=False))
        for service in services:
            service_update(service=service, active=True)
            self.log_change(request, service, "Restored.")
        self.message_user(request, f"Restored {len(services)} {model_ngettext(self.opts, len(services))}.")
