"""``RevyMiddleware``: one tracking context per request.

Under WSGI the middleware runs synchronously, under ASGI as a coroutine on
the event loop (no thread hop). For each request it:

1. reads the commit message header (:mod:`revy_mw.headers`); a bad one is
   answered with 400 before the view runs;
2. opens one :class:`revy_core.Context` around the rest of the stack, in one
   ``with`` block, with a lazy revision (created by the first change, shared
   by all of them) and a lazy actor (the resolver chain runs when the first
   change is recorded, so authentication done inside the view is seen);
3. after the view, runs the chain if a resolver insists
   (:meth:`~revy_mw.resolvers.ActorResolver.requires_decision`) and the
   actor was never needed, so a forged organization header is refused even
   by a view that writes nothing;
4. answers 403 when a resolver refused the request, whatever the view did;
5. wraps a streaming body so that each chunk is produced inside a fresh
   context with the same values: no context is held open across a
   ``yield``.

A request that writes nothing costs no query and writes no revision.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpResponse
from django.http.response import HttpResponseBase, StreamingHttpResponse

from revy_core import Context, LazyActor, LazyRevision
from revy_core.conf import get_revision_model
from revy_mw.conf import get_config
from revy_mw.headers import CommitMessageError, decode_commit_message
from revy_mw.resolvers import (
    ActorRefused,
    ActorResolver,
    aresolve_actor,
    get_resolvers,
    resolve_actor,
)

if TYPE_CHECKING:
    from django.db.models import Model
    from django.http import HttpRequest

__all__ = [
    "RequestActor",
    "RequestScope",
    "RevyMiddleware",
    "error_body",
    "read_commit_message",
]

logger = logging.getLogger("revy_mw")

_polluted_reported = False


def _new_revision() -> Model:
    return get_revision_model()()


def _report_polluted(depth: int) -> None:
    """A request started inside a context it did not open.

    Servers can hand a request the context variables of an earlier one
    (CPython #140947). The request runs on an empty stack of its own
    (``Context.isolated()``), so nothing of the stale context is seen; this
    is logged once per process.
    """
    global _polluted_reported
    if not _polluted_reported:
        _polluted_reported = True
        logger.warning(
            "revy: a request started inside %d tracking context(s) it did not "
            "open; the request runs isolated from them. This is reported once.",
            depth,
        )


@functools.lru_cache(maxsize=16)
def _deciders(resolvers: tuple[ActorResolver, ...]) -> tuple[ActorResolver, ...]:
    """The resolvers that may require a decision (not the default ``False``)."""
    return tuple(
        r
        for r in resolvers
        if type(r).requires_decision is not ActorResolver.requires_decision
    )


class RequestActor(LazyActor):
    """The actor of one request: the resolver chain, run at most once.

    It is the request's :class:`revy_core.LazyActor`, resolved by the first
    change recorded, in whatever thread makes it. Resolvers run with
    tracking disabled: what they write is not history. The outcome, an
    actor or an error, is kept: a refusal is raised again by every later
    change and turned into a 403 by the middleware.
    """

    __slots__ = ("request", "resolvers")

    def __init__(self, request: Any, resolvers: Sequence[ActorResolver]) -> None:
        # The chain takes the place of a factory (see _produce).
        self._factory = None  # type: ignore[assignment]
        self._lock = None
        self._done = False
        self._value = None
        self._error = None
        self._traceback = None
        self.request = request
        self.resolvers = tuple(resolvers)

    def __repr__(self) -> str:
        return f"<RequestActor {self.resolvers!r}>"

    def __call__(self) -> Model | None:
        """The actor (running the chain the first time)."""
        return self.resolve()

    def _produce(self) -> Model | None:
        with Context.as_disabled():
            return resolve_actor(self.request, self.resolvers)

    def fresh(self) -> RequestActor:
        return type(self)(self.request, self.resolvers)

    @property
    def done(self) -> bool:
        return self._done

    @property
    def value(self) -> Model | None:
        return self._value

    @property
    def error(self) -> Exception | None:
        return self._error

    def settle(self) -> None:
        """Run the chain now if it has not run (errors are kept, not raised)."""
        with contextlib.suppress(Exception):
            self.resolve()

    async def asettle(self) -> None:
        """The async twin of :meth:`settle`, through ``aresolve``."""
        if self._done:
            return
        value: Model | None = None
        error: Exception | None = None
        try:
            with Context.as_disabled():
                value = await aresolve_actor(self.request, self.resolvers)
        except Exception as exception:
            error = exception
        with self._guard():
            if not self._done:
                self._value, self._error, self._done = value, error, True
                if error is not None:
                    self._traceback = error.__traceback__

    def requires_decision(self, status: int) -> bool:
        """Whether the chain must run although no change needed the actor."""
        if self._done or status >= 400:
            return False
        deciders = _deciders(self.resolvers)
        if not deciders:
            return False
        request = self.request
        return any(r.requires_decision(request) for r in deciders)

    @property
    def refusal(self) -> ActorRefused | None:
        error = self._error
        return error if isinstance(error, ActorRefused) else None


class RequestScope:
    """The tracking values of one request, and fresh contexts carrying them.

    Every value is set, so a context left behind by a server (or a test
    around the request) is hidden from the request.
    """

    __slots__ = ("actor", "presets")

    def __init__(
        self, request: Any, resolvers: Sequence[ActorResolver], message: str | None
    ) -> None:
        self.actor = RequestActor(request, resolvers)
        self.presets: dict[str, Any] = {
            "actor": self.actor,
            "revision": LazyRevision(_new_revision),
            "revision_description": message,
            "object_delta_description": None,
            "attribute_delta_description": None,
            "deletion_description": None,
            "enabled": True,
        }

    def context(self, *, root: bool = False) -> Context:
        """A new context with the request's values.

        ``root``: this is the request's own boundary, which should start
        outside any context: the context is entered isolated, on an empty
        stack of its own (``Context.isolated()``), and a stack found there is
        reported.
        """
        if root:
            depth = Context.depth()
            if depth:
                _report_polluted(depth)
        return Context.from_values(self.presets, isolated=root)

    def reenter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Iterate ``iterable``, each step inside a fresh context."""
        iterator = iter(iterable)
        try:
            while True:
                with self.context():
                    try:
                        chunk = next(iterator)
                    except StopIteration:
                        return
                yield chunk
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                with self.context():
                    close()

    async def areenter(self, iterable: AsyncIterable[Any]) -> AsyncIterator[Any]:
        """Iterate ``iterable`` asynchronously, each step in a fresh context."""
        iterator = aiter(iterable)
        try:
            while True:
                with self.context():
                    try:
                        chunk = await anext(iterator)
                    except StopAsyncIteration:
                        return
                yield chunk
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with self.context():
                    await aclose()


def read_commit_message(meta: Any) -> str | None:
    """The commit message of a request's ``META`` (raises CommitMessageError)."""
    config = get_config()
    value = meta.get(config.commit_message_key)
    if value is None:
        return None
    return decode_commit_message(
        value,
        header=config.commit_message_header,
        max_length=config.commit_message_max_length,
        repair=config.repair_commit_message,
    )


def _wants_json(accept: str, content_type: str) -> bool:
    return "json" in accept.lower() or "json" in content_type.lower()


def error_body(
    accept: str, content_type: str, code: str, detail: str
) -> tuple[str, bytes]:
    """The content type and body of a 400 or 403 answered by revy.

    JSON (``{"detail": ..., "code": ...}``) when the client accepts or sends
    JSON, plain text otherwise.
    """
    if _wants_json(accept, content_type):
        body = json.dumps({"detail": detail, "code": code}, ensure_ascii=False)
        return "application/json", body.encode()
    return "text/plain; charset=utf-8", f"{detail}\n".encode()


def _error_response(
    request: HttpRequest, status: int, code: str, detail: str
) -> HttpResponse:
    meta = request.META
    content_type, body = error_body(
        meta.get("HTTP_ACCEPT", ""), meta.get("CONTENT_TYPE", ""), code, detail
    )
    return HttpResponse(body, status=status, content_type=content_type)


class RevyMiddleware:
    """Open one tracking context per request, with the request's actor.

    Add it after ``AuthenticationMiddleware``.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase]
        | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} get_response={self.get_response!r}>"

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        scope = self._begin(request)
        if isinstance(scope, HttpResponseBase):
            return scope
        with scope.context(root=True):
            response = self.get_response(request)
        if scope.actor.requires_decision(response.status_code):  # type: ignore[union-attr]
            scope.actor.settle()
        return self._finish(request, response, scope)  # type: ignore[arg-type]

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        scope = self._begin(request)
        if isinstance(scope, HttpResponseBase):
            return scope
        with scope.context(root=True):
            response = await self.get_response(request)  # type: ignore[misc]
        if scope.actor.requires_decision(response.status_code):
            await scope.actor.asettle()
        return self._finish(request, response, scope)

    def _begin(self, request: HttpRequest) -> RequestScope | HttpResponseBase:
        try:
            message = read_commit_message(request.META)
        except CommitMessageError as error:
            return _error_response(request, 400, error.code, error.detail)
        return RequestScope(request, get_resolvers(), message)

    def _finish(
        self, request: HttpRequest, response: HttpResponseBase, scope: RequestScope
    ) -> HttpResponseBase:
        actor = scope.actor
        if actor._error is None and not isinstance(response, StreamingHttpResponse):
            return response  # the usual answer: nothing to change
        refusal = actor.refusal
        if refusal is not None:
            return _error_response(
                request, refusal.status_code, refusal.code, refusal.detail
            )
        if (
            isinstance(response, StreamingHttpResponse)
            and getattr(response, "file_to_stream", None) is None
        ):
            if getattr(response, "is_async", False):
                response.streaming_content = scope.areenter(response.streaming_content)  # type: ignore[arg-type]
            else:
                response.streaming_content = scope.reenter(response.streaming_content)  # type: ignore[arg-type]
        return response
