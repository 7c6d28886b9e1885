"""`manage.py ledger_report`: one line about the ledger, run nightly by infra/modules/nightly.py.

It reads the database and the release name from the environment djaploy gives the app, so a
run shows that the job got the live release's settings.
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from entries.models import Entry


class Command(BaseCommand):
    help = "Print how many entries the ledger holds, and the release that counted them."

    def handle(self, *args, **options):
        latest = Entry.objects.first()
        when = f", latest {latest.created_at:%Y-%m-%d %H:%M} UTC" if latest else ""
        self.stdout.write(f"ledger report: release {settings.RELEASE}, {Entry.objects.count()} entries{when}")
