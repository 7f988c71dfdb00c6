"""`python manage.py stripe_catch_up --business <slug> [--days 30]`: list the business's
Stripe events (paging through all of them, within Stripe's 30 days) and process those
the app has not seen, through the same inbox and handlers as webhooks."""
from collections import Counter
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from crm.models import Business
from stripe_integration.webhooks.catch_up import RETENTION, catch_up
from stripe_integration.gateway.client import GatewayError
from stripe_integration.models import WebhookDelivery
from stripe_integration.connect.oauth import connection_get_active


class Command(BaseCommand):
    help = "Process the Stripe events of a business that never arrived as webhooks."

    def add_arguments(self, parser):
        parser.add_argument("--business", required=True, help="The business's slug.")
        parser.add_argument("--mode", choices=["test", "live"], default=None,
                            help="The connection of this mode (default: live if connected, else test).")
        parser.add_argument("--days", type=int, default=RETENTION.days,
                            help=f"How far back to look (at most {RETENTION.days}, Stripe's retention).")

    def handle(self, *args, business, days, mode=None, **options):
        if not 0 < days <= RETENTION.days:
            raise CommandError(f"--days must be between 1 and {RETENTION.days}.")
        found = Business.objects.filter(slug=business).first()
        if found is None:
            raise CommandError(f"No business has the slug {business!r}.")
        connection = connection_get_active(business=found, livemode=None if mode is None else mode == "live")
        if connection is None:
            raise CommandError(f"{found} is not connected to Stripe.")
        try:
            result = catch_up(connection=connection, since=timezone.now() - timedelta(days=days))
        except GatewayError as exc:
            raise CommandError(f"Stripe: {exc.user_message}") from None
        outcomes = Counter(WebhookDelivery.objects.filter(pk__in=result.stored).values_list("status", flat=True))
        summary = ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items())) or "nothing new"
        self.stdout.write(
            f"{found} ({connection.stripe_user_id}): {result.listed} events listed since "
            f"{result.since:%Y-%m-%d %H:%M} UTC, {result.relevant} of the handled types, "
            f"{len(result.stored)} new: {summary}."
        )
