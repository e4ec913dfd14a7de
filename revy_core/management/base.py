"""What revy's management commands share: options, progress, model labels."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from revy_core.history import model_from_label

__all__ = ["OperationCommand", "Progress", "instance", "parse_model", "parse_moment"]

BAR_WIDTH = 30


class Progress:
    """A one-line progress bar on stderr, redrawn in place; silent when quiet."""

    def __init__(self, command: BaseCommand, quiet: bool) -> None:
        self.command = command
        self.quiet = quiet
        self.open = False

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.quiet:
            return
        total = max(total, done, 1)
        filled = BAR_WIDTH * done // total
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.command.stderr.write(
            f"\r{label} [{bar}] {done}/{total}", ending="" if done < total else "\n"
        )
        self.command.stderr.flush()
        self.open = done < total

    def close(self) -> None:
        if self.open and not self.quiet:
            self.command.stderr.write("")
        self.open = False


def parse_model(label: str) -> type[Model]:
    try:
        return model_from_label(label)
    except LookupError as error:
        raise CommandError(str(error)) from error


def instance(label: str, pk: str) -> Model:
    """The object ``pk`` of model ``label``, or a ``CommandError``."""
    model = parse_model(label)
    try:
        return model._base_manager.get(pk=pk)
    except (ObjectDoesNotExist, ValueError, ValidationError) as error:
        raise CommandError(f"No {model._meta.label} with pk {pk!r}.") from error


def parse_moment(value: str) -> datetime.datetime:
    """An ISO date (midnight, current time zone) or datetime (naive: current zone)."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(
                f"{value!r} is not a date (YYYY-MM-DD) or datetime (ISO 8601)."
            )
        moment = datetime.datetime.combine(day, datetime.time())
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class OperationCommand(BaseCommand):
    """A command with ``--database``, ``--quiet``, and (if it writes) ``--dry-run``."""

    writes = True

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database",
            default=None,
            help="Database alias to use (default: the routed one, usually "
            f"{DEFAULT_DB_ALIAS!r}).",
        )
        parser.add_argument(
            "--quiet",
            action="store_true",
            help="No progress bar and no report: only errors (for scripts).",
        )
        if self.writes:
            parser.add_argument(
                "--dry-run",
                action="store_true",
                help="Do the work in a transaction that is rolled back; report what "
                "would change.",
            )
            parser.add_argument(
                "--batch-size",
                type=int,
                default=None,
                help="Rows per batch (and per transaction).",
            )

    def report(self, options: dict[str, Any], text: str) -> None:
        if not options["quiet"]:
            prefix = "[dry run] " if options.get("dry_run") else ""
            self.stdout.write(prefix + text)
