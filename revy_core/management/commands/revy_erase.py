"""``revy_erase``: erase personal data from history."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from revy_core.erasure import erase_actor, erase_object
from revy_core.management.base import (
    OperationCommand,
    Progress,
    instance,
    parse_model,
)


class Command(OperationCommand):
    help = (
        "Erase personal data from history: every stored value of one object "
        "(--object), or of an actor's own object plus its name on every delta it "
        "made (--actor). Values become a marker; the erasure is recorded as a "
        "revision with --reason and --by. Descriptions that still contain an "
        "erased value are listed, not changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument(
            "--object", nargs=2, metavar=("MODEL", "PK"), help="app_label.Model PK"
        )
        target.add_argument(
            "--actor", nargs=2, metavar=("MODEL", "PK"), help="app_label.Model PK"
        )
        parser.add_argument("--reason", required=True, help="why (recorded)")
        parser.add_argument(
            "--by",
            nargs=2,
            metavar=("MODEL", "PK"),
            help="who asked for the erasure (default: the system)",
        )
        parser.add_argument(
            "--field",
            action="append",
            help="with --object: only this field (repeatable)",
        )
        parser.add_argument(
            "--keep-actor-links",
            action="store_true",
            help="with --actor: keep the actor on the deltas it made",
        )
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        by = instance(*options["by"]) if options["by"] else None
        progress = Progress(self, options["quiet"])

        def step(done: int, total: int) -> None:
            progress("erasing", done, total)

        common: dict[str, Any] = {
            "reason": options["reason"],
            "by": by,
            "using": options["database"],
            "dry_run": options["dry_run"],
            "progress": step,
        }
        if options["batch_size"]:
            common["batch_size"] = options["batch_size"]
        try:
            if options["object"]:
                label, pk = options["object"]
                result = erase_object(
                    parse_model(label), pk, fields=options["field"], **common
                )
            else:
                result = erase_actor(
                    instance(*options["actor"]),
                    unlink=not options["keep_actor_links"],
                    **common,
                )
        except ValueError as error:
            raise CommandError(str(error)) from error
        progress.close()
        self.report(
            options,
            f"{result.attribute_deltas} attribute delta(s) erased, "
            f"{result.unlinked_deltas} delta(s) unlinked from the actor; erasure "
            f"recorded as revision {result.revision_id}.",
        )
        if result.leftovers:
            self.stdout.write(
                "Not erased (free-text descriptions containing an erased value):"
            )
            rows: dict[tuple[str, int], list[str]] = {}
            for leftover in result.leftovers:
                rows.setdefault((leftover.kind, leftover.pk), []).append(leftover.value)
            for (kind, pk), found in sorted(rows.items()):
                listed = ", ".join(repr(value) for value in found)
                self.stdout.write(f"  {kind} {pk}: contains {listed}")
