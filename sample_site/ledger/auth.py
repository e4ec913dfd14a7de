"""API authentication: the Django session (browsers, the admin) or a bearer
token (``Authorization: Bearer <token>``). Both are async, so an async
endpoint never blocks its event loop on the user lookup."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer

from sample_site.ledger.models import ApiToken

__all__ = ["BearerTokenAuth", "SessionAuth"]


class SessionAuth(APIKeyCookie):
    """The logged-in user of the Django session (CSRF-checked on writes)."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        # No session cookie: not ours (and no CSRF to check), so a client
        # without credentials is told 401, not a CSRF failure.
        if self.param_name not in request.COOKIES:
            return None
        return super()._get_key(request)

    async def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if key is None:
            return None
        auser = getattr(request, "auser", None)
        if auser is not None:
            user = await auser()
        else:  # Django 4.2
            user = await sync_to_async(get_user)(request)
        if user.is_authenticated and user.is_active:
            return user
        return None


class BearerTokenAuth(HttpBearer):
    """A user's API token; see ``ApiToken``."""

    async def authenticate(self, request: HttpRequest, token: str) -> Any:
        api_token = await ApiToken.objects.afor_secret(token)
        if api_token is None or not api_token.user.is_active:
            return None
        return api_token.user
