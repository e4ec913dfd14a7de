"""The demo data: a real history, made through the API, loaded once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from revy_core.models import AttributeDelta, ObjectDelta, Revision
from sample_site.ledger import services
from sample_site.ledger.models import Account, Organization, Transaction


@pytest.mark.django_db
def test_load_demo_data_once() -> None:
    out = StringIO()
    call_command("load_demo_data", stdout=out)
    assert "Demo data loaded" in out.getvalue()
    revisions = Revision.objects.count()
    assert revisions >= 10
    # Commit messages, an organization acting, a system correction, a
    # cascade delete and a SET_NULL.
    assert Revision.objects.filter(description="Customer payment").exists()
    assert ObjectDelta.objects.filter(
        actor_type__model="organization",
        actor_id=str(Organization.objects.get(slug="acme").pk),
    ).exists()
    assert AttributeDelta.objects.filter(
        field_name="local_amount",
        actor_type=None,
        description=services.CORRECTED_DESCRIPTION,
    ).exists()
    cascade = ObjectDelta.objects.filter(
        action=ObjectDelta.ACTION_DELETE,
        content_type__model="transaction",
        description=services.CASCADE_DESCRIPTION,
    )
    assert cascade.count() == 2
    assert Account.objects.get(name="Operating").manager is None
    assert AttributeDelta.objects.filter(
        field_name="manager",
        content_type__model="account",
        new_value__isnull=True,
        parent__action=ObjectDelta.ACTION_UPDATE,
    ).exists()
    assert Transaction.objects.count() == 4

    out = StringIO()
    call_command("load_demo_data", stdout=out)
    assert "demo data not loaded" in out.getvalue()
    assert Revision.objects.count() == revisions


@pytest.mark.django_db
def test_prepare_site_prints_the_login_and_three_curl_commands() -> None:
    out = StringIO()
    call_command("prepare_site", url="http://127.0.0.1:9999", stdout=out)
    text = out.getvalue()
    assert "admin / admin" in text
    assert text.count("curl -s -X POST http://127.0.0.1:9999/api/transactions") == 3
    assert text.count("X-Commit-Message:") == 3
    assert text.count("X-Perform-As-Organization:") == 2
