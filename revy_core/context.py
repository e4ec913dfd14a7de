"""The tracking context: who changes what, and why.

``Context`` is a stackholm context whose storage keeps, per asyncio task and
per thread, an immutable chain of frames in a ``ContextVar``:

- entering a context pushes a frame (``ContextVar.set``) and exiting it resets
  the variable with the token of that push, so an exception can never leave
  the stack half-popped;
- every write (``set_actor`` ...) replaces the current frame with a copy, so a
  child task or a ``sync_to_async`` worker that inherits the chain can never
  change what its parent or its siblings see;
- reads (``get_actor``, ``is_disabled``) are one ``ContextVar.get()`` and a
  dictionary lookup, and never create state.

The activation record (the token) lives in the frame, not on the ``Context``
instance, so one instance may be active in many tasks and threads at once and
``@Context()`` works on sync and async functions alike.

Settled behaviour (each point has a test in ``tests/test_context.py``):

- Exiting a context that is not the innermost one (enter a, enter b, exit a)
  closes it and everything inside it, then raises ``ContextExitError``; later
  exits of the contexts that were closed raise ``ContextExitError`` too.
  Exiting a context from another task or thread than the one that entered it,
  or exiting one that is not active, raises ``ContextExitError`` and changes
  nothing.
- ``set_X``, ``disable`` and ``enable`` outside any context raise
  ``NoContextIsActive``; ``unset_X`` and ``reset_X`` there have nothing to
  undo and do nothing.
- ``@Context(...)`` opens a new instance per call: lazy values
  (``LazyActor``, ``LazyRevision`` or a revision factory) start unresolved in
  every call. Decorating a generator function covers the creation of the
  generator, not its body.
- Generators must not hold a context open across ``yield`` (capture the values
  before, or re-enter per chunk). If they do: a generator closed while its
  context is the innermost one exits it normally; if the consumer's block
  exits first, that exit raises ``ContextExitError`` and closes both; resuming
  the generator afterwards raises ``ContextExitError`` when its block exits,
  and closing it (``GeneratorExit``, also from the garbage collector or from
  asyncio's async generator finaliser) is silent, since there is nothing left
  to undo where it runs.
- ``sync_to_async`` and ``async_to_sync`` copy the callee's context variables
  back to the awaiting caller when the call returns (asgiref's contract). A
  ``set_X`` made by the callee outside a context of its own is therefore seen
  by the caller after the call, until the caller's own context exits, as with
  a plain function call. It never reaches concurrent calls, sibling tasks or
  other requests; open a context in the callee to keep its writes to itself.
- ``LazyActor`` caches the ``Exception`` its factory raises and re-raises it
  on every use; an interruption (``KeyboardInterrupt``, cancellation) is not
  cached and the next use calls the factory again.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import stackholm
from asgiref.sync import iscoroutinefunction
from stackholm.exceptions import NoContextIsActive

if TYPE_CHECKING:
    from django.db.models import Model

__all__ = [
    "Context",
    "ContextError",
    "ContextExitError",
    "FrameStorage",
    "LazyActor",
    "LazyRevision",
    "NoContextIsActive",
    "resolve_actor",
]

F = TypeVar("F", bound=Callable[..., Any])

_MISSING: Any = object()

#: Keys of the values a context carries. Each gets ``via_``/``set_``/``get_``/
#: ``unset_``/``reset_`` class methods on ``Context``.
VALUE_KEYS = (
    "actor",
    "revision",
    "revision_description",
    "object_delta_description",
    "attribute_delta_description",
    "deletion_description",
)
_ENABLED = "enabled"
#: The block values of a new frame (frames never change their mappings).
_NO_BLOCK: Mapping[str, Any] = MappingProxyType({})
_KNOWN_KEYS = frozenset((*VALUE_KEYS, _ENABLED))


class ContextError(RuntimeError):
    """Base class of the errors the context engine raises."""


class ContextExitError(ContextError):
    """A context was exited out of order, from another task or thread, or twice."""


class Frame:
    """One activation of a context. Never mutated once published."""

    __slots__ = ("block", "depth", "owner", "parent", "token", "tracking", "values")

    def __init__(
        self,
        parent: Frame | None,
        owner: Context,
        values: Mapping[str, Any],
        block: Mapping[str, Any],
        token: Token[Frame | None] | None,
    ) -> None:
        self.parent = parent
        self.owner = owner
        self.depth: int = 1 if parent is None else parent.depth + 1
        self.values = values
        self.block = block
        self.token = token
        self.tracking = values.get(_ENABLED, True) is not False

    def replace(
        self,
        values: Mapping[str, Any] | None = None,
        block: Mapping[str, Any] | None = None,
    ) -> Frame:
        return Frame(
            self.parent,
            self.owner,
            self.values if values is None else values,
            self.block if block is None else block,
            self.token,
        )


_current: ContextVar[Frame | None] = ContextVar("revy_context", default=None)


def _reset(context: Context, frame: Frame) -> None:
    """Restore what was current before ``frame``'s context was entered."""
    token = frame.token
    assert token is not None
    try:
        _current.reset(token)
    except ValueError:
        raise ContextExitError(
            f"{context!r} was entered in another task or thread and cannot be "
            "exited here; nothing was changed."
        ) from None
    except RuntimeError:
        raise ContextExitError(
            f"{context!r} was already exited; nothing was changed."
        ) from None


