"""Isolation and API of the tracking context (``revy_core.context``).

The numbered sections follow "Tests that prove isolation" in ISOLATION.md.
None of these tests touch the database: actors are unsaved ``User`` instances,
which are model instances that compare by identity.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import random
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import stackholm
from asgiref.sync import (
    ThreadSensitiveContext,
    async_to_sync,
    iscoroutinefunction,
    sync_to_async,
)
from django.contrib.auth.models import User
from hypothesis import given, settings
from hypothesis import strategies as st

from revy_core import (
    Context,
    ContextError,
    ContextExitError,
    LazyActor,
    LazyRevision,
    NoContextIsActive,
)
from revy_core import context as context_module
from revy_core.context import VALUE_KEYS, Frame, FrameStorage, current_frame
from revy_core.models import Revision

_var = context_module._current


def _state_exists() -> bool:
    """Whether this task or thread holds any context state at all."""
    return _var in contextvars.copy_context()


# 15. Startup access: the library is imported and read before any event loop
# starts, the way a settings module or an app's ready() would.
_STARTUP_READS = (
    Context.is_disabled(),
    Context.is_enabled(),
    Context.get_actor(),
    Context.get_revision_description(),
    Context.depth(),
    Context.get_current(),
)
_STARTUP_STATE = _state_exists()
_STARTUP_FRAME = current_frame()


def actor(name: str) -> User:
    """A distinct model instance: unsaved, so it compares by identity."""
    return User(username=name)


def username_of(who: Any) -> str | None:
    """The username of an actor read back from the context."""
    return None if who is None else str(who.username)


def chain(frame: Frame | None) -> list[Frame]:
    """The frames reachable from ``frame``, innermost first."""
    frames = []
    while frame is not None:
        frames.append(frame)
        frame = frame.parent
    return frames


def run_threads(count: int, target: Callable[[int], Any]) -> list[Any]:
    """Run ``target(i)`` in ``count`` fresh threads started together."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def main(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = target(i)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=main, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return results


# 15. Startup access ---------------------------------------------------------


def test_reading_at_import_created_no_state():
    assert _STARTUP_READS == (True, False, None, None, 0, None)
    assert _STARTUP_STATE is False
    assert _STARTUP_FRAME is None


def _read_everything() -> None:
    for key in VALUE_KEYS:
        getattr(Context, f"get_{key}")()
    Context.is_disabled()
    Context.is_enabled()
    Context.depth()
    Context.get_current()
    list(Context.values())
    Context.get_checkpoint_value("actor")
    Context.get_nearest_checkpoint("actor")
    inactive = Context.via_actor(actor("nobody"))
    assert not inactive.is_active
    assert set(inactive.checkpoint_data) == {"actor"}
    assert inactive.block_data == {}
    assert inactive.get_block_value("x", 1) == 1
    # unset_/reset_ outside a context have nothing to undo: no error, no state.
    for key in VALUE_KEYS:
        getattr(Context, f"unset_{key}")()
        getattr(Context, f"reset_{key}")()


def test_no_read_api_creates_state():
    before = dict(contextvars.copy_context())
    _read_everything()
    assert Context.depth() == 0
    assert not _state_exists()
    assert dict(contextvars.copy_context()) == before


def test_read_apis_are_pure_in_fresh_threads_and_tasks():
    def in_thread(i: int) -> tuple[bool, Any, int, bool]:
        disabled, who = Context.is_disabled(), Context.get_actor()
        _read_everything()
        return disabled, who, Context.depth(), _state_exists()

    assert run_threads(4, in_thread) == [(True, None, 0, False)] * 4

    async def in_task() -> tuple[bool, Any, int, bool]:
        _read_everything()
        return (
            Context.is_disabled(),
            Context.get_actor(),
            Context.depth(),
            _state_exists(),
        )

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(in_task() for _ in range(4))))

    assert asyncio.run(main()) == [(True, None, 0, False)] * 4
    assert not _state_exists()


def test_exit_leaves_no_state_behind():
    with Context.via_actor(actor("a")):
        Context.set_actor(actor("b"))
        with Context.as_disabled():
            assert _state_exists()
    assert not _state_exists()


_FRESH_PROCESS = textwrap.dedent(
    """
    import asyncio, contextvars, os, random
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    django.setup()
    from django.contrib.auth.models import User
    from revy_core import Context
    from revy_core.context import _current

    # Startup: read before any loop exists, as settings and ready() would.
    assert Context.is_disabled() and Context.get_actor() is None
    assert _current not in contextvars.copy_context()

    async def lifespan_startup():
        assert Context.is_disabled() and Context.get_actor() is None
        return Context.depth()

    async def request(i, rng):
        me = User(username=f"user{i}")
        assert Context.depth() == 0 and Context.is_disabled()
        with Context():
            root = Context.get_current()
            Context.set_actor(me)
            await asyncio.sleep(rng.random() / 100)
            assert Context.get_actor() is me, i
            return Context.depth(), root

    async def main():
        Context.is_disabled()
        assert await lifespan_startup() == 0
        rng = random.Random(1)
        results = await asyncio.gather(*(request(i, rng) for i in range(100)))
        assert all(depth == 1 for depth, _ in results)
        assert len({id(root) for _, root in results}) == 100
        assert Context.depth() == 0 and Context.is_disabled()

    asyncio.run(main())
    assert _current not in contextvars.copy_context()
    print("ok")
    """
)


