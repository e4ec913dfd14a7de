"""``load_demo_data``: fill an empty database with a small, real history.

See :mod:`sample_site.ledger.demo`. A database that has any user is left alone.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from revy_core.models import Revision
from sample_site.ledger import demo


class Command(BaseCommand):
    help = (
        "Load the demo users, organizations and ledger history through the API, "
        "when the database has no users yet."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            loaded = demo.load()
        except demo.DemoError as error:
            raise CommandError(str(error)) from error
        if not loaded:
            self.stdout.write("The database has data already: demo data not loaded.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data loaded: {Revision.objects.count()} revisions of history."
            )
        )
