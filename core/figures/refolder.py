"""The refolder (run by the metrics service): keeps `*_facts` in step with `*_parts`, a bounded
window of parts per step, writing the difference (core/figures/fact_sql.py); and the full
rebuild of `motcua replay`."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from core.figures.fact_sql import (
    KEY_COLUMNS,
    counts_dirty_sql,
    difference_sql,
    versions_sql,
    watermark_sql,
)
from core.figures.facts import ENTITIES, EPOCH, SHAPES, Entity, Shape
from core.storage.placement import placement
from core.storage.replay import Progress, replay, view_select
from core.zone import utc

_DT = "DateTime64(3, 'UTC')"


# A chunk of a rebuild writes every month of a dossier history at once (ten years: 120
# partitions, beyond the engine's default limit of 100 per insert).
_FACTS_INSERT: dict[str, Any] = {"async_insert": 0, "max_partitions_per_insert_block": 0}
# One writer of the facts at a time in a process: a rebuild (`motcua replay`, tests) must not
# interleave with the metrics service's refolder steps. Across processes the store's own lock
# (chDB) or running replay with the services stopped (a server) does the same.
_WRITING = threading.RLock()


# --- the refolder ------------------------------------------------------------------------------


@dataclass
class StepResult:
    entity: Entity
    items: int = 0
    watermark: datetime | None = None
    seconds: float = 0.0


class Refolder:
    """Keeps `*_facts` in step with `*_parts`, a bounded window of parts per step.

    Run by one process at a time (the metrics service; `motcua replay` with everything stopped).
    A step never needs to be the only one to see an item: it rewrites the item's facts from all
    of its parts and writes only the difference, so running a step twice, or after a crash
    halfway through an insert, converges on the same facts.
    """

    def __init__(
        self, client: Client, *, max_parts: int = 50_000, settle: timedelta = timedelta(seconds=1)
    ) -> None:
        self._client = client
        self._max_parts = max_parts
        # A part written this recently could still have a sibling (the same instant's insert)
        # not visible yet; the delta covers it meanwhile.
        self._settle = settle

    def watermark(self, entity: Entity) -> datetime:
        rows = self._client.query(f"SELECT {watermark_sql(entity)}").result_rows
        return utc(rows[0][0])

    def step(self, entity: Entity) -> StepResult:
        with _WRITING:
            return self._step(entity)

    def _step(self, entity: Entity) -> StepResult:
        started = time.perf_counter()
        shape = SHAPES[entity]
        result = StepResult(entity)
        since = self.watermark(entity)
        if since == EPOCH and self._backlog(shape) > 4 * self._max_parts:
            # A store that has never been refolded (a new installation of this version on an
            # old store): one bulk fold instead of a thousand steps.
            self._rebuild(entity, 500_000)
            result.watermark = self.watermark(entity)
            result.seconds = time.perf_counter() - started
            return result
        until = self._window_end(shape, since)
        if until is None:
            result.watermark = since
            return result
        params = {"since": since, "until": until}
        window = (
            f"SELECT DISTINCT agency_code, {shape.key} FROM {shape.parts} "
            f"WHERE folded_at > {{since:{_DT}}} AND folded_at <= {{until:{_DT}}}"
        )
        result.items = int(
            self._client.query(f"SELECT count() FROM ({window})", parameters=params).result_rows[0][
                0
            ]
        )
        self._write_difference(shape, window, params)
        self._client.insert(
            "facts_progress",
            [[entity, until]],
            column_names=["entity", "watermark"],
            settings={"async_insert": 0},
        )
        result.watermark = until
        result.seconds = time.perf_counter() - started
        return result

    def catch_up(self, entity: Entity) -> int:
        """Steps until the watermark reaches what is stored; returns the items refolded."""
        items = 0
        while True:
            before = self.watermark(entity)
            result = self.step(entity)
            items += result.items
            if result.watermark is None or result.watermark == before:
                return items

    def sync(self, entity: Entity, keys: Sequence[tuple[str, str]]) -> int:
        """Make the stored facts of these items equal to the fold of their parts; returns the
        rows written (0: they already were)."""
        if not keys:
            return 0
        shape = SHAPES[entity]
        wanted = (
            f"SELECT k.1 AS agency_code, k.2 AS {shape.key} FROM (SELECT arrayJoin("
            "arrayZip({agencies:Array(String)}, {ids:Array(String)})) AS k)"
        )
        params = {"agencies": [a for a, _ in keys], "ids": [i for _, i in keys]}
        diff = difference_sql(shape, wanted)
        rows = self._client.query(f"SELECT sum(abs(change)) FROM ({diff})", parameters=params)
        written = int(rows.result_rows[0][0] or 0)
        if written:
            self._write_difference(shape, wanted, params)
        return written

    def _write_difference(self, shape: Shape, wanted: str, params: dict[str, Any]) -> None:
        """Write, inside the store, the difference between the fold of the `wanted` items'
        parts and their stored facts (difference_sql).

        Nothing comes back to Python: at thousands of events a second, turning every folded
        row into Python objects and back into an insert was most of the refolder's cost, and
        it held the interpreter the ingest's event loop needs."""
        columns = ", ".join(["agency_code", shape.key, *KEY_COLUMNS[2:], *shape.columns])
        # the facts and their day counts (a view) are two writes: dirty until both are done
        self._mark(shape, dirty=True)
        self._client.command(
            f"INSERT INTO {shape.facts} ({columns}, sign) "
            f"SELECT {columns}, if(change > 0, toInt8(1), toInt8(-1)) "
            f"FROM ({difference_sql(shape, wanted)}) "
            "ARRAY JOIN range(toUInt64(abs(change))) AS repeat",
            parameters=params,
            # A repeat recomputes the difference, so it never needs the engine's block dedup,
            # which could drop a legitimate repeat of an earlier block.
            settings={**_FACTS_INSERT, "insert_deduplicate": 0},
        )
        self._mark(shape, dirty=False)

    def _mark(self, shape: Shape, *, dirty: bool) -> None:
        if shape.counts:
            self._client.insert(
                "counts_guard",
                [[shape.entity, int(dirty), time.time_ns()]],
                column_names=["entity", "dirty", "seq"],
                settings={"async_insert": 0},
            )

    def counts_dirty(self, entity: Entity) -> bool:
        rows = self._client.query(f"SELECT {counts_dirty_sql(entity)}").result_rows
        return bool(rows[0][0])

    def reconcile_counts(self, entity: Entity) -> list[int]:
        """Make the day counts equal to what the facts imply, year by year, where they differ
        (after a process was killed between a facts write and its view's); returns the years
        rewritten. Reads every current fact once: run at start, and only when marked dirty."""
        with _WRITING:
            shape = SHAPES[entity]
            rewritten: list[int] = []
            # on a cluster: the partitions of every shard, refilled from every shard's facts
            placed = placement(self._client)
            for table in shape.counts:
                view = placed.over_cluster(view_select(self._client, f"{table}_mv"))
                compare = (
                    "SELECT toYear(day) AS y, toString(anchor) AS a, sum(n) AS n, sum(events) AS e "
                    "FROM {source} GROUP BY y, a"
                )
                stored = self._client.query(compare.format(source=table)).result_rows
                wanted = self._client.query(compare.format(source=f"({view})")).result_rows
                differ = {r[0] for r in set(stored) ^ set(wanted)}
                for year in sorted(differ):
                    self._client.command(f"ALTER TABLE {placed.ddl(table)} DROP PARTITION {year:d}")
                    self._client.command(
                        f"INSERT INTO {table} SELECT * FROM ({view}) WHERE toYear(day) = {year:d}",
                        # The year was just dropped, so a repeat is exact; the engine's dedup
                        # could drop a repeat whose first try lost its part (0027's why).
                        settings={**_FACTS_INSERT, "insert_deduplicate": 0},
                    )
                    rewritten.append(year)
            self._mark(shape, dirty=False)
            return rewritten

    def rebuild(self, entity: Entity, chunk_parts: int = 500_000) -> int:
        """Refold every item from scratch (`motcua replay`): truncate, then one insert per hash
        chunk of the ids (about `chunk_parts` parts each), so memory stays bounded whatever the
        history. Returns facts rows (every version of every item)."""
        with _WRITING:
            return self._rebuild(entity, chunk_parts)

    def _rebuild(self, entity: Entity, chunk_parts: int) -> int:
        shape = SHAPES[entity]
        client = self._client
        # Chunks of about chunk_parts parts each: memory stays flat as the history grows.
        chunks = max(1, -(-self._backlog(shape) // chunk_parts))
        self._mark(shape, dirty=True)
        placed = placement(client)  # on a cluster: every shard's tables
        client.command(f"TRUNCATE TABLE {placed.ddl(shape.facts)}")
        for table in shape.counts:
            client.command(f"TRUNCATE TABLE {placed.ddl(table)}")
        top = client.query(f"SELECT max(folded_at) FROM {shape.parts}").result_rows[0][0]
        columns = ", ".join(["agency_code", shape.key, *KEY_COLUMNS[2:], *shape.columns])
        for i in range(chunks):
            where = f"cityHash64({shape.key}) % {chunks:d} = {i:d}"
            client.command(
                f"INSERT INTO {shape.facts} ({columns}, sign) "
                f"SELECT *, toInt8(1) FROM ({versions_sql(shape, where)})",
                settings=_FACTS_INSERT,
            )
        client.insert(
            "facts_progress",
            [[entity, utc(top) if top else EPOCH]],
            column_names=["entity", "watermark"],
            settings={"async_insert": 0},
        )
        self._mark(shape, dirty=False)
        return int(client.query(f"SELECT count() FROM {shape.facts}").result_rows[0][0])

    def _backlog(self, shape: Shape) -> int:
        return int(self._client.query(f"SELECT count() FROM {shape.parts}").result_rows[0][0])

    def _window_end(self, shape: Shape, since: datetime) -> datetime | None:
        """The end of the next step's window: at most about max_parts parts past `since`, never
        closer to now than the settle time; None when nothing is waiting."""
        limit = datetime.now(UTC) - self._settle
        rows = self._client.query(
            f"SELECT folded_at FROM {shape.parts} "
            f"WHERE folded_at > {{since:{_DT}}} AND folded_at <= {{limit:{_DT}}} "
            "ORDER BY folded_at LIMIT 1 OFFSET {n:UInt64}",
            parameters={"since": since, "limit": limit, "n": self._max_parts},
        ).result_rows
        if rows:
            return utc(rows[0][0])
        top = self._client.query(
            f"SELECT max(folded_at), count() FROM {shape.parts} "
            f"WHERE folded_at > {{since:{_DT}}} AND folded_at <= {{limit:{_DT}}}",
            parameters={"since": since, "limit": limit},
        ).result_rows[0]
        return utc(top[0]) if top[1] else None


def replay_all(
    client: Client,
    progress: Progress | None = None,
    chunk_events: int = 2_000_000,
    chunk_parts: int = 500_000,
) -> dict[str, int]:
    """`motcua replay`: every table the views feed rebuilt from the events log, then the facts
    refolded from the rebuilt parts, in steps of about `chunk_events` events and `chunk_parts`
    parts (what bounds its memory). Returns rows per table."""
    counts = replay(client, progress=progress, chunk_events=chunk_events)
    refolder = Refolder(client)
    for entity in ENTITIES:
        counts[SHAPES[entity].facts] = refolder.rebuild(entity, chunk_parts)
    return counts


def catch_up(client: Client, settle_seconds: float = 0.0) -> int:
    """Fold everything stored so far into the facts (tests, replay); returns items refolded."""
    refolder = Refolder(client, settle=timedelta(seconds=settle_seconds))
    return sum(refolder.catch_up(entity) for entity in ENTITIES)
