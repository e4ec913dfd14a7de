"""``revy_revert REVISION``: undo a revision as a new revision."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from revy_core.management.base import OperationCommand, instance
from revy_core.revert import RevertConflict, revert


class Command(OperationCommand):
    help = (
        "Undo every change of one revision (creations deleted, updates set back, "
        "deletions restored) as a new revision 'Revert revision N: ...'. Refuses "
        "when a later revision changed the same fields, unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("revision", type=int, help="primary key of the revision")
        parser.add_argument(
            "--force",
            action="store_true",
            help="overwrite later changes of the same fields; "
            "skip what cannot be undone",
        )
        parser.add_argument("--message", help="description of the new revision")
        parser.add_argument(
            "--by",
            nargs=2,
            metavar=("MODEL", "PK"),
            help="the actor of the revert (default: the system)",
        )
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        by = instance(*options["by"]) if options["by"] else None
        try:
            result = revert(
                options["revision"],
                actor=by,
                force=options["force"],
                description=options["message"],
                using=options["database"],
                dry_run=options["dry_run"],
            )
        except RevertConflict as error:
            raise CommandError(str(error)) from error
        for label in result.deleted:
            self.report(options, f"deleted {label}")
        for label in result.restored:
            self.report(options, f"restored {label}")
        for label, names in result.updated.items():
            self.report(options, f"set back {label}: {', '.join(names)}")
        for text in result.skipped:
            self.report(options, f"skipped {text}")
        if result.revision_id is not None:
            self.report(options, f"Recorded as revision {result.revision_id}.")
        elif not options["dry_run"]:
            self.report(options, "Nothing to undo.")