def test_fresh_process_imported_before_the_loop_starts():
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# 1. Concurrent tasks ----------------------------------------------------------


@pytest.mark.asyncio
async def test_two_tasks_interleave():
    assert Context.is_disabled()  # the parent touches the API first
    alice, bob = actor("alice"), actor("bob")

    async def run(me: User, delay: float) -> tuple[Any, int, bool]:
        with Context():
            Context.set_actor(me)
            await asyncio.sleep(delay)
            return Context.get_actor(), Context.depth(), Context.is_enabled()

    results = list(await asyncio.gather(run(alice, 0.01), run(bob, 0.02)))
    assert results == [(alice, 1, True), (bob, 1, True)]
    assert Context.depth() == 0
    assert Context.is_disabled()
    assert Context.get_actor() is None


@pytest.mark.asyncio
async def test_hundred_tasks_with_random_sleeps():
    Context.get_actor()
    rng = random.Random(100)

    async def run(i: int) -> list[str | None]:
        me = actor(f"user{i}")
        seen = []
        with Context.via_revision_description(f"r{i}"):
            Context.set_actor(me)
            for _ in range(3):
                await asyncio.sleep(rng.random() / 200)
                who = Context.get_actor()
                assert who is not None
                seen.append(username_of(who))
                with Context.via_actor(actor(f"inner{i}")):
                    await asyncio.sleep(0)
                    who = Context.get_actor()
                    assert who is not None
                    seen.append(username_of(who))
                assert Context.get_revision_description() == f"r{i}"
            assert Context.depth() == 1
        return seen

    results = await asyncio.gather(*(run(i) for i in range(100)))
    for i, seen in enumerate(results):
        assert seen == [f"user{i}", f"inner{i}"] * 3
    assert Context.depth() == 0
    assert Context.is_disabled()


# 2. Inheritance without leakage ----------------------------------------------


@pytest.mark.asyncio
async def test_children_inherit_and_never_leak_up_or_sideways():
    parent, writer_actor = actor("P"), actor("W")
    wrote = asyncio.Event()

    async def nested(name: str) -> tuple[Any, Any, int]:
        inherited = Context.get_actor()
        with Context.via_actor(actor(name)):
            await asyncio.sleep(0.001)
            who = Context.get_actor()
            assert who is not None
            return inherited, username_of(who), Context.depth()

    async def writer() -> tuple[Any, int]:
        assert Context.get_actor() is parent
        Context.set_actor(writer_actor)  # no frame of its own
        wrote.set()
        await asyncio.sleep(0.001)
        return Context.get_actor(), Context.depth()

    async def sibling() -> Any:
        await wrote.wait()
        return Context.get_actor()

    with Context.via_actor(parent):
        results = await asyncio.gather(nested("a"), nested("b"), writer(), sibling())
        assert results == [
            (parent, "a", 2),
            (parent, "b", 2),
            (writer_actor, 1),
            parent,
        ]
        task = asyncio.create_task(writer())
        wrote.clear()
        assert await task == (writer_actor, 1)
        assert Context.get_actor() is parent
        assert Context.depth() == 1
    assert Context.depth() == 0


# 3. Threads ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_sync_to_async_thread_insensitive_calls_are_isolated():
    parent = actor("P")
    rng = random.Random(3)
    delays = [rng.random() / 500 for _ in range(64)]

    def child(i: int) -> tuple[Any, Any, Any, int]:
        inherited = Context.get_actor()
        me = actor(f"user{i}")
        with Context():
            Context.set_actor(me)
            time.sleep(delays[i])
            inside = Context.get_actor()
        Context.set_actor(actor(f"stray{i}"))  # writes to this call only
        time.sleep(delays[i])
        stray = Context.get_actor()
        assert stray is not None
        return inherited, inside is me, username_of(stray), Context.depth()

    with Context.via_actor(parent):
        call = sync_to_async(child, thread_sensitive=False)
        results = await asyncio.gather(*(call(i) for i in range(64)))
        assert results == [(parent, True, f"stray{i}", 1) for i in range(64)]
        assert Context.get_actor() is parent
        assert Context.depth() == 1
    assert Context.depth() == 0


@pytest.mark.asyncio
async def test_sync_to_async_call_writes_back_like_a_function_call():
    """asgiref copies the callee's context back to the awaiting caller."""
    parent, callee, scoped = actor("P"), actor("callee"), actor("scoped")

    def unscoped() -> None:
        Context.set_actor(callee)

    def in_own_context() -> None:
        with Context.via_actor(scoped):
            Context.set_revision_description("scoped")

    with Context.via_actor(parent):
        frame = current_frame()
        await sync_to_async(in_own_context, thread_sensitive=False)()
        assert current_frame() is frame  # nothing comes back
        await sync_to_async(unscoped)()
        assert Context.get_actor() is callee  # visible until this block exits
        assert Context.depth() == 1
    assert Context.depth() == 0
    assert Context.get_actor() is None


