"""The figures' read model: every dossier and feedback item folded once, read by period.

Before this, every figure re-folded every dossier ever stored (a GROUP BY over the whole state
table on each read: 25 s and 11 GB at 10 million dossiers). Now:

1. `*_parts` (migration 0018): a materialized view folds what each insert adds to an item into
   one row per (item, ingested_at), with idempotent aggregates, so duplicates and any arrival
   order change nothing. `folded_at` says when the row was written.
2. The refolder (`Refolder.step`, run by the metrics service) takes the items whose parts were
   written since its watermark and folds each into its *facts*: one row per item and ingest
   version (the state as the store knew it from `valid_from` until `valid_to`), with what every
   judgment needs that does not depend on the judging instant precomputed (when it finished, its
   effective finishing time after supplement pauses, its first payment, ...). It writes the
   difference between the facts it computes and the facts stored, as added and cancelled rows
   (`sign`), so a step is idempotent and repairs whatever an interrupted step left behind.
3. A figure reads the facts of the rows its period can touch (partition `part_month`, skip
   indexes on the other anchors), plus a *delta*: items with parts newer than the watermark
   are folded from their parts at question time. So answers are as fresh as the parts, and an
   as-of answer is exact at any instant: the facts version valid then, or the parts up to then.

The fold is written once, here (`_DOSSIER_FOLD`, `_FEEDBACK_FOLD` and what is derived from them):
the refolder and `motcua replay` render it as a running fold per version (`versions_sql`), a
question's delta as the fold at one instant (`at_instant_sql`); the per-insert aggregates are the
view's in migration 0018.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

from core.storage.placement import placement
from core.storage.replay import Progress, replay, view_select
from core.zone import TZ

log = logging.getLogger(__name__)

Entity = Literal["dossier", "feedback"]
ENTITIES: tuple[Entity, ...] = ("dossier", "feedback")

# valid_to of a current row: the end of what DateTime64(3) can hold, a day inside it.
CURRENT = datetime(2299, 12, 31, tzinfo=UTC)
_DT = "DateTime64(3, 'UTC')"
CURRENT_SQL = "toDateTime64('2299-12-31 00:00:00', 3, 'UTC')"
_EPOCH = "toDateTime64(0, 3, 'UTC')"
EPOCH = datetime.fromtimestamp(0, UTC)
# A chunk of a rebuild writes every month of a dossier history at once (ten years: 120
# partitions, beyond the engine's default limit of 100 per insert).
_FACTS_INSERT: dict[str, Any] = {"async_insert": 0, "max_partitions_per_insert_block": 0}
# One writer of the facts at a time in a process: a rebuild (`motcua replay`, tests) must not
# interleave with the metrics service's refolder steps. Across processes the store's own lock
# (chDB) or running replay with the services stopped (a server) does the same.
_WRITING = threading.RLock()
# part_month of an open dossier (or of feedback with no filing time): above every real month.
OPEN_MONTH = 999999


# How each part column folds: max, min, a set union, or an exact distinct count (kept as its
# state until the last step). One list per entity, rendered three ways below: merging the parts
# of one insert instant, the running fold over an item's instants (one facts version each), and
# the fold at one instant (a question's delta).
Fold = tuple[tuple[str, str], ...]

_DOSSIER_FOLD: Fold = (
    ("procedure_code", "max"),
    ("domain_code", "max"),
    ("level", "max"),
    ("channel", "max"),
    ("received_at", "min"),
    ("due_at", "min"),
    ("fee_required", "max"),
    ("paper_result_required", "max"),
    ("e_result", "max"),
    ("outcome", "max"),
    ("resolved_at", "min"),
    ("returned_at", "min"),
    ("withdrawn_at", "min"),
    ("supplement_requests", "groupUniqArrayArray"),
    ("supplement_receipts", "groupUniqArrayArray"),
    ("late_notice_at", "min"),
    ("apologies", "groupUniqArrayArray"),
    ("payments", "groupUniqArrayArray"),
    ("digitized_at", "min"),
    ("last_rating", "max"),
    ("event_count", "uniqExact"),
    ("last_event_at", "max"),
)

_FEEDBACK_FOLD: Fold = (
    ("filed_at", "min"),
    ("topic", "max"),
    ("due_at", "min"),
    ("answered_at", "min"),
    ("published_at", "min"),
    ("last_rating", "max"),
    ("event_count", "uniqExact"),
    ("last_event_at", "max"),
)


@dataclass(frozen=True)
class Shape:
    """How one entity's parts fold into facts."""

    entity: Entity
    key: str  # the item id column
    parts: str
    facts: str
    fold: Fold
    derived: str  # SELECT list over the folded columns: the facts' own columns
    month: str  # part_month of a current row (a history row: minus the month valid_to ends)
    columns: tuple[str, ...]  # the facts' content columns, in table order
    # Tables materialized views fill from the facts (dossier_days, and dossier_months from
    # those), in that order: emptied with them, reconciled with them one after the other.
    counts: tuple[str, ...] = ()


