"""``revy_history app_label.Model PK``: one object's history."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from revy_core.history import Entry, object_history
from revy_core.management.base import OperationCommand, parse_model

MAX_VALUE = 60


def _value(value: Any) -> str:
    text = "∅" if value is None else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _lines(entry: Entry) -> list[list[str]]:
    when = entry.created_at.strftime("%Y-%m-%d %H:%M:%S")
    message = entry.message
    if entry.description:
        message = f"{message} ({entry.description})" if message else entry.description
    head = [when, f"#{entry.revision_id}", entry.action, entry.actor, message]
    if not entry.changes:
        return [[*head, ""]]
    rows = []
    for index, change in enumerate(entry.changes):
        text = f"{change.field}: {_value(change.old)} → {_value(change.new)}"
        if change.actor != entry.actor:
            text += f"  (by {change.actor})"
        rows.append([*(head if index == 0 else [""] * len(head)), text])
    return rows


class Command(OperationCommand):
    help = (
        "Show the history of one object, oldest first: when, revision, action, "
        "who, the revision's message and each field's old → new value. "
        "--json prints one JSON object per delta instead."
    )
    writes = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="app_label.Model, e.g. auth.User")
        parser.add_argument("pk", help="the object's primary key")
        parser.add_argument(
            "--json",
            action="store_true",
            help="JSON lines (one object delta per line) for machines.",
        )
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        model = parse_model(options["model"])
        entries = object_history(model, options["pk"], using=options["database"])
        if options["json"]:
            for entry in entries:
                self.stdout.write(json.dumps(entry.as_dict(), cls=DjangoJSONEncoder))
            return
        header = ["when", "revision", "action", "who", "message", "change"]
        widths = [len(h) for h in header[:-1]]
        # Column widths need the rows; a history is printed in pages of rows.
        page: list[list[str]] = []
        printed = False
        count = 0
        for entry in entries:
            count += 1
            page.extend(_lines(entry))
            if len(page) >= 500:
                printed = self._page(header, widths, page, printed)
                page = []
        if page:
            self._page(header, widths, page, printed)
        if count == 0 and not options["quiet"]:
            self.stdout.write(f"No history for {model._meta.label} {options['pk']}.")

    def _page(
        self,
        header: list[str],
        widths: list[int],
        rows: list[list[str]],
        printed: bool,
    ) -> bool:
        for row in rows:
            for index, cell in enumerate(row[:-1]):
                widths[index] = max(widths[index], min(len(cell), 40))

        def line(cells: list[str]) -> str:
            parts = [
                (c if len(c) <= 40 else c[:39] + "…").ljust(w)
                for c, w in zip(cells, widths, strict=False)
            ]
            return "  ".join([*parts, cells[-1]]).rstrip()

        if not printed:
            self.stdout.write(line(header))
            self.stdout.write("  ".join("-" * w for w in [*widths, 6]))
        for row in rows:
            self.stdout.write(line(row))
        return True
