"""`manage.py migrate_locked`: `migrate`, one host at a time. Several web machines start
together (`bin/serve web` migrates before serving); on PostgreSQL a session advisory lock
makes the others wait and then find nothing left to apply. Apps named in MIGRATE_EXCEPT
(CI only, see settings) are left out: every other app is migrated by its label."""
from django.conf import settings
from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import connections
from django.db.migrations.loader import MigrationLoader

# Any constant shared by every host: "crm-mig" as an integer.
LOCK_KEY = 0x63726D2D6D6967


class Command(MigrateCommand):
    help = "migrate, holding a PostgreSQL advisory lock so that concurrent starts run it one at a time."

    def handle(self, *args, **options):
        conn = connections[options["database"]]
        locked = conn.vendor == "postgresql"
        if locked:
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        try:
            if options.get("app_label") or not settings.MIGRATE_EXCEPT:
                return super().handle(*args, **options)
            apps = MigrationLoader(None, ignore_no_migrations=True).migrated_apps - set(settings.MIGRATE_EXCEPT)
            for label in sorted(apps):
                super().handle(*args, **{**options, "app_label": label, "migration_name": None})
        finally:
            if locked:
                with conn.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