# Judged at its own end (withdrawal included: a rule set that does not count withdrawals leaves
# withdrawn-only dossiers out altogether, so every dossier it keeps has this same end).
# Reference §2: the k-th supplement request pairs with the k-th resubmission, by time.
_DOSSIER_DERIVED = f"""
    procedure_code, domain_code, level, channel, received_at, due_at, fee_required,
    paper_result_required, e_result, outcome, resolved_at, returned_at, withdrawn_at,
    coalesce(resolved_at, returned_at, withdrawn_at) AS end_at,
    arrayMap(x -> x.1, arraySort(supplement_requests)) AS requests_all,
    arrayMap(x -> x.1, arraySort(supplement_receipts)) AS receipts_all,
    arraySort(apologies) AS apologies_all,
    arraySort(payments) AS payments_all,
    ifNull(end_at, {_EPOCH}) AS end_or_epoch,
    arrayFilter(x -> x <= end_or_epoch, requests_all) AS end_req,
    arrayFilter(x -> x <= end_or_epoch, receipts_all) AS end_rec,
    least(length(end_req), length(end_rec)) AS end_pairs,
    toUInt16(if(end_at IS NULL, 0, length(end_req))) AS end_requests,
    if(end_at IS NULL, NULL, subtractMilliseconds(
        if(length(end_req) > end_pairs, end_req[end_pairs + 1], end_or_epoch),
        arraySum(arrayMap(i -> greatest(0, dateDiff('millisecond', end_req[i], end_rec[i])),
                          range(1, end_pairs + 1))))) AS end_effective_at,
    -- §2 at its end, both ways the rule sets draw the boundary (queries.py reads these)
    toUInt8(ifNull(end_effective_at > due_at, 0)) AS end_late,
    toUInt8(ifNull(toDate(end_effective_at, '{TZ}') > toDate(due_at, '{TZ}'), 0)) AS end_late_day,
    toUInt8(ifNull(toDate(end_effective_at, '{TZ}') < toDate(due_at, '{TZ}'), 0))
        AS end_early_day,
    late_notice_at,
    toUInt16(length(apologies_all)) AS apologies_n,
    if(length(apologies_all) > 0, apologies_all[1].1, NULL) AS first_apology_at,
    if(length(payments_all) > 0, payments_all[1].1, NULL) AS paid_at,
    toUInt8(arrayExists(p -> p.2 = 'online', payments_all)) AS paid_online,
    toUInt64(arraySum(p -> p.3, payments_all)) AS paid_amount,
    digitized_at, last_rating, toUInt64(event_count) AS event_count, last_event_at
"""

_FEEDBACK_DERIVED = """
    filed_at, topic, due_at, answered_at, published_at, last_rating,
    toUInt64(event_count) AS event_count, last_event_at
"""