#: The innermost active frame of this task or thread, or ``None``. Bound
#: straight to ``ContextVar.get`` so hot paths pay no Python call for it.
current_frame: Callable[[], Frame | None] = _current.get


class FrameStorage(stackholm.Storage):
    """A stackholm storage that keeps an immutable frame chain in a ContextVar.

    stackholm's own storages keep a mutable list that child tasks share by
    reference; this one gives every task and thread its own chain with value
    semantics. The ``State`` based API of stackholm is not used: the context
    class below talks to the frames directly.
    """

    def get_state(self) -> stackholm.State:
        raise ContextError("FrameStorage keeps frames, not a stackholm State.")

    def set_state(self, state: stackholm.State) -> None:
        raise ContextError("FrameStorage keeps frames, not a stackholm State.")

    def push_context(self, context: stackholm.Context) -> int:
        return cast("Context", context).activate().index

    def pop_context(self, index: int = -1) -> stackholm.Context | None:
        frame = _current.get()
        if frame is None:
            return None
        frame.owner.deactivate()
        return frame.owner

    def get_last_context(self) -> stackholm.Context | None:
        frame = _current.get()
        return None if frame is None else frame.owner

    def add_checkpoint(self, key: str, context_index: int) -> None:
        return None

    def remove_checkpoint(self, key: str, context_index: int) -> None:
        return None

    def get_nearest_checkpoint(self, key: str) -> stackholm.Context | None:
        frame = _current.get()
        while frame is not None:
            value = frame.values.get(key, _MISSING)
            if value is _MISSING:
                return None
            parent = frame.parent
            if parent is None or parent.values.get(key, _MISSING) is not value:
                return frame.owner
            frame = parent
        return None


class Isolation:
    """A block that starts on an empty stack: see :meth:`Context.isolated`."""

    __slots__ = ("_token",)

    def __init__(self) -> None:
        self._token: Token[Frame | None] | None = None

    def __enter__(self) -> None:
        self._token = _current.set(None)

    def __exit__(self, *exc_info: object) -> None:
        token, self._token = self._token, None
        if token is not None:
            _current.reset(token)


#: Guards the creation of the lock of a lazy value (``_lock_of``).
_LOCK_GUARD = threading.Lock()


def _lock_of(lazy: Any) -> threading.Lock:
    """The lock of a lazy actor or revision, made when first needed: most
    requests build a lazy actor and revision that nothing ever resolves."""
    lock: threading.Lock | None = lazy._lock
    if lock is None:
        with _LOCK_GUARD:
            lock = lazy._lock
            if lock is None:
                lock = lazy._lock = threading.Lock()
    return lock


