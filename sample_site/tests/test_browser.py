"""The admin's history pages in a real browser: headless Chromium, driven by
Selenium, against a live server with the demo data. Screenshots are saved in
``artifacts/``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sample_site.ledger import demo
from sample_site.ledger.models import Account, Transaction

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1100",
]

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing: `make browsers` installs it.", pytrace=False)
    pytest.skip(
        "Chromium is missing: `make browsers` installs it.", allow_module_level=True
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(
        service=Service(executable_path=str(CHROMEDRIVER)), options=options
    )
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def site(transactional_db: None, live_server: Any) -> str:
    assert demo.load()
    return str(live_server.url)


def _find(browser: WebDriver, by: str, value: str) -> Any:
    """The element, once the page shows it (pages load after a click)."""
    return WebDriverWait(browser, 10).until(
        expected_conditions.presence_of_element_located((by, value))
    )


def _screenshot(browser: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / name))


def _rows(browser: WebDriver) -> list[dict[str, Any]]:
    rows = []
    for row in browser.find_elements(By.CSS_SELECTOR, "#revy-history tr.revy-row"):
        who = row.find_element(By.CSS_SELECTOR, ".revy-who .revy-actor")
        changes = {}
        for change in row.find_elements(By.CSS_SELECTOR, "li.revy-change"):
            olds = change.find_elements(By.CSS_SELECTOR, ".revy-old")
            news = change.find_elements(By.CSS_SELECTOR, ".revy-new")
            changes[change.get_attribute("data-field")] = (
                olds[0].text if olds else None,
                news[0].text if news else None,
                change.text,
            )
        rows.append(
            {
                "action": row.get_attribute("data-action"),
                "actor_kind": who.get_attribute("data-actor-kind"),
                "actor": who.text,
                "message": row.find_element(By.CSS_SELECTOR, ".revy-message").text,
                "changes": changes,
            }
        )
    return rows


def test_admin_history_and_restore(browser: WebDriver, site: str) -> None:
    browser.get(f"{site}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys(demo.ADMIN[0])
    browser.find_element(By.NAME, "password").send_keys(demo.ADMIN[1])
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    _find(browser, By.ID, "user-tools")
    assert "Site administration" in browser.title

    # A transaction booked by bob, renamed by Acme, corrected by the system.
    tickets = Transaction.objects.get(description="DjangoCon tickets")
    browser.get(f"{site}/admin/ledger/transaction/{tickets.pk}/change/")
    _find(browser, By.LINK_TEXT, "HISTORY").click()
    _find(browser, By.ID, "revy-history")
    assert browser.current_url.endswith(f"/transaction/{tickets.pk}/history/")
    renamed, created = _rows(browser)
    assert renamed["action"] == "update"
    assert renamed["actor_kind"] == "organization"
    assert "Acme Corp" in renamed["actor"]
    assert renamed["message"] == "Name the conference"
    assert renamed["changes"]["description"][:2] == (
        "Conference tickets",
        "DjangoCon tickets",
    )
    assert created["actor_kind"] == "user"
    assert "Bob Baker" in created["actor"]
    assert created["message"] == "Book the conference tickets (USD)"
    local = created["changes"]["local_amount"]
    assert local[1] == "-230.00"
    assert "System" in local[2]
    assert "Corrected by the system" in local[2]
    _screenshot(browser, "admin-history-transaction.png")

    # The account: its balance kept by the system, its manager gone.
    operating = Account.objects.get(name="Operating")
    browser.get(f"{site}/admin/ledger/account/{operating.pk}/history/")
    rows = _rows(browser)
    assert rows[-1]["action"] == "create"
    assert rows[-1]["actor_kind"] == "user"
    assert rows[-1]["message"] == "Open the operating account"
    erin_left = next(r for r in rows if r["message"].startswith("Erin left Acme"))
    assert erin_left["actor_kind"] == "system"
    old, new, _ = erin_left["changes"]["manager"]
    assert old.startswith("erin (deleted)")
    assert new is None
    balances = [
        r for r in rows if "balance" in r["changes"] and r["action"] == "update"
    ]
    assert balances
    assert {r["actor_kind"] for r in balances} == {"system"}
    _screenshot(browser, "admin-history-account.png")

    # The deleted travel account: find it, read its history, restore it.
    browser.get(f"{site}/admin/ledger/account/")
    _find(browser, By.LINK_TEXT, "DELETED ACCOUNTS").click()
    _find(browser, By.PARTIAL_LINK_TEXT, "Travel").click()
    banner = _find(browser, By.ID, "revy-deleted").text
    assert "This account was deleted" in banner
    assert "Acme Corp" in banner
    rows = _rows(browser)
    assert rows[0]["action"] == "delete"
    assert rows[0]["message"].startswith("Close the travel budget")
    _screenshot(browser, "admin-history-deleted.png")
    browser.find_element(By.ID, "revy-restore").click()
    message = _find(browser, By.CSS_SELECTOR, "ul.messagelist li.success").text
    assert "was restored, with 2 related objects" in message
    assert browser.find_element(By.NAME, "name").get_attribute("value") == "Travel"
    browser.get(f"{site}/admin/ledger/account/")
    names = [
        a.text for a in browser.find_elements(By.CSS_SELECTOR, "#result_list th a")
    ]
    assert "Travel" in names
    travel = Account.objects.get(name="Travel")
    assert travel.transactions.count() == 2
    browser.get(f"{site}/admin/ledger/account/{travel.pk}/history/")
    restored = _rows(browser)[0]
    assert restored["action"] == "create"
    assert restored["actor_kind"] == "user"
    assert "admin" in restored["actor"]
    assert restored["message"].startswith(f"Restore account {travel.pk}.")
    _screenshot(browser, "admin-history-restored.png")
