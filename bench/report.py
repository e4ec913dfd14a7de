"""The Markdown report of a run (``bench/results/latest.json``)."""

from __future__ import annotations

from typing import Any

__all__ = ["SCENARIOS", "TARGETS", "render"]

# scenario: (title, unit of the statement column)
SCENARIOS: dict[str, tuple[str, str]] = {
    "create": ("create 1 row", "op"),
    "update": ("update 2 fields", "op"),
    "delete": ("delete 1 row", "op"),
    "transaction20": ("20 saves in one transaction", "transaction"),
    "state_as_of": ("state as of change 50 of 100", "read"),
    "history_list": ("list an object's 100-change history", "read"),
    "mw_get": ("GET with no writes, through the middleware", "request"),
    "mw_post": ("POST creating 1 row, through the middleware", "request"),
    "load_5000": ("load 5,000 rows (vs plain Django)", "1,000 rows"),
    "construct_5000": ("construct 5,000 instances (vs plain Django)", "-"),
    "cascade_delete": ("cascade delete of 10,000 children", "1,000 rows"),
    "queryset_update": ("QuerySet.update of 10,000 rows", "1,000 rows"),
    "bulk_create": ("bulk_create of 10,000 rows", "1,000 rows"),
}
PER_THOUSAND = {"load_5000", "cascade_delete", "queryset_update", "bulk_create"}

# scenario: {database: (ratio at most, statements at most)}
TARGETS: dict[str, dict[str, tuple[float | None, float | None]]] = {
    "create": {"sqlite": (2.5, 3), "postgres": (1.6, 3)},
    "update": {"sqlite": (1.8, None), "postgres": (1.3, None)},
    "delete": {"sqlite": (2.0, None), "postgres": (1.4, None)},
    "transaction20": {"sqlite": (1.8, None), "postgres": (1.4, None)},
    "state_as_of": {"sqlite": (2.0, 1), "postgres": (1.6, 1)},
    "history_list": {"sqlite": (1.2, None), "postgres": (1.2, None)},
    "mw_get": {"sqlite": (1.02, 0), "postgres": (1.02, 0)},
    "mw_post": {"sqlite": (1.35, None), "postgres": (1.25, None)},
    "load_5000": {"sqlite": (1.00, None), "postgres": (1.00, None)},
    "construct_5000": {"sqlite": (1.10, None), "postgres": (1.10, None)},
}
CONTEXT_TARGETS = {"bare_enter_exit_us": 1.5, "get_actor_us": 0.2}

LIB_ORDER = [
    "untracked",
    "revy",
    "simple_history",
    "reversion",
    "auditlog",
    "pghistory",
]
LABELS = {
    "untracked": "A/A control",
    "revy": "revy",
    "simple_history": "simple-history",
    "reversion": "reversion",
    "auditlog": "auditlog",
    "pghistory": "pghistory",
}
DB_LABELS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if digits == 0 or abs(value - round(value)) < 1e-6:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def _statements(name: str, entry: dict[str, Any]) -> tuple[float | None, float | None]:
    tracked = entry.get("statements_per_op")
    plain = entry.get("statements_per_op_untracked")
    if name in PER_THOUSAND and tracked is not None and plain is not None:
        return tracked * 1000, plain * 1000
    return tracked, plain


def target_status(name: str, db: str, entry: dict[str, Any]) -> tuple[str, bool | None]:
    """The target as text, and whether revy's figure meets it."""
    target = TARGETS.get(name, {}).get(db)
    if target is None:
        return "", None
    ratio, statements = target
    parts, met = [], True
    if ratio is not None:
        parts.append(f"≤ {ratio:g}")
        if entry.get("ratio_median") is None or entry["ratio_median"] > ratio:
            met = False
    if statements is not None:
        if name == "mw_get":
            parts.append("+0 statements")
            tracked, plain = _statements(name, entry)
            if tracked is None or plain is None or tracked > plain:
                met = False
        else:
            parts.append(f"≤ {statements:g} statement{'s' if statements > 1 else ''}")
            tracked, _ = _statements(name, entry)
            if tracked is None or tracked > statements:
                met = False
    return ", ".join(parts), met