@pytest.mark.asyncio
async def test_thread_sensitive_requests_are_isolated():
    parent = actor("P")

    def view(i: int) -> tuple[Any, bool, int, int]:
        inherited = Context.get_actor()
        me = actor(f"user{i}")
        with Context.via_actor(me):
            time.sleep(0.001)
            mine = Context.get_actor() is me
        return inherited, mine, Context.depth(), threading.get_ident()

    async def request(i: int) -> tuple[Any, bool, int, int]:
        async with ThreadSensitiveContext():
            return await sync_to_async(view, thread_sensitive=True)(i)

    with Context.via_actor(parent):
        results = await asyncio.gather(*(request(i) for i in range(64)))
        assert Context.get_actor() is parent
    assert [r[:3] for r in results] == [(parent, True, 1)] * 64
    assert len({r[3] for r in results}) > 1  # really ran on several threads
    assert Context.depth() == 0


def test_async_to_sync_from_fresh_threads():
    async def work(i: int) -> tuple[Any, Any, int]:
        inherited = Context.get_actor()
        with Context.via_actor(actor(f"inner{i}")):
            await asyncio.sleep(0.002)
            who = Context.get_actor()
            assert who is not None
            return inherited, username_of(who), Context.depth()

    def thread(i: int) -> tuple[Any, ...]:
        assert Context.depth() == 0
        me = actor(f"thread{i}")
        with Context.via_actor(me):
            inherited, inner, depth = async_to_sync(work)(i)
            after = Context.get_actor()
        return inherited is me, inner, depth, after is me, Context.depth()

    results = run_threads(16, thread)
    assert results == [(True, f"inner{i}", 2, True, 0) for i in range(16)]


@pytest.mark.asyncio
async def test_hundred_tasks_and_sixteen_threads_each_with_its_own_actor():
    errors: list[BaseException] = []
    mixups: list[tuple[str, str]] = []

    def check(me: User) -> None:
        who = Context.get_actor()
        if who is not me:
            mixups.append((me.username, getattr(who, "username", repr(who))))

    async def task(i: int) -> None:
        me = actor(f"task{i}")
        rng = random.Random(i)
        try:
            with Context():
                Context.set_actor(me)
                for _ in range(5):
                    await asyncio.sleep(rng.random() / 500)
                    check(me)
        except BaseException as error:
            errors.append(error)

    def thread(i: int) -> int:
        me = actor(f"thread{i}")
        rng = random.Random(1000 + i)
        with Context():
            Context.set_actor(me)
            for _ in range(5):
                time.sleep(rng.random() / 500)
                check(me)
        return Context.depth()

    loop = asyncio.get_running_loop()
    threads = loop.run_in_executor(None, run_threads, 16, thread)
    await asyncio.gather(*(task(i) for i in range(100)))
    assert await threads == [0] * 16
    assert errors == []
    assert mixups == []
    assert Context.depth() == 0


# 6. Thread-pool reuse ---------------------------------------------------------


def _stream(me: User) -> Generator[int, None, None]:
    with Context.via_actor(me):
        yield 1
        yield 2


def test_pool_threads_are_clean_after_raising_abandoning_and_decorated_jobs():
    def raising(i: int) -> None:
        with Context.via_actor(actor(f"r{i}")):
            Context.set_revision_description("doomed")
            raise ValueError(i)

    def abandoning(i: int) -> int:
        stream = _stream(actor(f"g{i}"))
        next(stream)
        return Context.depth()  # the generator is dropped mid-context

    @Context.via_actor(actor("decorated"))
    def decorated(i: int) -> int:
        Context.disable()
        return Context.depth()

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(raising, i) for i in range(8)]
        for future in futures:
            with pytest.raises(ValueError, match=r"^\d$"):
                future.result()
        assert list(pool.map(abandoning, range(8))) == [1] * 8
        assert list(pool.map(decorated, range(8))) == [1] * 8

        barrier = threading.Barrier(4)

        def probe(_: int) -> tuple[int, bool, Any, int, bool]:
            barrier.wait(timeout=10)  # all four threads run a probe
            return (
                threading.get_ident(),
                Context.is_disabled(),
                Context.get_actor(),
                Context.depth(),
                _state_exists(),
            )

        probes = list(pool.map(probe, range(4)))
    assert len({p[0] for p in probes}) == 4
    assert [p[1:] for p in probes] == [(True, None, 0, False)] * 4


# 7. Exceptions ---------------------------------------------------------------


def test_exception_in_nested_block_restores_outer_state():
    outer = actor("outer")
    with Context.via_actor(outer), Context.via_deletion_description("kept"):
        with pytest.raises(KeyError), Context.via_actor(actor("inner")):  # noqa: PT012
            Context.set_deletion_description("changed")
            Context.disable()
            with Context():
                raise KeyError("boom")
        assert Context.get_actor() is outer
        assert Context.get_deletion_description() == "kept"
        assert Context.is_enabled()
        assert Context.depth() == 2
    assert Context.depth() == 0


# 8. Repeated writes -----------------------------------------------------------


def _frames_alive() -> int:
    gc.collect()
    return sum(isinstance(obj, Frame) for obj in gc.get_objects())


