"""Views the middleware tests call through Django's Client and AsyncClient.

Each writing view creates an Account and then renames it: two changes that
must share one revision and one actor. Views answer JSON describing what
they saw, so tests (and the server load tests) can check attribution.
The test project has no CsrfViewMiddleware.
"""

from __future__ import annotations

import threading
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from ninja import NinjaAPI, Schema
from ninja.security import HttpBearer, SessionAuth

from revy_core import Context
from tests.mwapp.models import ApiToken
from tests.testapp.models import Account


def _name(request: HttpRequest) -> str:
    return request.GET.get("name") or request.POST.get("name") or "account"


def _described(account: Account) -> dict[str, Any]:
    return {
        "account": account.pk,
        "depth": Context.depth(),
        "description": Context.get_revision_description(),
        "thread": threading.get_ident(),
    }


def _write(name: str) -> Account:
    account = Account.objects.create(name=name)
    account.name = f"{name}!"
    account.save()
    return account


async def _awrite(name: str) -> Account:
    account = await Account.objects.acreate(name=name)
    account.name = f"{name}!"
    await account.asave()
    return account


# Plain Django views ------------------------------------------------------------


def sync_write(request: HttpRequest) -> HttpResponse:
    return JsonResponse(_described(_write(_name(request))))


async def async_write(request: HttpRequest) -> HttpResponse:
    return JsonResponse(_described(await _awrite(_name(request))))


@Context(object_delta_description="decorated")
def decorated_write(request: HttpRequest) -> HttpResponse:
    return JsonResponse(_described(_write(_name(request))))


def sync_read(request: HttpRequest) -> HttpResponse:
    return HttpResponse("nothing written")


async def async_read(request: HttpRequest) -> HttpResponse:
    return HttpResponse("nothing written")


def _actor_label(actor: Any) -> str | None:
    return None if actor is None else f"{actor._meta.label_lower}:{actor.pk}"


def sync_probe(request: HttpRequest) -> HttpResponse:
    """What the request's context holds (resolves the actor)."""
    return JsonResponse(
        {
            "depth": Context.depth(),
            "description": Context.get_revision_description(),
            "actor": _actor_label(Context.get_actor()),
            "enabled": Context.is_enabled(),
        }
    )


async def async_probe(request: HttpRequest) -> HttpResponse:
    actor = await sync_to_async(Context.get_actor)()
    return JsonResponse(
        {
            "depth": Context.depth(),
            "description": Context.get_revision_description(),
            "actor": _actor_label(actor),
            "enabled": Context.is_enabled(),
            "thread": threading.get_ident(),
        }
    )


def sync_fail(request: HttpRequest) -> HttpResponse:
    _write(_name(request))
    raise ValueError("the view failed after writing")


def sync_swallow(request: HttpRequest) -> HttpResponse:
    """Catches the refusal and pretends all went well."""
    try:
        _write(_name(request))
    except PermissionDenied:
        return HttpResponse("swallowed")
    return HttpResponse("written")


def sync_stream(request: HttpRequest) -> StreamingHttpResponse:
    name = _name(request)

    def chunks() -> Any:
        for index in range(3):
            account = Account.objects.create(name=f"{name}-{index}")
            yield f"{account.pk}:{Context.depth()}\n"

    return StreamingHttpResponse(chunks())


async def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    name = _name(request)

    async def chunks() -> Any:
        for index in range(3):
            account = await Account.objects.acreate(name=f"{name}-{index}")
            yield f"{account.pk}:{Context.depth()}\n"

    return StreamingHttpResponse(chunks())


# django-ninja ------------------------------------------------------------------


class TokenAuth(HttpBearer):
    async def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = await ApiToken.objects.select_related("user").filter(key=token).afirst()
        return None if found is None else found.user


api = NinjaAPI(urls_namespace="mw")


class AccountIn(Schema):
    name: str = "account"


@api.post("/session/accounts", auth=SessionAuth(csrf=False))
async def ninja_session_write(request: HttpRequest, payload: AccountIn) -> Any:
    return _described(await _awrite(payload.name))


@api.post("/bearer/accounts", auth=TokenAuth())
async def ninja_bearer_write(request: HttpRequest, payload: AccountIn) -> Any:
    return _described(await _awrite(payload.name))


@api.get("/bearer/read", auth=TokenAuth())
async def ninja_bearer_read(request: HttpRequest) -> Any:
    return {"read": True}


@api.post("/sync/accounts", auth=TokenAuth())
def ninja_sync_write(request: HttpRequest, payload: AccountIn) -> Any:
    return _described(_write(payload.name))
