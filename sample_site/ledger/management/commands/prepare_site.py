"""``prepare_site``: what ``make run`` does before it serves, in one process:
migrate, load the demo data into an empty database, print the welcome."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Migrate, load the demo data when the database is empty, print how to try it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("load_demo_data", stdout=self.stdout, stderr=self.stderr)
        call_command("welcome", url=options["url"], stdout=self.stdout)
