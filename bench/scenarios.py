"""The scenarios, and the paired timing that turns them into ratios.

A scenario gives ``prepare(side)``: untimed set-up returning the timed pass
(a callable). ``side`` is the tracked model or its untracked twin, with its
own owner. Each repeat times the tracked pass and the untracked pass back to
back, alternating which goes first, and keeps their ratio. Before the timed
repeats one untimed pass per side counts SQL statements (through
``connection.execute_wrapper``: SAVEPOINT and RELEASE count, BEGIN and
COMMIT are not statements Django executes) and history rows written.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F

from bench.benchapp.models import Owner, OwnerTwin, Tracked, Untracked, row_values
from bench.libraries import Library

__all__ = ["SCENARIOS", "Bench", "Side"]

Pass = Callable[[], None]


@dataclass
class Side:
    name: str
    model: type[Any]
    owner_model: type[Any]
    owner: Any = None

    def new_owner(self, name: str) -> Any:
        return self.owner_model.objects.create(name=name)


@dataclass
class Sizes:
    repeats: int
    ops: int  # single-row operations per pass
    transactions: int  # 20-save transactions per pass
    reads: int  # history reads per pass
    requests: int  # requests per pass
    # GET passes: the ratio is close to 1, so its passes are longer and more
    # (a request writing nothing costs about 0.1 ms).
    get_requests: int
    get_repeats: int
    bulk: int  # rows for cascade / update / bulk_create
    bulk_repeats: int
    loops: int  # context enter/exit loops


FULL = Sizes(
    repeats=7,
    ops=100,
    transactions=10,
    reads=100,
    requests=100,
    get_requests=1_000,
    get_repeats=15,
    bulk=10_000,
    bulk_repeats=2,
    loops=20_000,
)
QUICK = Sizes(
    repeats=3,
    ops=30,
    transactions=3,
    reads=30,
    requests=30,
    get_requests=100,
    get_repeats=3,
    bulk=500,
    bulk_repeats=2,
    loops=5_000,
)


# The harness's own test: every code path, as little work as possible.
SMOKE = Sizes(
    repeats=2,
    ops=5,
    transactions=1,
    reads=5,
    requests=5,
    get_requests=5,
    get_repeats=2,
    bulk=50,
    bulk_repeats=1,
    loops=100,
)

_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "END")


class StatementCounter:
    """Counts what Django executes; BEGIN / COMMIT / ROLLBACK are not counted
    (SQLite's backend sends BEGIN through the cursor, PostgreSQL's does not),
    SAVEPOINT, RELEASE SAVEPOINT and ROLLBACK TO SAVEPOINT are."""

    def __init__(self, keep: int = 0) -> None:
        self.count = 0
        self.keep = keep
        self.sample: list[str] = []

    def __call__(
        self, execute: Any, sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        head = sql.lstrip()[:12].upper()
        if not (
            head.startswith(_TRANSACTION_CONTROL) and not head.startswith("ROLLBACK T")
        ):
            self.count += 1
            if len(self.sample) < self.keep:
                self.sample.append(" ".join(sql.split())[:160])
        return execute(sql, params, many, context)


@dataclass
class Result:
    name: str
    ops: int
    unit: str = "op"
    ratios: list[float] = field(default_factory=list)
    tracked_s: list[float] = field(default_factory=list)
    untracked_s: list[float] = field(default_factory=list)
    statements: float | None = None
    statements_untracked: float | None = None
    history_rows: float | None = None
    history_rows_untracked: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        def per_op(values: list[float]) -> float | None:
            return statistics.median(values) / self.ops * 1e6 if values else None

        return {
            "ops_per_pass": self.ops,
            "unit": self.unit,
            "repeats": len(self.ratios),
            "ratio_median": statistics.median(self.ratios) if self.ratios else None,
            "ratio_min": min(self.ratios) if self.ratios else None,
            "ratio_max": max(self.ratios) if self.ratios else None,
            "ratios": self.ratios,
            "tracked_us_per_op": per_op(self.tracked_s),
            "untracked_us_per_op": per_op(self.untracked_s),
            "statements_per_op": self.statements,
            "statements_per_op_untracked": self.statements_untracked,
            "history_rows_per_op": self.history_rows,
            "history_rows_per_op_untracked": self.history_rows_untracked,
            **self.extra,
        }


class Bench:
    def __init__(self, library: Library, sizes: Sizes) -> None:
        self.library = library
        self.sizes = sizes
        self.results: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}
        self.tracked = Side("tracked", Tracked, Owner)
        self.untracked = Side("untracked", Untracked, OwnerTwin)
        self._serial = 0

    # Helpers -----------------------------------------------------------------

    def serial(self) -> int:
        self._serial += 1
        return self._serial

    @contextlib.contextmanager
    def unit(self) -> Iterator[None]:
        with self.library.unit(self.actor):
            yield

    def seed(self, side: Side, owner: Any, count: int) -> list[Any]:
        """Rows made untimed with bulk_create (outside any request context)."""
        start = self.serial() * 1_000_000
        rows = [side.model(owner=owner, **row_values(start + i)) for i in range(count)]
        side.model.objects.bulk_create(rows, batch_size=500)
        return list(side.model.objects.filter(owner=owner).order_by("pk"))

    def paired(
        self,
        name: str,
        prepare: Callable[[Side], Pass],
        ops: int,
        *,
        repeats: int | None = None,
        warmup: bool = True,
        unit: str = "op",
    ) -> Result:
        result = Result(name=name, ops=ops, unit=unit)
        sides = (self.tracked, self.untracked)
        if warmup:
            for side in sides:
                prepare(side)()
        for side in sides:
            run = prepare(side)
            counter = StatementCounter(keep=40)
            before = self.library.history_rows()
            with connection.execute_wrapper(counter):
                run()
            written = self.library.history_rows() - before
            if side is self.tracked:
                result.extra["sql_sample"] = counter.sample
                result.statements = counter.count / ops
                result.history_rows = written / ops
            else:
                result.statements_untracked = counter.count / ops
                result.history_rows_untracked = written / ops
        for repeat in range(repeats or self.sizes.repeats):
            order = sides if repeat % 2 == 0 else sides[::-1]
            elapsed: dict[str, float] = {}
            for side in order:
                run = prepare(side)
                gc.collect()
                start = time.perf_counter()
                run()
                elapsed[side.name] = time.perf_counter() - start
            result.tracked_s.append(elapsed["tracked"])
            result.untracked_s.append(elapsed["untracked"])
            result.ratios.append(elapsed["tracked"] / elapsed["untracked"])
        self.results[name] = result.as_dict()
        return result

    # Set-up --------------------------------------------------------------------

    def setup(self) -> None:
        from django.contrib.auth import get_user_model

        self.actor = get_user_model().objects.create_user(
            "bench", "bench@example.com", "bench"
        )
        for side in (self.tracked, self.untracked):
            side.owner = side.new_owner("main")
        # One write of each kind, so that caches (content types, prepared
        # lookups) are filled before anything is counted.
        with self.unit():
            obj = Tracked.objects.create(owner=self.tracked.owner, **row_values(0))
        with self.unit():
            obj.title = "warm"
            obj.save()
        with self.unit():
            obj.delete()

    # Scenarios -------------------------------------------------------------------

    def create(self) -> None:
        n = self.sizes.ops

        def prepare(side: Side) -> Pass:
            model, owner, base = side.model, side.owner, self.serial() * 1_000_000

            def run() -> None:
                for i in range(n):
                    with self.unit():
                        model.objects.create(owner=owner, **row_values(base + i))

            return run

        self.paired("create", prepare, n)

    def update(self) -> None:
        n = self.sizes.ops
        rows = {
            side.name: self.seed(side, side.new_owner("update"), n)
            for side in (self.tracked, self.untracked)
        }

        def prepare(side: Side) -> Pass:
            objs, k = rows[side.name], self.serial()

            def run() -> None:
                for obj in objs:
                    with self.unit():
                        obj.title = f"Updated {k}"
                        obj.quantity = k
                        obj.save()

            return run

        self.paired("update", prepare, n)

    def delete(self) -> None:
        n = self.sizes.ops

        def prepare(side: Side) -> Pass:
            objs = self.seed(side, side.new_owner("delete"), n)

            def run() -> None:
                for obj in objs:
                    with self.unit():
                        obj.delete()

            return run

        self.paired("delete", prepare, n)

    def transaction20(self) -> None:
        n = self.sizes.transactions
        rows = {
            side.name: self.seed(side, side.new_owner("tx"), 20)
            for side in (self.tracked, self.untracked)
        }

        def prepare(side: Side) -> Pass:
            objs, k = rows[side.name], self.serial()

            def run() -> None:
                for j in range(n):
                    with self.unit():
                        for obj in objs:
                            obj.title = f"Updated {k}.{j}"
                            obj.quantity = k * 100 + j
                            obj.save()

            return run

        self.paired("transaction20", prepare, n, unit="transaction")

    def _history_subjects(self) -> tuple[Any, Any]:
        """An object with 100 changes (one request each), and a twin row."""
        aa = self.library.name == "untracked"
        twin_rows = self.seed(self.untracked, self.untracked.new_owner("h"), 100)
        if aa:
            return self.seed(self.tracked, self.tracked.new_owner("h"), 100)[0], (
                twin_rows[0]
            )
        with self.unit():
            obj = Tracked.objects.create(
                owner=self.tracked.new_owner("h"), **row_values(7)
            )
        for change in range(1, 100):
            with self.unit():
                obj.title = f"Change {change}"
                obj.quantity = change
                obj.save()
        return obj, twin_rows[0]

    def history(self) -> None:
        obj, twin = self._history_subjects()
        n = self.sizes.reads
        library = self.library
        if library.supports_state:
            change = library.change_id(obj, 50)

            def prepare_state(side: Side) -> Pass:
                def run() -> None:
                    if side is self.tracked:
                        for _ in range(n):
                            library.state_as_of(obj, change)
                    else:
                        for _ in range(n):
                            Untracked.objects.get(pk=twin.pk)

                return run

            self.paired("state_as_of", prepare_state, n)
        else:
            self.skipped["state_as_of"] = "cannot rebuild a past state"
        reads = max(n // 4, 5)

        def prepare_list(side: Side) -> Pass:
            def run() -> None:
                if side is self.tracked:
                    for _ in range(reads):
                        library.history(obj)
                else:
                    for _ in range(reads):
                        list(
                            Untracked.objects.filter(owner_id=twin.owner_id).order_by(
                                "pk"
                            )
                        )

            return run

        self.paired("history_list", prepare_list, reads)

    def middleware(self) -> None:
        from django.test import Client
        from django.test.utils import override_settings

        library_client = Client()
        library_client.force_login(self.actor)
        plain_client = Client()
        plain_client.force_login(self.actor)
        # The plain client's handler is built now, without the library's
        # middleware; the library client's is built from MIDDLEWARE.
        with override_settings(MIDDLEWARE=settings.BASE_MIDDLEWARE):
            plain_client.handler.load_middleware()
        library_client.handler.load_middleware()
        n, gets = self.sizes.requests, self.sizes.get_requests

        def prepare_get(side: Side) -> Pass:
            client = library_client if side is self.tracked else plain_client

            def run() -> None:
                for _ in range(gets):
                    response = client.get("/noop/")
                    assert response.status_code == 200, response

            return run

        self.paired(
            "mw_get",
            prepare_get,
            gets,
            repeats=self.sizes.get_repeats,
            unit="request",
        )

        def prepare_post(side: Side) -> Pass:
            client = library_client if side is self.tracked else plain_client
            url = f"/create/{side.name}/"
            owner, base = side.owner.pk, self.serial() * 1_000_000

            def run() -> None:
                for i in range(n):
                    response = client.post(url, {"i": base + i, "owner": owner})
                    assert response.status_code == 201, response

            return run

        self.paired("mw_post", prepare_post, n, unit="request")

    def loading(self) -> None:
        count = 5_000
        owners = {}
        for side in (self.tracked, self.untracked):
            owners[side.name] = side.new_owner("load")
            self.seed(side, owners[side.name], count)

        def prepare_load(side: Side) -> Pass:
            model, owner = side.model, owners[side.name]

            def run() -> None:
                list(model.objects.filter(owner=owner))

            return run

        self.paired("load_5000", prepare_load, count, unit="row")
        values = [row_values(i) for i in range(count)]

        def prepare_construct(side: Side) -> Pass:
            model, owner_id = side.model, owners[side.name].pk

            def run() -> None:
                for v in values:
                    model(owner_id=owner_id, **v)

            return run

        self.paired("construct_5000", prepare_construct, count, unit="instance")

    def context_cost(self) -> None:
        """Absolute cost of the library's request context and actor read."""
        loops = self.sizes.loops
        library, actor = self.library, self.actor

        def best(run: Callable[[], None]) -> float:
            times = []
            for _ in range(5):
                gc.collect()
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            return min(times) / loops * 1e6

        def empty_loop() -> None:
            for _ in range(loops):
                pass

        def enter_exit() -> None:
            for _ in range(loops):
                with library.context(actor):
                    pass

        loop_us = best(empty_loop)
        entry: dict[str, Any] = {
            "enter_exit_us": best(enter_exit) - loop_us,
            "get_actor_us": None,
        }
        bare = library.bare_context()
        if bare is not None:
            make_bare = type(bare)

            def bare_enter_exit() -> None:
                for _ in range(loops):
                    with make_bare():
                        pass

            entry["bare_enter_exit_us"] = best(bare_enter_exit) - loop_us
        get_actor = library.get_actor()
        if get_actor is not None:

            def read() -> None:
                with library.context(actor):
                    for _ in range(loops):
                        get_actor()

            entry["get_actor_us"] = best(read) - loop_us
        self.results["context"] = entry

    def bulk(self) -> None:
        n, repeats = self.sizes.bulk, self.sizes.bulk_repeats

        def prepare_cascade(side: Side) -> Pass:
            owner = side.new_owner("cascade")
            self.seed(side, owner, n)

            def run() -> None:
                with self.unit():
                    owner.delete()

            return run

        self.paired(
            "cascade_delete",
            prepare_cascade,
            n,
            repeats=repeats,
            warmup=False,
            unit="row",
        )
        owners = {}
        for side in (self.tracked, self.untracked):
            owners[side.name] = side.new_owner("bulk-update")
            self.seed(side, owners[side.name], n)

        def prepare_update(side: Side) -> Pass:
            model, owner = side.model, owners[side.name]

            def run() -> None:
                with self.unit():
                    model.objects.filter(owner=owner).update(quantity=F("quantity") + 1)

            return run

        self.paired(
            "queryset_update",
            prepare_update,
            n,
            repeats=repeats,
            warmup=False,
            unit="row",
        )

        def prepare_bulk_create(side: Side) -> Pass:
            owner, base = side.owner, self.serial() * 1_000_000
            objs = [side.model(owner=owner, **row_values(base + i)) for i in range(n)]
            model = side.model

            def run() -> None:
                with self.unit():
                    model.objects.bulk_create(objs)

            return run

        self.paired(
            "bulk_create",
            prepare_bulk_create,
            n,
            repeats=repeats,
            warmup=False,
            unit="row",
        )


SCENARIOS: dict[str, Callable[[Bench], None]] = {
    "create": Bench.create,
    "update": Bench.update,
    "delete": Bench.delete,
    "transaction20": Bench.transaction20,
    "history": Bench.history,
    "middleware": Bench.middleware,
    "loading": Bench.loading,
    "context": Bench.context_cost,
    "bulk": Bench.bulk,
}
