"""Actor resolvers: who a request acts as.

A resolver is a class with ``resolve(request)`` and its async twin
``aresolve(request)``. It answers one of:

- a model instance: the actor (a user, an organization ...);
- ``None``: the system;
- :data:`NOT_MINE`: not for this resolver, ask the next one;

or refuses the request by raising :class:`ActorRefused` (a 403).

``REVY_MW["ACTOR_RESOLVERS"]`` lists dotted class paths, tried in order;
the first answer that is not ``NOT_MINE`` wins, and when every resolver
passes, the actor is the system. The classes are instantiated once, like
authentication backends, and again after ``REVY_MW`` changes.

The middleware runs the chain lazily, when the first change is recorded,
so authentication that runs inside the view (django-ninja's ``auth=``) is
seen. A resolver whose :meth:`ActorResolver.requires_decision` is true for
a request makes the middleware run the chain after the view even when
nothing was written: a request that claims to act for an organization is
always checked.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.exceptions import (
    FieldDoesNotExist,
    ImproperlyConfigured,
    PermissionDenied,
    ValidationError,
)
from django.core.signals import setting_changed
from django.db import connections, router
from django.utils.functional import LazyObject
from django.utils.module_loading import import_string

from revy_mw.conf import meta_key, mw_settings

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.db.models import Field, Model

__all__ = [
    "NOT_MINE",
    "ActorRefused",
    "ActorResolver",
    "OrganizationHeaderResolver",
    "ResolverChain",
    "ResolverSpec",
    "SystemResolver",
    "UnsupportedRequest",
    "UserResolver",
    "arequest_user",
    "aresolve_actor",
    "get_resolvers",
    "request_user",
    "resolve_actor",
]


class _NotMine:
    """The answer of a resolver that leaves the request to the next one."""

    _instance: _NotMine | None = None

    def __new__(cls) -> _NotMine:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_MINE"

    def __bool__(self) -> bool:
        return False


NOT_MINE: Final = _NotMine()

#: What a resolver answers: an actor, ``None`` (the system) or NOT_MINE.
Resolution: TypeAlias = "Model | _NotMine | None"


class ActorRefused(PermissionDenied):
    """A resolver refuses the request: answered with a 403 and ``detail``.

    Raised while the first change is being recorded, it rolls that change
    back (history is written in the change's transaction), and every later
    change of the request raises it again, so nothing is written.
    """

    status_code = 403

    def __init__(self, detail: str, code: str = "actor_refused") -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


class UnsupportedRequest(ImproperlyConfigured):
    """A resolver was given a request it cannot work with.

    ``UserResolver`` needs a Django request (or an ASGI scope with a
    ``"user"``, as Channels' ``AuthMiddlewareStack`` sets); the ASGI and WSGI
    wrappers hand resolvers a request that only has headers.
    """


class ActorResolver:
    """Base of the resolvers. Subclass it and override :meth:`resolve`.

    :meth:`aresolve` runs :meth:`resolve` in a thread by default; override
    it when the answer can be found without blocking.
    """

    def resolve(self, request: Any) -> Resolution:
        raise NotImplementedError(f"{type(self).__name__} must define resolve().")

    async def aresolve(self, request: Any) -> Resolution:
        return await sync_to_async(self.resolve)(request)

    def requires_decision(self, request: Any) -> bool:
        """Whether the request must be decided even if it writes nothing.

        Called after the view when the actor was never needed; it must not
        touch the database. False by default.
        """
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


# Users ----------------------------------------------------------------------

_ABSENT: Any = object()


def _is_lazy(value: Any) -> bool:
    # type(), not isinstance(): a LazyObject answers isinstance() by loading.
    return issubclass(type(value), LazyObject)


def _unwrapped(user: Any) -> Any:
    """The instance behind ``request.user``'s lazy object, once loaded."""
    if _is_lazy(user):
        user.is_authenticated  # noqa: B018 (loads it)
        return user._wrapped
    return user


def _auth_user(auth: Any) -> AbstractBaseUser | None:
    from django.contrib.auth.base_user import AbstractBaseUser

    if isinstance(auth, AbstractBaseUser) and auth.is_authenticated:
        return _unwrapped(auth)  # type: ignore[no-any-return]
    return None


def _unsupported(request: Any) -> UnsupportedRequest:
    return UnsupportedRequest(
        f"{type(request).__name__} has no user: the user is known inside "
        "Django's middleware (after AuthenticationMiddleware), in "
        "django-ninja's request.auth, or in an ASGI scope's 'user'. Outside "
        "them, configure resolvers that only read headers."
    )


def request_user(request: Any) -> AbstractBaseUser | None:
    """The authenticated user of a request, or ``None`` (synchronous).

    A user in ``request.auth`` (set by django-ninja's ``auth=``) comes first,
    then ``request.user``.
    """
    user = _auth_user(getattr(request, "auth", None))
    if user is not None:
        return user
    user = getattr(request, "user", _ABSENT)
    if user is _ABSENT:
        raise _unsupported(request)
    if user is None or not user.is_authenticated:
        return None
    return _unwrapped(user)  # type: ignore[no-any-return]


async def arequest_user(request: Any) -> AbstractBaseUser | None:
    """The authenticated user of a request, or ``None`` (asynchronous).

    Uses ``await request.auser()``, never ``request.user``, which would query
    the database from the event loop.
    """
    auth = getattr(request, "auth", None)
    if auth is not None and not _is_lazy(auth):
        user = _auth_user(auth)
        if user is not None:
            return user
    auser = getattr(request, "auser", None)
    if auser is not None:
        found = await auser()
    elif hasattr(request, "user"):  # Django < 5.0 has no auser().

        def load() -> Any:
            return _unwrapped(request.user)

        found = await sync_to_async(load)()
    else:
        raise _unsupported(request)
    if found is None or not found.is_authenticated:
        return None
    return _unwrapped(found)  # type: ignore[no-any-return]


class UserResolver(ActorResolver):
    """The authenticated user; NOT_MINE for an anonymous request.

    A user instance in ``request.auth`` (django-ninja) counts as the user.
    """

    def resolve(self, request: Any) -> Resolution:
        user = request_user(request)
        return NOT_MINE if user is None else user

    async def aresolve(self, request: Any) -> Resolution:
        user = await arequest_user(request)
        return NOT_MINE if user is None else user


# Organizations ----------------------------------------------------------------


class OrganizationHeaderResolver(ActorResolver):
    """The organization named in ``ORGANIZATION_HEADER``, if the user may act.

    Without the header: NOT_MINE. With it, the request acts for the
    organization of ``ORGANIZATION_MODEL`` whose ``ORGANIZATION_LOOKUP_FIELD``
    equals the header value, when ``CAN_ACT_FOR_ORGANIZATION(user,
    organization)`` is true. Otherwise it is refused with a 403, and never
    falls back to the user:

    - ``organization_unsupported``: ``ORGANIZATION_MODEL`` is not set;
    - ``organization_malformed``: empty, longer than :attr:`max_length`, or
      not a value of the lookup field (``abc`` for an integer key);
    - ``organization_anonymous``: the request has no authenticated user;
    - ``organization_forbidden``: no such organization, or the user may not
      act for it (one answer for both, so ids cannot be probed).
    """

    #: Longest header value looked up.
    max_length = 255

    def __init__(self) -> None:
        from django.apps import apps

        self.header = mw_settings.organization_header
        self.meta_key = meta_key(self.header)
        label = mw_settings.organization_model
        self.model: type[Model] | None = (
            None if label is None else apps.get_model(label)
        )
        self.lookup = mw_settings.organization_lookup_field
        self.can_act = mw_settings.can_act_for_organization
        self.field: Field[Any, Any] | None = None
        if self.model is not None:
            meta = self.model._meta
            self.field = meta.pk if self.lookup == "pk" else meta.get_field(self.lookup)

    def requires_decision(self, request: Any) -> bool:
        return self.meta_key in request.META

    def _refuse(self, code: str, detail: str) -> ActorRefused:
        return ActorRefused(f"{self.header}: {detail}", code=f"organization_{code}")

    def _parse(self, raw: str) -> Any:
        value = raw.strip()
        if self.model is None or self.field is None:
            raise self._refuse(
                "unsupported",
                "this site does not let requests act for an organization.",
            )
        shown = value[:40] + ("…" if len(value) > 40 else "")
        malformed = self._refuse(
            "malformed", f"{shown!r} is not a valid organization identifier."
        )
        if not value or len(value) > self.max_length:
            raise malformed
        try:
            parsed = self.field.to_python(value)
        except (ValidationError, ValueError, TypeError, FieldDoesNotExist):
            raise malformed from None
        if parsed is None or parsed == "":
            raise malformed
        if isinstance(parsed, int) and not isinstance(parsed, bool):
            if str(parsed) != value:
                # Only the canonical form: int() also reads "+7", "07", "0_7"
                # and other scripts' digits, spellings a proxy filtering
                # "7" would let through.
                raise malformed
            ops = connections[router.db_for_read(self.model)].ops
            low: int | None
            high: int | None
            try:
                low, high = ops.integer_field_range(self.field.get_internal_type())
            except KeyError:
                low = high = None
            # A backend without a range (SQLite on Django < 5) still binds
            # integers as 64-bit values.
            low = -(2**63) if low is None else low
            high = 2**63 - 1 if high is None else high
            if not low <= parsed <= high:
                raise malformed
        return parsed

    def _forbidden(self, value: Any) -> ActorRefused:
        return self._refuse(
            "forbidden",
            f"you may not act for organization {str(value)!r} (it does not "
            "exist, or you are not allowed to act for it).",
        )

    def _anonymous(self) -> ActorRefused:
        return self._refuse(
            "anonymous", "acting for an organization needs an authenticated user."
        )

    def _queryset(self, value: Any) -> Any:
        assert self.model is not None
        return self.model._default_manager.filter(**{self.lookup: value})

    def resolve(self, request: Any) -> Resolution:
        raw = request.META.get(self.meta_key)
        if raw is None:
            return NOT_MINE
        value = self._parse(raw)
        user = request_user(request)
        if user is None:
            raise self._anonymous()
        organization = self._queryset(value).first()
        if organization is None or self.can_act is None:
            raise self._forbidden(value)
        if iscoroutinefunction(self.can_act):
            from asgiref.sync import async_to_sync

            allowed = async_to_sync(self.can_act)(user, organization)
        else:
            allowed = self.can_act(user, organization)
        if allowed is not True:
            raise self._forbidden(value)
        return organization  # type: ignore[no-any-return]

    async def aresolve(self, request: Any) -> Resolution:
        raw = request.META.get(self.meta_key)
        if raw is None:
            return NOT_MINE
        value = self._parse(raw)
        user = await arequest_user(request)
        if user is None:
            raise self._anonymous()
        organization = await self._queryset(value).afirst()
        if organization is None or self.can_act is None:
            raise self._forbidden(value)
        if iscoroutinefunction(self.can_act):
            allowed = await self.can_act(user, organization)
        else:
            allowed = await sync_to_async(self.can_act)(user, organization)
        if allowed is not True:
            raise self._forbidden(value)
        return organization  # type: ignore[no-any-return]


# The system -------------------------------------------------------------------


class SystemResolver(ActorResolver):
    """The system: ``None``, or what the ``SYSTEM_ACTOR`` callable returns.

    Put it last: it answers every request.
    """

    def __init__(self) -> None:
        self.factory = mw_settings.system_actor

    def resolve(self, request: Any) -> Resolution:
        return None if self.factory is None else self.factory()

    async def aresolve(self, request: Any) -> Resolution:
        if self.factory is None:
            return None
        actor: Model | None = await sync_to_async(self.factory)()
        return actor


# The chain --------------------------------------------------------------------


@functools.cache
def get_resolvers() -> tuple[ActorResolver, ...]:
    """The configured resolvers, instantiated once (until REVY_MW changes)."""
    return load_resolvers(mw_settings.actor_resolvers)


#: A resolver named in a setting or passed to a wrapper: a dotted path, a
#: class or an instance.
ResolverSpec: TypeAlias = "str | type[ActorResolver] | ActorResolver"


def load_resolvers(paths: Sequence[ResolverSpec]) -> tuple[ActorResolver, ...]:
    """Instances of resolvers given as dotted paths, classes or instances."""
    resolvers: list[ActorResolver] = []
    for item in paths:
        value: Any = import_string(item) if isinstance(item, str) else item
        if isinstance(value, type):
            value = value()
        if not isinstance(value, ActorResolver):
            raise ImproperlyConfigured(
                f"REVY_MW['ACTOR_RESOLVERS']: {item!r} is not an ActorResolver."
            )
        resolvers.append(value)
    return tuple(resolvers)


def resolve_actor(request: Any, resolvers: Sequence[ActorResolver]) -> Model | None:
    """Run the chain synchronously: the first answer that is not NOT_MINE."""
    for resolver in resolvers:
        answer = resolver.resolve(request)
        if answer is not NOT_MINE:
            return answer  # type: ignore[return-value]
    return None


async def aresolve_actor(
    request: Any, resolvers: Sequence[ActorResolver]
) -> Model | None:
    """Run the chain asynchronously: the first answer that is not NOT_MINE."""
    for resolver in resolvers:
        answer = await resolver.aresolve(request)
        if answer is not NOT_MINE:
            return answer  # type: ignore[return-value]
    return None


def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "REVY_MW":
        get_resolvers.cache_clear()


setting_changed.connect(_reset, dispatch_uid="revy_mw.resolvers.reset")


class ResolverChain:
    """The resolvers of a wrapper: the ones it was given, or the configured chain.

    ``resolvers``: dotted paths, classes or instances to use instead of
    ``REVY_MW["ACTOR_RESOLVERS"]``.
    """

    def __init__(self, resolvers: Sequence[ResolverSpec] | None = None) -> None:
        self._resolvers = None if resolvers is None else load_resolvers(resolvers)

    @property
    def resolvers(self) -> Sequence[ActorResolver]:
        return get_resolvers() if self._resolvers is None else self._resolvers
