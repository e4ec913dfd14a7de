"""Secrets never land in history; the suite-wide scan that proves it works.

tests/conftest.py scans revy's tables after every test that used the
database (``tests.history_secrets.scan``) and fails the session on any
finding. These tests show that the scan finds each kind of secret, and that
the ways a secret could reach history (a password set, a login, a masked
field, a request through the middleware) leave none.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from revy_core import Context
from revy_core.models import AttributeDelta, ObjectDelta, Revision
from tests.history_secrets import scan
from tests.mwapp.helpers import Caller
from tests.testapp.models import Profile

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def _planted(value: str, field_name: str = "note") -> list[str]:
    """What the scan finds once ``value`` is stored in a delta (then undone)."""
    with transaction.atomic():
        revision = Revision.objects.create(description="planted")
        parent = ObjectDelta.objects.create(
            revision=revision,
            action=ObjectDelta.ACTION_UPDATE,
            content_type_id=1,
            content_id="1",
        )
        AttributeDelta.objects.create(
            revision=revision,
            parent=parent,
            action=AttributeDelta.ACTION_SET,
            content_type_id=1,
            content_id="1",
            field_name=field_name,
            old_value=None,
            new_value=value,
        )
        found = scan()
        transaction.set_rollback(True)
    return found


@pytest.mark.parametrize(
    "value",
    [
        "md5$salt$0123456789abcdef",
        "pbkdf2_sha256$870000$salt$hash=",
        "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA",
        "bcrypt_sha256$$2b$12$abcdefghijklmnopqrstuv",
    ],
)
def test_the_scan_finds_a_password_hash(value):
    assert any("a password hash" in f for f in _planted(value))


def test_the_scan_finds_a_session_key_a_live_hash_and_a_masked_value():
    user = User.objects.create_user("carol", password="not in history")
    Profile.objects.create(user=user, secret="the secret value")
    Caller("wsgi").login(user)
    from django.contrib.sessions.models import Session

    key = Session.objects.get().session_key
    assert any("a session key" in f for f in _planted(f"cookie {key}"))
    assert any("masked" in f for f in _planted("the secret value"))
    unprefixed = user.password.split("$", 1)[1]
    assert _planted(unprefixed) == []  # not a hash by its prefix, nor live
    assert any("password hash of user" in f for f in _planted(user.password))


def test_passwords_logins_and_masked_fields_leave_no_secret():
    with Context(revision_description="signup"):
        user = User.objects.create_user("dave", password="first password")
        profile = Profile.objects.create(user=user, secret="first secret")
    with Context():
        user.set_password("second password")
        user.save()
        profile.secret = "second secret"
        profile.save()
        profile.delete()
        user.delete()
    assert ObjectDelta.objects.count() == 6
    assert scan() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("transport", ["wsgi", "asgi"])
def test_a_request_that_changes_a_password_and_logs_in_leaves_no_secret(transport):
    user = User.objects.create_user("erin", password="old password")
    caller = Caller(transport)
    caller.login(user)
    response = caller.post(
        "/sync/write?name=with-a-session", headers={"X-Commit-Message": "write"}
    )
    assert response.status_code == 200
    with Context():
        user.set_password("new password")
        user.save()
    assert AttributeDelta.objects.filter(field_name="password").exists()
    assert scan() == []


#: A plugin for the sample site's suite: it keeps the first test that uses the
#: database and, once that test has run (before its teardown), leaves a user's
#: password hash in a revision's description.
PLANTING_PLUGIN = """
import pytest


def pytest_collection_modifyitems(config, items):
    items[:] = [item for item in items if "db" in item.fixturenames][:1]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    finally:
        from django.contrib.auth import get_user_model
        from revy_core.models import Revision

        users = get_user_model()._default_manager
        user = users.create_user("planted", password="planted password")
        Revision.objects.create(description=f"leaked {user.password}")
"""


def test_a_secret_left_in_history_fails_the_sample_sites_suite(tmp_path):
    """The sample site's conftest.py scans history like tests/conftest.py:
    its suite fails at the end of the session when a test leaves a secret."""
    (tmp_path / "planting.py").write_text(PLANTING_PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env["REVY_SAMPLE_DB"] = str(tmp_path / "sample.sqlite3")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--ds=sample_site.settings",
            "-p",
            "planting",
            "sample_site/tests",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    # The test itself passes; the session's end fails, naming it.
    assert done.returncode == 1, output[-3000:]
    assert re.search(r"\b1 passed, .*\b1 error\b", output), output[-3000:]
    test = r"sample_site/tests/\S+::\S+"
    assert re.search(rf"{test}: revy_revision \d+: a password hash \(", output)
    assert re.search(rf"{test}: revy_revision \d+: the password hash of user", output)