@pytest.mark.parametrize("count", [10, 2000])
def test_repeated_writes_do_not_grow_storage(count):
    outer = actor("outer")
    users = [actor(f"u{i}") for i in range(count)]
    with Context.via_actor(outer):
        with Context():
            baseline = (_frames_alive(), len(chain(current_frame())))
            for user in users:
                Context.set_actor(user)
                Context.set_revision_description(user.username)
                Context.disable()
                Context.enable()
            frame = current_frame()
            assert frame is not None
            assert Context.get_actor() is users[-1]
            assert (_frames_alive(), len(chain(frame))) == baseline
            assert len(frame.values) == 3  # actor, description, enabled
            assert Context.depth() == 2
        assert Context.get_actor() is outer
        assert Context.get_revision_description() is None
        assert Context.depth() == 1


# 9. Re-entrancy -------------------------------------------------------------


def test_reentering_the_same_instance_keeps_the_outer_activation():
    outer = actor("outer")
    context = Context.via_actor(outer)
    with context as entered:
        assert entered is context
        assert context.index == 0
        with context:
            assert context.index == 1
            assert Context.depth() == 2
            Context.set_actor(actor("inner"))
        assert context.is_active
        assert context.index == 0
        assert Context.get_current() is context
        assert Context.get_actor() is outer
    assert not context.is_active
    with context:  # and it can be entered again later
        assert Context.get_actor() is outer
    assert Context.depth() == 0


@pytest.mark.asyncio
async def test_one_instance_active_in_two_tasks_and_two_threads_at_once():
    shared = Context.via_revision_description("shared")
    inside = threading.Barrier(4)

    def use(name: str) -> tuple[bool, int, Any, Any]:
        with shared:
            Context.set_actor(actor(name))
            inside.wait(timeout=10)  # all four activations overlap here
            who = Context.get_actor()
            assert who is not None
            state = shared.is_active, shared.index, username_of(who)
            result = (*state, Context.get_revision_description())
            inside.wait(timeout=10)
        assert not shared.is_active
        return result

    async def task(name: str) -> tuple[bool, int, Any, Any]:
        with shared:
            Context.set_actor(actor(name))
            await asyncio.to_thread(inside.wait, 10)
            who = Context.get_actor()
            assert who is not None
            result = (shared.is_active, shared.index, username_of(who), "shared")
            await asyncio.to_thread(inside.wait, 10)
        assert not shared.is_active
        return result

    loop = asyncio.get_running_loop()
    results = list(
        await asyncio.gather(
            task("t1"),
            task("t2"),
            loop.run_in_executor(None, use, "h1"),
            loop.run_in_executor(None, use, "h2"),
        )
    )
    names = ("t1", "t2", "h1", "h2")
    assert results == [(True, 0, who, "shared") for who in names]
    assert not shared.is_active
    assert Context.depth() == 0


# 10. Decorator ---------------------------------------------------------------


def test_decorator_on_a_sync_function():
    me = actor("me")

    @Context.via_actor(me)
    def view(x: int) -> tuple[int, Any, int]:
        """Docstring."""
        return x, Context.get_actor(), Context.depth()

    assert view.__name__ == "view"
    assert view.__doc__ == "Docstring."
    assert view(1) == (1, me, 1)
    with Context.via_actor(actor("caller")):
        assert view(2) == (2, me, 2)
    assert Context.depth() == 0


def test_each_decorated_call_is_its_own_activation():
    roots = []

    @Context.via_revision(Revision)
    def view() -> Any:
        roots.append(Context.get_current())
        Context.set_revision_description("per call")
        return Context.get_checkpoint_value("revision")

    first, second = view(), view()
    assert roots[0] is not roots[1]
    assert isinstance(first, LazyRevision)
    assert isinstance(second, LazyRevision)
    assert first is not second  # each call gets its own lazy revision
    assert Context.get_revision_description() is None


def test_decorated_calls_resolve_their_own_lazy_actor():
    callers = iter([actor("first"), actor("second")])
    given_revision = LazyRevision(Revision)

    @Context(actor=LazyActor(lambda: next(callers)), revision=given_revision)
    def view() -> tuple[Any, Any]:
        return Context.get_actor(), Context.get_checkpoint_value("revision")

    (first, first_revision), (second, second_revision) = view(), view()
    assert (username_of(first), username_of(second)) == ("first", "second")
    assert first_revision is not given_revision
    assert first_revision is not second_revision


@pytest.mark.asyncio
async def test_decorator_on_an_async_function_is_active_across_await():
    @Context()
    async def view(i: int) -> tuple[Any, int, bool]:
        me = actor(f"user{i}")
        Context.set_actor(me)
        await asyncio.sleep(random.Random(i).random() / 200)
        assert Context.get_current() is not None
        return Context.get_actor() is me, Context.depth(), Context.is_enabled()

    assert iscoroutinefunction(view)
    coroutine = view(0)
    assert Context.depth() == 0  # creating the coroutine opens nothing
    assert await coroutine == (True, 1, True)
    results = await asyncio.gather(*(view(i) for i in range(50)))
    assert results == [(True, 1, True)] * 50
    assert Context.depth() == 0


@pytest.mark.asyncio
async def test_async_decorated_calls_resolve_their_own_lazy_actor():
    callers = iter([actor("first"), actor("second")])

    @Context.via_actor(LazyActor(lambda: next(callers)))
    async def view() -> str | None:
        await asyncio.sleep(0)
        return username_of(Context.get_actor())

    assert [await view(), await view()] == ["first", "second"]


def test_decorating_a_generator_function_covers_creation_only():
    @Context.via_actor(actor("me"))
    def numbers() -> Generator[int, None, None]:
        yield Context.depth()

    assert list(numbers()) == [0]


