"""A resolver written for the tests, as the docs show how to write one."""

from __future__ import annotations

from typing import Any

from revy_mw.resolvers import NOT_MINE, ActorRefused, ActorResolver


class ApiTokenResolver(ActorResolver):
    """The owner of the token in ``X-Api-Token``; refuses unknown tokens."""

    def requires_decision(self, request: Any) -> bool:
        return "HTTP_X_API_TOKEN" in request.META

    def resolve(self, request: Any) -> Any:
        key = request.META.get("HTTP_X_API_TOKEN")
        if key is None:
            return NOT_MINE
        from tests.mwapp.models import ApiToken

        token = ApiToken.objects.select_related("user").filter(key=key).first()
        if token is None:
            raise ActorRefused("X-Api-Token: unknown token.", code="bad_token")
        return token.user

    async def aresolve(self, request: Any) -> Any:
        key = request.META.get("HTTP_X_API_TOKEN")
        if key is None:
            return NOT_MINE
        from tests.mwapp.models import ApiToken

        token = await ApiToken.objects.select_related("user").filter(key=key).afirst()
        if token is None:
            raise ActorRefused("X-Api-Token: unknown token.", code="bad_token")
        return token.user