SHAPES: dict[Entity, Shape] = {
    "dossier": Shape(
        entity="dossier",
        key="dossier_id",
        parts="dossier_parts",
        facts="dossier_facts",
        fold=_DOSSIER_FOLD,
        derived=_DOSSIER_DERIVED,
        # the month of its last dated step once finished (its end, receipt, first payment or
        # digitisation, whichever came last), so that a question about any of them since some
        # instant reads only the partitions from that month on; open: OPEN_MONTH
        month=(
            f"if(end_at IS NULL, {OPEN_MONTH}, toYYYYMM(greatest(end_at, "
            "ifNull(received_at, end_at), ifNull(paid_at, end_at), ifNull(digitized_at, end_at))))"
        ),
        columns=(
            "procedure_code",
            "domain_code",
            "level",
            "channel",
            "received_at",
            "due_at",
            "fee_required",
            "paper_result_required",
            "e_result",
            "outcome",
            "resolved_at",
            "returned_at",
            "withdrawn_at",
            "end_at",
            "supplement_requests",
            "supplement_receipts",
            "end_requests",
            "end_effective_at",
            "end_late",
            "end_late_day",
            "end_early_day",
            "late_notice_at",
            "apologies",
            "first_apology_at",
            "paid_at",
            "paid_online",
            "paid_amount",
            "digitized_at",
            "last_rating",
            "event_count",
            "last_event_at",
        ),
        counts=("dossier_days", "dossier_months"),
    ),
    "feedback": Shape(
        entity="feedback",
        key="feedback_id",
        parts="feedback_parts",
        facts="feedback_facts",
        fold=_FEEDBACK_FOLD,
        derived=_FEEDBACK_DERIVED,
        month="ifNull(toYYYYMM(filed_at), 0)",
        columns=(
            "filed_at",
            "topic",
            "due_at",
            "answered_at",
            "published_at",
            "last_rating",
            "event_count",
            "last_event_at",
        ),
    ),
}

# The facts' columns whose derived name differs (the derived SELECT keeps the parts' names
# free for the folded values it reads).
_FACT_NAMES = {
    "supplement_requests": "requests_all",
    "supplement_receipts": "receipts_all",
    "apologies": "apologies_n",
}


def _merge(column: str, how: str) -> str:
    """Parts of one item and instant into one row (duplicates of a retried insert)."""
    if how == "uniqExact":
        return f"uniqExactMergeState({column}) AS {column}"
    return f"{how}({column}) AS {column}"


def _final(column: str, how: str, over: str = "") -> str:
    """The fold of an item's rows: over a window (each instant's running state) or grouped."""
    if how == "uniqExact":
        return f"uniqExactMerge({column}){over} AS {column}"
    return f"{how}({column}){over} AS {column}"


KEY_COLUMNS = ("agency_code", "item_id", "valid_from", "valid_to", "part_month", "version")


def _facts_select(shape: Shape, folded: str) -> str:
    """Facts rows (key columns, then content) from rows of folded columns with valid_from and
    valid_to."""
    content = ", ".join(f"{_FACT_NAMES.get(c, c)} AS {c}" for c in shape.columns)
    names = ", ".join(shape.columns)
    return f"""
SELECT agency_code, {shape.key}, valid_from, valid_to,
    if(valid_to = {CURRENT_SQL}, {shape.month}, -toYYYYMM(valid_to)) AS part_month,
    -- one tuple: a hash of a NULL argument is NULL, a NULL inside a tuple is hashed as NULL
    cityHash64(tuple(agency_code, {shape.key}, valid_from, valid_to, {names})) AS version,
    {names}
FROM (
    SELECT agency_code, {shape.key}, valid_from, valid_to, {content}
    FROM (SELECT agency_code, {shape.key}, valid_from, valid_to, {shape.derived} FROM ({folded}))
)
"""


def versions_sql(shape: Shape, where: str) -> str:
    """Every version of the items `where` selects: one per ingest instant of their parts, each
    the running fold of the parts up to it and holding until the next (the last one current).
    One pass in the table's own order, whatever the number of versions."""
    merged = ", ".join(_merge(c, how) for c, how in shape.fold)
    item = f"PARTITION BY agency_code, {shape.key} ORDER BY ingested_at"
    running = ", ".join(_final(c, how, " OVER running") for c, how in shape.fold)
    folded = f"""
SELECT agency_code, {shape.key}, ingested_at AS valid_from,
    leadInFrame(ingested_at, 1, {CURRENT_SQL})
        OVER ({item} ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS valid_to,
    {running}
FROM (
    SELECT agency_code, {shape.key}, ingested_at, {merged}
    FROM {shape.parts} WHERE {where}
    GROUP BY agency_code, {shape.key}, ingested_at
)
WINDOW running AS ({item} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
"""
    return _facts_select(shape, folded)