class LazyActor:
    """An actor found on first use, then reused: ``Context.via_actor(LazyActor(f))``.

    ``f`` is called once, from the code that first needs the actor (a save
    in a view, after authentication ran), and returns a model instance or
    ``None`` for the system. If it raises, every later use raises the same
    error, so a refused actor can never write.
    """

    __slots__ = ("_done", "_error", "_factory", "_lock", "_traceback", "_value")

    def __init__(self, factory: Callable[[], Model | None]) -> None:
        self._factory = factory
        self._lock: threading.Lock | None = None
        self._done = False
        self._value: Model | None = None
        self._error: Exception | None = None
        self._traceback: TracebackType | None = None

    def __repr__(self) -> str:
        return f"<LazyActor {self._factory!r}>"

    @property
    def resolved(self) -> bool:
        return self._done

    def resolve(self) -> Model | None:
        if not self._done:
            with self._guard():
                if not self._done:
                    try:
                        self._value = _resolved_actor(self._produce())
                    except Exception as error:
                        # Not BaseException: an interrupted or cancelled
                        # resolution is not an answer, the next use retries.
                        self._error = error
                        self._traceback = error.__traceback__
                    self._done = True
        if self._error is not None:
            # Raise from the original traceback, so the shared error does not
            # grow a traceback entry per use.
            raise self._error.with_traceback(self._traceback)
        return self._value

    def _guard(self) -> threading.Lock:
        """The lock that lets one thread settle the outcome."""
        return _lock_of(self)

    def fresh(self) -> LazyActor:
        """An unresolved twin, for a new activation of a decorated function."""
        return type(self)(self._factory)

    def _produce(self) -> Any:
        """Find the actor (once): subclasses may find it without a factory."""
        return self._factory()


def _resolved_actor(value: Any) -> Model | None:
    from django.db.models import Model

    if value is not None and not isinstance(value, Model):
        raise TypeError(
            "A LazyActor's factory returns a model instance or None (the system), "
            f"not {value!r}."
        )
    return value


def resolve_actor(value: Any) -> Model | None:
    """The actor a context value stands for (resolving a ``LazyActor``)."""
    if isinstance(value, LazyActor):
        return value.resolve()
    return cast("Model | None", value)


class LazyRevision:
    """A revision created on first use, once per database, then reused.

    Wraps a callable returning a ``Revision`` (saved or not). A revision
    created inside a transaction that is later rolled back is forgotten, so
    the next change creates a new one instead of pointing to a missing row.
    """

    __slots__ = ("_entries", "_factory", "_lock")

    def __init__(self, factory: Callable[[], Model]) -> None:
        self._factory = factory
        self._lock: threading.Lock | None = None
        self._entries: dict[str, tuple[Model, Callable[[], None] | None]] = {}

    def __repr__(self) -> str:
        return f"<LazyRevision {self._factory!r}>"

    def resolve(
        self,
        using: str,
        description: str | None = None,
        *,
        defer: bool = False,
        connection: Any = None,
    ) -> Model:
        """The revision on ``using``, created (and saved) on first use.

        With ``defer``, a new revision may be left unsaved for the statement
        that writes the history to insert (``revy_core.writer.defer_revision``).
        ``connection`` is ``connections[using]``, where the caller has it.
        """
        connections, transaction, writer = _storage_modules()
        if connection is None:
            connection = connections[using]
        with _lock_of(self):
            entry = self._entries.get(using)
            if entry is not None:
                revision, marker = entry
                if marker is None or _still_pending(connection, marker):
                    if not defer:
                        writer.materialize(revision, using)
                    return revision
            revision = self._factory()
            if revision.pk is None:
                if description and not getattr(revision, "description", ""):
                    revision.description = description  # type: ignore[attr-defined]
                if not (defer and writer.defer_revision(revision, using)):
                    writer.save_revision(revision, using)
            marker = None
            if connection.in_atomic_block:
                marker = _commit_marker(self, using)
                transaction.on_commit(marker, using=using)
            self._entries[using] = (revision, marker)
            return revision

    def resolved(self, using: str) -> Model | None:
        """The revision created on ``using``, if any (saved: a deferred one is
        inserted now, with the history waiting for it)."""
        entry = self._entries.get(using)
        if entry is None:
            return None
        connections, _, writer = _storage_modules()
        revision, marker = entry
        if marker is None or _still_pending(connections[using], marker):
            writer.materialize(revision, using)
        return revision

    def fresh(self) -> LazyRevision:
        """An unresolved twin, for a new activation of a decorated function."""
        return type(self)(self._factory)

    def _committed(self, using: str) -> None:
        with _lock_of(self):
            entry = self._entries.get(using)
            if entry is not None:
                self._entries[using] = (entry[0], None)


