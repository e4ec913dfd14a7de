"""Plain ASGI and WSGI applications for the wrapper tests and servers.

They use Django models but not Django's request handling, as a Channels
consumer or a mounted WSGI app would.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async

from revy_core import Context


def _create(name: str) -> dict[str, Any]:
    from tests.testapp.models import Account

    account = Account.objects.create(name=name)
    return {"account": account.pk, "depth": Context.depth()}


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    """HTTP: writes one Account per request. Websocket: one per message."""
    if scope["type"] == "http":
        while True:
            message = await receive()
            if not message.get("more_body"):
                break
        data = await sync_to_async(_create)(scope.get("path", "/"))
        payload = json.dumps(data).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return
    if scope["type"] == "websocket":
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            data = await sync_to_async(_create)(message.get("text") or "ws")
            await send({"type": "websocket.send", "text": json.dumps(data)})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
    """Writes one Account per chunk of its body, lazily."""
    start_response("200 OK", [("Content-Type", "text/plain")])

    def chunks() -> Any:
        for index in range(2):
            data = _create(f"{environ.get('PATH_INFO', '/')}-{index}")
            yield f"{data['account']}:{data['depth']}\n".encode()

    return chunks()
