"""``revy_prune --before DATE``: retention that keeps reconstruction intact."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from revy_core.management.base import (
    OperationCommand,
    Progress,
    parse_model,
    parse_moment,
)
from revy_core.retention import BATCH_SIZE, prune


class Command(OperationCommand):
    help = (
        "Remove history older than --before (or each model's REVY_RETENTION). "
        "Each object's newest removed delta is kept as a baseline Create holding "
        "the state at the cut-off, so snapshots of kept deltas are unchanged; "
        "objects deleted before the cut-off go entirely; empty revisions go."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--before",
            help="cut-off: YYYY-MM-DD or ISO datetime (default: REVY_RETENTION's "
            "keep_days per model)",
        )
        parser.add_argument(
            "--model",
            action="append",
            default=[],
            help="app_label.Model to prune (repeatable; default: every model with "
            "history, or REVY_RETENTION's models without --before)",
        )
        parser.add_argument(
            "--keep-last",
            type=int,
            default=None,
            help="always keep each object's last N deltas (default: REVY_RETENTION's "
            "keep_last, else 0)",
        )
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        before = parse_moment(options["before"]) if options["before"] else None
        if before is None and not getattr(settings, "REVY_RETENTION", None):
            raise CommandError("Give --before, or set REVY_RETENTION.")
        models = [parse_model(label) for label in options["model"]] or None
        if options["keep_last"] is not None and options["keep_last"] < 0:
            raise CommandError("--keep-last must be 0 or more.")
        progress = Progress(self, options["quiet"])
        result = prune(
            before,
            models=models,
            keep_last=options["keep_last"],
            using=options["database"],
            batch_size=options["batch_size"] or BATCH_SIZE,
            dry_run=options["dry_run"],
            progress=progress,
        )
        progress.close()
        self.report(
            options,
            f"{result.objects} object(s) pruned: {result.baselines} baseline(s) kept, "
            f"{result.erased_objects} deleted object(s) removed entirely; "
            f"{result.object_deltas} object delta(s), {result.attribute_deltas} "
            f"attribute delta(s) and {result.revisions} revision(s) removed.",
        )