@functools.cache
def _storage_modules() -> tuple[Any, Any, Any]:
    """``django.db.connections``, ``django.db.transaction`` and
    ``revy_core.writer``: imported on first use (this module is imported
    before Django is set up), then looked up without the import machinery."""
    from django.db import connections, transaction

    from revy_core import writer

    return connections, transaction, writer


def _commit_marker(lazy: LazyRevision, using: str) -> Callable[[], None]:
    def committed() -> None:
        lazy._committed(using)

    return committed


def _still_pending(connection: Any, marker: Callable[[], None]) -> bool:
    """Whether the transaction that created a revision may still commit it.

    Django drops the on-commit callbacks of a rolled back savepoint or
    transaction, so the revision is alive exactly while its callback waits.
    """
    if not connection.in_atomic_block:
        return False
    return any(item[1] is marker for item in connection.run_on_commit)


def _accessors(key: str) -> dict[str, Any]:
    def via(cls: type[Context], value: Any) -> Context:
        return cls(**{key: value})

    def set_(cls: type[Context], value: Any) -> None:
        cls.set_checkpoint_value(key, value)

    def get(cls: type[Context]) -> Any:
        frame = _current.get()
        return None if frame is None else frame.values.get(key)

    def get_actor(cls: type[Context]) -> Any:
        frame = _current.get()
        return None if frame is None else resolve_actor(frame.values.get(key))

    def unset(cls: type[Context]) -> None:
        cls.pop_checkpoint_value(key)

    def reset(cls: type[Context]) -> None:
        cls.reset_checkpoint_value(key)

    return {
        f"via_{key}": classmethod(via),
        f"set_{key}": classmethod(set_),
        f"get_{key}": classmethod(get_actor if key == "actor" else get),
        f"unset_{key}": classmethod(unset),
        f"reset_{key}": classmethod(reset),
    }


@functools.cache
def _model_base() -> type[Model]:
    """``django.db.models.Model``, imported on first use (this module is
    imported before Django is set up)."""
    from django.db.models import Model

    return Model


def _check_actor(value: Any) -> Any:
    if value is None or isinstance(value, (LazyActor, _model_base())):
        return value
    raise TypeError(
        "An actor is a model instance, a LazyActor or None (the system), "
        f"not {value!r}."
    )


def _check_revision(value: Any) -> Any:
    if value is None or isinstance(value, (LazyRevision, _model_base())):
        return value
    if not callable(value):
        raise TypeError(
            "A revision is a Revision instance or a callable returning one, "
            f"not {value!r}."
        )
    return LazyRevision(value)


def _check_description(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"A description is a string or None, not {value!r}.")


def _unchecked(value: Any) -> Any:
    return value


#: How each value a context carries is checked (and stored).
_CHECKS: dict[str, Callable[[Any], Any]] = {
    key: _check_description if key.endswith("description") else _unchecked
    for key in _KNOWN_KEYS
}
_CHECKS["actor"] = _check_actor
_CHECKS["revision"] = _check_revision


def _validate(key: str, value: Any) -> Any:
    return _CHECKS.get(key, _unchecked)(value)


