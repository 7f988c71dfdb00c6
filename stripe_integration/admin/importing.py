"""The import's rows in the admin (issue 15), read-only for owner and finance: the jobs
with their counts, and every Stripe object the import handled with what it became (the
app's mirror of the imported Stripe ids, in place of dj-stripe's)."""
from django.contrib import admin

from ..models import ImportedObject, StripeImport
from .integration import ReadOnlyScopedAdmin


@admin.register(StripeImport)
class StripeImportAdmin(ReadOnlyScopedAdmin):
    list_display = ("__str__", "status", "phase", "pages", "started_at", "finished_at", "summary")
    list_filter = ("status", "livemode")
    list_select_related = ("connection",)


@admin.register(ImportedObject)
class ImportedObjectAdmin(ReadOnlyScopedAdmin):
    list_display = ("stripe_id", "kind", "outcome", "local_id", "reason", "created_at")
    list_filter = ("kind", "outcome")
    search_fields = ("stripe_id", "reason", "ref")
