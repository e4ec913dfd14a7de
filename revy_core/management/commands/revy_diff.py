"""``revy_diff app_label.Model PK [--from POINT] [--to POINT]``."""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.core.management.base import CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from revy_core.diff import diff
from revy_core.management.base import OperationCommand, parse_model, parse_moment


def _point(value: str | None) -> int | datetime.datetime | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else parse_moment(value)


class Command(OperationCommand):
    help = (
        "Field-by-field difference of one object between two points of its "
        "history: a revision number or an ISO date/datetime (--from defaults to "
        "before its history, --to to its latest state)."
    )
    writes = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="app_label.Model")
        parser.add_argument("pk", help="the object's primary key")
        parser.add_argument("--from", dest="start", help="revision number or date")
        parser.add_argument("--to", dest="end", help="revision number or date")
        parser.add_argument("--json", action="store_true", help="JSON output")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        result = diff(
            parse_model(options["model"]),
            options["pk"],
            _point(options["start"]),
            _point(options["end"]),
            using=options["database"],
        )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "exists": [result.start.exists, result.end.exists],
                        "changes": {k: list(v) for k, v in result.changes.items()},
                    },
                    cls=DjangoJSONEncoder,
                )
            )
            return
        exists = {True: "exists", False: "absent"}
        self.stdout.write(
            f"object: {exists[result.start.exists]} → {exists[result.end.exists]}"
        )
        for name, (old, new) in result.changes.items():
            self.stdout.write(
                f"{name}: {json.dumps(old, ensure_ascii=False)} → "
                f"{json.dumps(new, ensure_ascii=False)}"
            )
