"""`manage.py health`: the readiness checks of /health/ready/ (database, cache, migrations,
broker, Stripe), one line each with its time; exit status 1 if any failed. For operators
on a host, and for scripts (`--json`)."""
import json
import sys

from django.core.management.base import BaseCommand, CommandError
from health_check.mixins import CheckMixin


class Command(CheckMixin, BaseCommand):
    requires_system_checks = []  # BaseCommand.check() is CheckMixin.check() here: the health checks
    help = "Check the database, cache, migrations, broker and Stripe; exit 1 if any is not working."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="one JSON object: {check: status}")
        parser.add_argument("--only", action="append", metavar="CHECK",
                            help="run only this check (e.g. Migrations; `bin/serve worker` waits on it); repeatable")

    def handle(self, *args, **options):
        if options["only"]:
            unknown = set(options["only"]) - set(self.plugins)
            if unknown:
                raise CommandError(f"No such check: {', '.join(sorted(unknown))} (checks: {', '.join(self.plugins)})")
            self._plugins = {name: p for name, p in self.plugins.items() if name in options["only"]}
        errors = self.check()
        plugins = self.filter_plugins()
        if options["json"]:
            self.stdout.write(json.dumps({name: str(p.pretty_status()) for name, p in plugins.items()}))
        else:
            for name, plugin in plugins.items():
                style = self.style.ERROR if plugin.errors else self.style.SUCCESS
                self.stdout.write(f"{name:<28} {style(str(plugin.pretty_status()))}  ({plugin.time_taken * 1000:.0f} ms)")
            self.stdout.write(self.style.ERROR("NOT READY") if errors else self.style.SUCCESS("ready"))
        if errors:
            sys.exit(1)
