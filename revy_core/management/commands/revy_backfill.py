"""``revy_backfill [app_label.Model ...]``: baseline history for old rows."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db.models import Model

from revy_core.backfill import BATCH_SIZE, backfill
from revy_core.management.base import OperationCommand, Progress, parse_model


class Command(OperationCommand):
    help = (
        "Write a baseline Create for each row of the given tracked models "
        "(default: all) that has no Create in history: every field's current "
        "value, or, for a row whose history starts with updates, its values "
        "before the first update, placed before it. All in one revision "
        "credited to the system. Batched and committed per batch: rerun to "
        "resume; rows already covered are skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "models",
            nargs="*",
            help="app_label.Model ... (default: every tracked model)",
        )
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        models = [parse_model(label) for label in options["models"]] or None
        progress = Progress(self, options["quiet"])

        def step(model: type[Model], done: int, total: int) -> None:
            progress(model._meta.label, done, total)

        try:
            result = backfill(
                models,
                batch_size=options["batch_size"] or BATCH_SIZE,
                using=options["database"],
                dry_run=options["dry_run"],
                progress=step,
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        progress.close()
        for label, count in result.created.items():
            if count:
                self.report(options, f"{label}: {count} baseline(s)")
        where = (
            f" in revision {result.revision_id}"
            if result.revision_id is not None
            else ""
        )
        self.report(options, f"{result.total} row(s) given a baseline{where}.")
