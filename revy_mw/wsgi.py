"""``RevyWSGIMiddleware``: the per-request context around any WSGI app.

For WSGI applications outside Django's middleware stack (a mounted app, a
bare WSGI callable that uses Django models). Each request gets one tracking
context, read from the same headers and resolved by the same resolvers as
:class:`~revy_mw.middleware.RevyMiddleware`.

Resolvers receive an :class:`EnvironRequest` (headers in ``META`` and
``headers``, method, path): it has no user, so ``UserResolver`` and
``OrganizationHeaderResolver`` raise
:class:`~revy_mw.resolvers.UnsupportedRequest` there; header-only resolvers
work. A bad commit message is answered with 400; a refusal replaces the
response with a 403 if ``start_response`` had not been called yet. The
response body is produced one chunk at a time, each inside a fresh context
with the same values: no context is held open between chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from django.http.request import HttpHeaders

from revy_mw.headers import CommitMessageError
from revy_mw.middleware import RequestScope, error_body, read_commit_message
from revy_mw.resolvers import (
    ResolverChain,
    ResolverSpec,
)

__all__ = ["EnvironRequest", "RevyWSGIMiddleware"]

StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_STATUS_TEXT = {400: "400 Bad Request", 403: "403 Forbidden"}


class EnvironRequest:
    """What resolvers see of a WSGI request."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.META = environ
        self.headers = HttpHeaders(environ)
        self.method: str = environ.get("REQUEST_METHOD", "GET")
        self.path: str = environ.get("PATH_INFO", "")

    def __repr__(self) -> str:
        return f"<EnvironRequest {self.method} {self.path!r}>"


def _ignore(data: bytes) -> None:
    return None


class _Exchange:
    """One request: wraps ``start_response`` to decide before it starts."""

    def __init__(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        scope: RequestScope,
    ) -> None:
        self.environ = environ
        self.server_start = start_response
        self.scope = scope
        self.started = False
        self.denied: bytes | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        try:
            code = int(status.split(" ", 1)[0])
        except ValueError:
            code = 500
        actor = self.scope.actor
        if not self.started and actor.requires_decision(code):
            actor.settle()
        if actor.refusal is not None and not self.started:
            self.deny()
            return _ignore
        self.started = True
        return self.server_start(status, headers, exc_info)

    def deny(self, status: int = 403, code: str = "", detail: str = "") -> None:
        refusal = self.scope.actor.refusal
        if refusal is not None and not detail:
            status, code, detail = refusal.status_code, refusal.code, refusal.detail
        self.denied = deny(self.environ, self.server_start, status, code, detail)
        self.started = True


def deny(
    environ: dict[str, Any],
    start_response: StartResponse,
    status: int,
    code: str,
    detail: str,
) -> bytes:
    """Start a revy error response; returns its body."""
    content_type, body = error_body(
        environ.get("HTTP_ACCEPT", ""), environ.get("CONTENT_TYPE", ""), code, detail
    )
    start_response(
        _STATUS_TEXT.get(status, f"{status} Error"),
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    return body


class RevyWSGIMiddleware(ResolverChain):
    """Open one tracking context per WSGI request.

    ``resolvers``: dotted paths, classes or instances to use instead of
    ``REVY_MW["ACTOR_RESOLVERS"]``.
    """

    def __init__(
        self, app: WSGIApp, resolvers: Sequence[ResolverSpec] | None = None
    ) -> None:
        super().__init__(resolvers)
        self.app = app

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.app!r}>"

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        request = EnvironRequest(environ)
        try:
            message = read_commit_message(environ)
        except CommitMessageError as error:
            return [deny(environ, start_response, 400, error.code, error.detail)]
        scope = RequestScope(request, self.resolvers, message)
        exchange = _Exchange(environ, start_response, scope)
        with scope.context(root=True):
            try:
                result = self.app(environ, exchange.start_response)
            except Exception:
                if scope.actor.refusal is None or exchange.started:
                    raise
                exchange.deny()
                assert exchange.denied is not None
                return [exchange.denied]
        return self._body(result, scope, exchange)

    def _body(
        self, result: Iterable[bytes], scope: RequestScope, exchange: _Exchange
    ) -> Iterator[bytes]:
        iterator = iter(result)
        try:
            while exchange.denied is None:
                with scope.context():
                    try:
                        chunk = next(iterator)
                    except StopIteration:
                        break
                    except Exception:
                        if scope.actor.refusal is None:
                            raise
                        if exchange.denied is None:
                            if exchange.started:
                                raise
                            exchange.deny()
                        break
                if (
                    exchange.denied is None
                    and scope.actor.refusal is not None
                    and not exchange.started
                ):
                    exchange.deny()
                if exchange.denied is not None:
                    break
                yield chunk
            if exchange.denied is not None:
                yield exchange.denied
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                with scope.context():
                    close()
