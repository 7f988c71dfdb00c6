"""`manage.py migrate_locked`: `migrate`, one host at a time. Several web machines start
together (`bin/serve web` migrates before serving); on PostgreSQL a session advisory lock
makes the others wait and then find nothing left to apply. Other databases: plain migrate."""
from django.core.management import call_command
from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import connections

# Any constant shared by every host; "crm-migrate" as an integer.
LOCK_KEY = 0x63726D2D6D6967


class Command(MigrateCommand):
    help = "migrate, holding a PostgreSQL advisory lock so concurrent starts run it one at a time."

    def handle(self, *args, **options):
        conn = connections[options["database"]]
        if conn.vendor != "postgresql":
            return call_command("migrate", *args, **options)
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
            try:
                return super().handle(*args, **options)
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
