"""Views and commands of the servers the crash and soak tests start.

The URLs are those of :mod:`tests.mw_urls` plus ``/reliability/hold``, a
view that writes inside a transaction and then waits, so that a test can
kill the worker in the middle of it.

``python -m tests.reliability_server audit``
    checks that history and the data agree, and prints the findings as JSON
    (run with the server's settings): every account has the history that
    rebuilds its name, no object delta describes an account that does not
    exist (unless it deleted it), every object delta has attribute deltas,
    and every revision has deltas. ``vendor`` names the database read.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path


def hold(request: HttpRequest) -> HttpResponse:
    """Create and rename an account in one transaction, then wait there.

    The marker file (``?marker=``) is written once the writes are done and
    the transaction is still open.
    """
    from tests.testapp.models import Account

    name = request.GET.get("name", "held")
    with transaction.atomic():
        account = Account.objects.create(name=name)
        account.name = f"{name}!"
        account.save()
        Path(request.GET["marker"]).write_text(str(account.pk))
        time.sleep(float(request.GET.get("seconds", "120")))
    return JsonResponse({"account": account.pk})


def __getattr__(name: str) -> Any:
    # Django imports the URLs once set up; the audit command never does.
    if name == "urlpatterns":
        from tests.mw_urls import urlpatterns as mw_urlpatterns

        patterns = [*mw_urlpatterns, path("reliability/hold", hold)]
        globals()["urlpatterns"] = patterns
        return patterns
    raise AttributeError(name)


def audit() -> dict[str, Any]:
    """What disagrees between the accounts and their history."""
    import django

    django.setup()
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    from revy_core.models import AttributeDelta, ObjectDelta, Revision
    from tests.testapp.models import Account

    accounts = {str(pk): name for pk, name in Account.objects.values_list("pk", "name")}
    account_type = ContentType.objects.get_for_model(Account)
    names: dict[int, Any] = {}
    with_attributes: set[int] = set()
    for parent, field_name, new_value in AttributeDelta.objects.filter(
        content_type=account_type
    ).values_list("parent_id", "field_name", "new_value"):
        with_attributes.add(parent)
        if field_name == "name":
            names[parent] = new_value
    last: dict[str, str | None] = {}
    count = 0
    orphans = []
    bare = []
    for pk, content_id, action in (
        ObjectDelta.objects.filter(content_type=account_type)
        .order_by("pk")
        .values_list("pk", "content_id", "action")
    ):
        count += 1
        if pk not in with_attributes:
            bare.append(pk)
        if action == ObjectDelta.ACTION_DELETE:
            last[content_id] = None
            continue
        if content_id not in accounts:
            orphans.append(pk)
        if pk in names:
            last[content_id] = names[pk]
    untracked = sorted(
        pk for pk, name in accounts.items() if last.get(pk, object()) != name
    )
    used = set(ObjectDelta.objects.values_list("revision_id", flat=True).distinct())
    empty = sorted(set(Revision.objects.values_list("pk", flat=True)) - used)
    return {
        "vendor": connection.vendor,
        "accounts": len(accounts),
        "object_deltas": count,
        "orphan_object_deltas": orphans,
        "object_deltas_without_attributes": bare,
        "untracked_accounts": untracked,
        "empty_revisions": empty,
    }


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.reliability_settings")
    if argv[:1] == ["audit"]:
        print(json.dumps(audit()))
    else:
        raise SystemExit(f"unknown command {argv!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
