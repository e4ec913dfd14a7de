"""The admin's history pages, through Django's test client."""

from __future__ import annotations

import pytest
from django.test import Client

from revy_core.models import ObjectDelta, Revision
from sample_site.ledger import demo
from sample_site.ledger.models import Account, Transaction


@pytest.fixture
def loaded(db: None) -> None:
    assert demo.load()


@pytest.fixture
def admin_client(loaded: None) -> Client:
    client = Client()
    assert client.login(username="admin", password="admin")
    return client


def test_history_page_shows_who_what_and_why(admin_client: Client) -> None:
    operating = Account.objects.get(name="Operating")
    response = admin_client.get(f"/admin/ledger/account/{operating.pk}/history/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Open the operating account" in html
    assert 'data-actor-kind="user"' in html
    assert "Alice Archer" in html
    assert 'data-actor-kind="system"' in html
    assert "Balance recalculated by the system." in html
    # Erin left: the manager was set to empty by revy's SET_NULL.
    assert "Erin left Acme" in html
    assert 'class="revy-old">erin (deleted) #' in html


def test_history_page_names_the_system_correction(admin_client: Client) -> None:
    tickets = Transaction.objects.get(description="DjangoCon tickets")
    html = admin_client.get(
        f"/admin/ledger/transaction/{tickets.pk}/history/"
    ).content.decode()
    assert "Corrected by the system" in html
    assert 'data-actor-kind="organization"' in html
    assert "Acme Corp" in html
    assert '<del class="revy-old">Conference tickets</del>' in html
    assert '<ins class="revy-new">DjangoCon tickets</ins>' in html


def test_history_page_shows_the_changes_between_two_points(
    admin_client: Client,
) -> None:
    operating = Account.objects.get(name="Operating")
    opened = Revision.objects.get(description="Open the operating account")
    chairs = Revision.objects.get(description="Book the office chairs")
    url = f"/admin/ledger/account/{operating.pk}/history/"
    html = admin_client.get(url).content.decode()
    assert f'href="?start={opened.pk}" class="revy-compare-link"' in html
    assert 'id="revy-compare"' not in html

    html = admin_client.get(f"{url}?start={opened.pk}").content.decode()
    compare = html[html.index('id="revy-compare"') : html.index('id="revy-history"')]
    assert f"Changes from revision {opened.pk} (" in compare
    assert "to revision " in compare
    # Three bookings: -480.00, -250.00 USD at 0.92, 5200.00; and Erin left.
    assert '<del class="revy-old">0.00</del>' in compare
    assert '<ins class="revy-new">4490.00</ins>' in compare
    assert 'class="revy-old">erin (deleted) #' in compare
    assert 'data-field="name"' not in compare

    html = admin_client.get(f"{url}?start={opened.pk}&end={chairs.pk}").content.decode()
    compare = html[html.index('id="revy-compare"') : html.index('id="revy-history"')]
    assert f"to revision {chairs.pk} (" in compare
    assert '<ins class="revy-new">-480.00</ins>' in compare
    assert 'data-field="manager"' not in compare

    html = admin_client.get(f"{url}?end={opened.pk}").content.decode()
    compare = html[html.index('id="revy-compare"') : html.index('id="revy-history"')]
    assert "Changes from before its history" in compare
    assert "It was created in between." in compare
    assert '<ins class="revy-new">Operating</ins>' in compare

    assert admin_client.get(f"{url}?start=yesterday").status_code == 404


def test_deleted_objects_and_restore(admin_client: Client) -> None:
    travel_pk = (
        ObjectDelta.objects.filter(
            action=ObjectDelta.ACTION_DELETE, content_type__model="account"
        )
        .get()
        .content_id
    )
    listing = admin_client.get("/admin/ledger/account/deleted/").content.decode()
    assert "Travel (Acme Corp)" in listing
    assert "Close the travel budget" in listing
    history = admin_client.get(f"/admin/ledger/account/{travel_pk}/history/")
    assert history.status_code == 200
    assert 'id="revy-restore"' in history.content.decode()
    assert (
        admin_client.get(f"/admin/ledger/account/{travel_pk}/restore/").status_code
        == 405
    )
    response = admin_client.post(f"/admin/ledger/account/{travel_pk}/restore/")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/ledger/account/{travel_pk}/change/"
    travel = Account.objects.get(pk=travel_pk)
    assert travel.transactions.count() == 2
    revision = Revision.objects.order_by("-pk").first()
    assert revision is not None
    assert revision.description == f"Restore account {travel_pk}."
    page = admin_client.get(response["Location"], follow=True).content.decode()
    assert "was restored, with 2 related objects" in page
    # Restoring twice is refused with a message.
    response = admin_client.post(
        f"/admin/ledger/account/{travel_pk}/restore/", follow=True
    )
    assert "exists; there is nothing to restore" in response.content.decode()


def test_history_of_nothing_is_404(admin_client: Client) -> None:
    assert admin_client.get("/admin/ledger/account/999/history/").status_code == 404
    assert admin_client.get("/admin/ledger/account/abc/history/").status_code == 404


def test_the_admin_saves_transactions_through_the_ledger(admin_client: Client) -> None:
    operating = Account.objects.get(name="Operating")
    before = operating.balance
    response = admin_client.post(
        "/admin/ledger/transaction/add/",
        {
            "account": operating.pk,
            "description": "Coffee",
            "amount": "-12.00",
            "currency": "EUR",
            "exchange_rate": "1",
            "booked_on": "2026-02-01",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    operating.refresh_from_db()
    assert operating.balance == before - 12
    coffee = Transaction.objects.get(description="Coffee")
    delta = ObjectDelta.objects.get(
        content_type__model="transaction",
        content_id=str(coffee.pk),
        action=ObjectDelta.ACTION_CREATE,
    )
    assert delta.actor.username == "admin"  # type: ignore[union-attr]


def test_only_staff_see_history(loaded: None) -> None:
    client = Client()
    assert client.login(username="alice", password=demo.PASSWORD)
    response = client.get("/admin/ledger/account/1/history/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_user_history_masks_the_password(admin_client: Client) -> None:
    html = admin_client.get("/admin/auth/user/2/history/").content.decode()
    assert "Demo data: people and organizations." in html
    assert '<ins class="revy-new">[masked]</ins>' in html
    assert "pbkdf2" not in html
    assert "md5" not in html


def test_restoring_what_points_to_a_deleted_object_is_refused(
    admin_client: Client,
) -> None:
    # Erin's membership went with her user account (revy's CASCADE).
    membership = ObjectDelta.objects.filter(
        action=ObjectDelta.ACTION_DELETE, content_type__model="membership"
    ).get()
    response = admin_client.post(
        f"/admin/ledger/membership/{membership.content_id}/restore/", follow=True
    )
    assert "restore the user first" in response.content.decode()
