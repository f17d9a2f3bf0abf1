"""Rebuild every derived table from the stored events (`motcua replay`).

The rebuild runs each materialized view's own SELECT (read back from the engine, so there is no
second copy to drift) over the events log, a year and a slice of its items at a time, for
progress and so memory does not grow with the history. Run it
with ingest stopped: in embedded mode the chDB lock guarantees that.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from clickhouse_connect.driver.client import Client

from core.storage.placement import placement

_FROM_EVENTS = re.compile(r"FROM (?P<table>`?\w+`?\.`?events`?)(?: AS (?P<alias>\w+))?")
_TO_TARGET = re.compile(r" TO (?P<target>\S+) ")

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class View:
    name: str
    target: str
    select: str


def derived_views(client: Client) -> list[View]:
    rows = client.query(
        "SELECT name, as_select, create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND engine = 'MaterializedView' ORDER BY name"
    ).result_rows
    # On a cluster the views read and write `_local` tables: a refill runs over the Distributed
    # ones instead, so it reads every shard and sends each row to its own (placement.py).
    placed = placement(client)
    views = []
    for name, select, create in rows:
        target = _TO_TARGET.search(create)
        select = placed.over_cluster(select)
        if not target or not _FROM_EVENTS.search(select):
            continue  # not fed by the events log
        views.append(View(name, placed.plain(target["target"]), select))
    return views


def replay(
    client: Client,
    progress: Progress | None = None,
    only: tuple[str, ...] = (),
    chunk_events: int = 2_000_000,
) -> dict[str, int]:
    """Truncate every table the views feed (or only the `only` views'), then refill it a year
    and a slice of its items at a time, about `chunk_events` events each, so memory stays the
    same whatever the history (a view's aggregates are idempotent states: a group split across
    slices merges in its table). Returns rows per target."""
    views = [v for v in derived_views(client) if not only or v.name in only]
    years = [
        (int(y), max(1, -(-int(n) // chunk_events)))
        for y, n in client.query(
            "SELECT toYear(occurred_at) AS y, count() FROM events GROUP BY y ORDER BY y"
        ).result_rows
    ]
    placed = placement(client)
    for view in views:
        client.command(f"TRUNCATE TABLE {placed.ddl(view.target)}")
    steps = len(views) * sum(slices for _, slices in years)
    done = 0
    for view in views:
        for year, slices in years:
            for part in range(slices):
                slice_of = partial(_one_slice, year=year, part=part, slices=slices)
                select = _FROM_EVENTS.sub(slice_of, view.select, count=1)
                client.command(f"INSERT INTO {view.target} {select}", settings={"async_insert": 0})
                done += 1
                if progress:
                    progress(done, steps, f"{view.target} {year} {part + 1}/{slices}")
    return {
        v.target: int(client.query(f"SELECT count() FROM {v.target}").result_rows[0][0])
        for v in views
    }


def fill_new_views(client: Client, views: tuple[str, ...]) -> dict[str, int]:
    """After a migration that adds views fed by the events log: fill their tables from the
    events already stored (a new view only sees inserts made after it exists)."""
    if not views or not client.query("SELECT count() FROM events").result_rows[0][0]:
        return {}
    return replay(client, only=views)


def refeed(client: Client, where: str, parameters: dict[str, Any]) -> int:
    """Run every view fed by the events log again over the stored events that match `where`,
    straight into its table; returns the views run.

    For events stored whose views may have missed them (an insert that failed after the events
    log took it). Nothing is inserted into the log itself, so no dedup token is involved; the
    views' tables hold idempotent aggregates without a dedup window of their own (migrations
    0024, 0027), so a view that had the events already is left as it was."""
    views = derived_views(client)
    for view in views:
        select = _FROM_EVENTS.sub(
            lambda m: (
                f"FROM (SELECT * FROM {m['table']} WHERE {where}) AS {m['alias'] or 'events'}"
            ),
            view.select,
            count=1,
        )
        client.command(
            f"INSERT INTO {view.target} {select}",
            parameters=parameters,
            settings={"async_insert": 0, "insert_deduplicate": 0},
        )
    return len(views)


def _one_slice(match: re.Match[str], year: int, part: int, slices: int) -> str:
    return (
        f"FROM (SELECT * FROM {match['table']} WHERE toYear(occurred_at) = {year:d} "
        f"AND cityHash64(entity_id) % {slices:d} = {part:d}) AS {match['alias'] or 'events'}"
    )


def text_progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = width * done // max(total, 1)
    bar = "█" * filled + "·" * (width - filled)
    end = "\n" if done == total else ""
    print(f"\r[{bar}] {done}/{total} {label:<40}", end=end, flush=True)


def view_select(client: Client, view: str) -> str:
    """The SELECT a materialized view runs on each insert, to fill its target from what its
    source already holds (migrations, reconciliations)."""
    return str(
        client.query(
            "SELECT as_select FROM system.tables "
            "WHERE database = currentDatabase() AND name = {view:String}",
            parameters={"view": view},
        ).result_rows[0][0]
    )
