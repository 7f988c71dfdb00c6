"""The periodic tasks (django-celery-beat) as finance sees them.

The schedule (push sweep, webhook retry, catch-up) serves every business of the
installation, so pausing or re-timing a task is the platform operator's (superuser's)
act: a finance user of one business pausing the catch-up would stop it for all the
others. Finance and owners see the tasks read-only (enabled, interval, last run, runs so
far) to know the integration's background work is alive; a business pauses its own
Stripe work with the integration switch on its Stripe page.
"""
from django.contrib import admin
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from crm.models import FINANCE_ROLES
from crm.tenancy import get_membership


class PeriodicTaskFinanceAdmin(PeriodicTaskAdmin):
    list_display = ("name", "enabled", "interval", "last_run_at", "total_run_count")

    def _finance_viewer(self, request):
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        membership = get_membership(request)
        return membership is not None and membership.role in FINANCE_ROLES

    def has_module_permission(self, request):
        return request.user.is_superuser or self._finance_viewer(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or self._finance_viewer(request)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_actions(self, request):
        return super().get_actions(request) if request.user.is_superuser else {}


def register(site=admin.site):
    """Replace django-celery-beat's own registration (called once the admins are loaded)."""
    if site.is_registered(PeriodicTask):
        site.unregister(PeriodicTask)
    site.register(PeriodicTask, PeriodicTaskFinanceAdmin)