def test_decorator_under_recursion():
    @Context()
    def descend(n: int) -> list[int]:
        me = actor(f"level{n}")
        Context.set_actor(me)
        depths = [Context.depth()]
        if n:
            depths += descend(n - 1)
        assert Context.get_actor() is me
        return depths

    assert descend(20) == list(range(1, 22))
    assert Context.depth() == 0


@pytest.mark.asyncio
async def test_async_decorator_under_recursion():
    @Context.via_deletion_description("d")
    async def descend(n: int) -> int:
        Context.set_actor(actor(f"level{n}"))
        if n:
            await descend(n - 1)
        who = Context.get_actor()
        assert who is not None
        assert username_of(who) == f"level{n}"
        return Context.depth()

    assert await descend(10) == 1
    assert Context.depth() == 0


# 11. Out-of-order exit ---------------------------------------------------------


def test_out_of_order_exit_raises_and_unwinds():
    outer, a, b = Context(), Context.via_actor(actor("a")), Context()
    with outer:
        a.__enter__()
        b.__enter__()
        with pytest.raises(ContextExitError, match="still active"):
            a.__exit__(None, None, None)
        assert Context.get_current() is outer
        assert Context.depth() == 1
        assert Context.get_actor() is None
        assert not a.is_active
        assert not b.is_active
        with pytest.raises(ContextExitError, match="not active"):
            b.__exit__(None, None, None)
        with pytest.raises(ContextExitError, match="not active"):
            a.__exit__(None, None, None)
        assert Context.depth() == 1
    assert Context.depth() == 0
    assert not _state_exists()


def test_exiting_an_inactive_context_raises():
    context = Context()
    with pytest.raises(ContextExitError, match="not active"):
        context.__exit__(None, None, None)
    with Context():
        with pytest.raises(ContextExitError, match="not active"):
            context.__exit__(None, None, None)
        assert Context.depth() == 1
    assert issubclass(ContextExitError, ContextError)
    assert issubclass(ContextError, RuntimeError)


# 12. Cross-task and cross-thread exit ------------------------------------------


@pytest.mark.asyncio
async def test_exit_from_another_task_raises_and_changes_nothing():
    context = Context.via_actor(actor("parent"))
    with context:
        parent_frame = current_frame()

        async def intruder(nested: bool) -> tuple[Any, int]:
            if nested:
                Context().__enter__()  # dies with the task
            before = current_frame()
            with pytest.raises(ContextExitError, match="another task or thread"):
                context.__exit__(None, None, None)
            return current_frame() is before, Context.depth()

        assert await asyncio.create_task(intruder(False)) == (True, 1)
        assert await asyncio.create_task(intruder(True)) == (True, 2)
        assert current_frame() is parent_frame
        assert context.is_active

    entered, tried = asyncio.Event(), asyncio.Event()

    async def sibling() -> None:
        await entered.wait()
        with pytest.raises(ContextExitError, match="not active"):
            context.__exit__(None, None, None)
        tried.set()

    task = asyncio.create_task(sibling())  # started outside the block
    with context:
        entered.set()
        await tried.wait()
        assert Context.depth() == 1
    await task
    assert Context.depth() == 0


def test_exiting_a_frame_that_was_already_exited_raises():
    copied = contextvars.copy_context()
    context = Context()

    def enter_exit_and_restore() -> None:
        with context:
            stale = current_frame()
        _var.set(stale)  # as a careless copy-back of an old value would

    copied.run(enter_exit_and_restore)
    with pytest.raises(ContextExitError, match="already exited"):
        copied.run(context.__exit__, None, None, None)


def test_exit_from_another_thread_raises_and_changes_nothing():
    context = Context.via_actor(actor("main"))
    with context:
        main_frame = current_frame()
        copied = contextvars.copy_context()

        def inherited(_: int) -> None:
            def exit_here() -> None:
                with pytest.raises(ContextExitError, match="another task or thread"):
                    context.__exit__(None, None, None)

            copied.run(exit_here)

        def fresh(_: int) -> None:
            with pytest.raises(ContextExitError, match="not active"):
                context.__exit__(None, None, None)

        run_threads(1, inherited)
        run_threads(1, fresh)
        assert copied[_var] is main_frame
        assert current_frame() is main_frame
    assert Context.depth() == 0


@pytest.mark.asyncio
async def test_exit_from_a_sync_to_async_worker_raises_and_changes_nothing():
    context = Context()
    with context:
        frame = current_frame()
        with pytest.raises(ContextExitError, match="another task or thread"):
            await sync_to_async(context.__exit__, thread_sensitive=False)(
                None, None, None
            )
        assert current_frame() is frame
    assert Context.depth() == 0


# 13. Generators -------------------------------------------------------------


def test_consumer_exiting_before_a_generator_context_is_an_error():
    stream = _stream(actor("g"))
    consumer = Context()
    with pytest.raises(ContextExitError, match="still active"), consumer:  # noqa: PT012
        assert next(stream) == 1
        assert Context.depth() == 2
    assert Context.depth() == 0
    assert not _state_exists()
    # Resuming the generator exits a context that no longer exists here.
    with pytest.raises(ContextExitError, match="not active"):
        list(stream)
    assert Context.depth() == 0


