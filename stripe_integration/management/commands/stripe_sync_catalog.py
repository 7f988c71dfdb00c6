"""`manage.py stripe_sync_catalog --business <slug>`: sync a business's whole catalog to its
Stripe account now (in this process) and print what was created, updated, archived and
left unchanged."""
from django.core.management.base import BaseCommand, CommandError

from crm.models import Business
from stripe_integration.catalog import sync as catalog
from stripe_integration.connect.oauth import connection_get_active


class Command(BaseCommand):
    help = "Sync a business's service catalog to Stripe products and prices."

    def add_arguments(self, parser):
        parser.add_argument("--business", required=True, help="The business's slug.")
        parser.add_argument("--mode", choices=["test", "live"], default=None,
                            help="The connection of this mode (default: live if connected, else test).")

    def handle(self, *args, business, mode=None, **options):
        found = Business.objects.filter(slug=business).first()
        if found is None:
            raise CommandError(f"No business with slug {business!r}.")
        connection = connection_get_active(business=found, livemode=None if mode is None else mode == "live")
        if connection is None:
            raise CommandError(f"{found.name} is not connected to Stripe.")
        try:
            run = catalog.catalog_sync_create_run(business=found, connection=connection)
        except catalog.CatalogSyncError as exc:
            raise CommandError(exc.message) from None
        run = catalog.catalog_sync_run(run=run)
        counts = run.counts
        for kind in ("products", "prices"):
            figures = ", ".join(f"{counts.get(f'{kind}_{what}', 0)} {what}"
                                for what in ("created", "updated", "archived", "unchanged"))
            self.stdout.write(f"{kind.capitalize()}: {figures}")
        if counts.get("skipped"):
            self.stdout.write(f"Skipped: {counts['skipped']} inactive service(s) never in Stripe")
        if counts.get("failed") or counts.get("drift"):
            self.stdout.write(self.style.WARNING(
                f"Attention: {counts.get('failed', 0)} failed, {counts.get('drift', 0)} changed in Stripe by hand "
                "(see Service syncs in the admin)"))
        if run.error:
            raise CommandError(f"Catalog sync failed: {run.error}")
        self.stdout.write(self.style.SUCCESS(f"Catalog sync {run.get_status_display().lower()}: {run.done} of {run.total} services."))
