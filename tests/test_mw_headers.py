"""The commit message header: decoding rules, and end to end."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from revy_core.models import Revision
from revy_mw.headers import (
    CommitMessageError,
    decode_commit_message,
    is_valid_header_name,
)
from tests.mwapp.helpers import TRANSPORTS, Caller, body

MESSAGE = "Düzeltme ✓"
#: What a server hands Django when the client sends MESSAGE as raw UTF-8.
ON_THE_WIRE = MESSAGE.encode().decode("latin-1")
RFC_8187 = "UTF-8''" + quote(MESSAGE, safe="")


# Decoding ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("Fix typo", "Fix typo"),
        ("  Fix typo  ", "Fix typo"),
        ("100% done", "100% done"),
        ("a,b", "a,b"),
        (ON_THE_WIRE, MESSAGE),
        (RFC_8187, MESSAGE),
        ("utf-8''D%C3%BCzeltme", "Düzeltme"),
        ("UTF-8'tr'D%C3%BCzeltme", "Düzeltme"),
        ("UTF-8''", None),
        (MESSAGE, MESSAGE),
    ],
)
def test_decoding(value, expected):
    assert decode_commit_message(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("D\xfczeltme", "not valid UTF-8"),
        ("UTF-8''D%FCzeltme", "not valid UTF-8"),
        ("UTF-8''two words", "not percent-encoded"),
        ("UTF-8''line%0Abreak", "U+000A"),
        ("bell\x07", "U+0007"),
        ("nul\x00", "U+0000"),
        ("tab\there", "U+0009"),
        ("UTF-8''c1%C2%85", "U+0085"),
        ("UTF-8''%E2%80%AEevil", "U+202E"),
        ("UTF-8''sep%E2%80%A8", "U+2028"),
        ("x" * 1001, "limit is 1000"),
    ],
)
def test_rejected(value, problem):
    with pytest.raises(CommitMessageError, match=re.escape(problem)):
        decode_commit_message(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("D\xfczeltme", "D\ufffdzeltme"),
        ("UTF-8''line%0Abreak", "line break"),
        ("bell\x07 ring", "bell ring"),
        ("tab\there", "tab here"),
        ("UTF-8''%E2%80%AEevil", "evil"),
        ("UTF-8''two words", "two words"),
        ("x" * 1001, "x" * 999 + "…"),
        ("\x07", None),
    ],
)
def test_repaired(value, expected):
    assert decode_commit_message(value, repair=True) == expected


def test_max_length_is_configurable():
    assert decode_commit_message("abcdef", max_length=6) == "abcdef"
    with pytest.raises(CommitMessageError):
        decode_commit_message("abcdefg", max_length=6)
    assert decode_commit_message("abcdefg", max_length=6, repair=True) == "abcde…"


@given(st.text(alphabet=st.characters(max_codepoint=255)))
def test_any_latin1_header_value_is_decoded_or_refused_cleanly(value):
    for repair in (False, True):
        try:
            message = decode_commit_message(value, repair=repair)
        except CommitMessageError:
            assert not repair
            continue
        if message is not None:
            assert len(message) <= 1000
            assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in message)
            assert message == message.strip()


@given(st.text())
def test_any_text_round_trips_through_rfc_8187_or_is_refused(text):
    value = "UTF-8''" + quote(text.encode("utf-8", "surrogatepass"), safe="")
    try:
        message = decode_commit_message(value)
    except CommitMessageError:
        return
    assert message == (text.strip() or None)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("X-Commit-Message", True),
        ("X-Org", True),
        ("x1", True),
        ("X_Commit", False),
        ("X Commit", False),
        ("", False),
        ("-X", False),
        ("X--Y", False),
        (None, False),
        (3, False),
    ],
)
def test_header_names(name, valid):
    assert is_valid_header_name(name) is valid


# End to end ----------------------------------------------------------------------

pytestmark_db = pytest.mark.django_db(transaction=True)


@pytestmark_db
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("value", [ON_THE_WIRE, RFC_8187])
@pytest.mark.parametrize("path", ["/sync/write", "/async/write"])
def test_non_ascii_message_end_to_end(transport, value, path):
    response = Caller(transport).post(path, headers={"X-Commit-Message": value})
    assert response.status_code == 200
    assert body(response)["description"] == MESSAGE
    assert Revision.objects.get().description == MESSAGE


@pytestmark_db
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "value", ["D\xfczeltme", "bell\x07", "UTF-8''nul%00", "x" * 1001, "UTF-8''a b"]
)
def test_bad_message_is_a_clear_400_and_nothing_runs(transport, value):
    response = Caller(transport).post(
        "/sync/write",
        headers={"X-Commit-Message": value, "Accept": "application/json"},
    )
    assert response.status_code == 400
    assert body(response)["code"] == "invalid_commit_message"
    assert "X-Commit-Message" in body(response)["detail"]
    assert Revision.objects.count() == 0


@pytestmark_db
@pytest.mark.parametrize("transport", TRANSPORTS)
@override_settings(REVY_MW={"INVALID_COMMIT_MESSAGE": "repair"})
def test_repair_policy_stores_a_clean_message(transport):
    response = Caller(transport).post(
        "/sync/write", headers={"X-Commit-Message": "UTF-8''a%00b%0Ac"}
    )
    assert response.status_code == 200
    assert Revision.objects.get().description == "ab c"


@pytestmark_db
@override_settings(
    REVY_MW={"COMMIT_MESSAGE_HEADER": "X-Why", "COMMIT_MESSAGE_MAX_LENGTH": 5}
)
def test_header_name_and_length_are_configurable():
    caller = Caller("wsgi")
    response = caller.post("/sync/write", headers={"X-Why": "short"})
    assert response.status_code == 200
    assert caller.post("/sync/write", headers={"X-Why": "longer"}).status_code == 400
    assert Revision.objects.get().description == "short"


@pytestmark_db
def test_a_commit_message_is_not_stored_without_a_write():
    caller = Caller("wsgi")
    assert (
        caller.get("/sync/read", headers={"X-Commit-Message": "x"}).status_code == 200
    )
    assert Revision.objects.count() == 0