def test_closing_a_generator_whose_context_was_unwound_is_silent():
    stream = _stream(actor("g"))
    with pytest.raises(ContextExitError), Context():
        next(stream)
    stream.close()  # GeneratorExit: nothing left to undo, nothing raised
    assert Context.depth() == 0
    assert not _state_exists()


def test_abandoned_generator_in_its_own_context_cleans_up():
    stream = _stream(actor("g"))
    with Context():
        assert next(stream) == 1
        assert Context.depth() == 2
        del stream  # closed on the spot: its context exits in order
        assert Context.depth() == 1
    assert Context.depth() == 0


def test_generator_context_used_in_one_context_works():
    me = actor("g")
    seen = []
    for _ in _stream(me):
        seen.append(Context.get_actor())
    assert seen == [me, me]
    assert Context.depth() == 0


# 14. Cancellation -----------------------------------------------------------


@pytest.mark.asyncio
async def test_cancelled_task_leaves_no_trace():
    parent = actor("parent")
    started = asyncio.Event()

    async def victim() -> None:
        with Context.via_actor(actor("victim")):
            Context.disable()
            started.set()
            await asyncio.sleep(10)

    with Context.via_actor(parent):
        frame = current_frame()
        task = asyncio.create_task(victim())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert current_frame() is frame
        assert Context.get_actor() is parent
        assert Context.is_enabled()
    assert Context.depth() == 0


@pytest.mark.asyncio
async def test_timeout_inside_a_block_in_the_same_task_leaves_no_trace():
    parent = actor("parent")
    with Context.via_actor(parent):
        frame = current_frame()
        with pytest.raises(TimeoutError):  # noqa: PT012
            async with asyncio.timeout(0.01):
                with Context.via_actor(actor("slow")), Context.as_disabled():
                    await asyncio.sleep(10)
        assert current_frame() is frame
        assert Context.get_actor() is parent
    assert Context.depth() == 0
    assert not _state_exists()


@pytest.mark.asyncio
async def test_cancelled_sync_to_async_call_leaves_no_trace():
    parent = actor("parent")
    started = threading.Event()

    def slow() -> None:
        with Context.via_actor(actor("worker")):
            started.set()
            time.sleep(0.05)

    with Context.via_actor(parent):
        frame = current_frame()
        task = asyncio.create_task(sync_to_async(slow, thread_sensitive=False)())
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert current_frame() is frame
    assert Context.depth() == 0


# Accessors -------------------------------------------------------------------

_VALUES: dict[str, Callable[[str], Any]] = {
    "actor": actor,
    "revision": lambda name: Revision(description=name),
    "revision_description": str,
    "object_delta_description": str,
    "attribute_delta_description": str,
    "deletion_description": str,
}


@pytest.mark.parametrize("key", VALUE_KEYS)
def test_accessors(key):
    via = getattr(Context, f"via_{key}")
    set_ = getattr(Context, f"set_{key}")
    get = getattr(Context, f"get_{key}")
    unset = getattr(Context, f"unset_{key}")
    reset = getattr(Context, f"reset_{key}")
    one, two, three = (_VALUES[key](name) for name in ("one", "two", "three"))

    assert get() is None
    with pytest.raises(NoContextIsActive, match=f"set_{key}"):
        set_(one)
    assert Context.depth() == 0

    with via(one) as outer:
        assert isinstance(outer, Context)
        assert get() is one
        with Context():
            assert get() is one  # inherited
            set_(two)
            assert get() is two
            unset()
            assert get() is one  # the enclosing value shows again
            set_(two)
            reset()
            assert get() is None  # hidden until this context exits
        assert get() is one
        with via(two):
            assert get() is two
            set_(three)
            assert get() is three
            unset()
            assert get() is one
        set_(three)
        assert get() is three
        set_(None)
        assert get() is None
    assert get() is None


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("actor", "alice"),
        ("actor", 42),
        ("actor", User),
        ("revision", "r1"),
        ("revision_description", 1),
        ("object_delta_description", b"bytes"),
        ("attribute_delta_description", ["x"]),
        ("deletion_description", object()),
    ],
)
def test_bad_values_are_refused(key, bad):
    with pytest.raises(TypeError):
        getattr(Context, f"via_{key}")(bad)
    with Context():
        with pytest.raises(TypeError):
            getattr(Context, f"set_{key}")(bad)
        assert Context.get_checkpoint_value(key) is None


def test_actor_must_be_a_model_instance_or_none():
    with pytest.raises(TypeError, match="model instance"):
        Context.via_actor("alice")  # type: ignore[arg-type]
    with Context.via_actor(None):
        assert Context.get_actor() is None
        me = actor("me")
        Context.set_actor(me)
        assert Context.get_actor() is me


def test_unknown_context_values_are_refused():
    with pytest.raises(TypeError, match="Unknown context values: colour"):
        Context(colour="red")


def test_revision_accepts_an_instance_or_a_callable():
    revision = Revision(description="given")
    with Context.via_revision(revision):
        assert Context.get_revision() is revision
    with Context.via_revision(Revision):
        lazy = Context.get_revision()
        assert isinstance(lazy, LazyRevision)  # not created by reading it
        Context.set_revision(None)
        assert Context.get_revision() is None
    assert Context.get_revision() is None


