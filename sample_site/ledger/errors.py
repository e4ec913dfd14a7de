"""Errors of the ledger's operations, shown by the API as JSON and by the admin
as messages."""

from __future__ import annotations

__all__ = ["Conflict", "Forbidden", "LedgerError", "NotFound"]


class LedgerError(Exception):
    """An operation was refused; ``message`` says why, for people."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(LedgerError):
    status = 404
    code = "not_found"


class Forbidden(LedgerError):
    status = 403
    code = "forbidden"


class Conflict(LedgerError):
    status = 409
    code = "conflict"
