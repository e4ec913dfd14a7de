"""``welcome``: what ``make run`` prints before it serves: where to log in and
three requests to try."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sample_site.ledger.models import Account


class Command(BaseCommand):
    help = "Print the admin login and curl commands to try against the sample site."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"].rstrip("/")
        account = (
            Account.objects.filter(organization__slug="acme").order_by("pk").first()
        )
        account_id = account.pk if account is not None else 1
        bold = self.style.MIGRATE_HEADING
        lines = [
            "",
            bold("revy sample site"),
            f"  Admin:    {url}/admin/   log in as admin / admin",
            f"  API docs: {url}/api/docs",
            f"  History:  {url}/admin/ledger/account/{account_id}/history/",
            "",
            bold("Try the API (tokens: alice-token, bob-token, carol-token)"),
            "",
            "  # 1. Book a transaction with a commit message:",
            f"  curl -s -X POST {url}/api/transactions \\",
            "    -H 'Authorization: Bearer alice-token' \\",
            "    -H 'Content-Type: application/json' \\",
            "    -H 'X-Commit-Message: Book the team lunch' \\",
            f'    -d \'{{"account": {account_id}, "description": "Team lunch", '
            '"amount": "-86.40"}\'',
            "",
            "  # 2. Act as the organization; the system fixes the wrong local amount:",
            f"  curl -s -X POST {url}/api/transactions \\",
            "    -H 'Authorization: Bearer alice-token' \\",
            "    -H 'Content-Type: application/json' \\",
            "    -H 'X-Perform-As-Organization: acme' \\",
            "    -H 'X-Commit-Message: Pay the US hosting invoice' \\",
            f'    -d \'{{"account": {account_id}, "description": "Hosting", '
            '"amount": "-120.00", "currency": "USD", '
            '"exchange_rate": "0.92", "local_amount": "-120.00"}\'',
            "",
            "  # 3. bob may only read Globex: acting for it is refused (403), "
            "nothing is written:",
            f"  curl -s -X POST {url}/api/transactions \\",
            "    -H 'Authorization: Bearer bob-token' \\",
            "    -H 'Content-Type: application/json' \\",
            "    -H 'X-Perform-As-Organization: globex' \\",
            "    -H 'X-Commit-Message: Sneaky edit' \\",
            f'    -d \'{{"account": {account_id}, "description": "Sneaky", '
            '"amount": "1.00"}\'',
            "",
            "  # Then read what happened:",
            f"  curl -s {url}/api/accounts/{account_id}/history "
            "-H 'Authorization: Bearer alice-token'",
            "",
        ]
        self.stdout.write("\n".join(lines))