def test_set_outside_a_context_names_the_fix():
    with pytest.raises(NoContextIsActive, match="with Context"):
        Context.set_actor(actor("a"))
    with pytest.raises(NoContextIsActive, match=r"Context\.disable\(\)"):
        Context.disable()
    with pytest.raises(NoContextIsActive, match=r"Context\.enable\(\)"):
        Context.enable()
    assert not _state_exists()


# Enabling and disabling -----------------------------------------------------


def test_enable_and_disable():
    assert Context.is_disabled()
    assert not Context.is_enabled()
    with Context():
        assert Context.is_enabled()
        assert not Context.is_disabled()
        Context.disable()
        assert Context.is_disabled()
        assert not Context.is_enabled()
        with Context():
            assert Context.is_disabled()  # inherited
            Context.enable()
            assert Context.is_enabled()
        assert Context.is_disabled()
        Context.enable()
        assert Context.is_enabled()
        with Context.as_disabled():
            assert Context.is_disabled()
            with Context.as_enabled():
                assert Context.is_enabled()
            assert Context.is_disabled()
        assert Context.is_enabled()
    assert Context.is_disabled()


def test_as_disabled_inside_a_decorated_function():
    @Context()
    def task() -> list[bool]:
        states = [Context.is_enabled()]
        with Context.as_disabled():
            states.append(Context.is_enabled())
        states.append(Context.is_enabled())
        return states

    assert task() == [True, False, True]


# LazyActor --------------------------------------------------------------------


def test_lazy_actor_is_resolved_once_on_first_use():
    me = actor("lazy")
    calls = []

    def factory() -> User:
        calls.append(1)
        return me

    lazy = LazyActor(factory)
    with Context.via_actor(lazy):
        assert not lazy.resolved
        assert calls == []
        with Context():
            assert Context.get_actor() is me
            assert Context.get_actor() is me
        assert Context.get_actor() is me
        assert lazy.resolved
    assert len(calls) == 1
    assert "LazyActor" in repr(lazy)


def test_lazy_actor_for_the_system():
    lazy = LazyActor(lambda: None)
    with Context():
        Context.set_actor(lazy)
        assert Context.get_actor() is None
        assert lazy.resolved


def test_lazy_actor_is_thread_safe():
    me = actor("lazy")
    calls = []

    def factory() -> User:
        calls.append(1)
        time.sleep(0.01)
        return me

    lazy = LazyActor(factory)

    def use(_: int) -> Any:
        with Context.via_actor(lazy):
            return Context.get_actor()

    assert run_threads(16, use) == [me] * 16
    assert len(calls) == 1


def test_lazy_actor_error_is_raised_on_every_use():
    calls = []

    def refuse() -> User:
        calls.append(1)
        raise PermissionError("not yours")

    lazy = LazyActor(refuse)
    lengths = []
    with Context.via_actor(lazy):
        for _ in range(20):
            with pytest.raises(PermissionError, match="not yours") as info:
                Context.get_actor()
            lengths.append(len(traceback.extract_tb(info.value.__traceback__)))
    assert len(calls) == 1
    assert lazy.resolved
    assert len(set(lengths)) == 1  # the traceback does not grow with every use


def test_lazy_actor_must_resolve_to_a_model_instance_or_none():
    for wrong in ("alice", LazyActor(lambda: None)):
        lazy = LazyActor(lambda wrong=wrong: wrong)  # type: ignore[misc]
        with Context.via_actor(lazy):
            for _ in range(2):
                with pytest.raises(TypeError, match="model instance"):
                    Context.get_actor()


def test_lazy_actor_retries_after_an_interruption():
    outcomes: list[Any] = [KeyboardInterrupt(), actor("second")]

    def factory() -> User:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]

    lazy = LazyActor(factory)
    with Context.via_actor(lazy):
        with pytest.raises(KeyboardInterrupt):
            Context.get_actor()
        assert not lazy.resolved
        who = Context.get_actor()
        assert who is not None
        assert username_of(who) == "second"


# stackholm compatibility ------------------------------------------------------


def test_context_is_a_stackholm_context():
    assert issubclass(Context, stackholm.Context)
    assert isinstance(Context(), stackholm.Context)
    assert isinstance(Context._storage, FrameStorage)
    assert isinstance(Context._storage, stackholm.Storage)
    assert NoContextIsActive is stackholm.NoContextIsActive


def test_stackholm_api():
    outer, inner = Context.via_actor(actor("o")), Context()
    with outer:
        with pytest.raises(stackholm.ContextIsNotActive):
            _ = inner.index
        with inner:
            assert (outer.index, inner.index) == (0, 1)
            assert Context.get_current() is inner
            assert Context.get_nearest_checkpoint("actor") is outer
            Context.set_checkpoint_value("actor", actor("i"))
            assert Context.get_nearest_checkpoint("actor") is inner
            assert Context.get_checkpoint_value("missing", "dflt") == "dflt"
            inner.set_block_value("k", 1)
            assert inner.get_block_value("k") == 1
            assert outer.get_block_value("k") is None  # block values: per frame
            with pytest.raises(ContextError, match="innermost"):
                outer.set_block_value("k", 2)
            assert inner.pop_block_value("k") == 1
            assert inner.block_data == {}
            assert set(inner.checkpoint_data) == {"actor"}
        assert Context.get_current() is outer
    storage = Context._storage
    assert storage.get_last_context() is None
    index = storage.push_context(inner)
    assert index == 0
    assert storage.get_last_context() is inner
    assert storage.pop_context(index) is inner
    assert storage.pop_context() is None
    with pytest.raises(ContextError):
        storage.get_state()