def _index(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(run["lib"], run["db"]): run for run in report["runs"]}


def render(report: dict[str, Any]) -> str:
    runs = _index(report)
    libs = [lib for lib in LIB_ORDER if any(key[0] == lib for key in runs)]
    dbs = [db for db in ("sqlite", "postgres") if any(key[1] == db for key in runs)]
    machine = report["machine"]
    lines = [
        f"# revy benchmark{' (quick run)' if report.get('quick') else ''}"
        f"{'' if report.get('complete', True) else ' (partial: still running)'}",
        "",
        f"- date: {report['date']}",
        f"- machine: {machine['nproc']} CPUs ({machine['cpu']}), "
        f"Python {machine['python']}, {machine['platform']}",
    ]
    versions = []
    for lib in libs:
        for db in dbs:
            run = runs.get((lib, db))
            if run and run.get("versions"):
                v = run["versions"]
                if lib != "untracked" and v.get("library"):
                    versions.append(f"{LABELS[lib]} {v['library']}")
                versions.append(f"Django {v['django']}")
                versions.append(f"{DB_LABELS[db]} {v['database']}")
    if versions:
        lines.append(f"- versions: {', '.join(dict.fromkeys(versions))}")
    lines.append(f"- wall time: {report['seconds']:.0f} s")
    load = report.get("load_average")
    if load:
        lines.append(
            "- load average (1, 5, 15 min) at start: "
            + ", ".join(f"{x:.1f}" for x in load["start"])
            + "; at end: "
            + ", ".join(f"{x:.1f}" for x in load["end"])
        )
    for note in report.get("notes", []):
        lines.append(f"- note: {note}")
    lines += [
        "",
        "## Ratio to the untracked twin (median of paired repeats, min-max)",
        "",
        "Tracked pass time / untracked pass time, same process, same run. "
        "The A/A control column runs the same passes with no library at all: "
        "its spread is the noise floor.",
        "",
    ]
    header = ["scenario", "database", *(LABELS[lib] for lib in libs), "target", "revy"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    misses: list[str] = []
    for name, (title, _) in SCENARIOS.items():
        for db in dbs:
            cells = [title, DB_LABELS[db]]
            present = False
            for lib in libs:
                run = runs.get((lib, db))
                entry = (run or {}).get("scenarios", {}).get(name)
                if entry and entry.get("ratio_median") is not None:
                    present = True
                    cells.append(
                        f"{_num(entry['ratio_median'])} "
                        f"({_num(entry['ratio_min'])}-{_num(entry['ratio_max'])})"
                    )
                elif run and name in run.get("skipped", {}):
                    cells.append("n/a")
                else:
                    cells.append("-")
            if not present:
                continue
            revy = (runs.get(("revy", db)) or {}).get("scenarios", {}).get(name)
            target, met = target_status(name, db, revy or {})
            cells.append(target)
            if revy is None or met is None:
                cells.append("")
            else:
                cells.append("met" if met else "**missed**")
                if not met:
                    figure = _num(revy["ratio_median"])
                    if TARGETS[name][db][1] is not None:
                        count = _statements(name, revy)[0] or 0
                        plural = "" if count == 1 else "s"
                        figure += f" [{_num(count)} statement{plural}]"
                    misses.append(f"{title}, {DB_LABELS[db]}: {figure} vs {target}")
            lines.append("| " + " | ".join(cells) + " |")

    lines += [
        "",
        "## SQL statements and history rows per operation",
        "",
        "Statements Django executed per operation for the tracked model "
        "(untracked twin in brackets); SAVEPOINT / RELEASE count, BEGIN / COMMIT "
        "do not. History rows: rows added to the library's tables. Bulk "
        "scenarios: per 1,000 rows.",
        "",
    ]
    header = ["scenario", "database", "per", *(LABELS[lib] for lib in libs)]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for name, (title, per) in SCENARIOS.items():
        if name == "construct_5000":
            continue
        for db in dbs:
            cells = [title, DB_LABELS[db], per]
            present = False
            for lib in libs:
                entry = ((runs.get((lib, db)) or {}).get("scenarios") or {}).get(name)
                if not entry:
                    cells.append("-")
                    continue
                present = True
                tracked, plain = _statements(name, entry)
                rows = entry.get("history_rows_per_op")
                if name in PER_THOUSAND and rows is not None:
                    rows *= 1000
                cells.append(
                    f"{_num(tracked, 1)} [{_num(plain, 1)}] · {_num(rows, 1)} h"
                )
            if present:
                lines.append("| " + " | ".join(cells) + " |")

    lines += [
        "",
        "## Absolute figures",
        "",
        "Bare context: `with Context(): pass` (revy only). Request context: "
        "the library's request context, built with its actor (and for revy "
        "a lazy revision) as its middleware builds it, entered and exited; "
        "get actor: reading the actor inside it. µs, best of 5, loop cost "
        "subtracted. Untracked µs: one untracked create, for scale. Peak RSS "
        "of the whole process.",
        "",
    ]
    header = [
        "library",
        "database",
        "bare context µs",
        "request context enter+exit µs",
        "get actor µs",
        "untracked create µs",
        "peak RSS MB",
        "process s",
    ]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for lib in libs:
        for db in dbs:
            run = runs.get((lib, db))
            if not run:
                continue
            scenarios = run.get("scenarios") or {}
            context = scenarios.get("context") or {}
            create = scenarios.get("create") or {}
            lines.append(
                "| "
                + " | ".join(
                    [
                        LABELS[lib],
                        DB_LABELS[db],
                        _num(context.get("bare_enter_exit_us")),
                        _num(context.get("enter_exit_us")),
                        _num(context.get("get_actor_us")),
                        _num(create.get("untracked_us_per_op"), 0),
                        _num(run.get("peak_rss_mb"), 0),
                        _num(run.get("seconds"), 0),
                    ]
                )
                + " |"
            )
    revy_contexts = [
        ((runs.get(("revy", db)) or {}).get("scenarios") or {}).get("context")
        for db in dbs
    ]
    for key, limit in CONTEXT_TARGETS.items():
        values = [c[key] for c in revy_contexts if c and c.get(key) is not None]
        if values and min(values) > limit:
            what = "context enter+exit" if key.startswith("bare") else "get_actor"
            misses.append(f"{what}: {_num(min(values))} µs vs ≤ {limit} µs")

    lines += _history_size(report.get("history_size"))
    lines += ["", "## revy's missed targets", ""]
    lines += [f"- {miss}" for miss in misses] or ["- none"]
    errors = [
        f"- {run['lib']} on {run['db']}: {', '.join(run['errors'])}"
        for run in report["runs"]
        if run.get("errors")
    ]
    if errors:
        lines += ["", "## Errors (see latest.json)", "", *errors]
    return "\n".join(lines) + "\n"


def _history_size(run: dict[str, Any] | None) -> list[str]:
    entry = ((run or {}).get("scenarios") or {}).get("history_size")
    if not entry:
        return []
    sizes = [key for key in entry if key.isdigit()]
    lines = [
        "",
        "## History size (revy, PostgreSQL)",
        "",
        "One object with 100 changes; the tables also hold the given number of "
        "object deltas of other objects (one attribute delta each). Median µs "
        "per read.",
        "",
        "| stored object deltas | state as of change 50 µs | list history µs |",
        "|---|---|---|",
    ]
    for size in sizes:
        lines.append(
            f"| {int(size):,} | {_num(entry[size]['state_as_of_us'], 0)} "
            f"| {_num(entry[size]['history_list_us'], 0)} |"
        )
    growth = entry["growth"]
    state, listing = growth["state_as_of_us"], growth["history_list_us"]
    lines.append(f"| growth | x{state:.2f} | x{listing:.2f} |")
    largest = sizes[-1]
    for name, plan in entry[largest]["plans"].items():
        lines += ["", f"`EXPLAIN ANALYZE`, {name}, {int(largest):,} deltas:", ""]
        lines += ["```", plan, "```"]
    return lines


def main(argv: list[str] | None = None) -> int:
    """Renders a results file again: ``python -m bench.report [latest.json]``."""
    import json
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0] if args else Path(__file__).parent / "results/latest.json")
    markdown = render(json.loads(source.read_text()))
    source.with_suffix(".md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
