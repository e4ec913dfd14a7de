"""The commit message: how the ``X-Commit-Message`` header is read.

Header values are untrusted input, and HTTP carries bytes: WSGI and ASGI
servers hand them to Django as latin-1 text. A client sends a message in
one of two forms:

1. **Raw UTF-8.** The header bytes are UTF-8. revy turns Django's latin-1
   text back into the bytes the client sent and decodes them as UTF-8.
   Pure ASCII needs nothing more; ``%`` has no special meaning here.
2. **RFC 8187.** ``UTF-8''`` followed by the percent-encoded UTF-8 bytes,
   e.g. ``UTF-8''D%C3%BCzeltme%20%E2%9C%93``. The charset is case-insensitive
   and only UTF-8 is accepted; a language tag between the quotes is ignored.
   This form reaches the server through any proxy, and can carry line breaks.

Then the message is trimmed of surrounding spaces (an empty message means
no message) and checked:

- bytes that are not UTF-8 (or broken percent-encoding);
- control characters: Unicode category ``Cc`` (C0, DEL, C1: NUL, tab, line
  feed ...), the line and paragraph separators U+2028 and U+2029, and the
  bidirectional overrides U+202A-U+202E and U+2066-U+2069;
- more than ``COMMIT_MESSAGE_MAX_LENGTH`` characters (default 1000).

With ``INVALID_COMMIT_MESSAGE = "reject"`` (the default) any of these is
answered with a 400 that says what is wrong, and the view does not run.
With ``"repair"`` the message is stored repaired: undecodable bytes become
U+FFFD, tabs and line breaks become a space, other control characters are
removed, and a long message is cut to the limit, ending in ``…``.

Servers join repeated headers with a comma (``a,b``) before Django sees
them, so a repeated ``X-Commit-Message`` is read as one message holding the
joined text. Send it once.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

__all__ = [
    "CommitMessageError",
    "decode_commit_message",
    "is_valid_header_name",
]

_EXT_VALUE = re.compile(r"(?is)utf-8'[a-z0-9-]*'(.*)")
_PCT_ENCODED = re.compile(r"(?:[A-Za-z0-9!#$&+\-.^_`|~]|%[0-9A-Fa-f]{2})*")
_HEADER_NAME = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
_WHITESPACE = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")
_TRUNCATED = "…"


class CommitMessageError(ValueError):
    """A commit message that cannot be stored as sent (answered with 400)."""

    code = "invalid_commit_message"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def is_valid_header_name(name: object) -> bool:
    """Whether ``name`` is a header name every server passes on unchanged.

    Letters and digits in hyphen-separated words: underscores are dropped
    or confused with hyphens by servers, so they are not accepted.
    """
    return isinstance(name, str) and _HEADER_NAME.fullmatch(name) is not None


#: Unicode category Cc (C0, DEL, C1), line and paragraph separators, and
#: the bidirectional overrides and isolates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _is_control(char: str) -> bool:
    return _CONTROL.match(char) is not None


def _decode(value: str, header: str, repair: bool) -> str:
    errors = "replace" if repair else "strict"
    match = _EXT_VALUE.fullmatch(value)
    if match is not None:
        encoded = match.group(1)
        if not repair and _PCT_ENCODED.fullmatch(encoded) is None:
            raise CommitMessageError(
                f"{header} uses RFC 8187 (UTF-8'') but is not percent-encoded: "
                "encode every byte outside letters, digits and !#$&+-.^_`|~ "
                "as %XX."
            )
        data = unquote_to_bytes(encoded)
    else:
        try:
            data = value.encode("latin-1")
        except UnicodeEncodeError:
            # Already text (not from a server): nothing to repair.
            return value
        if data.isascii():
            return value
    try:
        return data.decode("utf-8", errors)
    except UnicodeDecodeError:
        raise CommitMessageError(
            f"{header} is not valid UTF-8. Send the message as UTF-8 bytes, or "
            "percent-encoded as RFC 8187: UTF-8''D%C3%BCzeltme."
        ) from None


def decode_commit_message(
    value: str | None,
    *,
    header: str = "X-Commit-Message",
    max_length: int = 1000,
    repair: bool = False,
) -> str | None:
    """The message a header value carries, or ``None`` when there is none.

    Raises :class:`CommitMessageError` for a message that is undecodable,
    holds control characters or is too long, unless ``repair`` is true.
    """
    if value is None:
        return None
    value = value.strip(" \t")
    if not value:
        return None
    text = _decode(value, header, repair)
    control = _CONTROL.search(text)
    if control is not None:
        if not repair:
            bad = control.group()
            raise CommitMessageError(
                f"{header} contains the control character U+{ord(bad):04X}; "
                "control characters are not accepted."
            )
        text = "".join(
            " " if char in _WHITESPACE else char
            for char in text
            if char in _WHITESPACE or not _is_control(char)
        )
    text = text.strip()
    if len(text) > max_length:
        if not repair:
            raise CommitMessageError(
                f"{header} is {len(text)} characters long; the limit is {max_length}."
            )
        text = text[: max_length - 1].rstrip() + _TRUNCATED
    return text or None