class Context(stackholm.Context):
    """A scope in which changes to tracked models are recorded.

    ``with Context():``, ``@Context()`` (sync and async functions), and the
    class methods ``via_X`` / ``set_X`` / ``get_X`` / ``unset_X`` /
    ``reset_X`` for each of ``actor``, ``revision``, ``revision_description``,
    ``object_delta_description``, ``attribute_delta_description`` and
    ``deletion_description``.

    - ``via_X(value)`` returns a new context that starts with ``X = value``.
    - ``set_X(value)`` changes ``X`` in the innermost context, until it exits.
    - ``get_X()`` reads the innermost value (``None`` when unset or outside).
    - ``unset_X()`` undoes ``set_X`` in the innermost context: the value of
      the enclosing context shows again.
    - ``reset_X()`` clears ``X`` in the innermost context, hiding enclosing
      values until it exits.
    """

    _storage: stackholm.Storage

    _presets: Mapping[str, Any]
    _arguments: Mapping[str, Any]
    #: Entered as the bottom of a stack of its own (``from_values(isolated=True)``).
    _isolated: bool = False

    # Generated accessors; declared for type checkers.
    via_actor: ClassVar[Callable[[Model | LazyActor | None], Context]]
    set_actor: ClassVar[Callable[[Model | LazyActor | None], None]]
    get_actor: ClassVar[Callable[[], Model | None]]
    unset_actor: ClassVar[Callable[[], None]]
    reset_actor: ClassVar[Callable[[], None]]
    via_revision: ClassVar[Callable[[Any], Context]]
    set_revision: ClassVar[Callable[[Any], None]]
    unset_revision: ClassVar[Callable[[], None]]
    reset_revision: ClassVar[Callable[[], None]]
    via_revision_description: ClassVar[Callable[[str | None], Context]]
    set_revision_description: ClassVar[Callable[[str | None], None]]
    get_revision_description: ClassVar[Callable[[], str | None]]
    unset_revision_description: ClassVar[Callable[[], None]]
    reset_revision_description: ClassVar[Callable[[], None]]
    via_object_delta_description: ClassVar[Callable[[str | None], Context]]
    set_object_delta_description: ClassVar[Callable[[str | None], None]]
    get_object_delta_description: ClassVar[Callable[[], str | None]]
    unset_object_delta_description: ClassVar[Callable[[], None]]
    reset_object_delta_description: ClassVar[Callable[[], None]]
    via_attribute_delta_description: ClassVar[Callable[[str | None], Context]]
    set_attribute_delta_description: ClassVar[Callable[[str | None], None]]
    get_attribute_delta_description: ClassVar[Callable[[], str | None]]
    unset_attribute_delta_description: ClassVar[Callable[[], None]]
    reset_attribute_delta_description: ClassVar[Callable[[], None]]
    via_deletion_description: ClassVar[Callable[[str | None], Context]]
    set_deletion_description: ClassVar[Callable[[str | None], None]]
    get_deletion_description: ClassVar[Callable[[], str | None]]
    unset_deletion_description: ClassVar[Callable[[], None]]
    reset_deletion_description: ClassVar[Callable[[], None]]

    # stackholm.Context.__init__ is not called: its per-instance index and
    # value dicts serve methods this class replaces; the frames hold all state.

    def __init__(self, **presets: Any) -> None:
        self._arguments = presets
        if not presets:
            # ``with Context():`` is the common case: nothing to check.
            self._presets = presets
            return
        if not _KNOWN_KEYS.issuperset(presets):
            unknown = presets.keys() - _KNOWN_KEYS
            raise TypeError(f"Unknown context values: {', '.join(sorted(unknown))}.")
        checks = _CHECKS
        values = {}
        for key, value in presets.items():
            values[key] = checks[key](value)
        self._presets = values

    @classmethod
    def from_values(
        cls, values: Mapping[str, Any], *, isolated: bool = False
    ) -> Context:
        """A context holding ``values`` as they are, without checks.

        For code that opens many contexts with values it built itself, in
        the form a context keeps them (an actor as a model instance, a
        :class:`LazyActor` or ``None``; a revision as a saved instance or a
        :class:`LazyRevision`; descriptions as strings or ``None``), such as
        the request middleware. Anything else goes through ``Context(...)``.

        ``isolated``: once entered, the context is the bottom of its own
        stack, as inside ``with Context.isolated():`` (a request boundary);
        on exit the caller's stack is back as it was.
        """
        context = cls.__new__(cls)
        context._arguments = values
        context._presets = values
        if isolated:
            context._isolated = True
        return context

    def __repr__(self) -> str:
        presets = ", ".join(f"{k}={v!r}" for k, v in self._presets.items())
        return f"<{type(self).__name__}({presets})>"

    # Entering and exiting -------------------------------------------------

    def __exit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        frame = _current.get()
        if frame is not None and frame.owner is self:
            # The usual exit: this context is the innermost one.
            _reset(self, frame)
            return
        if exception_type is GeneratorExit and self._frame() is None:
            # A generator is being closed where its context no longer exists:
            # an out-of-order exit already unwound it (and raised), or the
            # garbage collector closes it from another task or thread. There
            # is nothing to undo here.
            return
        self.deactivate()

    def activate(self) -> Context:
        parent = None if self._isolated else _current.get()
        values: Mapping[str, Any]
        if parent is None:
            values = self._presets
        elif self._presets:
            values = {**parent.values, **self._presets}
        else:
            values = parent.values
        frame = Frame(parent, self, values, _NO_BLOCK, None)
        frame.token = _current.set(frame)
        return self

    __enter__ = activate

    def deactivate(self) -> None:
        frame = _current.get()
        if frame is None:
            raise ContextExitError(f"{self!r} is not active in this task or thread.")
        if frame.owner is not self:
            self._unwind_to_self(frame)
        _reset(self, frame)

    def _unwind_to_self(self, frame: Frame) -> None:
        """Handle an out-of-order exit: unwind past ``self`` and raise."""
        target = frame.parent
        while target is not None and target.owner is not self:
            target = target.parent
        if target is None:
            raise ContextExitError(
                f"{self!r} is not active in this task or thread; it may have "
                "been exited already or entered elsewhere."
            )
        _reset(self, target)
        raise ContextExitError(
            f"{self!r} was exited while {frame.owner!r} inside it was still "
            "active; both have been closed."
        )

    def _recreate_cm(self) -> Context:
        """A fresh instance per decorated call.

        Lazy values start unresolved in every call: a decorated view must not
        reuse the actor or the revision its first call found.
        """
        context = type(self)(
            **{
                key: value.fresh()
                if isinstance(value, (LazyActor, LazyRevision))
                else value
                for key, value in self._arguments.items()
            }
        )
        context._isolated = self._isolated
        return context

    def __call__(self, func: F) -> F:
        recreate = self._recreate_cm
        if iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with recreate():
                    return await func(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with recreate():
                return func(*args, **kwargs)

        return cast(F, wrapper)

    # Introspection --------------------------------------------------------

    def _frame(self) -> Frame | None:
        frame = _current.get()
        while frame is not None and frame.owner is not self:
            frame = frame.parent
        return frame

    @property
    def is_active(self) -> bool:
        return self._frame() is not None

    @property
    def index(self) -> int:
        frame = self._frame()
        if frame is None:
            raise stackholm.ContextIsNotActive(self)
        return frame.depth - 1

    @classmethod
    def isolated(cls) -> Isolation:
        """A block in which no context of the caller is visible.

        For request boundaries: servers can hand a request the context
        variables of an earlier one (CPython #140947), and a request must
        not inherit them. On exit the caller's stack is back as it was.
        """
        return Isolation()

    @classmethod
    def depth(cls) -> int:
        """How many contexts are active in this task or thread."""
        frame = _current.get()
        return 0 if frame is None else frame.depth

    @classmethod
    def get_current(cls) -> Context | None:
        frame = _current.get()
        return None if frame is None else frame.owner

    # stackholm's block values: per activation, not inherited --------------

    @property
    def block_data(self) -> dict[str, Any]:
        frame = self._frame()
        return {} if frame is None else dict(frame.block)

    def get_block_value(self, key: str, default: Any = None) -> Any:
        frame = self._frame()
        return default if frame is None else frame.block.get(key, default)

    def set_block_value(self, key: str, value: Any) -> None:
        self._replace_own(
            lambda frame: frame.replace(block={**frame.block, key: value})
        )

    def pop_block_value(self, key: str, default: Any = None) -> Any:
        frame = self._frame()
        if frame is None or key not in frame.block:
            return default
        value = frame.block[key]
        block = {k: v for k, v in frame.block.items() if k != key}
        self._replace_own(lambda frame: frame.replace(block=block))
        return value

    def _replace_own(self, change: Callable[[Frame], Frame]) -> None:
        current = _current.get()
        if current is None or current.owner is not self:
            raise ContextError(
                f"Block values of {self!r} can only change while it is the "
                "innermost active context."
            )
        _current.set(change(current))

    # stackholm's checkpoint values: inherited, scoped to the innermost ----

    @property
    def checkpoint_data(self) -> dict[str, Any]:
        frame = self._frame()
        return dict(self._presets) if frame is None else dict(frame.values)

    @classmethod
    def get_nearest_checkpoint(cls, key: str) -> Context | None:
        return cast("Context | None", cls._storage.get_nearest_checkpoint(key))

    @classmethod
    def get_checkpoint_value(cls, key: str, default: Any = None) -> Any:
        frame = _current.get()
        return default if frame is None else frame.values.get(key, default)

    @classmethod
    def set_checkpoint_value(cls, key: str, value: Any) -> None:
        frame = _current.get()
        if frame is None:
            if key == _ENABLED:
                name = "enable" if value else "disable"
            else:
                name = f"set_{key}"
            raise NoContextIsActive(
                f"Context.{name}() needs an active context: wrap the code in "
                "`with Context():` or decorate it with `@Context()`."
            )
        value = _validate(key, value)
        if frame.values.get(key, _MISSING) is value:
            return
        _current.set(frame.replace(values={**frame.values, key: value}))

    @classmethod
    def pop_checkpoint_value(cls, key: str, default: Any = None) -> Any:
        frame = _current.get()
        if frame is None:
            return default
        value = frame.values.get(key, default)
        inherited = (
            _MISSING if frame.parent is None else frame.parent.values.get(key, _MISSING)
        )
        values = {k: v for k, v in frame.values.items() if k != key}
        if inherited is not _MISSING:
            values[key] = inherited
        _current.set(frame.replace(values=values))
        return value

    @classmethod
    def reset_checkpoint_value(cls, key: str) -> None:
        frame = _current.get()
        if frame is None or key not in frame.values:
            return
        values = {k: v for k, v in frame.values.items() if k != key}
        _current.set(frame.replace(values=values))

    # Revisions ------------------------------------------------------------

    @classmethod
    def get_revision(cls) -> Any:
        """The revision of the innermost context.

        A lazy revision that has already been created is returned as the
        revision itself; one that has not is returned as the
        :class:`LazyRevision` (reading never writes).
        """
        frame = _current.get()
        if frame is None:
            return None
        revision = frame.values.get("revision")
        if isinstance(revision, LazyRevision):
            from django.db import router

            from revy_core.conf import get_revision_model

            resolved = revision.resolved(router.db_for_write(get_revision_model()))
            return revision if resolved is None else resolved
        return revision

    # Enabling and disabling -----------------------------------------------

    @classmethod
    def disable(cls) -> None:
        """Stop recording in the innermost context, until it exits."""
        cls.set_checkpoint_value(_ENABLED, False)

    @classmethod
    def enable(cls) -> None:
        """Record again in the innermost context."""
        cls.set_checkpoint_value(_ENABLED, True)

    @classmethod
    def as_disabled(cls) -> Context:
        """A context in which nothing is recorded."""
        return cls(enabled=False)

    @classmethod
    def as_enabled(cls) -> Context:
        """A context in which changes are recorded."""
        return cls(enabled=True)

    @classmethod
    def is_enabled(cls) -> bool:
        """Whether changes made here are recorded (never outside a context)."""
        frame = _current.get()
        return frame is not None and frame.tracking

    @classmethod
    def is_disabled(cls) -> bool:
        frame = _current.get()
        return frame is None or not frame.tracking

    @classmethod
    def values(cls) -> Iterator[tuple[str, Any]]:
        """The values of the innermost context, for debugging and logging."""
        frame = _current.get()
        if frame is not None:
            yield from frame.values.items()


Context._storage = FrameStorage()
for _key in VALUE_KEYS:
    for _name, _accessor in _accessors(_key).items():
        if _name != "get_revision":
            setattr(Context, _name, _accessor)
