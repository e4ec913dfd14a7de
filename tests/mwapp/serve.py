"""Real servers for tests/test_mw_servers.py, run as subprocesses.

``python -m tests.mwapp.serve setup USERS ORGANIZATIONS``
    migrates the database named by REVY_MW_SERVER_DB, creates users (each
    with a session and an API token) and organizations, makes user ``i`` a
    member of organization ``i % ORGANIZATIONS``, and prints them as JSON.
``python -m tests.mwapp.serve wsgi PORT``
    serves the test project with a threaded WSGI server until stopped.
``python -m tests.mwapp.serve report``
    prints every object delta of an Account as JSON: the account's name,
    the delta's actor and its revision's description.

Under uvicorn, ``tests.mwapp.serve:application`` is the ASGI application.
Both servers also mount the plain apps of :mod:`tests.mwapp.plain` under
``/plain``, wrapped in RevyASGIMiddleware / RevyWSGIMiddleware.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.mwapp.server_settings")

#: Resolvers of the plain apps: API tokens in a header, else the system.
PLAIN_RESOLVERS = [
    "tests.mwapp.resolvers.ApiTokenResolver",
    "revy_mw.resolvers.SystemResolver",
]


def setup(users: int, organizations: int) -> dict[str, Any]:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from tests.mwapp.models import ApiToken, Membership
    from tests.testapp.models import Organization

    call_command("migrate", verbosity=0, interactive=False)
    orgs = [Organization.objects.create(name=f"org{i}") for i in range(organizations)]
    people = []
    for index in range(users):
        user = User.objects.create_user(f"user{index}")
        organization = orgs[index % organizations]
        Membership.objects.create(user=user, organization=organization)
        token = ApiToken.objects.create(key=f"token{index}", user=user)
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        people.append(
            {
                "id": user.pk,
                "token": token.key,
                "session": session.session_key,
                "organization": organization.pk,
            }
        )
    from django.db import connection

    connection.close()
    with sqlite3.connect(os.environ["REVY_MW_SERVER_DB"]) as db:
        db.execute("PRAGMA journal_mode=WAL")
    return {"users": people, "organizations": [o.pk for o in orgs]}


def report() -> list[dict[str, Any]]:
    import django

    django.setup()
    from django.contrib.contenttypes.models import ContentType

    from revy_core.models import AttributeDelta, ObjectDelta
    from tests.testapp.models import Account

    names = dict(Account.objects.values_list("pk", "name"))
    account_type = ContentType.objects.get_for_model(Account)
    rows = []
    for model in (ObjectDelta, AttributeDelta):
        deltas = model.objects.filter(content_type=account_type).select_related(
            "actor_type", "revision"
        )
        for delta in deltas:
            actor = None
            actor_type = delta.actor_type
            if actor_type is not None:
                kind = f"{actor_type.app_label}.{actor_type.model}"
                actor = f"{kind}:{delta.actor_id}"
            rows.append(
                {
                    "kind": model.__name__,
                    "name": names.get(int(delta.content_id)),
                    "actor": actor,
                    "revision": delta.revision_id,
                    "description": delta.revision.description,
                }
            )
    return rows


def _check_depth(when: str, path: Any) -> None:
    """Outside the apps, no tracking context may be active."""
    from revy_core import Context

    depth = Context.depth()
    if depth:
        print(f"revy-depth {depth} {when} {path}", file=sys.stderr, flush=True)


def _plain_wsgi() -> Any:
    from revy_mw.wsgi import RevyWSGIMiddleware
    from tests.mwapp.plain import wsgi_app

    return RevyWSGIMiddleware(wsgi_app, resolvers=PLAIN_RESOLVERS)


def serve_wsgi(port: int) -> None:
    import django
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    django.setup()
    django_app = WSGIHandler()
    plain = _plain_wsgi()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        _check_depth("before", environ.get("PATH_INFO"))
        if environ.get("PATH_INFO", "").startswith("/plain"):
            result = plain(environ, start_response)
        else:
            result = django_app(environ, start_response)
        _check_depth("after", environ.get("PATH_INFO"))
        return result

    class Server(ThreadedWSGIServer):
        request_queue_size = 1024

    class Handler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = Server(("127.0.0.1", port), Handler)
    server.set_app(app)
    print("ready", flush=True)
    server.serve_forever()


class _ASGIApplication:
    """Django's ASGI application, and the plain app under /plain."""

    def __init__(self) -> None:
        from django.core.asgi import get_asgi_application

        from revy_mw.asgi import RevyASGIMiddleware
        from tests.mwapp.plain import asgi_app

        self.django_app = get_asgi_application()
        self.plain = RevyASGIMiddleware(asgi_app, resolvers=PLAIN_RESOLVERS)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        _check_depth("before", scope.get("path"))
        if scope.get("path", "").startswith("/plain"):
            await self.plain(scope, receive, send)
        else:
            await self.django_app(scope, receive, send)
        _check_depth("after", scope.get("path"))


def __getattr__(name: str) -> Any:
    # uvicorn imports ``application``; the CLI commands never build it.
    if name == "application":
        app = _ASGIApplication()
        globals()["application"] = app
        return app
    raise AttributeError(name)


def main(argv: list[str]) -> None:
    command = argv[0]
    if command == "setup":
        print(json.dumps(setup(int(argv[1]), int(argv[2]))))
    elif command == "report":
        print(json.dumps(report()))
    elif command == "wsgi":
        serve_wsgi(int(argv[1]))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