def test_values_lists_the_innermost_values():
    me = actor("me")
    assert list(Context.values()) == []
    with Context.via_actor(me), Context.via_revision_description("why"):
        assert dict(Context.values()) == {"actor": me, "revision_description": "why"}
    assert "actor=" in repr(Context.via_actor(me))


# A model of the frame stack ---------------------------------------------------

_operations = st.lists(
    st.one_of(
        st.tuples(st.just("enter"), st.sampled_from(["", "a", "b"])),
        st.tuples(st.just("exit"), st.just("")),
        st.tuples(st.just("set"), st.sampled_from(["a", "b", "c"])),
        st.tuples(st.just("unset"), st.just("")),
        st.tuples(st.just("reset"), st.just("")),
        st.tuples(st.just("disable"), st.just("")),
    ),
    max_size=40,
)
_ACTORS = {name: actor(name) for name in "abc"}


@settings(max_examples=150, deadline=None)
@given(_operations)
def test_frames_behave_like_a_stack_of_scopes(operations):
    """Compare against a plain list of dicts, one per active context."""
    model: list[dict[str, Any]] = []
    contexts: list[Context] = []
    try:
        for op, arg in operations:
            if op == "enter":
                base = dict(model[-1]) if model else {}
                context = Context.via_actor(_ACTORS[arg]) if arg else Context()
                if arg:
                    base["actor"] = _ACTORS[arg]
                context.__enter__()
                contexts.append(context)
                model.append(base)
            elif not model:
                continue
            elif op == "exit":
                contexts.pop().__exit__(None, None, None)
                model.pop()
            elif op == "set":
                Context.set_actor(_ACTORS[arg])
                model[-1]["actor"] = _ACTORS[arg]
            elif op == "unset":
                Context.unset_actor()
                parent = model[-2] if len(model) > 1 else {}
                if "actor" in parent:
                    model[-1]["actor"] = parent["actor"]
                else:
                    model[-1].pop("actor", None)
            elif op == "reset":
                Context.reset_actor()
                model[-1].pop("actor", None)
            elif op == "disable":
                Context.disable()
                model[-1]["enabled"] = False
            assert Context.depth() == len(model)
            top = model[-1] if model else {}
            assert Context.get_actor() is top.get("actor")
            assert Context.is_enabled() is (bool(model) and top.get("enabled", True))
    finally:
        while contexts:
            contexts.pop().__exit__(None, None, None)
    assert Context.depth() == 0


def test_isolated_hides_the_callers_stack_and_restores_it():
    outer = Context(revision_description="outer")
    with outer:
        with Context.isolated():
            assert Context.depth() == 0
            assert Context.is_disabled()
            assert Context.get_revision_description() is None
            with Context(revision_description="inner"):
                assert Context.depth() == 1
                assert Context.get_revision_description() == "inner"
        assert Context.depth() == 1
        assert Context.get_revision_description() == "outer"
    assert Context.depth() == 0


def test_an_isolated_context_starts_its_own_stack_and_restores_the_callers():
    values = {"revision_description": "request", "enabled": True}
    with Context(revision_description="outer", actor=None):
        outer = Context.get_current()
        with Context.from_values(values, isolated=True) as root:
            assert Context.depth() == 1
            assert Context.get_current() is root
            assert Context.get_revision_description() == "request"
            with Context(object_delta_description="inner"):
                assert Context.depth() == 2
                assert Context.get_revision_description() == "request"
                assert Context.get_object_delta_description() == "inner"
            Context.set_revision_description("changed")
            assert Context.get_revision_description() == "changed"
        assert Context.get_current() is outer
        assert Context.depth() == 1
        assert Context.get_revision_description() == "outer"
    assert Context.depth() == 0


def test_an_isolated_context_left_with_an_inner_one_open_closes_both():
    with Context(revision_description="outer"):
        root = Context.from_values({"enabled": True}, isolated=True)
        root.__enter__()
        inner = Context(revision_description="inner")
        inner.__enter__()
        with pytest.raises(ContextExitError):
            root.__exit__(None, None, None)
        assert Context.depth() == 1
        assert Context.get_revision_description() == "outer"
    assert Context.depth() == 0


def test_a_decorating_isolated_context_isolates_every_call():
    seen = []

    @Context.from_values({"revision_description": "call"}, isolated=True)
    def call() -> None:
        seen.append((Context.depth(), Context.get_revision_description()))

    with Context(revision_description="outer"):
        call()
        call()
    assert seen == [(1, "call"), (1, "call")]


def test_from_values_holds_the_values_as_given():
    """The constructor the middleware uses per request: no checks, no copy."""
    revision = LazyRevision(Revision)  # never resolved here
    values = {"revision": revision, "revision_description": "fix", "enabled": True}
    with Context.from_values(values):
        assert Context.get_revision_description() == "fix"
        assert Context.get_actor() is None
        with Context(revision_description="inner"):
            assert Context.get_revision_description() == "inner"
        assert Context.get_revision_description() == "fix"
    assert Context.depth() == 0
