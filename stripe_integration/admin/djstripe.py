"""dj-stripe's admin as the read-only mirror it is here.

dj-stripe registers an admin for each of its models (customers, invoices, charges,
webhook endpoints...). In this project those rows are a local mirror of Stripe objects
imported from a connected account; Stripe is their source of truth and only the gateway
talks to Stripe. dj-stripe's add and change forms write around it (its webhook endpoint
form calls Stripe with the SDK and needs dj-stripe's own webhook URLs, which the app does
not serve: posting it was a 500), so they are turned off: the pages stay viewable.
Foreign-key choices refuse hostile ids like every other admin form (`crm.choice_fields`).
"""
from django.contrib import admin

from crm.choice_fields import SafeChoicesAdminMixin


class MirrorOnlyMixin(SafeChoicesAdminMixin):
    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def make_djstripe_admins_read_only(site=admin.site):
    for model, model_admin in list(site._registry.items()):
        if model._meta.app_label != "djstripe" or isinstance(model_admin, MirrorOnlyMixin):
            continue
        cls = type(model_admin)
        site.unregister(model)
        site.register(model, type(f"MirrorOnly{cls.__name__}", (MirrorOnlyMixin, cls), {"__module__": __name__}))


make_djstripe_admins_read_only()
