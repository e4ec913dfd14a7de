"""``RevyASGIMiddleware``: the per-request context around any ASGI app.

For applications outside Django's middleware stack: a Channels websocket
router, a mounted Starlette app, or a whole Django ASGI application. Each
HTTP request, and each websocket connection, gets one tracking context,
read from the same headers and resolved by the same resolvers as
:class:`~revy_mw.middleware.RevyMiddleware`.

Resolvers receive a :class:`ScopeRequest`: headers (``META``/``headers``),
method and path, and ``user`` when the scope has one (Channels'
``AuthMiddlewareStack``). ``UserResolver`` and ``OrganizationHeaderResolver``
need that user and raise :class:`~revy_mw.resolvers.UnsupportedRequest`
without it; header-only resolvers work anywhere.

- A bad commit message: HTTP 400, or the websocket handshake is refused.
- A refusal (403): if the response has not started, it is replaced by a
  403; a websocket handshake is closed with code 1008 instead of accepted.
- The server's ``receive`` and ``send`` are called outside the request's
  context, so a server that captures the caller's context in callbacks
  (CPython #140947) never hands it to the next request.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from django.http.request import HttpHeaders

from revy_mw.headers import CommitMessageError
from revy_mw.middleware import RequestScope, error_body, read_commit_message
from revy_mw.resolvers import (
    ResolverChain,
    ResolverSpec,
)

__all__ = ["RevyASGIMiddleware", "ScopeRequest"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_UNPREFIXED = {"CONTENT_TYPE", "CONTENT_LENGTH"}


class ScopeRequest:
    """What resolvers see of an ASGI connection."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        meta: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers") or ():
            name = raw_name.decode("latin-1")
            if "_" in name:
                # As Django does: X_Api_Token would pass a proxy that filters
                # X-Api-Token and then read as the same key.
                continue
            name = name.upper().replace("-", "_")
            key = name if name in _UNPREFIXED else f"HTTP_{name}"
            value = raw_value.decode("latin-1")
            meta[key] = f"{meta[key]},{value}" if key in meta else value
        self.META = meta
        self.headers = HttpHeaders(meta)
        self.method: str = scope.get("method", "GET")
        self.path: str = scope.get("path", "")
        if "user" in scope:
            self.user = scope["user"]
            self.auser = self._auser

    async def _auser(self) -> Any:
        return self.scope["user"]

    def __repr__(self) -> str:
        return f"<ScopeRequest {self.scope.get('type')} {self.path!r}>"


def _outside(call: Callable[..., Awaitable[Any]], outer: contextvars.Context) -> Any:
    """``call`` run as a task of the context the connection arrived in."""

    async def wrapped(*args: Any) -> Any:
        coroutine = call(*args)
        task: asyncio.Task[Any] = outer.run(asyncio.ensure_future, coroutine)
        return await task

    return wrapped


class _Guard:
    """Watches what the app sends, to decide and refuse before it starts."""

    def __init__(
        self,
        kind: str,
        request: ScopeRequest,
        scope: RequestScope,
        send: Send,
        receive: Receive,
    ) -> None:
        self.kind = kind
        self.request = request
        self.scope = scope
        self.server_send = send
        self.server_receive = receive
        self.started = False
        self.denied = False

    async def send(self, message: Message) -> None:
        if self.denied:
            return
        kind = message["type"]
        if not self.started and kind in ("http.response.start", "websocket.accept"):
            status = (
                message.get("status", 200) if kind == "http.response.start" else 200
            )
            actor = self.scope.actor
            if actor.requires_decision(status):
                await actor.asettle()
            if actor.refusal is not None:
                await self.deny()
                return
            self.started = True
        elif kind == "websocket.close":
            self.started = True
        await self.server_send(message)

    async def deny(self, status: int = 403, code: str = "", detail: str = "") -> None:
        refusal = self.scope.actor.refusal
        if refusal is not None and not detail:
            status, code, detail = refusal.status_code, refusal.code, refusal.detail
        self.denied = True
        await _deny(self.kind, self.request, self.server_send, status, code, detail)


async def _deny(
    kind: str, request: ScopeRequest, send: Send, status: int, code: str, detail: str
) -> None:
    if kind == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
        return
    content_type, body = error_body(
        request.META.get("HTTP_ACCEPT", ""),
        request.META.get("CONTENT_TYPE", ""),
        code,
        detail,
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode("latin-1")),
                (b"content-length", str(len(body)).encode("latin-1")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RevyASGIMiddleware(ResolverChain):
    """Open one tracking context per HTTP request or websocket connection.

    ``resolvers``: dotted paths, classes or instances to use instead of
    ``REVY_MW["ACTOR_RESOLVERS"]``.
    """

    def __init__(
        self, app: ASGIApp, resolvers: Sequence[ResolverSpec] | None = None
    ) -> None:
        super().__init__(resolvers)
        self.app = app

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.app!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        outer = contextvars.copy_context()
        request = ScopeRequest(scope)
        try:
            message = read_commit_message(request.META)
        except CommitMessageError as error:
            if kind == "websocket":
                await receive()  # websocket.connect
            await _deny(kind, request, send, 400, error.code, error.detail)
            return
        state = RequestScope(request, self.resolvers, message)
        guard = _Guard(kind, request, state, _outside(send, outer), receive)
        with state.context(root=True):
            try:
                await self.app(scope, _outside(receive, outer), guard.send)
            except Exception:
                # A refused write raises in the app: answer the refusal if
                # nothing was sent yet, or drop it if it has been answered.
                if state.actor.refusal is None or guard.started:
                    raise
                if not guard.denied:
                    await guard.deny()
                return
        if not guard.started and not guard.denied and state.actor.refusal is not None:
            await guard.deny()