def at_instant_sql(shape: Shape, where: str, bound: str) -> str:
    """The items `where` selects, folded as the store knew them at `bound` (a SQL instant): the
    delta of a live or as-of question. The same fold as versions_sql, at one instant."""
    grouped = ", ".join(_final(c, how) for c, how in shape.fold)
    folded = f"""
SELECT agency_code, {shape.key}, max(ingested_at) AS valid_from, {CURRENT_SQL} AS valid_to,
    {grouped}
FROM {shape.parts} WHERE ({where}) AND ingested_at <= {bound}
GROUP BY agency_code, {shape.key}
"""
    return _facts_select(shape, folded)


def difference_sql(shape: Shape, wanted: str) -> str:
    """What to write so that the stored facts of the items `wanted` selects (agency_code and
    the item id) equal the fold of their parts: per version identity (agency, item, valid_from,
    valid_to, version, the last a hash of the content) `change` = 1 if the fold has it, minus
    the signs stored. A positive change is that many added rows, a negative one that many
    cancellations: a leftover, a stray cancel or a row written twice by a step cut short all
    come out right, and a repeat finds nothing to write."""
    ids = f"{shape.key} IN (SELECT {shape.key} FROM ({wanted}))"
    mine = f"(agency_code, {shape.key}) IN ({wanted})"
    content = ", ".join(shape.columns)
    kept = ", ".join(f"any({c}) AS {c}" for c in shape.columns)
    return f"""
SELECT agency_code, {shape.key}, valid_from, valid_to, any(part_month) AS part_month, version,
    {kept}, sum(w) AS change
FROM (
    SELECT *, toInt64(1) AS w FROM ({versions_sql(shape, ids)}) WHERE {mine}
    UNION ALL
    SELECT agency_code, {shape.key}, valid_from, valid_to, part_month, version, {content},
        -toInt64(sign) AS w
    FROM {shape.facts} WHERE {ids} AND {mine}
)
GROUP BY agency_code, {shape.key}, valid_from, valid_to, version
HAVING change != 0
"""


def counts_dirty_sql(entity: Entity) -> str:
    """Scalar subquery: 1 when the entity's day counts may disagree with its facts."""
    return f"(SELECT ifNull(argMax(dirty, seq), 0) FROM counts_guard WHERE entity = '{entity}')"


def counts_seq_sql(entity: Entity) -> str:
    """Scalar subquery: the newest mark of the entity's counts guard; it changes when a refolder
    write begins (the dirty mark) and when it ends."""
    return f"(SELECT ifNull(max(seq), 0) FROM counts_guard WHERE entity = '{entity}')"


def watermark_sql(entity: Entity) -> str:
    """Scalar subquery: every part folded at or before this instant is in the facts."""
    return (
        "(SELECT ifNull(max(watermark), toDateTime64(0, 3, 'UTC')) FROM facts_progress "
        f"WHERE entity = '{entity}')"
    )


def delta_keys_sql(entity: Entity, bound: str, agencies: str = "1") -> str:
    """Items with parts the refolder has not taken yet that were ingested by `bound`: their
    facts may be behind, so a question folds them from their parts instead."""
    shape = SHAPES[entity]
    return (
        f"SELECT DISTINCT agency_code, {shape.key} FROM {shape.parts} "
        f"WHERE folded_at > {watermark_sql(entity)} AND ingested_at <= {bound} AND {agencies}"
    )


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
        return as_utc(rows[0][0])

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
            [[entity, as_utc(top) if top else EPOCH]],
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
            return as_utc(rows[0][0])
        top = self._client.query(
            f"SELECT max(folded_at), count() FROM {shape.parts} "
            f"WHERE folded_at > {{since:{_DT}}} AND folded_at <= {{limit:{_DT}}}",
            parameters={"since": since, "limit": limit},
        ).result_rows[0]
        return as_utc(top[0]) if top[1] else None


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


def as_utc(value: Any) -> datetime:
    """Engine datetimes may come back without their zone; every stored time is UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    raise TypeError(f"expected a datetime, got {value!r}")


__all__ = ["CURRENT", "ENTITIES", "SHAPES", "TZ", "Refolder", "at_instant_sql", "catch_up"]
